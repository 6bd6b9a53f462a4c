#!/usr/bin/env python3
"""A server of the book's `slow_server.py` shape, for the foreign-server check (bench/foreign.py).

Python's ThreadingHTTPServer + SimpleHTTPRequestHandler (HTTP/1.0, a thread and a connection per
request, closed after each response) serving a folder, with the book's DELAY behaviour (every
response, 404s included, waits a uniform MIN..MAX seconds) and ERROR behaviour (a share of the
responses are 418 I'm a teapot). Written for this project, after the book's description.

    python3 bench/slow_server.py --dir www --port 8001 --delay 0.5..5
    python3 bench/slow_server.py --dir www --port 8002 --delay 0.5..5 --error-rate 0.25

Listens on 127.0.0.1 only. Prints "Serving on PORT" once it listens.
"""
import argparse
import functools
import random
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class SlowHandler(SimpleHTTPRequestHandler):
    delay = (0.0, 0.0)
    error_rate = 0.0

    def send_head(self):
        time.sleep(random.uniform(*self.delay))
        if random.random() < self.error_rate:
            self.send_error(418, "I'm a teapot")
            return None
        return super().send_head()

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", default="0", help="SECS or MIN..MAX")
    ap.add_argument("--error-rate", type=float, default=0.0)
    args = ap.parse_args()
    lo, _, hi = args.delay.partition("..")
    SlowHandler.delay = (float(lo), float(hi or lo))
    SlowHandler.error_rate = args.error_rate
    handler = functools.partial(SlowHandler, directory=args.dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"Serving on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
