"""One run of ``benchmarks.packet_cost`` against one tree (a separate process, so that the tree's
``sfu`` is the one imported): ``python packet_cost_driver.py TREE N PACKETS count|idle``.

count: N offline subscribers of one VP8 producer, PACKETS packets into the publisher transport's
receive entry (a turn of the loop every 64, as the shared port's batches give). idle: the same
transports (video and audio each) with the worker's periodic work on, no packets; prints the
process's CPU milliseconds per second over 10 s."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
from typing import Any


def continuous(base: list[bytes], count: int) -> list[bytes]:
    """``count`` packets looping ``base`` with sequence numbers and timestamps that keep going (a
    repeated number would be dropped as a duplicate before the fan-out)."""
    n = len(base)
    ts0 = int.from_bytes(base[0][4:8], "big")
    span = (int.from_bytes(base[-1][4:8], "big") - ts0 + 3000) & 0xFFFFFFFF
    seq0 = int.from_bytes(base[0][2:4], "big")
    out = []
    for i in range(count):
        b = bytearray(base[i % n])
        b[2:4] = ((seq0 + i) & 0xFFFF).to_bytes(2, "big")
        b[4:8] = ((int.from_bytes(b[4:8], "big") + (i // n) * span) & 0xFFFFFFFF).to_bytes(4, "big")
        out.append(bytes(b))
    return out


async def run(offline: Any, worker: Any, subs: int, packets: int, idle: bool) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline.offline_publisher(router)
    wanted = [producers["video"], producers["audio"]] if idle else [producers["video"]]
    for i in range(subs):
        await offline.offline_subscriber(router, wanted, name=f"s{i}")
    if idle:
        await asyncio.sleep(1)
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(10)
        print((time.process_time() - cpu) * 1000 / (time.monotonic() - wall))
    else:
        on_rtp = pub._on_rtp
        for i, data in enumerate(continuous(offline.load_packets("rtp_vp8.hex"), packets)):
            on_rtp(data)
            if i % 64 == 63:
                await asyncio.sleep(0)
    await worker.close()


def main() -> None:
    tree, subs, packets, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, tree)
    os.chdir(tree)
    # imported by name: the tree's own sfu and test harness, whichever revision it is (not this one's)
    sfu = importlib.import_module("sfu")
    offline = importlib.import_module("tests.sfu.offline")
    idle = mode == "idle"
    worker = (sfu.Worker(sfu.WorkerSettings(host_addresses=("127.0.0.1",), fast_path=True)) if idle
              else offline.offline_worker("fast"))
    asyncio.run(run(offline, worker, subs, packets, idle))


if __name__ == "__main__":
    main()
