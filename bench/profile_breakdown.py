#!/usr/bin/env python3
"""Where flags' crawl time goes, from the folded stacks bench/issue18.py keeps
(bench/results/profile-LABEL-flags.folded.gz): inclusive shares of the engine's stages, each a
pattern on the stack (optionally only within samples that also have a `within` frame).

    python3 bench/profile_breakdown.py bench/results/profile-before-flags.folded.gz
"""

import gzip
import re
import sys

# (label, frame pattern, only in samples that also have this frame)
STAGES = [
    ("writer threads: Writer handles Save (extract links + store)",
     r"Handler<flags_actors::writer::Save>>::handle", None),
    ("  link extraction (`extract::html_links`)", r"flags_actors::extract::html_links", None),
    ("    lol_html rewriter (tokenizer, selector VM, output)",
     r"lol_html::rewriter::HtmlRewriter<.*>::(write|end)|lol_html::transform_stream", r"html_links"),
    ("    `Url::join` of each href (URL parse #1)", r"url::Url::join|url::ParseOptions::parse|url::parser",
     r"html_links"),
    ("    `get_attribute` (a String per href)", r"get_attribute", r"html_links"),
    ("    building the rewriter (Settings, selectors) per page",
     r"HtmlRewriter<.*>::new|Settings::new|selectors_vm::.*::new|cssparser", r"html_links"),
    ("  store: temp file, write, rename (`Writer::guarded`)", r"flags_actors::writer::Writer::guarded", None),
    ("main thread: frontier (`Frontier::*`)", r"flags_actors::frontier::Frontier", None),
    ("  `discover`: each link found", r"Frontier::discover", None),
    ("    `spec::normalise` (URL parse #2 of the same link)", r"flags_actors::spec::normalise",
     r"Frontier::discover"),
    ("    `SeenSet::insert` (SHA-256 of the URL)", r"SeenSet::insert", r"Frontier::discover"),
    ("    scope check", r"spec::Scope::allows", r"Frontier::discover"),
    ("  dispatch / next_job", r"Frontier::(next_job|dispatch)", None),
    ("HTTP (awc, actix-http, wire, fetcher)",
     r"^<?awc::|actix_http::|flags_actors::wire|flags_actors::http|flags_actors::fetcher", None),
    ("supervisor + reporter", r"flags_actors::(supervisor|reporter)", None),
    ("crossbeam channel recv (writer threads waiting: spin, yield, futex)",
     r"crossbeam_channel::.*recv", None),
    ("kernel: socket send/recv", r"__x64_sys_(sendto|recvfrom|sendmsg|recvmsg|read|write)\b", None),
    ("kernel: file syscalls (openat, renameat, write, mkdir, fsync)",
     r"__x64_sys_(openat|renameat2?|mkdir|fsync|close|unlink|newfstatat|statx)|shmem_file_write", None),
    ("kernel: futex, sched_yield, context switches", r"futex|sched_yield|finish_task_switch", None),
]
LEAF_MALLOC = re.compile(r"malloc|^_int_|free$|tcache|unlink_chunk|realloc|__rust_(alloc|dealloc)")
LEAF_MEM = re.compile(r"__mem(cpy|move|set|cmp|chr)|^mem(cpy|move|set|cmp|chr)")


def main():
    path = sys.argv[1]
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt") as f:
        for line in f:
            stack, n = line.rstrip("\n").rsplit(" ", 1)
            rows.append((stack.split(";"), int(n)))
    total = sum(n for _, n in rows)
    print(f"{total} samples. Inclusive share of each stage (a stage's callees, malloc and syscalls "
          "included; nested rows are parts of the row above):\n")
    print("| stage | samples | share |\n| --- | ---: | ---: |")
    for label, pat, within in STAGES:
        p = re.compile(pat)
        w = re.compile(within) if within else None
        c = sum(n for fr, n in rows
                if (w is None or any(w.search(x) for x in fr)) and any(p.search(x) for x in fr))
        print(f"| {label} | {c} | {100 * c / total:.1f}% |")
    m = sum(n for fr, n in rows if LEAF_MALLOC.search(fr[-1]))
    c = sum(n for fr, n in rows if LEAF_MEM.search(fr[-1]))
    print(f"| (leaf) malloc / free, wherever called | {m} | {100 * m / total:.1f}% |")
    print(f"| (leaf) memcpy / memmove / memchr, wherever called | {c} | {100 * c / total:.1f}% |")


if __name__ == "__main__":
    main()
