"""Send-path micro-benchmark: one datagram per ``transport.sendto`` vs ``UdpMux``'s sendmmsg batches.

    .venv/bin/python -m benchmarks.send_path                  # 200k x 1100 B to 100 destinations
    .venv/bin/python -m benchmarks.send_path --packets 500000 --dests 50 --loop asyncio

A child process opens ``--dests`` UDP sockets on 127.0.0.1 and drains them (so its work is not
counted here). This process starts a ``UdpMux`` on 127.0.0.1 and sends ``--packets`` datagrams of
``--size`` bytes the way the forwarding core fans out: for each "incoming packet", one datagram to
every destination, then back to the event loop (where a pending batch is flushed). Printed per
path: CPU microseconds per datagram of this process (``time.process_time``: user + system, which on
loopback includes the kernel's delivery into the receiving socket), wall time, how many the
drainer got, and the ratio of the two paths. Each path runs ``--repeat`` times, alternating; the
best run is reported, and the medians (the figures are noisy on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sfu.udp_mux import UdpMux, batch_send_available


def _drain(ports_out: Connection, stop: Any, n: int) -> None:
    """Child process: open n sockets, report their ports, count what arrives until stopped."""
    socks = []
    sel = selectors.DefaultSelector()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    ports_out.send([s.getsockname()[1] for s in socks])
    count = 0
    while True:
        for key, _ in sel.select(0.05):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                while True:
                    sock.recv(2048)
                    count += 1
            except BlockingIOError:
                pass
        if ports_out.poll():
            msg = ports_out.recv()
            if msg == "count":
                ports_out.send(count)
                count = 0
            elif msg == "stop":
                break
    for s in socks:
        s.close()
    del stop


@dataclass
class Result:
    path: str
    us_per_packet: float
    user_us: float  # of which user-space (the interpreter, the extension)
    sys_us: float  # of which the kernel (the UDP stack and, on loopback, delivery)
    wall_s: float
    received: int
    sent: int


async def _run(path: str, dests: list[tuple[str, int]], packets: int, size: int, conn: Connection) -> Result:
    mux = UdpMux("127.0.0.1", 0, batch_send=(path == "batched"))
    await mux.start()
    assert mux.batching == (path == "batched"), "the extension is not built: pip install -e ."
    # the object the forwarding core sends through (what sfu.aiortc_compat.selected_pair returns)
    target = mux.send_side.transport
    assert target is not None
    sendto = target.sendto
    payload = b"\x80" + bytes(size - 1)
    rounds = packets // len(dests)
    await asyncio.sleep(0.05)
    t0 = os.times()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for d in dests:
            sendto(payload, d)
        await asyncio.sleep(0)  # the end of one datagram_received callback
    mux.flush()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    t1 = os.times()
    mux.close()
    await asyncio.sleep(0.3)
    conn.send("count")
    received = conn.recv()
    sent = rounds * len(dests)
    return Result(path, cpu / sent * 1e6, (t1.user - t0.user) / sent * 1e6, (t1.system - t0.system) / sent * 1e6,
                  wall, received, sent)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--dests", type=int, default=100)
    ap.add_argument("--size", type=int, default=1100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not batch_send_available():
        print("sfu._sendmmsg is not built (pip install -e .): only the sendto path can run", file=sys.stderr)
        return 2
    if args.loop == "uvloop":
        import uvloop

        runner: Any = uvloop.run
    else:
        runner = asyncio.run
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_drain, args=(child, None, args.dests), daemon=True)
    proc.start()
    ports = parent.recv()
    dests = [("127.0.0.1", p) for p in ports]
    best: dict[str, Result] = {}
    runs: dict[str, list[float]] = {"sendto": [], "batched": []}
    try:
        for _ in range(args.repeat):
            for path in ("sendto", "batched"):
                r = runner(_run(path, dests, args.packets, args.size, parent))
                runs[path].append(r.us_per_packet)
                if path not in best or r.us_per_packet < best[path].us_per_packet:
                    best[path] = r
    finally:
        parent.send("stop")
        proc.join(5)
    a, b = best["sendto"], best["batched"]
    median = {path: statistics.median(v) for path, v in runs.items()}
    if args.json:
        print(json.dumps({"loop": args.loop, "dests": args.dests, "size": args.size,
                          "results": [vars(a), vars(b)], "ratio": b.us_per_packet / a.us_per_packet,
                          "median_us": median, "runs_us": runs}))
        return 0
    print(f"{args.packets} x {args.size} B to {args.dests} destinations on 127.0.0.1, {args.loop}, "
          f"best of {args.repeat}")
    print(f"{'path':<10} {'CPU us/pkt':>10} {'user':>6} {'sys':>6} {'wall s':>8} {'received':>14}")
    for r in (a, b):
        print(f"{r.path:<10} {r.us_per_packet:>10.2f} {r.user_us:>6.2f} {r.sys_us:>6.2f} {r.wall_s:>8.2f} "
              f"{r.received:>7}/{r.sent}")
    print(f"batched / sendto = {b.us_per_packet / a.us_per_packet:.2f} (best); medians "
          f"{median['sendto']:.2f} / {median['batched']:.2f} us = {median['batched'] / median['sendto']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
