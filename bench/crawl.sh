#!/usr/bin/env bash
# flags crawl beside wget2 --recursive and Scrapy (CrawlSpider + LinkExtractor), on the same
# 20,000-page test site (`flags serve --site 20000 --export`) served by nginx on 127.0.0.1, at the
# same concurrency, robots.txt obeyed by all three. Pages are counted in nginx's access log.
# Writes bench/results/crawl.md. Needs: nginx, wget2, scrapy (pip), GNU time.
#   N=16 RUNS=3 PAGES=20000 bash bench/crawl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}
RUNS=${RUNS:-3}
PAGES=${PAGES:-20000}
OUTROOT=${OUTROOT:-/dev/shm}
cargo build --release -q
FLAGS=$PWD/target/release/flags
work=$(mktemp -d)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work" "$OUTROOT"/flags-bench-*' EXIT
"$FLAGS" serve --site "$PAGES" --export "$work/site" >/dev/null
chmod -R a+rX "$work"  # nginx's workers are not root
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log $work/access.log;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$PORT; root $work/site; }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
sleep 0.3
URL="http://127.0.0.1:$PORT/"

# One run: prints "pages wall cpu rss_mib" (pages from the access log, robots.txt excluded).
run() {
    : > "$work/access.log"
    kill -USR1 "$(cat "$work/nginx.pid")"  # reopen the log
    sleep 0.2
    /usr/bin/time -o "$work/time" -f "%e %U %S %M" "$@" >/dev/null 2>"$work/stderr" || cat "$work/stderr" >&2
    local pages
    pages=$(grep -vc "GET /robots.txt" "$work/access.log" || true)
    # The last line (time puts "Command exited with non-zero status" before it).
    tail -1 "$work/time" | awk -v p="$pages" '{ printf "%d %.2f %.2f %.1f\n", p, $1, $2 + $3, $4 / 1024 }'
}

median() { sort -n -k2 | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

declare -A result
bench() {
    local name=$1; shift
    local lines=""
    for _ in $(seq "$RUNS"); do
        rm -rf "$OUTROOT/flags-bench-out"
        lines+="$(run "$@")"$'\n'
    done
    result[$name]=$(printf '%s' "$lines" | grep . | median)
    echo "$name: ${result[$name]}"
}

bench flags "$FLAGS" crawl "$URL" -m "$N" --per-host "$N" -d "$OUTROOT/flags-bench-out"
if command -v wget2 >/dev/null; then
    bench wget2 wget2 -r -l inf --max-threads="$N" -q -P "$OUTROOT/flags-bench-out" "$URL"
fi
if python3 -c 'import scrapy' 2>/dev/null; then
    bench scrapy python3 -m scrapy runspider bench/crawl_spider.py -a "start=$URL" \
        -s CONCURRENT_REQUESTS="$N" -s CONCURRENT_REQUESTS_PER_DOMAIN="$N" -s DOWNLOAD_DELAY=0 \
        -s ROBOTSTXT_OBEY=True -s LOG_LEVEL=WARNING -s TELNETCONSOLE_ENABLED=False
fi

row() {
    local name=$1 what=$2
    [ -n "${result[$name]:-}" ] || return 0
    read -r pages wall cpu rss <<<"${result[$name]}"
    awk -v n="$what" -v p="$pages" -v w="$wall" -v c="$cpu" -v r="$rss" \
        'BEGIN { printf "| %s | %d | %.2f | %.0f | %.2f | %.1f |\n", n, p, w, p / w, c, r }'
}
{
    echo "# Crawl: flags beside wget2 and Scrapy"
    echo
    echo "A $PAGES-page site (\`flags serve --site $PAGES --export\`) served by nginx on 127.0.0.1;"
    echo "concurrency $N for all (flags \`-m $N --per-host $N\`, wget2 \`--max-threads=$N\`, Scrapy"
    echo "\`CONCURRENT_REQUESTS(_PER_DOMAIN)=$N\`), robots.txt obeyed by all; pages counted in nginx's"
    echo "access log (robots.txt excluded); files written to $OUTROOT (Scrapy stores nothing);"
    echo "median of $RUNS runs by wall time; \`bash bench/crawl.sh\`. Machine: $(nproc) cores."
    echo
    echo "| crawler | pages | wall s | pages/s | CPU s | peak RSS MiB |"
    echo "| --- | --- | --- | --- | --- | --- |"
    row flags "flags $("$FLAGS" --version | awk '{print $2}')"
    row wget2 "$(wget2 --version 2>/dev/null | head -1 | awk '{print $1, $2, $3}')"
    row scrapy "Scrapy $(python3 -m scrapy version 2>/dev/null | awk '{print $2}')"
    echo
    echo "nginx: $(nginx -v 2>&1 | sed 's/nginx version: //')"
} > bench/results/crawl.md
cat bench/results/crawl.md
