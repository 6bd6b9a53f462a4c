#!/usr/bin/env bash
# The side-by-side benchmark: installs the peers (Debian packages), builds flags in release mode,
# and runs bench/bench.py, which prints one table and writes bench/results/latest.md and
# bench/results/pool_size.svg. Not part of the test suite. Traffic stays on 127.0.0.1.
#
#   bash bench/run.sh                 # every case, median of 5, downloads into tmpfs
#   bash bench/run.sh --cases b       # one case
#   bash bench/run.sh --disk /var/tmp # downloads onto that disk instead
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in nginx:nginx aria2c:aria2 curl:curl wget2:wget2 wrk:wrk hyperfine:hyperfine /usr/bin/time:time; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
python3 -c 'import aiohttp' 2>/dev/null || /usr/bin/python3 -c 'import aiohttp' 2>/dev/null || need+=(python3-aiohttp)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# nginx from Debian starts itself; the benchmark runs its own instance on a free port.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi

cargo build --release --quiet
exec python3 bench/bench.py "$@"
