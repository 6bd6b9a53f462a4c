#!/usr/bin/env bash
# The foreign-server check: installs the web servers (Debian packages), builds flags in release
# mode and runs bench/foreign.py, which prints one table and writes bench/results/foreign.md.
# Not part of the test suite. Traffic stays on 127.0.0.1.
#
#   bash bench/foreign.sh                  # every server, -m 10 and 100
#   bash bench/foreign.sh --fast-only      # without the two slow (0.5-5 s) servers
#   bash bench/foreign.sh --pools 50       # other pool sizes
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in nginx:nginx /usr/sbin/apache2:apache2 lighttpd:lighttpd busybox:busybox curl:curl; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The packages may start their own instances; the check runs its own on free ports.
if command -v systemctl >/dev/null 2>&1; then
    systemctl stop nginx apache2 lighttpd >/dev/null 2>&1 || true
fi

cargo build --release --quiet
exec python3 bench/foreign.py "$@"
