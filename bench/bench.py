#!/usr/bin/env python3
"""Side-by-side benchmark of `flags` against the downloaders users would pick.

Started by bench/run.sh (which installs the tools). Generates its data, starts nginx (one
worker) and the built-in DELAY server on 127.0.0.1, runs every case for every tool, prints one
Markdown table and writes it, with an SVG plot of files/s against pool size, to bench/results/.
Only ever talks to 127.0.0.1; every server it starts is stopped at the end.
"""
import argparse
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ROOT / "target" / "release" / "flags"
RESULTS = ROOT / "bench" / "results"
CODES = [a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="flags-bench-"))
        self.work.chmod(0o755)  # nginx's workers run as another user and must read www/
        base = Path(args.disk) if args.disk else Path("/dev/shm")
        self.out_root = Path(tempfile.mkdtemp(prefix="flags-bench-out-", dir=base))
        self.procs = []
        self.rows = []
        self.python = self.find_python()

    # ---------- set-up ----------
    def find_python(self):
        for py in ("python3", "/usr/bin/python3"):
            if subprocess.run([py, "-c", "import aiohttp"], capture_output=True).returncode == 0:
                return py
        return None

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def setup(self):
        www = self.work / "www"
        (www / "files").mkdir(parents=True)
        # The 194 flags, as the built-in server serves them (or the book's, when its zip is here).
        zip_path = ROOT.parent / "shared" / "data" / "flags.zip"
        if zip_path.is_file():
            shutil.unpack_archive(str(zip_path), str(www))
        else:
            port = free_port()
            srv = self.start([str(FLAGS), "serve", "--port", str(port)])
            wait_port(port)
            for cc in CODES:
                lc = cc.lower()
                try:
                    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/flags/{lc}/{lc}.gif").read()
                except Exception:  # noqa: BLE001 - 404 for non-countries
                    continue
                (www / "flags" / lc).mkdir(parents=True, exist_ok=True)
                (www / "flags" / lc / f"{lc}.gif").write_bytes(body)
            srv.terminate()
        for i in range(20000):
            (www / "files" / f"{i:05d}.bin").write_bytes(os.urandom(4096))

        self.nginx_port = free_port()
        conf = self.work / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
daemon off;
pid {self.work}/nginx.pid;
error_log {self.work}/nginx-error.log;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {{ listen 127.0.0.1:{self.nginx_port} backlog=8192; root {www}; }}
}}
""")
        self.start(["nginx", "-c", str(conf)])
        wait_port(self.nginx_port)
        self.delay_port = free_port()
        self.start([str(FLAGS), "serve", "--profile", "delay", "--port", str(self.delay_port), "--workers", "2"])
        wait_port(self.delay_port)

        n = f"http://127.0.0.1:{self.nginx_port}"
        d = f"http://127.0.0.1:{self.delay_port}"
        self.lists = {
            "a": self.url_list("a", [f"{n}/flags/{c.lower()}/{c.lower()}.gif" for c in CODES]),
            "b": self.url_list("b", [f"{n}/files/{i:05d}.bin" for i in range(20000)]),
            "c": self.url_list("c", [f"{d}/flags/{c.lower()}/{c.lower()}.gif" for c in CODES]),
            "d10k": self.url_list("d10k", self.mostly_404(n, 10_000)),
            "d1m": self.url_list("d1m", self.mostly_404(n, 1_000_000)),
        }

    @staticmethod
    def mostly_404(base, count):
        # One in a hundred exists; the rest are fast 404s.
        for i in range(count):
            yield f"{base}/files/{i % 20000:05d}.bin" if i % 100 == 0 else f"{base}/missing/{i:07d}"

    def url_list(self, name, urls):
        path = self.work / f"{name}.txt"
        count = 0
        with open(path, "w") as f:
            for u in urls:
                f.write(u + "\n")
                count += 1
        # curl reads URLs and output names from a config file (-K); each name is the URL's last
        # path segment, written relative to the folder curl runs in.
        curl_cfg = self.work / f"{name}.curl"
        with open(path) as src, open(curl_cfg, "w") as dst:
            for line in src:
                url = line.strip()
                dst.write(f'url = "{url}"\noutput = "{url.rsplit("/", 1)[-1]}"\n')
        return {"path": path, "curl": curl_cfg, "count": count}

    # ---------- measuring ----------
    def command(self, tool, case, pool, dest):
        lst = self.lists[case]
        if tool == "flags":
            if case == "a":
                return [str(FLAGS), "-e", "-s", f"http://127.0.0.1:{self.nginx_port}/flags", "-m", str(pool), "-d", dest]
            if case == "c":
                return [str(FLAGS), "-e", "-s", f"http://127.0.0.1:{self.delay_port}/flags", "-m", str(pool), "-d", dest]
            return [str(FLAGS), "-i", str(lst["path"]), "-m", str(pool), "-d", dest]
        if tool == "aria2c":
            return ["aria2c", "-q", "--no-conf=true", "-i", str(lst["path"]), "-d", dest, "-j", str(pool),
                    "--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
                    "--summary-interval=0", "--max-tries=1"]
        if tool == "curl":
            # curl caps --parallel-max at 300.
            return ["curl", "-s", "--fail", "--parallel", "--parallel-max", str(min(pool, 300)),
                    "-K", str(lst["curl"])]
        if tool == "wget2":
            return ["wget2", "-q", "--no-robots", f"--max-threads={pool}", "-i", str(lst["path"]), "-P", dest]
        if tool == "asyncio":
            return [self.python, str(ROOT / "bench" / "peer_asyncio.py"), str(lst["path"]), dest, str(pool)]
        raise ValueError(tool)

    def run_once(self, cmd, dest):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        timing = self.work / "time.txt"
        # Wall time from a fine clock (time(1) rounds to 10 ms); CPU and peak RSS from time(1).
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(timing)] + cmd,
                       cwd=dest, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        _, user, sys_, rss = timing.read_text().split()[-4:]
        files = sum(len(fs) for _, _, fs in os.walk(dest))
        shutil.rmtree(dest, ignore_errors=True)
        return float(wall), float(user) + float(sys_), int(rss), files

    def measure(self, tool, case, pool, reps=None):
        reps = reps or self.args.reps
        if tool == "asyncio" and not self.python:
            return None
        dest = str(self.out_root / "dest")
        runs = [self.run_once(self.command(tool, case, pool, dest), dest) for _ in range(reps)]
        wall = statistics.median(r[0] for r in runs)
        row = {
            "case": case, "pool": pool, "tool": tool, "wall": wall,
            "cpu": statistics.median(r[1] for r in runs),
            "rss": max(r[2] for r in runs) / 1024,
            "rate": self.lists[case]["count"] / wall,
            "files": runs[-1][3],
        }
        self.rows.append(row)
        print(f"  {case} pool {pool:4} {tool:8} {wall:7.3f}s  {row['rate']:9.0f} req/s  "
              f"cpu {row['cpu']:.2f}s  rss {row['rss']:.0f} MB  files {row['files']}", flush=True)
        return row

    def wrk(self, case, pool, seconds=3):
        lst = self.lists[case]["path"]
        script = self.work / f"wrk-{case}.lua"
        script.write_text(f"""
local urls = {{}}
for line in io.lines("{lst}") do urls[#urls + 1] = line:match("^https?://[^/]+(/.*)$") end
local i = 0
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
""")
        threads = min(pool, 2)
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{max(pool, threads)}", f"-d{seconds}s", "-s", str(script),
                              f"http://127.0.0.1:{self.nginx_port}/"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
        return float("nan")

    def disk_ceiling(self, count=20000):
        dest = self.out_root / "disk"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        body = os.urandom(4096)
        start = time.perf_counter()
        for i in range(count):
            tmp = dest / f".tmp{i}"
            with open(tmp, "wb") as f:
                f.write(body)
                os.fsync(f.fileno())
            os.rename(tmp, dest / f"{i:05d}.bin")
        rate = count / (time.perf_counter() - start)
        shutil.rmtree(dest, ignore_errors=True)
        return rate

    # ---------- the cases ----------
    def run(self):
        tools = ["flags", "aria2c", "curl", "wget2", "asyncio"]
        cases = self.args.cases.split(",")
        self.ceilings = {}
        if "a" in cases:
            print("a: -e (676 URLs, 194 found) from nginx", flush=True)
            # Runs of tens of milliseconds: more of them, or noise decides the median.
            for pool in (10, 100):
                for tool in tools:
                    self.measure(tool, "a", pool, reps=max(self.args.reps, 21))
                self.ceilings[("a", pool)] = self.wrk("a", pool)
        if "b" in cases:
            print("b: 20,000 files of 4 KiB from nginx", flush=True)
            self.ceilings["disk"] = self.disk_ceiling()
            for pool in (10, 100, 500):
                for tool in tools:
                    self.measure(tool, "b", pool)
                self.ceilings[("b", pool)] = self.wrk("b", pool)
        if "c" in cases:
            print("c: DELAY server (0.5 s per response), 676 codes", flush=True)
            for pool in (100, 1000):
                for tool in tools:
                    self.measure(tool, "c", pool)
                self.ceilings[("c", pool)] = 676 / (math.ceil(676 / pool) * 0.5)
        if "d" in cases:
            print("d: URL lists of mostly 404s (flags only)", flush=True)
            self.measure("flags", "d10k", 100)
            self.measure("flags", "d1m", 100, reps=1)
            self.ceilings[("d1m", 100)] = self.wrk("d1m", 100)

    # ---------- reporting ----------
    def table(self):
        lines = [
            "| case | pool | tool | wall (median) | CPU s | peak RSS MB | req/s | flags vs fastest peer | flags vs ceiling |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        groups = {}
        for r in self.rows:
            groups.setdefault((r["case"], r["pool"]), []).append(r)
        for (case, pool), rows in groups.items():
            flags_row = next((r for r in rows if r["tool"] == "flags"), None)
            peers = [r for r in rows if r["tool"] != "flags"]
            fastest = min(peers, key=lambda r: r["wall"]) if peers else None
            ceiling = self.ceilings.get((case, pool))
            for r in rows:
                vs_peer = vs_ceiling = ""
                if r is flags_row and fastest:
                    vs_peer = f"{fastest['wall'] / r['wall']:.2f}× ({fastest['tool']})"
                if r is flags_row and ceiling:
                    if case == "c":
                        vs_ceiling = f"wall {r['wall'] / (676 / ceiling):.3f}× the latency limit"
                    else:
                        vs_ceiling = f"{r['rate'] / ceiling:.2f}× (wrk {ceiling:.0f}/s)"
                lines.append(f"| {case} | {pool} | {r['tool']} | {r['wall']:.3f} s | {r['cpu']:.2f} | "
                             f"{r['rss']:.0f} | {r['rate']:.0f} | {vs_peer} | {vs_ceiling} |")
        if "disk" in self.ceilings:
            lines.append(f"\nDisk alone (write, fsync, rename of 4 KiB files, one thread): "
                         f"{self.ceilings['disk']:.0f} files/s into {'tmpfs' if not self.args.disk else self.args.disk}.")
        rss = {r["case"]: r["rss"] for r in self.rows if r["tool"] == "flags" and r["case"].startswith("d")}
        if "d1m" in rss and "d10k" in rss:
            lines.append(f"\nd: peak RSS {rss['d1m']:.0f} MB for 1,000,000 URLs, {rss['d10k']:.0f} MB for 10,000 "
                         f"({rss['d1m'] / rss['d10k']:.2f}×).")
        return "\n".join(lines)

    def plot(self):
        rows = [r for r in self.rows if r["case"] == "b"]
        if not rows:
            return None
        tools = sorted({r["tool"] for r in rows}, key=lambda t: (t != "flags", t))
        pools = sorted({r["pool"] for r in rows})
        top = max([r["rate"] for r in rows] + [self.ceilings.get(("b", p), 0) for p in pools]) * 1.1
        w, h, pad = 640, 400, 60
        colors = {"flags": "#d62728", "aria2c": "#1f77b4", "curl": "#2ca02c", "wget2": "#9467bd",
                  "asyncio": "#8c564b", "wrk (ceiling)": "#7f7f7f"}

        def x(p):
            i = pools.index(p)
            return pad + i * (w - 2 * pad) / max(1, len(pools) - 1)

        def y(v):
            return h - pad - v / top * (h - 2 * pad)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
               f'<rect width="{w}" height="{h}" fill="white"/>',
               f'<text x="{w / 2}" y="20" text-anchor="middle">20,000 files of 4 KiB from nginx: files/s by pool size</text>',
               f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
               f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>']
        for p in pools:
            out.append(f'<text x="{x(p)}" y="{h - pad + 18}" text-anchor="middle">{p}</text>')
        for i in range(6):
            v = top * i / 5
            out.append(f'<text x="{pad - 6}" y="{y(v) + 4}" text-anchor="end">{v / 1000:.0f}k</text>')
        series = {t: [(r["pool"], r["rate"]) for r in rows if r["tool"] == t] for t in tools}
        series["wrk (ceiling)"] = [(p, self.ceilings[("b", p)]) for p in pools if ("b", p) in self.ceilings]
        for i, (name, pts) in enumerate(series.items()):
            pts = sorted(pts)
            path = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in pts)
            dash = ' stroke-dasharray="4 3"' if name.startswith("wrk") else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{colors.get(name, "black")}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{w - pad + 4}" y="{pad + 14 * i}" fill="{colors.get(name, "black")}">{name}</text>')
        out.append(f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">pool size (concurrent requests)</text>')
        out.append("</svg>")
        return "\n".join(out)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        pid = self.work / "nginx.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text().strip()), signal.SIGQUIT)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.out_root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5, help="runs per measurement (median of them)")
    ap.add_argument("--cases", default="a,b,c,d", help="which cases: a,b,c,d")
    ap.add_argument("--disk", help="download into this folder's filesystem instead of tmpfs")
    args = ap.parse_args()
    # Ctrl-C or a kill still stops the servers and removes the data (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    try:
        bench.setup()
        bench.run()
        table = bench.table()
        machine = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
        header = (f"Run on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {machine}, "
                  f"downloads into {'tmpfs' if not args.disk else args.disk}, median of {args.reps} runs "
                  f"(at least 21 for case a, whose runs last tens of milliseconds).\n")
        print("\n" + header + "\n" + table)
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = "latest.md" if args.cases == "a,b,c,d" else f"latest-{args.cases.replace(',', '')}.md"
        (RESULTS / name).write_text(header + "\n" + table + "\n")
        svg = bench.plot()
        if svg and "b" in args.cases:
            (RESULTS / "pool_size.svg").write_text(svg)
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
