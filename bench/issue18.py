#!/usr/bin/env python3
"""Issue #18's benchmarks: flags beside its peers at the same concurrency, every case in one run.

Run through bench/issue18.sh (which installs the packages). Writes bench/results/issue18.md (the
tables), bench/results/issue18-runs.jsonl (every run, every figure; beside OUT) and, with the profile case,
bench/results/profile-LABEL.md and its flame graphs.

Cases (CASES=comma,list; default all, in this order):
  docs    real generated docs sites from Debian (rust-doc, python3.11-doc, postgresql-doc-15) on
          nginx: flags crawl -m N --per-host N beside wget2 -r -np --max-threads=N (robots on)
  site    flags' own test site (flags serve --site 20000 --export) on nginx, the same two tools
  hosts   a generated static site of 50,000 pages on 2,000 host names (hNNNNN.flags.test), all
          127.0.0.1 in a private network and mount namespace (unshare: its own /etc/hosts, only
          a loopback interface), pages linking across hosts; flags --allow-domain, wget2 -H -D
  bulk    20,000 files of 4 KiB on nginx: flags -i beside curl --parallel, wget2 -i, aria2c -i
  shared  a crawl of the test site through Redis: local (no Redis) vs one worker vs two workers,
          each pinned to a core with taskset; Redis commands and round trips per page
  memory  peak RSS of a crawl of the built-in server at 20,000 .. 1,000,000 pages (wget2
          beside); bytes per queued URL; 1,000 vs 100,000 hosts in the frontier
  profile perf record of flags (and wget2) crawling the rust docs: bench/results/profile-LABEL.md

Env: CASES, QUICK=1 (one run each, smaller sizes), RUNS (3; 1 when QUICK), FLAGS (the binary;
default: target/release/flags, copied into the work dir), OUT (bench/results/issue18.md),
DOCS (rust,python,postgres), DOCS_N (16), SITE_PAGES (20000), SITE_N (100), HOSTS (2000),
HOSTS_PAGES (50000), HOSTS_N (100), BULK_FILES (20000), BULK_N (100), SHARED_N (16),
MEM_PAGES (20000,200000,1000000), MEM_N (64), MEM_RUNS (RUNS), MEM_WGET2 (1), MEM_WGET2_MAX
(200000), QUEUE_URLS (20000,200000), MEM_HOSTS_URLS (200000),
MEM_HOSTS (1000,100000), LABEL (before: the profile's file names), QUIET_BUSY (25: % of the
machine busy above which a case waits, up to QUIET_WAIT=180 s, and each run up to RUN_QUIET_WAIT=120 s,
for quiet), NOISE (0.10: a run during which other work took more than this share of a core is
done again, up to RETRIES=3 times), OUTROOT (/dev/shm).
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUICK = os.environ.get("QUICK") == "1"
RUNS = int(os.environ.get("RUNS", "1" if QUICK else "3"))
OUTROOT = Path(os.environ.get("OUTROOT", "/dev/shm"))
LABEL = os.environ.get("LABEL", "before")
CPUS = os.cpu_count() or 1
TIMEOUT = int(os.environ.get("RUN_TIMEOUT", "1200"))


def knob(name, default, quick=None):
    if name in os.environ:
        return os.environ[name]
    return quick if (QUICK and quick is not None) else default


def ints(text):
    return [int(x) for x in str(text).split(",") if x.strip()]


DOC_SITES = {
    # name: (Debian package, document root)
    "rust": ("rust-doc", "/usr/share/doc/rust-doc/html"),
    "python": ("python3.11-doc", "/usr/share/doc/python3.11/html"),
    "postgres": ("postgresql-doc-15", "/usr/share/doc/postgresql-doc-15/html"),
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine noise


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def proc_cpu(pid):
    """CPU seconds (user + sys) of one process so far, its children included once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def busy_percent(seconds=1.0):
    b0, t0 = cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = cpu_jiffies()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def top_processes():
    try:
        out = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-w", "160"], capture_output=True,
                             text=True, timeout=10).stdout
        block = out.split("\n\n")[-1].splitlines()
        rows = [line.split() for line in block[1:] if line.split() and line.split()[0].isdigit()]
        busy = [(float(r[8]), r[11]) for r in rows if len(r) > 11 and float(r[8]) >= 5.0]
        return ", ".join(f"{name} {pct:.0f}%" for pct, name in busy[:4]) or "none over 5%"
    except (subprocess.SubprocessError, ValueError, IndexError):
        return "?"


QUIET_NOTES = []


def wait_quiet(case):
    """Waits (bounded) until the machine is quiet; records how quiet it was."""
    limit = float(os.environ.get("QUIET_BUSY", "25"))
    deadline = time.time() + float(os.environ.get("QUIET_WAIT", "180"))
    waited = 0.0
    while True:
        busy = busy_percent(3.0)
        if busy <= limit or time.time() >= deadline:
            break
        log(f"[{case}] machine {busy:.0f}% busy (> {limit:.0f}%): waiting for quiet")
        time.sleep(8)
        waited += 10
    load = open("/proc/loadavg").read().split()[:3]
    note = {"case": case, "busy": busy, "load": " ".join(load), "waited": waited, "top": top_processes()}
    QUIET_NOTES.append(note)
    log(f"[{case}] before: {busy:.0f}% busy over 3 s, load {note['load']}, top: {note['top']}")
    return note


# ---------------------------------------------------------------- helpers


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, host="127.0.0.1", timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        first = (out.stdout or out.stderr).strip().splitlines()[0]
        return re.split(r" - | \(|, ", first.replace("nginx version: ", ""))[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "not installed"


def have(tool):
    return shutil.which(tool) is not None


class Proc:
    """A server process whose CPU counts as the server's."""

    def __init__(self, pid):
        self.pid = pid

    def cpu(self):
        return proc_cpu(self.pid)


class Nginx:
    """nginx on 127.0.0.1 with a generated config in its own dir; one access-log line per request
    (`status host uri`), collected per run by renaming the log and reopening it (USR1)."""

    def __init__(self, work, server_blocks, workers=2, name="nginx"):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=work))
        os.chmod(self.dir, 0o755)
        (self.dir / "tmp").mkdir()
        self.log = self.dir / "access.log"
        self.runs = 0
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
worker_processes {workers};
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  log_format bench '$status $host $request_uri';
  access_log {self.log} bench buffer=256k;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path {self.dir}/tmp;
  proxy_temp_path {self.dir}/tmp;
  fastcgi_temp_path {self.dir}/tmp;
  uwsgi_temp_path {self.dir}/tmp;
  scgi_temp_path {self.dir}/tmp;
  {server_blocks}
}}
""")
        subprocess.run(["nginx", "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf)],
                       check=True)
        self.pid = int((self.dir / "nginx.pid").read_text())

    def pids(self):
        """The master and its workers (whose CPU is the server's)."""
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return [self.pid] + [int(p) for p in out.split()]

    def cpu(self):
        return sum(proc_cpu(p) for p in self.pids())

    def take_log(self):
        """The lines logged since the last call."""
        self.runs += 1
        done = self.dir / f"access.{self.runs}.log"
        time.sleep(0.1)
        os.rename(self.log, done)
        os.kill(self.pid, signal.SIGUSR1)
        for _ in range(100):
            if self.log.exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)  # the workers flush their buffers into the renamed file
        with open(done, errors="replace") as f:
            lines = f.read().splitlines()
        done.unlink()
        return lines

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def count_log(lines):
    """requests (robots.txt excluded), statuses, distinct (host, uri) and robots.txt requests."""
    out = {"requests": 0, "s200": 0, "s404": 0, "sother": 0, "robots": 0}
    urls = set()
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        status, host, uri = parts
        if uri == "/robots.txt":
            out["robots"] += 1
            continue
        out["requests"] += 1
        key = "s200" if status == "200" else "s404" if status == "404" else "sother"
        out[key] += 1
        urls.add((host, uri))
    out["uniq"] = len(urls)
    return out, urls


def parse_time(path):
    text = Path(path).read_text(errors="replace")

    def field(name, conv=float, default=0):
        m = re.search(rf"^\s*{re.escape(name)}: (.*)$", text, re.M)
        return conv(m.group(1)) if m else default

    return {"user": field("User time (seconds)"), "sys": field("System time (seconds)"),
            "rss_kib": field("Maximum resident set size (kbytes)", int),
            "rc": field("Exit status", int)}


class Run:
    """One timed command: /usr/bin/time -v timeout CMD, wall time from a fine clock."""

    def __init__(self, cmd, logdir, tag, env=None, pin=None):
        self.tag = tag
        self.time_file = Path(logdir) / f"{tag}.time"
        self.out = Path(logdir) / f"{tag}.out"
        self.err = Path(logdir) / f"{tag}.err"
        full = ["/usr/bin/time", "-v", "-o", str(self.time_file),
                "timeout", "-k", "5", str(TIMEOUT)] + [str(c) for c in cmd]
        if pin is not None:
            full = ["taskset", "-c", str(pin)] + full
        self.cmd = cmd
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(full, stdout=open(self.out, "wb"), stderr=open(self.err, "wb"),
                                     env=env, cwd=logdir)

    def wait(self):
        self.proc.wait()
        self.wall = time.perf_counter() - self.t0
        r = parse_time(self.time_file)
        r["wall"] = self.wall
        r["cpu"] = r["user"] + r["sys"]
        if r["rc"] != 0:
            tail = self.err.read_text(errors="replace").strip().splitlines()[-3:]
            r["err"] = " / ".join(tail)[:300]
        return r


def measure(cmds, logdir, tag, servers=(), env=None, pins=None):
    """Runs the commands at once (several workers) and waits for all; one record: wall to the
    last end, CPU summed, peak RSS the largest, plus the servers' CPU and the rest of the
    machine's (`other_cpu`: all CPU time minus the tools' and the servers', i.e. the noise)."""
    srv0 = sum(s.cpu() for s in servers)
    b0, _ = cpu_jiffies()
    t0 = time.perf_counter()
    runs = [Run(c, logdir, f"{tag}.{i}", env=env, pin=(pins[i] if pins else None))
            for i, c in enumerate(cmds)]
    res = [r.wait() for r in runs]
    wall = time.perf_counter() - t0
    b1, _ = cpu_jiffies()
    srv = sum(s.cpu() for s in servers) - srv0
    tck = os.sysconf("SC_CLK_TCK")
    cpu = sum(r["cpu"] for r in res)
    rec = {"wall": wall, "cpu": cpu, "user": sum(r["user"] for r in res),
           "sys": sum(r["sys"] for r in res), "rss_kib": max(r["rss_kib"] for r in res),
           "rc": max(r["rc"] for r in res), "server_cpu": srv,
           "other_cpu": max(0.0, (b1 - b0) / tck - cpu - srv)}
    errs = [r["err"] for r in res if "err" in r]
    if errs:
        rec["err"] = errs[0]
    return rec


NOISE = float(os.environ.get("NOISE", "0.10"))
RETRIES = int(os.environ.get("RETRIES", "3"))


def settle():
    """Before a run: waits (at most RUN_QUIET_WAIT s) for a second with the machine quiet."""
    limit = float(os.environ.get("QUIET_BUSY", "25"))
    deadline = time.time() + float(os.environ.get("RUN_QUIET_WAIT", "120"))
    while busy_percent(1.0) > limit and time.time() < deadline:
        time.sleep(2)


def steady(run, retries=None):
    """run() -> record. A run during which other work on the machine took more than NOISE of a
    core over its wall time is done again (after waiting for quiet), at most RETRIES times; the
    record says how many runs were thrown away (`redone`) and whether the kept one is `noisy`."""
    redone = 0
    while True:
        settle()
        rec = run()
        noisy = rec["other_cpu"] > NOISE * rec["wall"] and rec["other_cpu"] > 0.05
        if not noisy or redone >= (RETRIES if retries is None else retries):
            rec["redone"], rec["noisy"] = redone, noisy
            return rec
        redone += 1
        log(f"    noisy run (other CPU {rec['other_cpu']:.2f} s over {rec['wall']:.2f} s): again")


def count_files(path):
    n = 0
    for _, _, files in os.walk(path):
        n += sum(1 for f in files if f != ".flags-crawl.journal")
    return n


def fresh_out(tag):
    OUTROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"issue18-{tag}.", dir=OUTROOT))


class Suite:
    def __init__(self, work, flags):
        self.work = Path(work)
        self.flags = str(flags)
        self.records = []  # every run
        self.sections = []  # Markdown, in case order
        self.summary = []  # rows of the summary table
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        os.chmod(self.work, 0o755)

    def record(self, rec):
        self.records.append(rec)
        extra = f", {rec['err']}" if rec.get("err") else ""
        log(f"  {rec['case']}/{rec.get('variant', '')} {rec['tool']} run {rec['run']}: "
            f"{rec.get('requests', '-')} req in {rec['wall']:.2f} s, CPU {rec['cpu']:.2f} s, "
            f"RSS {rec['rss_kib'] / 1024:.1f} MiB, other CPU {rec['other_cpu']:.2f} s, "
            f"exit {rec['rc']}{extra}")

    def crawl_runs(self, case, variant, tool, cmd, nginx, runs=RUNS, env=None, keep_urls=False):
        """RUNS runs of one crawler against nginx; '@OUT@' in cmd is a fresh output dir."""
        url_sets = []
        for i in range(1, runs + 1):
            got = {}

            def one():
                out = fresh_out(tool)
                full = [str(c).replace("@OUT@", str(out)) for c in cmd]
                nginx.take_log()  # start clean
                rec = measure([full], self.logs, f"{case}.{variant}.{tool}.{i}", servers=[nginx],
                              env=env)
                counts, got["urls"] = count_log(nginx.take_log())
                rec.update(counts)
                rec["files"] = count_files(out)
                shutil.rmtree(out, ignore_errors=True)
                return rec

            rec = steady(one)
            urls = got["urls"]
            rec.update({"case": case, "variant": variant, "tool": tool, "run": i,
                        "cmd": " ".join(str(c) for c in cmd)})
            rec["rate"] = rec["requests"] / rec["wall"] if rec["wall"] else 0.0
            self.record(rec)
            if keep_urls and i == 1:
                url_sets.append(urls)
        return url_sets[0] if url_sets else None


# ---------------------------------------------------------------- medians and Markdown


def med(recs, key):
    vals = [r[key] for r in recs if key in r]
    return statistics.median(vals) if vals else float("nan")


def group(records, case, variant=None):
    out = {}
    for r in records:
        if r["case"] == case and (variant is None or r.get("variant") == variant):
            out.setdefault(r["tool"], []).append(r)
    return out


def fmt(x, nd=2):
    if isinstance(x, float) and x != x:
        return "–"
    if isinstance(x, (int,)) or (isinstance(x, float) and abs(x) >= 1000):
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def crawl_table(recs_by_tool, tools, vs):
    """Median table; ratios of flags to each peer (pages/s and CPU)."""
    rows = ["| tool | requests | distinct URLs | 200 / 404 / other | wall s | pages/s | CPU s (user+sys) "
            "| CPU ms / page | peak RSS MiB | server CPU s | other CPU s | runs |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t in tools:
        rs = recs_by_tool.get(t)
        if not rs:
            continue
        req = med(rs, "requests")
        rows.append(
            f"| {t} | {fmt(int(req))} | {fmt(int(med(rs, 'uniq')))} | "
            f"{int(med(rs, 's200'))} / {int(med(rs, 's404'))} / {int(med(rs, 'sother'))} | "
            f"{fmt(med(rs, 'wall'))} | {fmt(med(rs, 'rate'))} | {fmt(med(rs, 'cpu'))} | "
            f"{1000 * med(rs, 'cpu') / max(req, 1):.3f} | {med(rs, 'rss_kib') / 1024:.1f} | "
            f"{fmt(med(rs, 'server_cpu'))} | {fmt(med(rs, 'other_cpu'))} | {len(rs)} |")
    return rows


def ratios(recs_by_tool, peer, flags="flags"):
    f, p = recs_by_tool.get(flags), recs_by_tool.get(peer)
    if not f or not p or not med(p, "rate") or not med(p, "cpu") or not med(p, "requests"):
        return None
    return {"speed": med(f, "rate") / med(p, "rate"), "cpu": med(f, "cpu") / med(p, "cpu"),
            "cpu_page": (med(f, "cpu") / med(f, "requests")) / (med(p, "cpu") / med(p, "requests")),
            "rss": med(f, "rss_kib") / med(p, "rss_kib")}


def verdict(ok):
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------- crawl cases


def wget2_crawl(url, n, out, extra=(), np=True):
    # wget2's -np refuses every URL of another host ("parent ascending not allowed"): not with -H.
    return ["wget2", "-r", *(["-np"] if np else []), "-l", "inf", f"--max-threads={n}", "-q", "-P",
            out, *extra, url]


def case_docs(s):
    names = knob("DOCS", "rust,python,postgres", "python").split(",")
    n = int(knob("DOCS_N", "16"))
    md = ["## Real docs sites (Debian packages on nginx)", "",
          f"Each site's HTML as Debian installs it, served by nginx (2 workers) on 127.0.0.1; "
          f"both crawlers at {n} requests in flight to the one host: `flags crawl URL -m {n} "
          f"--per-host {n} -d DIR` and `wget2 -r -np -l inf --max-threads={n} -q -P DIR URL`, "
          "robots.txt obeyed (the default of both; these sites have none: a 404), pages written to "
          f"tmpfs ({OUTROOT}). Requests = lines of nginx's access log, robots.txt excluded. "
          f"Median of {RUNS} runs ({max(RUNS, 5)} for a site under 5,000 pages).", ""]
    for name in names:
        pkg, root = DOC_SITES[name]
        if not Path(root).is_dir():
            md += [f"### {name}: SKIPPED ({root} missing: install {pkg})", ""]
            continue
        wait_quiet(f"docs/{name}")
        html = sum(1 for _ in Path(root).rglob("*.html"))
        nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{free_port()}; root {root}; }}")
        port = re.search(r"listen 127.0.0.1:(\d+)", (nginx.dir / "nginx.conf").read_text()).group(1)
        url = f"http://127.0.0.1:{port}/"
        wait_port(int(port))
        # A small site's crawl lasts a fraction of a second: more runs for a steady median.
        runs = RUNS if html > 5000 or QUICK else max(RUNS, 5)
        try:
            fl = s.crawl_runs("docs", name, "flags",
                              [s.flags, "crawl", url, "-m", n, "--per-host", n, "-d", "@OUT@"],
                              nginx, runs=runs, keep_urls=True)
            wg = s.crawl_runs("docs", name, "wget2", wget2_crawl(url, n, "@OUT@"), nginx,
                              runs=runs, keep_urls=True) if have("wget2") else None
        finally:
            nginx.stop()
        by = group(s.records, "docs", name)
        md += [f"### {name} ({pkg}, {html:,} .html files under {root})", ""]
        md += crawl_table(by, ["flags", "wget2"], "wget2")
        md.append("")
        if fl is not None and wg is not None:
            both = fl & wg
            only_f = sorted(u for _, u in fl - wg)
            only_w = sorted(u for _, u in wg - fl)
            exts = {}
            for u in only_w:
                e = os.path.splitext(u.split("?")[0])[1] or "(none)"
                exts[e] = exts.get(e, 0) + 1
            md.append(f"Same page set? Run 1 of each: {len(both):,} URLs fetched by both, "
                      f"{len(only_f):,} only by flags, {len(only_w):,} only by wget2"
                      + (f" (by extension: {', '.join(f'{k} {v}' for k, v in sorted(exts.items(), key=lambda kv: -kv[1])[:8])})" if only_w else "")
                      + ". " + (f"Examples only flags: {', '.join(only_f[:3])}. " if only_f else "")
                      + (f"Examples only wget2: {', '.join(only_w[:3])}." if only_w else ""))
            md.append("")
            r = ratios(by, "wget2")
            if r:
                # pages/s over the pages both fetch: each tool's rate times its share in common
                s.summary.append((f"docs: {name} ({html:,} .html), {n} in flight", "wget2", r,
                                  "≥1.5× pages/s, ≤0.75× CPU", r["speed"] >= 1.5 and r["cpu"] <= 0.75))
                md.append(f"flags ÷ wget2: **{r['speed']:.2f}×** pages/s, **{r['cpu']:.2f}×** CPU s "
                          f"({r['cpu_page']:.2f}× CPU per request), {r['rss']:.2f}× peak RSS.")
                md.append("")
    s.sections.append("\n".join(md))


def case_site(s):
    pages = int(knob("SITE_PAGES", "20000"))
    n = int(knob("SITE_N", "100"))
    wait_quiet("site")
    site = s.work / "site"
    if not site.exists():
        subprocess.run([s.flags, "serve", "--site", str(pages), "--export", str(site)], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["chmod", "-R", "a+rX", str(site)], check=True)
    port = free_port()
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{port}; root {site}; }}")
    wait_port(port)
    url = f"http://127.0.0.1:{port}/"
    try:
        s.crawl_runs("site", str(pages), "flags",
                     [s.flags, "crawl", url, "-m", n, "--per-host", n, "-d", "@OUT@"], nginx)
        if have("wget2"):
            s.crawl_runs("site", str(pages), "wget2", wget2_crawl(url, n, "@OUT@"), nginx)
    finally:
        nginx.stop()
    by = group(s.records, "site", str(pages))
    md = ["## The built-in test site on nginx", "",
          f"`flags serve --site {pages} --export DIR` (static files: robots.txt, 404 links, "
          f"/private/ links robots.txt disallows, a 301, off-site links) on nginx; {n} in flight: "
          f"`flags crawl URL -m {n} --per-host {n}`, `wget2 -r -np -l inf --max-threads={n}`. "
          f"Median of {RUNS} runs.", ""]
    md += crawl_table(by, ["flags", "wget2"], "wget2")
    r = ratios(by, "wget2")
    if r:
        s.summary.append((f"built-in site ({pages:,} pages), {n} in flight", "wget2", r,
                          "≥1.5× pages/s, ≤0.75× CPU", r["speed"] >= 1.5 and r["cpu"] <= 0.75))
        md += ["", f"flags ÷ wget2: **{r['speed']:.2f}×** pages/s, **{r['cpu']:.2f}×** CPU s, "
                   f"{r['rss']:.2f}× peak RSS."]
    s.sections.append("\n".join(md + [""]))


# ---- many hosts: run inside `unshare -mn` (own /etc/hosts, loopback only)

FILLER = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
          "incididunt ut labore et dolore magna aliqua. ") * 12


def host_name(h):
    return f"h{h:05d}.flags.test"


def make_hosts_site(root, hosts, pages, links=20, seed=18):
    """Pages 0..P-1; page j lives on host j mod H at /p/j.html; it links to its 4 children
    (4j+1..4j+4, so all are reachable from page 0), its parent, the home page and random pages
    (absolute URLs across hosts; relative when on the same host), and now and then a 404 and a
    /private/ page its host's robots.txt disallows."""
    rng = random.Random(seed)
    root = Path(root)
    for h in range(hosts):
        d = root / host_name(h)
        (d / "p").mkdir(parents=True, exist_ok=True)
        (d / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    for j in range(pages):
        h = j % hosts

        def href(k):
            if k % hosts == h:
                return f"/p/{k}.html"
            return f"http://{host_name(k % hosts)}/p/{k}.html"

        targets = [k for k in range(4 * j + 1, 4 * j + 5) if k < pages]
        targets += [(j - 1) // 4 if j else 0, 0]
        targets += [rng.randrange(pages) for _ in range(max(0, links - len(targets)))]
        items = [f'<li><a href="{href(k)}">page {k}</a></li>' for k in targets]
        if j % 20 == 7:
            items.append(f'<li><a href="/private/{j}.html">private</a></li>')
        if j % 20 == 11:
            items.append(f'<li><a href="/missing/{j}.html">gone</a></li>')
        (root / host_name(h) / "p" / f"{j}.html").write_text(
            f"<!doctype html><html><head><title>Page {j}</title></head><body><h1>Page {j}</h1>"
            f"<p>{FILLER}</p><ul>{''.join(items)}</ul></body></html>\n")
    # The start page: / on host 0 is page 0.
    shutil.copy(root / host_name(0) / "p" / "0.html", root / host_name(0) / "index.html")


def in_namespace(s, case, params):
    """Re-runs this script for one case inside `unshare -mn` and takes back its records."""
    out = s.work / f"{case}.ns.json"
    env = dict(os.environ, ISSUE18_NS_CASE=case, ISSUE18_WORK=str(s.work), ISSUE18_FLAGS=s.flags,
               ISSUE18_PARAMS=json.dumps(params), ISSUE18_NS_OUT=str(out))
    subprocess.run(["unshare", "-mn", sys.executable, __file__], env=env, check=True)
    data = json.loads(out.read_text())
    s.records.extend(data["records"])
    return data.get("extra", {})


def ns_setup(work, hosts_lines):
    """Inside the new namespaces: loopback up, a private /etc/hosts."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = Path(work) / "ns.hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {h}\n" for h in hosts_lines))
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)


def ns_main():
    case = os.environ["ISSUE18_NS_CASE"]
    work = Path(os.environ["ISSUE18_WORK"])
    params = json.loads(os.environ["ISSUE18_PARAMS"])
    s = Suite(work, os.environ["ISSUE18_FLAGS"])
    extra = {}
    if case == "hosts":
        ns_hosts(s, params)
    elif case == "memhosts":
        extra = ns_memhosts(s, params)
    Path(os.environ["ISSUE18_NS_OUT"]).write_text(json.dumps({"records": s.records, "extra": extra}))


def ns_hosts(s, p):
    hosts, pages, n = p["hosts"], p["pages"], p["n"]
    site = Path(p["site"])
    ns_setup(s.work, [host_name(h) for h in range(hosts)])
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:80 default_server; server_name _; "
                          f"root {site}/$host; }}")
    wait_port(80)
    url = f"http://{host_name(0)}/"
    try:
        s.crawl_runs("hosts", f"{hosts}x{pages}", "flags",
                     [s.flags, "crawl", url, "--allow-domain", "flags.test", "-m", n,
                      "--per-host", n, "-d", "@OUT@"], nginx)
        if have("wget2"):
            s.crawl_runs("hosts", f"{hosts}x{pages}", "wget2",
                         wget2_crawl(url, n, "@OUT@", extra=["-H", "-D", "flags.test"], np=False), nginx)
    finally:
        nginx.stop()


def case_hosts(s):
    hosts = int(knob("HOSTS", "2000", "500"))
    pages = int(knob("HOSTS_PAGES", "50000", "10000"))
    n = int(knob("HOSTS_N", "100"))
    site = s.work / f"hosts-site-{hosts}x{pages}"
    if not site.exists():
        t0 = time.time()
        make_hosts_site(site, hosts, pages)
        log(f"[hosts] generated {pages} pages on {hosts} hosts in {time.time() - t0:.1f} s")
    subprocess.run(["chmod", "-R", "a+rX", str(site)], check=True)
    wait_quiet("hosts")
    in_namespace(s, "hosts", {"hosts": hosts, "pages": pages, "n": n, "site": str(site)})
    v = f"{hosts}x{pages}"
    by = group(s.records, "hosts", v)
    md = ["## A crawl across thousands of hosts", "",
          f"A generated static site: {pages:,} pages on {hosts:,} host names (`h00000.flags.test` "
          "…), page j on host j mod H, ~20 links a page (its 4 children, parent, home, random "
          "pages anywhere: most links cross hosts), one page in 20 with a link robots.txt "
          "disallows and one with a 404; every host has a robots.txt. It runs inside `unshare "
          "-mn`: a private /etc/hosts maps every name to 127.0.0.1, where nginx serves "
          "`root SITE/$host` on port 80, and the namespace has only a loopback interface. "
          f"`flags crawl http://h00000.flags.test/ --allow-domain flags.test -m {n} --per-host "
          f"{n}` and `wget2 -r -l inf -H -D flags.test --max-threads={n}` (no -np: wget2 refuses other hosts' URLs with it). Median of {RUNS} "
          "runs.", ""]
    md += crawl_table(by, ["flags", "wget2"], "wget2")
    r = ratios(by, "wget2")
    if r:
        s.summary.append((f"{hosts:,} hosts, {pages:,} pages, {n} in flight", "wget2", r,
                          "≥1.5× pages/s, ≤0.75× CPU", r["speed"] >= 1.5 and r["cpu"] <= 0.75))
        md += ["", f"flags ÷ wget2: **{r['speed']:.2f}×** pages/s, **{r['cpu']:.2f}×** CPU s, "
                   f"{r['rss']:.2f}× peak RSS. robots.txt requests (median): flags "
                   f"{int(med(by['flags'], 'robots'))}, wget2 {int(med(by.get('wget2', []), 'robots')) if by.get('wget2') else '–'}."]
    s.sections.append("\n".join(md + [""]))


# ---------------------------------------------------------------- bulk


def case_bulk(s):
    files = int(knob("BULK_FILES", "20000"))
    n = int(knob("BULK_N", "100"))
    www = s.work / "bulk"
    if not www.exists():
        (www / "files").mkdir(parents=True)
        for i in range(files):
            (www / "files" / f"{i:05d}.bin").write_bytes(os.urandom(4096))
    subprocess.run(["chmod", "-R", "a+rX", str(www)], check=True)
    wait_quiet("bulk")
    port = free_port()
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{port} backlog=8192; root {www}; }}")
    wait_port(port)
    urls = [f"http://127.0.0.1:{port}/files/{i:05d}.bin" for i in range(files)]
    lst = s.work / "bulk.txt"
    lst.write_text("".join(u + "\n" for u in urls))
    cfg = s.work / "bulk.curl"
    cfg.write_text("".join(f'url = "{u}"\noutput = "{u.rsplit("/", 1)[-1]}"\n' for u in urls))
    tools = {
        "flags": [s.flags, "-i", lst, "-m", n, "-d", "@OUT@"],
        "curl": ["sh", "-c", f'cd "$1" && exec curl -s --fail --parallel --parallel-max {min(n, 300)} '
                 f'-K {cfg}', "curl", "@OUT@"],
        "wget2": ["wget2", "-q", "--no-robots", f"--max-threads={n}", "-i", lst, "-P", "@OUT@"],
        "aria2c": ["aria2c", "-q", "--no-conf=true", "-i", lst, "-d", "@OUT@", "-j", n,
                   "--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
                   "--summary-interval=0", "--max-tries=1"],
    }
    try:
        for tool, cmd in tools.items():
            if tool != "flags" and not have(tool):
                continue
            s.crawl_runs("bulk", str(files), tool, cmd, nginx)
    finally:
        nginx.stop()
    by = group(s.records, "bulk", str(files))
    md = ["## Bulk download: a list of URLs", "",
          f"{files:,} files of 4 KiB on nginx, {n} in flight: `flags -i LIST -m {n}`, "
          f"`curl --parallel --parallel-max {min(n, 300)} -K CONFIG`, `wget2 --max-threads={n} -i "
          f"LIST --no-robots`, `aria2c -j {n} -i LIST`; all into tmpfs. Median of {RUNS} runs.", ""]
    md += crawl_table(by, list(tools), None)
    peers = [t for t in tools if t != "flags" and by.get(t)]
    if peers and by.get("flags"):
        best = max(peers, key=lambda t: med(by[t], "rate"))
        r = ratios(by, best)
        s.summary.append((f"bulk {files:,} × 4 KiB, {n} in flight", f"{best} (fastest peer)", r,
                          "≥2× the fastest peer", r["speed"] >= 2.0))
        md += ["", f"Fastest peer: {best}. flags ÷ {best}: **{r['speed']:.2f}×** files/s, "
                   f"{r['cpu']:.2f}× CPU s."]
    s.sections.append("\n".join(md + [""]))


# ---------------------------------------------------------------- shared (Redis)


class Redis:
    def __init__(self, work):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis.", dir=work))
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.dir / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.pid = self.proc.pid

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                              text=True, check=True).stdout

    def stats(self):
        calls, scripts = 0, 0
        for line in self.cli("info", "commandstats").splitlines():
            m = re.match(r"cmdstat_(\S+):calls=(\d+)", line)
            if m:
                calls += int(m.group(2))
                if m.group(1) in ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"):
                    scripts += int(m.group(2))
        info = dict(line.split(":", 1) for line in self.cli("info", "stats").splitlines()
                    if ":" in line)
        return {"calls": calls, "scripts": scripts, "reads": int(info.get("total_reads_processed", 0)),
                "cmds": int(info.get("total_commands_processed", 0))}

    def cpu(self):
        return proc_cpu(self.pid)

    def stop(self):
        try:
            self.cli("shutdown", "nosave")
        except subprocess.CalledProcessError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def case_shared(s):
    pages = int(knob("SITE_PAGES", "20000"))
    n = int(knob("SHARED_N", "16"))
    per_host = 2 * n  # two workers' worth: the per-host limit holds for the whole crawl
    site = s.work / "site"
    if not site.exists():
        subprocess.run([s.flags, "serve", "--site", str(pages), "--export", str(site)], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["chmod", "-R", "a+rX", str(site)], check=True)
    wait_quiet("shared")
    port = free_port()
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{port}; root {site}; }}")
    wait_port(port)
    redis = Redis(s.work)
    url = f"http://127.0.0.1:{port}/"
    base = [s.flags, "crawl", url, "-m", n, "--per-host", per_host]
    variants = [("local", 1), ("1 worker", 1), ("2 workers", 2)]
    try:
        for i in range(1, RUNS + 1):
            for name, workers in variants:
                crawl = f"b{i}{name[0]}"
                got = {}

                def one():
                    outs = [fresh_out("shared") for _ in range(workers)]
                    cmds = []
                    for o in outs:
                        c = base + ["-d", o]
                        if name != "local":
                            c += ["--redis", f"redis://127.0.0.1:{redis.port}", "--crawl", crawl]
                        cmds.append(c)
                    redis.cli("flushall")
                    nginx.take_log()
                    r0, c0 = redis.stats(), redis.cpu()
                    rec = measure(cmds, s.logs, f"shared.{crawl}", servers=[nginx, redis],
                                  pins=[k % CPUS for k in range(workers)])
                    r1, c1 = redis.stats(), redis.cpu()
                    counts, _ = count_log(nginx.take_log())
                    rec.update(counts)
                    rec["files"] = sum(count_files(o) for o in outs)
                    for o in outs:
                        shutil.rmtree(o, ignore_errors=True)
                    got.update(r0=r0, r1=r1, c0=c0, c1=c1, cmds=cmds)
                    return rec

                rec = steady(one)
                r0, r1, c0, c1, cmds = got["r0"], got["r1"], got["c0"], got["c1"], got["cmds"]
                counts = rec
                pg = max(1, counts["requests"])
                rec.update({"case": "shared", "variant": name, "tool": "flags", "run": i,
                            "workers": workers, "cmd": " ".join(map(str, cmds[0])),
                            "rate": counts["requests"] / rec["wall"], "redis_cpu": c1 - c0,
                            "redis_calls_pp": (r1["calls"] - r0["calls"]) / pg,
                            "redis_scripts_pp": (r1["scripts"] - r0["scripts"]) / pg,
                            "redis_reads_pp": (r1["reads"] - r0["reads"]) / pg})
                s.record(rec)
    finally:
        redis.stop()
        nginx.stop()
    rows = ["| crawl | workers | requests | wall s | pages/s | vs local | vs 1 worker | CPU s (workers) "
            "| Redis CPU s | Redis commands / page | scripts (EVALSHA) / page | round trips / page "
            "| peak RSS MiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    by = {}
    for r in s.records:
        if r["case"] == "shared":
            by.setdefault(r["variant"], []).append(r)
    loc = med(by.get("local", []), "rate")
    one = med(by.get("1 worker", []), "rate")
    for name, workers in variants:
        rs = by.get(name)
        if not rs:
            continue
        rate = med(rs, "rate")
        shared = name != "local"
        rows.append(
            f"| {name} | {workers} | {fmt(int(med(rs, 'requests')))} | {fmt(med(rs, 'wall'))} | "
            f"{fmt(rate)} | {rate / loc:.2f}× | {(f'{rate / one:.2f}×' if shared else '–')} | "
            f"{fmt(med(rs, 'cpu'))} | {fmt(med(rs, 'redis_cpu'))} | "
            f"{(fmt(med(rs, 'redis_calls_pp'), 1) if shared else '–')} | "
            f"{(fmt(med(rs, 'redis_scripts_pp'), 1) if shared else '–')} | "
            f"{(fmt(med(rs, 'redis_reads_pp'), 2) if shared else '–')} | {med(rs, 'rss_kib') / 1024:.1f} |")
    two = med(by.get("2 workers", []), "rate")
    rt = med(by.get("1 worker", []), "redis_reads_pp")
    s.summary.append(("shared: 1 worker vs local", "flags without --redis",
                      {"speed": one / loc}, "≥0.5×", one / loc >= 0.5))
    s.summary.append(("shared: 2 workers vs 1", "1 worker", {"speed": two / one}, "≥1.8×",
                      two / one >= 1.8))
    s.summary.append(("shared: Redis round trips / page (1 worker)", "–", {"value": rt},
                      "well under 1", rt < 0.5))
    md = ["## One crawl shared through Redis", "",
          f"The built-in {pages:,}-page site on nginx; redis-server {tool_version(['redis-server', '--version']).split()[2]} "
          "on 127.0.0.1 without persistence. Each worker `flags crawl URL -m "
          f"{n} --per-host {per_host} --redis redis://127.0.0.1:P --crawl NAME` (local: the same "
          f"without --redis), worker k pinned to CPU k with `taskset -c k` ({CPUS} cores; nginx and "
          "Redis unpinned, on the same cores). Requests from nginx's log. Redis commands / page: "
          "every call in `INFO commandstats` (the commands run inside scripts included) after − "
          "before, divided by requests; scripts: EVALSHA/EVAL calls; round trips / page: "
          "`total_reads_processed` of `INFO stats` (one read event per request or pipeline "
          f"the clients send) divided by requests. Median of {RUNS} runs, the variants "
          "interleaved.", ""]
    s.sections.append("\n".join(md + rows + [""]))


# ---------------------------------------------------------------- memory


def case_memory(s):
    sizes = ints(knob("MEM_PAGES", "20000,200000,1000000", "20000,100000"))
    n = int(knob("MEM_N", "64"))
    mem_runs = int(knob("MEM_RUNS", str(RUNS)))
    wget2 = knob("MEM_WGET2", "1") == "1" and have("wget2")
    md = ["## Memory", ""]
    # 1. Peak RSS from 20,000 to 1,000,000 pages: the built-in server (another process).
    for pages in sizes:
        wait_quiet(f"memory/{pages}")
        port = free_port()
        srv = subprocess.Popen([s.flags, "serve", "--site", str(pages), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = Proc(srv.pid)
        try:
            wait_port(port, timeout=300)
            url = f"http://127.0.0.1:{port}/"
            tools = [("flags", [s.flags, "crawl", url, "-m", n, "--per-host", n, "-d", "@OUT@"])]
            if wget2 and pages <= int(knob("MEM_WGET2_MAX", "200000")):
                tools.append(("wget2", wget2_crawl(url, n, "@OUT@")))
            for tool, cmd in tools:
                for i in range(1, mem_runs + 1):
                    def one():
                        out = fresh_out("mem")
                        full = [str(c).replace("@OUT@", str(out)) for c in cmd]
                        rec = measure([full], s.logs, f"mem.{pages}.{tool}.{i}", servers=[server])
                        rec["files"] = count_files(out)
                        shutil.rmtree(out, ignore_errors=True)
                        return rec

                    # Peak RSS is what this table is for, and noise does not move it: no retries.
                    rec = steady(one, retries=0)
                    summ = (s.logs / f"mem.{pages}.{tool}.{i}.0.out").read_text(errors="replace")
                    got = re.findall(r"^(\d+) (?:pages downloaded|not found|redirected|errors?)", summ, re.M)
                    rec["requests"] = sum(int(x) for x in got) if tool == "flags" else rec["files"]
                    rec.update({"case": "memory", "variant": f"pages {pages}", "tool": tool, "run": i,
                                "pages": pages, "cmd": " ".join(map(str, cmd)),
                                "rate": rec["requests"] / rec["wall"]})
                    s.record(rec)
        finally:
            srv.terminate()
            srv.wait()
    rows = ["| site pages | tool | pages (flags: its count; wget2: files) | wall s | pages/s | CPU s | peak RSS MiB "
            "| RSS ÷ smallest's |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    first = {}
    for pages in sizes:
        for tool in ("flags", "wget2"):
            rs = [r for r in s.records if r["case"] == "memory" and r.get("pages") == pages and r["tool"] == tool]
            if not rs:
                continue
            rss = med(rs, "rss_kib")
            first.setdefault(tool, rss)
            rows.append(f"| {pages:,} | {tool} | {fmt(int(med(rs, 'requests')))} | {fmt(med(rs, 'wall'))} | "
                        f"{fmt(med(rs, 'rate'))} | {fmt(med(rs, 'cpu'))} | {rss / 1024:.1f} | "
                        f"{rss / first[tool]:.2f}× |")
    big = [r for r in s.records if r["case"] == "memory" and r.get("pages") == sizes[-1] and r["tool"] == "flags"]
    if big and "flags" in first:
        growth = med(big, "rss_kib") / first["flags"]
        s.summary.append((f"memory: peak RSS {sizes[0]:,} → {sizes[-1]:,} pages", "flags at "
                          f"{sizes[0]:,}", {"value": growth}, "flat (≈1×)", growth <= 1.5))
    md += [f"### Peak RSS from {sizes[0]:,} to {sizes[-1]:,} pages", "",
           f"`flags serve --site N --port P` (the built-in server, another process on the same "
           f"cores) crawled whole: `flags crawl URL -m {n} --per-host {n} -d DIR` and "
           f"`wget2 -r -np -l inf --max-threads={n}` (up to {int(knob('MEM_WGET2_MAX', '200000')):,} pages: "
           f"its crawl slows as it grows), pages to tmpfs. Median of {mem_runs} runs.", ""]
    md += rows + [""]

    # 2. Bytes per queued URL: hubs whose links stay queued (--max-pages stops before them).
    qsizes = ints(knob("QUEUE_URLS", "20000,200000", "20000,100000"))
    hubs = 100
    wait_quiet("memory/queue")
    qroot = s.work / "queue-site"
    port = free_port()
    lines = {}
    for k in qsizes:
        d = qroot / str(k)
        (d / "hub").mkdir(parents=True, exist_ok=True)
        per = k // hubs
        (d / "index.html").write_text("<html><body>" + "".join(
            f'<a href="hub/{h}.html">hub {h}</a>\n' for h in range(hubs)) + "</body></html>\n")
        for h in range(hubs):
            (d / "hub" / f"{h}.html").write_text("<html><body>" + "".join(
                f'<a href="/docs/section-{h:03d}/chapter-{i // 100:03d}/page-{h * per + i:07d}.html">x</a>\n'
                for i in range(per)) + "</body></html>\n")
    subprocess.run(["chmod", "-R", "a+rX", str(qroot)], check=True)
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{port}; root {qroot}; }}")
    wait_port(port)
    sample = f"http://127.0.0.1:{port}/docs/section-000/chapter-000/page-0000000.html"
    try:
        for k in qsizes:
            url = f"http://127.0.0.1:{port}/{k}/"
            # The leaves are under /{k}/docs/... only in the link text; they resolve against the
            # hub's URL (/{k}/hub/h.html) to /docs/...: absolute paths, never fetched.
            s.crawl_runs("queue", str(k), "flags",
                         [s.flags, "crawl", url, "-m", 16, "--per-host", 16, "--max-pages", hubs + 1,
                          "-d", "@OUT@"], nginx, runs=mem_runs)
    finally:
        nginx.stop()
    qrows = ["| URLs queued | requests | peak RSS MiB | wall s |", "| ---: | ---: | ---: | ---: |"]
    rss = {}
    for k in qsizes:
        rs = group(s.records, "queue", str(k)).get("flags", [])
        if rs:
            rss[k] = med(rs, "rss_kib")
            qrows.append(f"| {k:,} | {int(med(rs, 'requests'))} | {rss[k] / 1024:.1f} | {fmt(med(rs, 'wall'))} |")
    md += ["### Bytes per queued URL", "",
           f"A site whose home links to {hubs} hubs, each linking to 1/{hubs} of K distinct pages "
           f"(URLs like `{sample}`, {len(sample)} characters); `flags crawl URL -m 16 --per-host 16 "
           f"--max-pages {hubs + 1}` fetches the home and the hubs and stops, the K pages still "
           "queued (seen-set entry + queue entry): the worst case of a frontier. Bytes per queued "
           "URL = (peak RSS at the larger K − at the smaller) ÷ (difference in K). Peak RSS "
           "also holds a hub's body and its link list while it is parsed, so this is an upper "
           f"bound. Median of {mem_runs} runs.", ""] + qrows + [""]
    if len(rss) >= 2:
        a, b = min(rss), max(rss)
        per_url = (rss[b] - rss[a]) * 1024 / (b - a)
        md += [f"**{per_url:.0f} bytes per queued URL** ({a:,} → {b:,} URLs).", ""]
        s.summary.append(("memory: bytes per queued URL", "–", {"value": per_url}, "well under 100",
                          per_url < 100))

    # 3. Hosts in the frontier: 1,000 vs 100,000 (inside unshare -mn; the leaf hosts never resolve).
    hsizes = ints(knob("MEM_HOSTS", "1000,100000", "1000,20000"))
    kq = int(knob("MEM_HOSTS_URLS", "200000", "100000"))
    wait_quiet("memory/hosts")
    extra = in_namespace(s, "memhosts", {"hosts": hsizes, "urls": kq, "hubs": hubs, "runs": mem_runs})
    hrows = ["| hosts | URLs queued | requests | peak RSS MiB | wall s |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    hr = {}
    for h in hsizes:
        rs = group(s.records, "memhosts", str(h)).get("flags", [])
        if rs:
            hr[h] = med(rs, "rss_kib")
            hrows.append(f"| {h:,} | {kq:,} | {int(med(rs, 'requests'))} | {hr[h] / 1024:.1f} | "
                         f"{fmt(med(rs, 'wall'))} |")
    md += ["### 1,000 vs 100,000 hosts", "",
           f"The same shape inside `unshare -mn` (loopback only, a private /etc/hosts): {hubs} hubs "
           f"on 127.0.0.1 link to {kq:,} pages spread over H host names `hNNNNNN.flags.test` "
           "that do not resolve (no DNS leaves the namespace), so every such host's robots.txt "
           "fails and it is held (as a real unreachable host would be) while `--max-pages "
           f"{hubs + 1}` ends the crawl: all {kq:,} URLs queued over H hosts at the peak. "
           "`--allow-domain flags.test`. Bytes per host = ΔRSS ÷ ΔH.", ""] + hrows + [""]
    if len(hr) >= 2:
        a, b = min(hr), max(hr)
        per_host = (hr[b] - hr[a]) * 1024 / (b - a)
        md += [f"**{per_host:.0f} bytes per host** ({a:,} → {b:,} hosts; RSS {hr[b] / hr[a]:.2f}×).", ""]
        s.summary.append((f"memory: {a:,} vs {b:,} hosts ({kq:,} URLs queued)", f"{a:,} hosts",
                          {"value": hr[b] / hr[a]}, "flat", hr[b] / hr[a] <= 1.5))
    s.sections.append("\n".join(md))


def ns_memhosts(s, p):
    hubs, kq = p["hubs"], p["urls"]
    ns_setup(s.work, [])
    root = s.work / "memhosts-site"
    extra = {}
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:80; root {root}; }}")
    wait_port(80)
    try:
        for h in p["hosts"]:
            d = root / str(h)
            (d / "hub").mkdir(parents=True, exist_ok=True)
            per = kq // hubs
            (d / "index.html").write_text("<html><body>" + "".join(
                f'<a href="/{h}/hub/{x}.html">hub {x}</a>\n' for x in range(hubs)) + "</body></html>\n")
            for x in range(hubs):
                (d / "hub" / f"{x}.html").write_text("<html><body>" + "".join(
                    f'<a href="http://h{(x * per + i) % h:06d}.flags.test/docs/page-{x * per + i:07d}.html">x</a>\n'
                    for i in range(per)) + "</body></html>\n")
            subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
            s.crawl_runs("memhosts", str(h), "flags",
                         [s.flags, "crawl", f"http://127.0.0.1/{h}/", "--allow-domain", "flags.test",
                          "-m", 16, "--per-host", 16, "--max-pages", hubs + 1, "-d", "@OUT@"],
                         nginx, runs=p["runs"])
            shutil.rmtree(d)
    finally:
        nginx.stop()
    return extra


# ---------------------------------------------------------------- profile


def case_profile(s):
    """perf record of flags, then wget2, crawling the rust docs; report in profile-LABEL.md."""
    name = knob("PROFILE_SITE", "rust")
    n = int(knob("DOCS_N", "16"))
    pkg, root = DOC_SITES[name]
    wait_quiet("profile")
    port = free_port()
    nginx = Nginx(s.work, f"server {{ listen 127.0.0.1:{port}; root {root}; }}")
    wait_port(port)
    url = f"http://127.0.0.1:{port}/"
    out_md = RESULTS / f"profile-{LABEL}.md"
    parts = []
    try:
        for tool, cmd in [("flags", [s.flags, "crawl", url, "-m", n, "--per-host", n, "-d", "@OUT@"]),
                          ("wget2", wget2_crawl(url, n, "@OUT@"))]:
            if tool == "wget2" and not have("wget2"):
                continue
            out = fresh_out("prof")
            full = [str(c).replace("@OUT@", str(out)) for c in cmd]
            data = s.work / f"perf.{tool}.data"
            nginx.take_log()
            t0 = time.perf_counter()
            subprocess.run(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,32768", "-o",
                            str(data), "--"] + full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            counts, _ = count_log(nginx.take_log())
            shutil.rmtree(out, ignore_errors=True)
            svg = RESULTS / f"profile-{LABEL}-{tool}.svg"
            res = subprocess.run([sys.executable, str(ROOT / "bench" / "flamegraph.py"), str(data),
                                  "--svg", str(svg), "--title", f"{tool} crawling {name} docs ({LABEL})",
                                  "--folded", str(s.work / f"{tool}.folded"), "--markdown"],
                                 capture_output=True, text=True)
            folded = s.work / f"{tool}.folded"
            if folded.exists():  # kept (compressed) for a later look at the stacks
                subprocess.run(["gzip", "-9", "-f", str(folded)], check=False)
                shutil.move(str(folded) + ".gz", RESULTS / f"profile-{LABEL}-{tool}.folded.gz")
            parts.append((tool, wall, counts, res.stdout, res.stderr))
            data.unlink(missing_ok=True)
    finally:
        nginx.stop()
    md = [f"# CPU profile ({LABEL}): flags and wget2 crawling the {name} docs", "",
          f"`perf record -F 499 --call-graph dwarf,32768` (the release build has `debug = 1`; Rust keeps no "
          "frame pointers, so `-g`'s frame-pointer stacks stop at the first Rust frame: DWARF "
          f"unwinding instead) of one crawl of {root} ({pkg}) on nginx at 127.0.0.1, {n} in "
          f"flight, robots on, pages to tmpfs. Written by `CASES=profile bash bench/issue18.sh`. "
          "Samples are of the crawler's threads only (nginx is another process). Groups are by "
          "function-name patterns in bench/flamegraph.py: *by leaf* = what the CPU was executing "
          "(malloc, memcpy, kernel …); *by component* = the innermost flags/library component on "
          "the stack (so malloc or a syscall made by the HTML parser counts as HTML parsing).", ""]
    for tool, wall, counts, text, err in parts:
        md += [f"## {tool}", "", f"{counts['requests']:,} requests in {wall:.2f} s under perf "
               f"(slower than without). Flame graph: [profile-{LABEL}-{tool}.svg](profile-{LABEL}-{tool}.svg); "
               f"folded stacks: profile-{LABEL}-{tool}.folded.gz.", "",
               text.strip() or f"(no output: {err.strip()[-500:]})", ""]
    out_md.write_text("\n".join(md))
    s.sections.append(f"## Profile\n\nSee [profile-{LABEL}.md](profile-{LABEL}.md).\n")


# ---------------------------------------------------------------- report


def summary_table(s):
    rows = ["| row of the issue | flags vs | flags ÷ peer, pages/s | flags ÷ peer, CPU s | target | met |",
            "| --- | --- | ---: | ---: | --- | --- |"]
    for what, peer, r, target, ok in s.summary:
        if "value" in r:
            rows.append(f"| {what} | {peer} | {r['value']:.2f} | | {target} | {verdict(ok)} |")
        else:
            cpu = f"{r['cpu']:.2f}×" if "cpu" in r else ""
            rows.append(f"| {what} | {peer} | {r['speed']:.2f}× | {cpu} | {target} | {verdict(ok)} |")
    return rows


def write_report(s, cases, started):
    out = Path(os.environ.get("OUT", RESULTS / "issue18.md"))
    flags_v = tool_version([s.flags, "--version"])
    commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "actors"],
                           capture_output=True, text=True).stdout.strip()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.*)", cpu)
    quiet = ["| case | machine busy before (3 s) | load avg | waited s | busiest processes |",
             "| --- | ---: | --- | ---: | --- |"]
    quiet += [f"| {q['case']} | {q['busy']:.0f}% | {q['load']} | {q['waited']:.0f} | {q['top']} |"
              for q in QUIET_NOTES]
    quiet += ["", "During the runs: *other CPU* (the machine's CPU time minus the tool's and the "
              "server's, i.e. other work on the machine), per case:", "",
              f"| case | runs kept | other CPU s, median | max | runs thrown away as noisy (other CPU > "
              f"{NOISE:.0%} of a core over the run) and done again | kept runs still noisy after "
              f"{RETRIES} tries |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    seen = []
    for r in s.records:
        if r["case"] not in seen:
            seen.append(r["case"])
    for c in seen:
        rs = [r for r in s.records if r["case"] == c]
        quiet.append(f"| {c} | {len(rs)} | {med(rs, 'other_cpu'):.2f} | "
                     f"{max(r['other_cpu'] for r in rs):.2f} | {sum(r.get('redone', 0) for r in rs)} | "
                     f"{sum(1 for r in rs if r.get('noisy'))} |")
    md = [f"# Issue #18 benchmarks ({LABEL})", "",
          f"`{'QUICK=1 ' if QUICK else ''}CASES={','.join(cases)} bash bench/issue18.sh`, run "
          f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}–{time.strftime('%H:%M')} on "
          f"{model.group(1) if model else '?'}, {CPUS} cores, {os.uname().release}: {flags_v} "
          f"built from `{commit}`{' (with uncommitted changes in src/ or actors/)' if dirty else ''}; "
          f"{tool_version(['wget2', '--version'])}; {tool_version(['curl', '--version'])}; "
          f"{tool_version(['aria2c', '--version'])}; {tool_version(['nginx', '-v'])}. "
          f"Every server on 127.0.0.1, every crawler and server on the same {CPUS} cores. Figures "
          f"are medians of {RUNS} runs (each figure its own median); ratios are flags ÷ peer "
          "(pages/s: above 1 flags is faster; CPU s: below 1 flags uses less). CPU = user + sys of "
          "the tool and its threads (`/usr/bin/time -v`), peak RSS its maximum resident set; "
          "*server CPU* is nginx's (or Redis') during the run, *other CPU* the rest of the "
          "machine's during the run (noise from other work).", "",
          "## Summary", ""] + summary_table(s) + ["", "## How quiet the machine was", ""] + quiet + [""]
    md += s.sections
    out.write_text("\n".join(md) + "\n")
    runs = out.with_name(out.stem + "-runs.jsonl")
    with open(runs, "w") as f:
        for r in s.records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    log(f"wrote {out} and {runs}")


CASE_FUNCS = {"docs": case_docs, "site": case_site, "hosts": case_hosts, "bulk": case_bulk,
              "shared": case_shared, "memory": case_memory, "profile": case_profile}


def main():
    if os.environ.get("ISSUE18_NS_CASE"):
        ns_main()
        return
    if os.geteuid() != 0:
        sys.exit("issue18: needs root (unshare, nginx on port 80 in its own namespace)")
    cases = knob("CASES", ",".join(CASE_FUNCS)).split(",")
    for c in cases:
        if c not in CASE_FUNCS:
            sys.exit(f"issue18: unknown case {c!r} (known: {', '.join(CASE_FUNCS)})")
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="issue18."))
    flags = work / "flags"
    shutil.copy(os.environ.get("FLAGS", ROOT / "target" / "release" / "flags"), flags)
    s = Suite(work, flags)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for c in cases:
            log(f"=== {c}")
            CASE_FUNCS[c](s)
            write_report(s, cases, started)  # after each case: a partial report survives a stop
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for p in OUTROOT.glob("issue18-*"):
            shutil.rmtree(p, ignore_errors=True)
    print((Path(os.environ.get("OUT", RESULTS / "issue18.md"))).read_text())


if __name__ == "__main__":
    main()
