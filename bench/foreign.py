#!/usr/bin/env python3
"""Foreign-server check: `flags -e` against web servers this project did not write, beside curl.

Started by bench/foreign.sh (which installs the servers). Serves the flag site (the book's
flags.zip when ../shared/data has it, else the built-in images) from each server on 127.0.0.1:

- Python's `http.server` (the book's LOCAL server: HTTP/1.0, a connection per request),
- bench/slow_server.py as the book's DELAY (0.5-5 s per response) and ERROR (the same delays, 25 %
  of responses 418) servers,
- nginx, Apache httpd (event MPM), lighttpd and busybox httpd with their usual settings,

and runs `flags -e -m N --retries 0` and `curl -Z --parallel-max N` on the same 676 URLs at each
pool size. It prints a Markdown table and writes bench/results/foreign.md. The one number that
must be 0 is "flags errors not from the server": every error left should be a 418 the ERROR
server chose to send.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CODES, FLAGS, RESULTS, ROOT, free_port, wait_port  # noqa: E402

HERE = Path(__file__).resolve().parent


class Check:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="flags-foreign-"))
        self.work.chmod(0o755)  # the servers' workers run as www-data and must read www/
        self.www = self.work / "www"
        self.procs = []
        self.rows = []

    def start(self, cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p):
        try:
            os.killpg(p.pid, 15)
            p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    def site(self):
        zip_path = ROOT.parent / "shared" / "data" / "flags.zip"
        if zip_path.is_file():
            shutil.unpack_archive(str(zip_path), str(self.www))
            return "the book's flags.zip"
        flat = self.work / "flat"
        subprocess.run([str(FLAGS), "-a", "-d", str(flat)], check=True, capture_output=True)
        for gif in flat.iterdir():
            lc = gif.stem.lower()
            (self.www / "flags" / lc).mkdir(parents=True, exist_ok=True)
            shutil.copy(gif, self.www / "flags" / lc / f"{lc}.gif")
        return "the built-in images"

    # ---------- the servers: name -> (start command, port) ----------
    def servers(self):
        www = str(self.www)
        slow = [sys.executable, str(HERE / "slow_server.py"), "--dir", www]
        yield "python3 -m http.server", lambda p: [sys.executable, "-m", "http.server", str(p), "--bind",
                                                    "127.0.0.1", "--directory", www]
        if shutil.which("nginx"):
            yield "nginx", self.nginx
        if os.path.exists("/usr/sbin/apache2"):
            yield "Apache httpd (event)", self.apache
        if shutil.which("lighttpd"):
            yield "lighttpd", self.lighttpd
        if shutil.which("busybox"):
            yield "busybox httpd", lambda p: ["busybox", "httpd", "-f", "-p", f"127.0.0.1:{p}", "-h", www]
        # Last: these take minutes (676 responses of 0.5-5 s each).
        if not self.args.fast_only:
            yield "slow_server.py DELAY", lambda p: slow + ["--port", str(p), "--delay", "0.5..5"]
            yield "slow_server.py ERROR", lambda p: slow + ["--port", str(p), "--delay", "0.5..5",
                                                            "--error-rate", "0.25"]

    def nginx(self, port):
        conf = self.work / f"nginx-{port}.conf"
        conf.write_text(f"""
worker_processes auto;
daemon off;
pid {self.work}/nginx-{port}.pid;
error_log {self.work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; root {self.www}; }}
}}
""")
        return ["nginx", "-c", str(conf)]

    def apache(self, port):
        mods = "/usr/lib/apache2/modules"
        conf = self.work / f"apache-{port}.conf"
        # Debian's defaults for the event MPM and keep-alive.
        conf.write_text(f"""
ServerRoot {self.work}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule mime_module {mods}/mod_mime.so
TypesConfig /etc/mime.types
Listen 127.0.0.1:{port}
ServerName localhost
User www-data
Group www-data
PidFile {self.work}/apache-{port}.pid
ErrorLog {self.work}/apache-error.log
DocumentRoot {self.www}
<Directory {self.www}>
  Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
StartServers 2
ServerLimit 16
MinSpareThreads 25
MaxSpareThreads 75
ThreadsPerChild 25
MaxRequestWorkers 150
""")
        return ["/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"]

    def lighttpd(self, port):
        conf = self.work / f"lighttpd-{port}.conf"
        conf.write_text(f"""
server.document-root = "{self.www}"
server.bind = "127.0.0.1"
server.port = {port}
server.username = "www-data"
server.groupname = "www-data"
""")
        return ["lighttpd", "-D", "-f", str(conf)]

    # ---------- the runs ----------
    def urls(self, base):
        return [f"{base}/flags/{c.lower()}/{c.lower()}.gif" for c in CODES]

    def run_flags(self, base, m):
        dest = Path(tempfile.mkdtemp(prefix="flags-foreign-out-", dir="/dev/shm"))
        t0 = time.monotonic()
        try:
            out = subprocess.run([str(FLAGS), "-e", "-m", str(m), "--retries", "0", "--json",
                                  "-s", f"{base}/flags", "-d", str(dest)],
                                 capture_output=True, text=True, timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            shutil.rmtree(dest, ignore_errors=True)
            return None, None, None, [f"no end within {self.args.timeout:.0f} s"]
        wall = time.monotonic() - t0
        shutil.rmtree(dest, ignore_errors=True)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        summary = lines[-1]
        foreign = sum(1 for j in lines if j.get("type") == "job" and j["outcome"] == "error"
                      and j.get("status") != 418)
        samples = sorted({j["error"] for j in lines if j.get("type") == "job"
                          and j["outcome"] == "error" and j.get("status") != 418})[:3]
        return summary, foreign, wall, samples

    def run_curl(self, base, m):
        cfg = self.work / "curl.cfg"
        cfg.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in self.urls(base)))
        t0 = time.monotonic()
        try:
            out = subprocess.run(["curl", "-s", "-Z", "--parallel-max", str(m), "-w",
                                  "%{http_code}\n", "-K", str(cfg)], capture_output=True,
                                 text=True, timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            return None, None, None, None
        wall = time.monotonic() - t0
        codes = out.stdout.split()
        ok, nf = codes.count("200"), codes.count("404")
        return ok, nf, len(CODES) - ok - nf, wall

    def run(self):
        source = self.site()
        print(f"serving {source} from {self.www}", flush=True)
        for name, cmd in self.servers():
            for m in self.args.pools:
                port = free_port()
                proc = self.start(cmd(port))
                wait_port(port)
                summary, foreign, wall, samples = self.run_flags(f"http://127.0.0.1:{port}", m)
                c_ok, c_nf, c_other, c_wall = self.run_curl(f"http://127.0.0.1:{port}", m)
                self.stop(proc)
                counts = ((summary["downloaded"], summary["not_found"], summary["errors"])
                          if summary else (None, None, None))
                row = (name, m, *counts, foreign, wall, c_ok, c_nf, c_other, c_wall)
                self.rows.append(row)
                print(self.format(row), "  " + "; ".join(samples), flush=True)

    def format(self, r):
        late = f"no end within {self.args.timeout:.0f} s"
        flags = (f"{r[2]} / {r[3]} / {r[4]} | {r[5]} | {r[6]:.2f} s" if r[2] is not None
                 else f"– | – | {late}")
        curl = f"{r[7]} / {r[8]} / {r[9]} | {r[10]:.2f} s" if r[7] is not None else f"– | {late}"
        return f"| {r[0]} | {r[1]} | {flags} | {curl} |"

    def table(self):
        head = ("| server | -m | flags ok / 404 / errors | flags errors not from the server "
                "| flags wall | curl 200 / 404 / other | curl wall |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        return head + "\n".join(self.format(r) for r in self.rows)

    def cleanup(self):
        for p in self.procs:
            self.stop(p)
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pools", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100])
    ap.add_argument("--timeout", type=float, default=400, help="seconds allowed per run")
    ap.add_argument("--fast-only", action="store_true", help="skip the two slow_server.py servers")
    args = ap.parse_args()
    check = Check(args)
    try:
        check.run()
        table = check.table()
        machine = subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip()
        header = (f"Run on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {machine}: "
                  f"`flags -e -m N --retries 0` and `curl -Z --parallel-max N` on the same 676 URLs.\n")
        print("\n" + header + "\n" + table)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "foreign.md").write_text(header + "\n" + table + "\n")
    finally:
        check.cleanup()


if __name__ == "__main__":
    main()
