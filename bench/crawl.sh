#!/usr/bin/env bash
# flags crawl beside wget2 --recursive and Scrapy (CrawlSpider + LinkExtractor) on the same static
# test site (`flags serve --site PAGES --export DIR`) served by nginx on 127.0.0.1, at the same
# concurrency N, robots.txt obeyed by all three. Pages are counted in nginx's access log (one line
# per request; robots.txt not counted). CPU (user+sys) and peak RSS come from `/usr/bin/time -v`,
# wall time from the shell's clock. Each tool runs RUNS times; the run with the median wall time is
# reported. Writes bench/results/crawl.md, then runs bench/crawl_million.sh (MILLION=0 skips it),
# which appends the 1,000,000-page crawl of the built-in server.
#
#   N=16 RUNS=3 PAGES=20000 bash bench/crawl.sh
#
# Env: N (concurrency, 16), RUNS (3), PAGES (20000), OUTROOT (where each run's fresh output dir
# is made: /dev/shm), FLAGS (the binary; default: a copy of
# target/release/flags taken at the start, so a rebuild during the run changes nothing), SITE (use this
# static site instead of exporting one), OUT (the Markdown file), MILLION (1).
# Needs: nginx, wget2, Scrapy (python3 -m scrapy), GNU time. A missing wget2 or Scrapy is SKIPPED.
# It never runs cargo: build target/release/flags first.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}
RUNS=${RUNS:-3}
PAGES=${PAGES:-20000}
OUTROOT=${OUTROOT:-/dev/shm}
OUT=${OUT:-bench/results/crawl.md}
MILLION=${MILLION:-1}
if [ -z "${FLAGS:-}" ]; then
    # A copy, taken now: a rebuild during the run changes nothing, and no stale copy is reused.
    FLAGS=/tmp/flags-bench-bin
    cp target/release/flags "$FLAGS"
fi
PY=${PYTHON:-python3}

work=$(mktemp -d /tmp/crawlbench.XXXXXX)
cleanup() {
    if [ -s "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$work" "$OUTROOT"/crawlbench-out.*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SITE:-}" ]; then
    cp -r "$SITE" "$work/site"
else
    "$FLAGS" serve --site "$PAGES" --export "$work/site" >/dev/null
fi
chmod -R a+rX "$work" # nginx's workers are not root
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  types { text/html html htm; text/plain txt; }
  default_type application/octet-stream;
  log_format bench '\$status \$request_method \$request_uri';
  access_log $work/access.log bench;
  keepalive_requests 10000;
  sendfile on;
  client_body_temp_path $work/tmp;
  proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp;
  scgi_temp_path $work/tmp;
  server { listen 127.0.0.1:$PORT; root $work/site; }
}
CONF
mkdir -p "$work/tmp" "$work/logs"
nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf"
URL="http://127.0.0.1:$PORT/"
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
echo "nginx on $URL, site $work/site ($(find "$work/site" -type f | wc -l) files)" >&2

# One run of one tool. "@OUT@" in the command is replaced by a fresh output dir.
# Appends to runs.tsv: tool run pages wall cpu rss_kib rc ok404(200 404 other) uniq private robots files
run() {
    local tool=$1 i=$2
    shift 2
    local out
    out=$(mktemp -d -p "$OUTROOT" crawlbench-out.XXXXXX)
    local args=()
    local a
    for a in "$@"; do args+=("${a//@OUT@/$out}"); done
    : >"$work/access.log"
    local t0 t1 rc
    t0=$EPOCHREALTIME
    set +e
    /usr/bin/time -v -o "$work/time.txt" "${args[@]}" \
        >"$work/logs/$tool.$i.out" 2>"$work/logs/$tool.$i.err"
    rc=$?
    set -e
    t1=$EPOCHREALTIME
    sleep 0.2 # the last log lines
    local files
    files=$(find "$out" -type f ! -name '.flags-crawl.journal' | wc -l)
    rm -rf "$out"
    local user sys rss
    user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    awk -v tool="$tool" -v i="$i" -v t0="$t0" -v t1="$t1" -v u="$user" -v s="$sys" \
        -v rss="$rss" -v rc="$rc" -v files="$files" '
        $3 == "/robots.txt" { robots++; next }
        { pages++; st[$1 == 200 ? "200" : $1 == 404 ? "404" : "other"]++
          if (!($3 in seen)) { seen[$3] = 1; uniq++ }
          if ($3 ~ /^\/private\//) priv++ }
        END { printf "%s\t%d\t%d\t%.3f\t%.2f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n",
                     tool, i, pages, t1 - t0, u + s, rss, rc, st["200"], st["404"], st["other"],
                     uniq, priv, robots, files }' "$work/access.log" >>"$work/runs.tsv"
    tail -1 "$work/runs.tsv" | awk -F'\t' '{ printf "  %s run %d: %d pages in %.2f s, CPU %.2f s, RSS %.1f MiB, exit %d\n", $1, $2, $3, $4, $5, $6 / 1024, $7 }' >&2
}

bench() {
    local tool=$1
    shift
    local i
    for i in $(seq "$RUNS"); do run "$tool" "$i" "$@"; done
}

: >"$work/runs.tsv"
declare -A skipped
echo "flags: $FLAGS crawl $URL -m $N --per-host $N -d DIR" >&2
bench flags "$FLAGS" crawl "$URL" -m "$N" --per-host "$N" -d @OUT@
if command -v wget2 >/dev/null; then
    bench wget2 wget2 -r -l inf --max-threads="$N" -q -P @OUT@ "$URL"
else
    skipped[wget2]="SKIPPED: wget2 is not installed"
    echo "${skipped[wget2]}" >&2
fi
if $PY -c 'import scrapy' 2>/dev/null; then
    bench scrapy "$PY" -m scrapy runspider bench/crawl_spider.py -a "start=$URL" \
        -s CONCURRENT_REQUESTS="$N" -s CONCURRENT_REQUESTS_PER_DOMAIN="$N" -s DOWNLOAD_DELAY=0 \
        -s ROBOTSTXT_OBEY=True -s LOG_LEVEL=WARNING -s TELNETCONSOLE_ENABLED=False
else
    skipped[scrapy]="SKIPPED: Scrapy is not installed ($PY -c 'import scrapy' fails)"
    echo "${skipped[scrapy]}" >&2
fi

# The median run (by wall time) of a tool: its runs.tsv line, and its run number.
median() {
    awk -F'\t' -v t="$1" '$1 == t' "$work/runs.tsv" | sort -t$'\t' -k4,4n |
        awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }'
}
declare -A med
for t in flags wget2 scrapy; do med[$t]=$(median "$t"); done
rate() { [ -n "${med[$1]}" ] && awk -F'\t' '{ printf "%.6f", $3 / $4 }' <<<"${med[$1]}" || true; }
wget2_rate=$(rate wget2)
flags_rate=$(rate flags)

flags_version=$("$FLAGS" --version)
wget2_version=$(command -v wget2 >/dev/null && wget2 --version 2>/dev/null | head -1 || echo "wget2 not installed")
scrapy_version=$($PY -m scrapy version 2>/dev/null || echo "Scrapy not installed")
nginx_version=$(nginx -v 2>&1)

row() {
    local tool=$1 label=$2
    if [ -z "${med[$tool]}" ]; then
        echo "| $label | ${skipped[$tool]:-SKIPPED} | | | | | |"
        return
    fi
    awk -F'\t' -v label="$label" -v w="$wget2_rate" '{
        r = $3 / $4
        ratio = (w == "" ? "n/a" : sprintf("%.2f", r / w))
        printf "| %s | %d | %.2f | %.0f | %.2f | %.1f | %s |\n", label, $3, $4, r, $5, $6 / 1024, ratio }' \
        <<<"${med[$tool]}"
}
{
    echo "# Crawl: flags beside wget2 and Scrapy"
    echo
    echo "A $(find "$work/site" -type f -name '*.html' | wc -l)-file static site$([ -z "${SITE:-}" ] && echo " (\`flags serve --site $PAGES --export DIR\`)")"
    echo "served by nginx (2 workers) on 127.0.0.1; concurrency $N for all: flags \`-m $N --per-host $N\`,"
    echo "wget2 \`-r -l inf --max-threads=$N -q\`, Scrapy CrawlSpider with CONCURRENT_REQUESTS and"
    echo "CONCURRENT_REQUESTS_PER_DOMAIN $N, DOWNLOAD_DELAY 0. All three obey robots.txt (defaults)."
    echo "Pages = requests in nginx's access log, robots.txt excluded (404s included). flags and wget2"
    echo "save every page into a fresh dir in $OUTROOT; **Scrapy saves nothing** (no pipeline)."
    echo "CPU = user + sys and peak RSS from \`/usr/bin/time -v\`. Median of $RUNS runs by wall time."
    echo "The last column is each tool's pages/s divided by wget2's (flags' row: flags ÷ wget2)."
    echo "\`bash bench/crawl.sh\` (N=$N RUNS=$RUNS PAGES=$PAGES)."
    echo
    echo "| crawler | pages | wall s | pages/s | CPU s | peak RSS MiB | pages/s ÷ wget2's |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    row flags "$flags_version"
    row wget2 "$(awk '{print $1, $2, $3}' <<<"$wget2_version")"
    row scrapy "$scrapy_version"
    echo
    if [ -n "$flags_rate" ] && [ -n "$wget2_rate" ]; then
        awk -v f="$flags_rate" -v w="$wget2_rate" 'BEGIN { printf "flags ÷ wget2, pages/s: **%.2f**\n", f / w }'
        echo
    fi
    echo "Every run (the access log's status counts; uniq = distinct URLs requested; private = requests"
    echo "under /private/, which robots.txt disallows; files = files the tool saved):"
    echo
    echo "| crawler | run | pages | wall s | CPU s | RSS MiB | exit | 200 | 404 | other | uniq | private | robots.txt | files |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    awk -F'\t' '{ printf "| %s | %d | %d | %.2f | %.2f | %.1f | %d | %d | %d | %d | %d | %d | %d | %d |\n",
                  $1, $2, $3, $4, $5, $6 / 1024, $7, $8, $9, $10, $11, $12, $13, $14 }' "$work/runs.tsv"
    echo
    if [ -n "${med[flags]}" ]; then
        i=$(cut -f2 <<<"${med[flags]}")
        echo "flags' own summary (median run):"
        echo
        echo '```'
        tail -6 "$work/logs/flags.$i.out"
        echo '```'
        echo
    fi
    if [ -n "${med[scrapy]}" ]; then
        i=$(cut -f2 <<<"${med[scrapy]}")
        echo "Scrapy's stats (median run): \`$(grep '^scrapy-stats' "$work/logs/scrapy.$i.out" | cut -d' ' -f2-)\`"
        echo
    fi
    echo "Versions: $flags_version; $wget2_version; $scrapy_version; $nginx_version;"
    echo "$(lscpu | awk -F': *' '/Model name/ {print $2; exit}'), nproc $(nproc), $(uname -sr)."
} >"$OUT"
for t in flags wget2 scrapy; do
    for f in "$work"/logs/"$t".*.err; do
        [ -s "$f" ] && { echo "--- $f (last lines)" >&2; tail -5 "$f" >&2; }
    done 2>/dev/null || true
done
cat "$OUT"

if [ "$MILLION" = 1 ]; then
    FLAGS="$FLAGS" OUT="$OUT" bash bench/crawl_million.sh
fi
