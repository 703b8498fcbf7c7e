"""The cost of a pipe transport (issue 19): CPU per piped packet at both ends, and the delay added.

    .venv/bin/python -m benchmarks.pipe [--seconds 4] [--rate 5000] [--size 1000] [--srtp]

- **CPU per packet, two processes**: this process (the origin) feeds a DirectProducer at ``--rate``
  packets a second and pipes it to a child process (the far end, its own Worker: what a second
  worker of ``urok serve --workers N`` is), where a DirectConsumer takes it. The origin's pipe
  share is its process CPU with the pipe consumer minus its CPU for the same packets without one
  (the producer's own receive path is not the pipe's); the far end's is its whole process CPU per
  packet received (socket read, SRTP, the producer's receive path, a direct consumer's callback:
  what a packet costs a worker that gets it from a pipe instead of a publisher).
- **Added delay**: every packet carries the sender's CLOCK_MONOTONIC; a direct consumer on the
  origin's own router (no pipe: the baseline), one on a router of a second Worker in this process
  through a pipe, and the child's (two processes) note when it arrives. Paced at 50 packets a
  second so that nothing queues.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from sfu import DirectProducer, Worker, WorkerSettings

_T = struct.Struct("!d")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def quantiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"p50 {statistics.median(ordered) * 1e6:.0f} us, p95 {p95 * 1e6:.0f} us, "
            f"max {ordered[-1] * 1e6:.0f} us ({len(ordered)} packets)")


def packet(size: int) -> bytes:
    return _T.pack(time.monotonic()) + bytes(size - 8)


async def paced(bot: DirectProducer, rate: int, seconds: float, size: int) -> int:
    """``rate`` packets a second for ``seconds``, in 10 ms batches; returns how many were sent."""
    batch = max(1, rate // 100)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while loop.time() - start < seconds:
        for _ in range(batch):
            bot.send_opus(packet(size), 0.02)
        sent += batch
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    return sent


# ---- the far end (a child process) ------------------------------------------------------------------
async def far(srtp: bool) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(**message: Any) -> None:
        print(json.dumps(message), flush=True)

    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    router = worker.create_router("room")
    pipe = router.create_pipe_transport(srtp=srtp)
    say(address=list(pipe.local_address), srtp=pipe.srtp_parameters.to_dict() if pipe.srtp_parameters else None)
    peer = json.loads(await reader.readline())
    pipe.connect(peer["address"][0], peer["address"][1], srtp_parameters=peer["srtp"])
    producer = pipe.produce(peer["description"])
    state = {"n": 0}
    delays: list[float] = []

    def on_rtp(p: bytes) -> None:
        state["n"] += 1
        if len(delays) < 100_000:
            delays.append(time.monotonic() - _T.unpack_from(p, 12)[0])

    router.create_direct_transport().consume(producer, on_rtp)
    cpu_at = cpu()
    say(ready=True)
    while True:
        command = json.loads(await reader.readline())
        if command["do"] == "mark":  # a measurement window starts
            state["n"] = 0
            delays.clear()
            cpu_at = cpu()
            say(ok=True)
        elif command["do"] == "report":
            say(packets=state["n"], cpu=cpu() - cpu_at, delays=delays[-2000:], dropped=pipe.stats.dropped)
        else:
            break
    await worker.close()


# ---- the origin -------------------------------------------------------------------------------------
async def two_processes(seconds: float, rate: int, size: int, srtp: bool) -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    router = worker.create_router("room")
    bot = router.create_direct_transport().produce("audio", "audio/opus")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.pipe", "--far", *(["--srtp"] if srtp else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def ask(**message: Any) -> dict[str, Any]:
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()
        answer: dict[str, Any] = json.loads(await stdout.readline())
        return answer

    hello = json.loads(await stdout.readline())
    pipe = router.create_pipe_transport(srtp=srtp)
    pipe.connect(hello["address"][0], hello["address"][1], srtp_parameters=hello["srtp"])
    # the origin's CPU for the same packets without a pipe consumer (the producer's receive path)
    await paced(bot, rate, 0.5, size)  # warm up
    before = cpu()
    alone = await paced(bot, rate, seconds, size)
    cpu_alone = (cpu() - before) / alone
    consumer = pipe.consume(bot)
    stdin.write(json.dumps({"address": list(pipe.local_address),
                            "srtp": pipe.srtp_parameters.to_dict() if pipe.srtp_parameters else None,
                            "description": consumer.description.to_dict()}).encode() + b"\n")
    await stdin.drain()
    assert json.loads(await stdout.readline()) == {"ready": True}
    await paced(bot, rate, 0.5, size)  # warm up
    await ask(do="mark")
    before = cpu()
    piped = await paced(bot, rate, seconds, size)
    cpu_piped = (cpu() - before) / piped
    await asyncio.sleep(0.2)
    far_report = await ask(do="report")
    # delay at low rate, two processes
    await ask(do="mark")
    await paced(bot, 50, 3.0, 200)
    await asyncio.sleep(0.2)
    delay_report = await ask(do="report")
    stdin.write(b'{"do": "quit"}\n')
    await stdin.drain()
    await proc.wait()
    await worker.close()
    mode = "SRTP (AES-256-GCM)" if srtp else "plain RTP"
    print(f"== two processes, {mode}, {rate} packets/s of {size} bytes for {seconds:.0f} s")
    print(f"origin: {cpu_alone * 1e6:.1f} us/packet without the pipe, {cpu_piped * 1e6:.1f} us with it: "
          f"pipe send {max(0.0, cpu_piped - cpu_alone) * 1e6:.1f} us/packet")
    got = far_report["packets"]
    print(f"far end: {got} of {piped} packets, {far_report['cpu'] / max(1, got) * 1e6:.1f} us/packet "
          f"(whole process), dropped {far_report['dropped']}")
    print(f"delay through the pipe, two processes, 50 packets/s: {quantiles(delay_report['delays'])}")


async def one_process(srtp: bool) -> None:
    """Delay: a direct consumer on the origin router (baseline) against one behind a pipe to a
    second Worker's router in this process (one event loop)."""
    settings = WorkerSettings(host_addresses=("127.0.0.1",))
    wa, wb = Worker(settings), Worker(settings)
    ra, rb = wa.create_router("a"), wb.create_router("b")
    bot = ra.create_direct_transport().produce("audio", "audio/opus")
    direct: list[float] = []
    piped: list[float] = []

    def note(into: list[float]) -> Callable[[bytes], None]:
        return lambda p: into.append(time.monotonic() - _T.unpack_from(p, 12)[0])

    ra.create_direct_transport().consume(bot, note(direct))
    _, far_producer = ra.pipe_to_router(bot, rb, srtp=srtp)
    rb.create_direct_transport().consume(far_producer, note(piped))
    await paced(bot, 50, 3.0, 200)
    await asyncio.sleep(0.1)
    print(f"== one process (two Workers, one event loop), {'SRTP' if srtp else 'plain RTP'}")
    print(f"delay, direct consumer on the same router (baseline): {quantiles(direct)}")
    print(f"delay through the pipe: {quantiles(piped)}")
    await wa.close()
    await wb.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=int, default=5000, help="packets per second for the CPU figures")
    parser.add_argument("--size", type=int, default=1000, help="RTP payload bytes")
    parser.add_argument("--srtp", action="store_true")
    parser.add_argument("--far", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.far:
        asyncio.run(far(args.srtp))
        return
    asyncio.run(one_process(args.srtp))
    asyncio.run(two_processes(args.seconds, args.rate, args.size, args.srtp))


if __name__ == "__main__":
    main()
