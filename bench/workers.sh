#!/usr/bin/env bash
# Several flags workers sharing one crawl through Redis: throughput with 1, 2 and 4 workers on
# this machine, against the 1-worker run, and the Redis commands each page costs. The site is the
# 20,000-page test site exported to nginx; Redis runs without persistence. Worker i is pinned to
# CPU i mod nproc with taskset (on a 2-core machine, 4 workers share 2 CPUs with nginx and Redis).
# Writes bench/results/workers.md. Needs: nginx, redis-server, taskset.
#   N=16 PER_HOST=64 PAGES=20000 bash bench/workers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}
PER_HOST=${PER_HOST:-64}
PAGES=${PAGES:-20000}
cargo build --release -q
FLAGS=$PWD/target/release/flags
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
PORT=$(free_port)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work" /dev/shm/flags-workers-*' EXIT
"$FLAGS" serve --site "$PAGES" --export "$work/site" >/dev/null
chmod -R a+rX "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$PORT; root $work/site; }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir "$work" >/dev/null
sleep 0.5
REDIS=redis://127.0.0.1:$RPORT
URL=http://127.0.0.1:$PORT/
cores=$(nproc)

calls() { redis-cli -p "$RPORT" info commandstats | awk -F'[=,:]' '/^cmdstat_/ { s += $3 } END { print s + 0 }'; }

rows=""
base=""
for W in 1 2 4; do
    redis-cli -p "$RPORT" flushall >/dev/null
    redis-cli -p "$RPORT" config resetstat >/dev/null
    start=$(date +%s.%N)
    pids=()
    for i in $(seq 0 $((W - 1))); do
        taskset -c $((i % cores)) "$FLAGS" crawl "$URL" --redis "$REDIS" --crawl "bench$W" \
            -m "$N" --per-host "$PER_HOST" -d "/dev/shm/flags-workers-$W" >/dev/null 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    end=$(date +%s.%N)
    cmds=$(calls)
    pages=$("$FLAGS" status --redis "$REDIS" --crawl "bench$W" --json |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["ok"]+s["not_found"]+s["redirected"]+s["errors"])')
    wall=$(echo "$end - $start" | bc -l)
    rate=$(echo "$pages / $wall" | bc -l)
    [ -n "$base" ] || base=$rate
    row=$(awk -v w="$W" -v p="$pages" -v t="$wall" -v r="$rate" -v b="$base" -v c="$cmds" \
        'BEGIN { printf "| %d | %d | %.2f | %.0f | %.2f× | %.1f |", w, p, t, r, r / b, c / p }')
    echo "$row"
    rows+="$row"$'\n'
    rm -rf "/dev/shm/flags-workers-$W"
done
{
    echo "# Shared crawl: 1, 2 and 4 workers through one Redis"
    echo
    echo "The $PAGES-page test site on nginx (1 worker process), Redis $(redis-server --version | awk '{print $3}' | tr -d v=) without"
    echo "persistence, each flags worker \`-m $N --per-host $PER_HOST\` pinned to CPU i mod $cores; pages are"
    echo "the crawl's outcomes (ok + not found + redirected + errors); Redis commands are all commands"
    echo "Redis ran (\`INFO commandstats\`) divided by pages. \`bash bench/workers.sh\`."
    echo
    echo "| workers | pages | wall s | pages/s | vs 1 worker | Redis commands per page |"
    echo "| --- | --- | --- | --- | --- | --- |"
    printf '%s' "$rows"
} > bench/results/workers.md
cat bench/results/workers.md
