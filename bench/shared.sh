#!/usr/bin/env bash
# What sharing a crawl through Redis costs: the same crawl on one machine (no Redis), with one
# worker and `--redis`, and with two workers, and the Redis round trips each page costs. The site
# is the 20,000-page test site exported to nginx (1 worker process); Redis runs without
# persistence. Placement on this machine: each flags process is pinned to a core with taskset
# (the local crawl and the single worker to CPU 0; the two workers to CPU 0 and CPU 1); nginx and
# redis-server are not pinned, so they run wherever the scheduler finds room. Median of RUNS runs
# by wall time. Writes bench/results/shared.md (RESULT=file: elsewhere). Needs: nginx,
# redis-server, taskset, GNU time.
#   RUNS=5 N=16 PER_HOST=64 PAGES=20000 bash bench/shared.sh
#   FLAGS=/path/to/other/flags RESULT=/tmp/before.md bash bench/shared.sh   # another build
#
# Columns: pages/s (pages = ok + not found + redirected + errors); flags CPU s (user + sys of
# every worker, GNU time); Redis CPU s (`INFO cpu`); nginx CPU s (its worker, /proc); idle s: the
# whole machine's idle time meanwhile (/proc/stat, all cores); round trips per page: the reads Redis made
# from its clients' sockets (`total_reads_processed`; a request, or a pipeline of requests sent
# together, is one read), divided by pages; commands per page: every command Redis ran
# (`total_commands_processed`, those run inside scripts included); scripts per page: EVALSHA calls.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}
PER_HOST=${PER_HOST:-64}
PAGES=${PAGES:-20000}
RUNS=${RUNS:-5}
OUT=${OUT:-/dev/shm}
RESULT=${RESULT:-bench/results/shared.md}
if [ -z "${FLAGS:-}" ]; then
    cargo build --release -q
    FLAGS=$PWD/target/release/flags
fi
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
PORT=$(free_port)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work" "$OUT"/flags-shared-*' EXIT
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
COMMON=(-m "$N" --per-host "$PER_HOST")

# "commands reads evalsha cpu" of the Redis server so far.
redis_counts() {
    redis-cli -p "$RPORT" info all | tr -d '\r' | awk -F'[:=,]' '
        $1 == "total_commands_processed" { c = $2 }
        $1 == "total_reads_processed" { r = $2 }
        $1 == "cmdstat_evalsha" { e = $3 }
        $1 == "used_cpu_sys" { cpu += $2 }
        $1 == "used_cpu_user" { cpu += $2 }
        END { printf "%d %d %d %.3f\n", c, r, e + 0, cpu }'
}

# CPU seconds of nginx's worker so far.
nginx_cpu() {
    local pid
    pid=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$pid/stat"
}

# Idle seconds of the whole machine so far.
idle() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f\n", ($5 + $6) / hz }' /proc/stat; }

# One run of W workers (0: the crawl without Redis). Prints "pages wall flags_cpu redis_cpu
# nginx_cpu idle trips_per_page commands_per_page scripts_per_page".
run() {
    local W=$1 name="run$RANDOM"
    rm -rf "$OUT"/flags-shared-*
    redis-cli -p "$RPORT" flushall >/dev/null
    local n0 i0 n1 i1
    n0=$(nginx_cpu)
    i0=$(idle)
    read -r c0 r0 e0 cpu0 <<<"$(redis_counts)"
    local start end pids=() i
    start=$(date +%s.%N)
    if [ "$W" = 0 ]; then
        taskset -c 0 /usr/bin/time -o "$work/time0" -f "%U %S" \
            "$FLAGS" crawl "$URL" "${COMMON[@]}" --json -d "$OUT/flags-shared-local" \
            >"$work/out0" 2>/dev/null &
        pids+=($!)
    else
        for i in $(seq 0 $((W - 1))); do
            taskset -c $((i % $(nproc))) /usr/bin/time -o "$work/time$i" -f "%U %S" \
                "$FLAGS" crawl "$URL" "${COMMON[@]}" --redis "$REDIS" --crawl "$name" \
                -d "$OUT/flags-shared-$W" >/dev/null 2>&1 &
            pids+=($!)
        done
    fi
    for p in "${pids[@]}"; do wait "$p" || true; done
    end=$(date +%s.%N)
    n1=$(nginx_cpu)
    i1=$(idle)
    read -r c1 r1 e1 cpu1 <<<"$(redis_counts)"
    local pages
    if [ "$W" = 0 ]; then
        pages=$(tail -1 "$work/out0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pages"])')
    else
        pages=$("$FLAGS" status --redis "$REDIS" --crawl "$name" --json |
            python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["ok"]+s["not_found"]+s["redirected"]+s["errors"])')
    fi
    local cpu
    cpu=$(cat "$work"/time* | awk '/^[0-9.]+ [0-9.]+$/ { s += $1 + $2 } END { print s + 0 }')
    rm -f "$work"/time*
    awk -v p="$pages" -v s="$start" -v e="$end" -v f="$cpu" -v rc="$cpu0" -v rc1="$cpu1" \
        -v c="$((c1 - c0))" -v r="$((r1 - r0))" -v x="$((e1 - e0))" -v n="$n0" -v n1="$n1" \
        -v i="$i0" -v i1="$i1" \
        'BEGIN { printf "%d %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", p, e - s, f, rc1 - rc,
                 n1 - n, i1 - i, r / p, c / p, x / p }'
}

median() { sort -n -k2 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

declare -A result
for W in 0 1 2; do
    lines=""
    for _ in $(seq "$RUNS"); do
        line=$(run "$W")
        echo "workers=$W: $line" >&2
        lines+="$line"$'\n'
    done
    result[$W]=$(printf '%s' "$lines" | grep . | median)
done

row() {
    local what=$1 W=$2 base=$3
    read -r pages wall cpu rcpu ncpu idl trips cmds scripts <<<"${result[$W]}"
    awk -v n="$what" -v p="$pages" -v w="$wall" -v c="$cpu" -v rc="$rcpu" -v nc="$ncpu" \
        -v i="$idl" -v t="$trips" -v m="$cmds" -v s="$scripts" -v b="$base" \
        'BEGIN { printf "| %s | %d | %.2f | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
                 n, p, w, p / w, (b > 0 ? sprintf("%.2f×", (p / w) / b) : "1.00×"), c, rc, nc, i,
                 t, m, s }'
}
rate() { read -r pages wall _ <<<"${result[$1]}"; awk -v p="$pages" -v w="$wall" 'BEGIN { print p / w }'; }
local_rate=$(rate 0)
one_rate=$(rate 1)
{
    echo "# Shared crawl: what Redis costs"
    echo
    echo "The $PAGES-page test site on nginx (1 worker process), Redis $(redis-server --version | awk '{print $3}' | tr -d v=) without"
    echo "persistence, flags \`crawl ${COMMON[*]}\`, pages to $OUT; the local crawl and one worker pinned"
    echo "to CPU 0, two workers to CPU 0 and 1, nginx and Redis unpinned; $(nproc) cores; median of $RUNS"
    echo "runs; flags $("$FLAGS" --version | awk '{print $2}'). \`bash bench/shared.sh\`."
    echo
    echo "| crawl | pages | wall s | pages/s | vs the local crawl | flags CPU s | Redis CPU s | nginx CPU s | idle s | round trips per page | commands per page | scripts per page |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    row "local (no Redis)" 0 0
    row "1 worker" 1 "$local_rate"
    row "2 workers" 2 "$local_rate"
    echo
    awk -v a="$one_rate" -v b="$(rate 2)" 'BEGIN { printf "Two workers: %.2f× one worker.\n", b / a }'
} > "$RESULT"
cat "$RESULT"
