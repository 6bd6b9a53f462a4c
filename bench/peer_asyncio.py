#!/usr/bin/env python3
"""The book's flags2_asyncio approach as a generic peer: download every URL of a list with
aiohttp, at most N at a time (an asyncio.Semaphore), saving each 200 body under its path.

Usage: peer_asyncio.py URLS_FILE DEST_DIR CONCURRENCY
"""
import asyncio
import os
import sys
from urllib.parse import urlsplit

import aiohttp


async def get_one(session, sem, url, dest, counts):
    async with sem:
        try:
            async with session.get(url) as resp:
                if resp.status == 404:
                    counts["not_found"] += 1
                    await resp.read()
                    return
                if resp.status != 200:
                    counts["error"] += 1
                    await resp.read()
                    return
                body = await resp.read()
        except Exception:  # noqa: BLE001 - a peer counts errors, like the book
            counts["error"] += 1
            return
    name = urlsplit(url).path.strip("/").replace("/", "_") or "index"
    with open(os.path.join(dest, name), "wb") as f:
        f.write(body)
    counts["ok"] += 1


async def main(urls_file, dest, concurrency):
    os.makedirs(dest, exist_ok=True)
    with open(urls_file) as f:
        urls = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    sem = asyncio.Semaphore(concurrency)
    counts = {"ok": 0, "not_found": 0, "error": 0}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(get_one(session, sem, u, dest, counts) for u in urls))
    print(f"{counts['ok']} downloaded, {counts['not_found']} not found, {counts['error']} errors")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
