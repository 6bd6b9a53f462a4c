#!/usr/bin/env bash
# A 1,000,000-page crawl of flags' built-in test site (`flags serve --site 1000000`, no nginx):
#   /usr/bin/time -v timeout 1200 flags crawl http://127.0.0.1:P/ -m 64 --per-host 64 -d DEST
# Records wall time, pages/s, CPU, peak RSS and peak RSS per page, appends them to
# bench/results/crawl.md (OUT), then deletes the output. Pages are flags' own count (its summary:
# downloaded + not found + redirected + errors); the built-in server keeps no access log.
# DEST is /dev/shm/flags-million; when the free space there (or the free memory, since /dev/shm is
# memory) cannot hold about 6 KiB per page, the crawl is bounded with --max-pages, and the
# Markdown says so. Run time is bounded to 20 minutes (TIMEOUT=1200).
#
#   bash bench/crawl_million.sh         (also run at the end of bench/crawl.sh)
# Env: PAGES (1000000), M (64), DEST, TIMEOUT, FLAGS (default: a copy of target/release/flags), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PAGES=${PAGES_MILLION:-${PAGES:-1000000}}
M=${M:-64}
DEST=${DEST:-/dev/shm/flags-million}
TIMEOUT=${TIMEOUT:-1200}
OUT=${OUT:-bench/results/crawl.md}
if [ -z "${FLAGS:-}" ]; then
    # A copy, taken now: a rebuild during the run changes nothing, and no stale copy is reused.
    FLAGS=/tmp/flags-bench-bin
    cp target/release/flags "$FLAGS"
fi

work=$(mktemp -d /tmp/crawlmillion.XXXXXX)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work" "$DEST"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DEST"
mkdir -p "$DEST"
echo "Free space before the crawl:" >&2
df -h "$DEST" / >&2
# About 1.25 URLs per page on this site, each a file of < 1 KiB: on tmpfs a 4 KiB page plus inode
# and dentry; 6 KiB a page leaves room for the journal.
need_kib=$((PAGES * 6))
avail_kib=$(df -Pk "$DEST" | awk 'NR == 2 {print $4}')
mem_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
case $(df -P "$DEST" | awk 'NR == 2 {print $1}') in
    tmpfs | shm | none) fits_kib=$((mem_kib - 4 * 1024 * 1024)) ;; # keep 4 GiB for the processes
    *) fits_kib=$avail_kib ;;
esac
[ "$avail_kib" -lt "$fits_kib" ] && fits_kib=$avail_kib
bound=()
note="every page"
if [ "$need_kib" -gt "$fits_kib" ]; then
    maxp=$((fits_kib / 6))
    bound=(--max-pages "$maxp")
    note="bounded with --max-pages $maxp: $DEST has room for about that many (needs ~6 KiB a page)"
fi
echo "Needs about $((need_kib / 1024)) MiB, $((fits_kib / 1024)) MiB usable: $note" >&2

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$EPOCHREALTIME
"$FLAGS" serve --site "$PAGES" --port "$PORT" >"$work/serve.out" 2>&1 &
server=$!
for _ in $(seq 600); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/robots.txt" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.out" >&2; exit 1; }
    sleep 0.1
done
echo "Server up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s (RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status))" >&2
URL="http://127.0.0.1:$PORT/"
cmd=("$FLAGS" crawl "$URL" -m "$M" --per-host "$M" -d "$DEST" "${bound[@]}")
echo "Running: /usr/bin/time -v timeout $TIMEOUT ${cmd[*]}" >&2
t0=$EPOCHREALTIME
set +e
/usr/bin/time -v -o "$work/time.txt" timeout "$TIMEOUT" "${cmd[@]}" >"$work/crawl.out" 2>"$work/crawl.err"
rc=$?
set -e
t1=$EPOCHREALTIME
server_rss=$(awk '/VmHWM/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
tail -12 "$work/crawl.out" >&2
tail -5 "$work/crawl.err" >&2
files=$(find "$DEST" -type f ! -name '.flags-crawl.journal' | wc -l)
journal=$(stat -c %s "$DEST/.flags-crawl.journal" 2>/dev/null || echo 0)
used=$(du -sk "$DEST" | cut -f1)
pages=$(awk '/ downloaded\.$| not found\.$| redirected| errors?\.$/ { n += $1 } END { print n + 0 }' "$work/crawl.out")
user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
summary=$(sed -n '/^-----/,$p' "$work/crawl.out" | tail -n +2)
timed_out=""
[ "$rc" = 124 ] && timed_out=" **Stopped by the $TIMEOUT s timeout.**"

{
    echo
    echo "## A 1,000,000-page crawl (built-in server)"
    echo
    echo "\`flags serve --site $PAGES --port P\` (flags' own server, 2 worker threads, on the same"
    echo "2 cores), then \`/usr/bin/time -v timeout $TIMEOUT flags crawl http://127.0.0.1:P/ -m $M"
    echo "--per-host $M -d $DEST${bound[*]:+ ${bound[*]}}\`: $note.$timed_out Pages = flags' own"
    echo "count (downloaded + not found + redirected + errors); the server keeps no log."
    echo "\`bash bench/crawl_million.sh\`."
    echo
    echo "| pages | wall s | pages/s | CPU s | peak RSS MiB | peak RSS / page, bytes | exit | files saved | disk used MiB |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    awk -v p="$pages" -v a="$t0" -v b="$t1" -v u="$user" -v s="$sys" -v r="$rss" -v rc="$rc" \
        -v f="$files" -v used="$used" 'BEGIN {
        w = b - a
        printf "| %d | %.1f | %.0f | %.1f | %.1f | %.0f | %d | %d | %.0f |\n",
               p, w, (w > 0 ? p / w : 0), u + s, r / 1024, (p > 0 ? r * 1024 / p : 0), rc, f, used / 1024 }'
    echo
    echo "flags' summary:"
    echo
    echo '```'
    echo "$summary"
    echo '```'
    echo
    echo "Journal $((journal / 1024 / 1024)) MiB; the server's own peak RSS $((server_rss / 1024)) MiB (not counted above)."
} >>"$OUT"
tail -22 "$OUT"
