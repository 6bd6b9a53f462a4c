#!/usr/bin/env bash
# Issue #18's benchmarks in one command: flags beside wget2, curl and aria2c on real docs sites,
# the built-in site, a crawl across thousands of hosts, a bulk URL list, a crawl shared through
# Redis, memory at scale, and a CPU profile. Everything runs on 127.0.0.1 (or in a private
# network namespace); every server it starts is stopped on exit.
#
#   bash bench/issue18.sh                      # every case: bench/results/issue18.md (+ profile)
#   CASES=docs,bulk QUICK=1 bash bench/issue18.sh
#
# It installs what it needs from Debian when missing (nginx, wget2, curl, aria2, redis-server,
# linux-perf, time, and the docs: python3.11-doc, postgresql-doc-15, rust-doc). It never runs
# cargo: build first (`cargo build --release`); the binary is copied, so a rebuild during the run
# changes nothing. Env knobs: see the top of bench/issue18.py (CASES, QUICK, RUNS, FLAGS, OUT, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in nginx wget2 curl aria2 redis-server linux-perf time util-linux iproute2 \
    python3.11-doc postgresql-doc-15 rust-doc; do
    have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "Installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian packages start nginx and redis-server as services; this suite uses its own.
for s in nginx redis-server; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$s" 2>/dev/null; then
        echo "note: the system's $s service is running (left alone; the suite uses its own ports)" >&2
    fi
done

if [ -z "${FLAGS:-}" ] && [ ! -x target/release/flags ]; then
    echo "target/release/flags is missing: run cargo build --release first (or set FLAGS)" >&2
    exit 2
fi
exec /usr/bin/python3 bench/issue18.py "$@"
