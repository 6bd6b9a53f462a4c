#!/usr/bin/env python3
"""Folds a `perf record --call-graph` profile into stacks, groups its samples, draws a flame graph.

    python3 bench/flamegraph.py perf.data [--svg out.svg] [--folded out.folded] [--markdown]

Reads `perf script` (so perf must be installed); writes an SVG flame graph (no JavaScript needed
to read it: hover a frame for its name and share), optionally the folded stacks
(`thread;root;...;leaf count`, the format of Brendan Gregg's stackcollapse), and with --markdown
prints the tables bench/issue18.py puts in profile-LABEL.md: samples by thread, by leaf kind, by
flags component, and the top self and inclusive functions.
"""

import argparse
import html
import re
import subprocess
import sys
from collections import Counter

# Component patterns, tried from the leaf up: the innermost match owns the sample.
COMPONENTS = [
    ("HTML parsing (lol_html, link extraction)", r"lol_html|html5ever|flags_actors::extract|wget_html|html_parse"),
    ("URL parsing / joining / normalising", r"^url::|idna::|percent_encoding|form_urlencoded|flags_actors::spec|wget_iri|iri_"),
    ("hashing (SHA-256, hash maps)", r"sha2::|sha256|ring::digest|core::hash|hashbrown|std::hash|siphash|wget_hash|hash_"),
    ("frontier / seen-set / robots / scope", r"flags_actors::frontier|flags_actors::seen|texting_robots|regex|flags_actors::shared|wget_robots|blacklist"),
    ("journal", r"flags_actors::journal"),
    ("writing files (writer, names)", r"flags_actors::writer|flags_actors::names|flags_actors::sink|tempfile::|std::fs::|wget_.*file|_fopen|open64"),
    ("HTTP client (awc, actix-http, wire)", r"^awc::|actix_http::|httparse|flags_actors::http|flags_actors::wire|flags_actors::fetcher|wget_http|http_"),
    ("actor system / runtime / channels (thread hand-offs)", r"^actix::|actix_rt|^tokio::|^mio::|crossbeam|flags_actors::supervisor|flags_actors::reporter|futures_|std::sync::mpmc|std::thread|wget_thread|pthread_"),
]
COMPONENTS = [(name, re.compile(p)) for name, p in COMPONENTS]

LEAF_KINDS = [
    ("malloc / free", r"^(__libc_)?(malloc|free|realloc|calloc|cfree)$|^_int_(malloc|free|realloc)|malloc_consolidate|unlink_chunk|sysmalloc|^__rust_(alloc|dealloc|realloc)|^alloc::alloc|tcache|^_mid_memalign|^__GI___libc_(malloc|free)"),
    ("memcpy / memmove / memchr (libc)", r"^__(memmove|memcpy|memset|memchr|memcmp|memrchr|strlen|rawmemchr)|^(memcpy|memmove|memset|memchr|memcmp)|_avx|_evex|_sse2"),
    ("futex / scheduling (kernel)", r"futex|schedule|switch_to|finish_task_switch|try_to_wake_up|wake_up|pick_next|enqueue_task|dequeue_task|update_curr|ttwu|select_task_rq"),
    ("network stack (kernel)", r"tcp_|^ip_|ipv4|skb|sock|inet_|__dev_|netif|net_rx|loopback|__napi|napi_|do_softirq|__softirq|dst_"),
    ("files (kernel)", r"vfs_|shmem|ext4|dentry|inode|^do_(sys_)?open|path_|link_path|filemap|page_cache|generic_perform_write|d_alloc|rename|fsync|mnt_|__fput|lookup_|security_file"),
    ("epoll / syscall entry (kernel)", r"epoll|ep_|entry_SYSCALL|do_syscall|syscall_exit|syscall_return|__x64_sys|exit_to_user|__sys_|__fdget|fput"),
    ("memory management (kernel)", r"page_fault|handle_mm|do_anonymous|clear_page|alloc_pages|__alloc_pages|mmap|munmap|do_madvise|zap_|free_pages|rmqueue|lru_|folio"),
]
LEAF_KINDS = [(name, re.compile(p)) for name, p in LEAF_KINDS]

HASH_SUFFIX = re.compile(r"::h[0-9a-f]{16}$")


def clean(sym):
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    sym = HASH_SUFFIX.sub("", sym)
    # <T as Trait>::f and generic arguments make names long; keep them but trim closures.
    return sym.replace("{{closure}}", "{closure}")


def read_stacks(data):
    """Yields (thread, frames root..leaf, kernel flags) per sample from `perf script`."""
    proc = subprocess.Popen(["perf", "script", "-i", data, "-F", "comm,pid,tid,ip,sym,dso"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            errors="replace")
    thread, frames = None, []
    for line in proc.stdout:
        if not line.strip():
            if thread is not None and frames:
                yield thread, list(reversed(frames))
            thread, frames = None, []
            continue
        if not line[0].isspace():
            # "comm pid/tid": the process's first thread (tid = pid) is its main thread.
            m = re.match(r"\s*(.*?)\s+(\d+)/(\d+)", line)
            if m:
                thread = "main thread" if m.group(2) == m.group(3) else f"{m.group(1)} (other threads)"
            else:
                thread = "?"
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
        if not m:
            continue
        sym, dso = m.group(2), m.group(3)
        if sym == "[unknown]":
            sym = f"[{dso.rsplit('/', 1)[-1]}]"
        kernel = "kernel" in dso
        frames.append((clean(sym), kernel))
    if thread is not None and frames:
        yield thread, list(reversed(frames))
    proc.wait()


# A thread's role, from what its stack runs (the engine's threads have no names of their own).
ROLES = [
    ("writer threads (SyncArbiter: save + link extraction)", r"actix::sync::SyncContext|SyncArbiter"),
    ("tokio blocking pool (DNS, files)", r"tokio::runtime::blocking"),
]
ROLES = [(name, re.compile(p)) for name, p in ROLES]


def role(thread, frames):
    """The thread's role; otherwise "main thread" (flags: the actix System, where the
    supervisor, frontier and reporter run) or the other threads (flags: the fetchers' arbiters)."""
    for name, pat in ROLES:
        if any(pat.search(s) for s, _ in frames):
            return name
    return thread


def leaf_kind(frames):
    sym, kernel = frames[-1]
    for name, pat in LEAF_KINDS:
        if pat.search(sym) and (kernel or "kernel" not in name):
            return name
    if kernel:
        return "other kernel"
    return "user code (not malloc/mem*)"


def component(frames):
    for sym, _ in reversed(frames):
        for name, pat in COMPONENTS:
            if pat.search(sym):
                return name
    return "other (std, libc, unattributed)"


def pct(n, total):
    return f"{100.0 * n / max(1, total):.1f}%"


def table(title, counter, total, top=None, col="samples"):
    rows = [f"| {title} | {col} | share |", "| --- | ---: | ---: |"]
    for k, v in counter.most_common(top):
        rows.append(f"| {md_escape(k)} | {v} | {pct(v, total)} |")
    return rows


def md_escape(s):
    s = s if len(s) <= 140 else s[:137] + "..."
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- SVG


def build_tree(folded):
    root = {"n": 0, "c": {}}
    for stack, count in folded.items():
        node = root
        node["n"] += count
        for f in stack:
            node = node["c"].setdefault(f, {"n": 0, "c": {}})
            node["n"] += count
    return root


def color(name):
    for i, (comp, pat) in enumerate(COMPONENTS):
        if pat.search(name):
            hues = [30, 200, 280, 120, 60, 170, 0, 320]
            return f"hsl({hues[i % len(hues)]},70%,65%)"
    if name.startswith("[k]"):
        return "hsl(90,30%,70%)"
    return "hsl(40,15%,80%)"


def svg(folded, title, width=1400, height_per=16):
    tree = build_tree(folded)
    total = tree["n"]
    rects = []

    def depth_of(node):
        return 1 + max((depth_of(c) for c in node["c"].values()), default=0)

    max_depth = depth_of(tree)
    top = 40
    height = top + max_depth * height_per + 20
    min_w = 0.3

    def walk(node, name, x, depth):
        w = width * node["n"] / total
        if w < min_w:
            return
        y = height - 20 - depth * height_per
        if name is not None:
            label = name if w > 40 else ""
            chars = int((w - 6) / 6.5)
            if len(label) > chars:
                label = label[:max(0, chars - 2)] + ".." if chars > 3 else ""
            rects.append(
                f'<g><title>{html.escape(name)} ({node["n"]} samples, {100 * node["n"] / total:.2f}%)</title>'
                f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{height_per - 1}" fill="{color(name)}" rx="2"/>'
                f'<text x="{x + 3:.2f}" y="{y + height_per - 4}">{html.escape(label)}</text></g>')
        cx = x
        for cname, child in sorted(node["c"].items()):
            walk(child, cname, cx, depth + (0 if name is None else 1))
            cx += width * child["n"] / total

    walk(tree, None, 0.0, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="monospace" font-size="11">'
            f'<rect width="100%" height="100%" fill="#fdfdfd"/>'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">{html.escape(title)} '
            f'({total} samples; hover for names)</text>' + "".join(rects) + "</svg>\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--svg")
    ap.add_argument("--folded")
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    folded = Counter()
    threads, leaves, comps, selfs, incl = Counter(), Counter(), Counter(), Counter(), Counter()
    total = 0
    for thread, frames in read_stacks(a.data):
        total += 1
        names = [("[k] " if k else "") + s for s, k in frames]
        folded[tuple([thread] + names)] += 1
        threads[role(thread, frames)] += 1
        leaves[leaf_kind(frames)] += 1
        comps[component(frames)] += 1
        selfs[names[-1]] += 1
        for n in set(names):
            incl[n] += 1
    if total == 0:
        sys.exit("no samples (is perf installed, and the data file complete?)")
    if a.folded:
        with open(a.folded, "w") as f:
            for stack, n in folded.most_common():
                f.write(";".join(s.replace(";", ":") for s in stack) + f" {n}\n")
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg(folded, a.title))
    if a.markdown:
        out = [f"{total} samples (499 Hz per thread while it runs).", ""]
        out += ["By component (innermost on the stack):", ""] + table("component", comps, total) + [""]
        out += ["By leaf (what the CPU was executing):", ""] + table("leaf kind", leaves, total) + [""]
        out += ["By thread:", ""] + table("thread", threads, total, top=12) + [""]
        out += ["Top 25 functions by self time:", ""] + table("function", selfs, total, top=25) + [""]
        generic = re.compile(r"^\[k\] (entry_SYSCALL|do_syscall)|^(_start|main|__libc_start|start_thread|clone3?)$|"
                             r"^<?(std|core|alloc)::|catch_unwind|AssertUnwindSafe|^<?alloc::boxed|^\[flags|^\[unknown")
        interesting = Counter({k: v for k, v in incl.items() if not generic.search(k)})
        out += ["Top 30 functions by inclusive time (with their callees):", ""]
        out += table("function", interesting, total, top=30) + [""]
        print("\n".join(out))


if __name__ == "__main__":
    main()
