"""Play recorded files into a room through a DirectProducer (docs/sfu_features.md).

    .venv/bin/python -m benchmarks.examples.play_file /tmp/rec-audio.rtpdump /tmp/rec-video.rtpdump

Each file (rtpdump with its ``.json`` sidecar, as ``benchmarks.examples.record_producer`` writes)
becomes one DirectProducer; its packets are sent at the times they were recorded. A subscriber on
127.0.0.1 (a stand-in for the room's participants) consumes the producers like any publisher's
and decodes them; the script prints what it decoded and exits 1 if a track decoded nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from sfu import DirectProducer, Worker, WorkerSettings

from .clients import Subscriber
from .rtpdump import read_info, read_packets


async def play(producer: DirectProducer, path: Path) -> int:
    """Send the file's packets at their recorded offsets; returns how many were sent. The packets
    keep their sequence numbers and timestamps; the producer writes its SSRC and payload type."""
    start = time.monotonic()
    sent = 0
    for offset, packet in read_packets(path):
        delay = start + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if producer.closed:
            break
        producer.send(packet)
        sent += 1
    return sent


async def main(paths: list[Path], tail: float) -> int:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    subscriber = Subscriber()
    try:
        router = worker.create_router("demo")
        direct = router.create_direct_transport("playback")
        producers = []
        for path in paths:
            info = read_info(path)
            producers.append((direct.produce(info.kind, info.codec, source="playback"), path))
        viewer = router.create_transport("bob:subscriber")
        for producer, _path in producers:
            viewer.consume(producer)
        connected = asyncio.Event()  # so the first packets (a keyframe) are not sent into the void
        viewer.on_state_change = lambda state: connected.set() if state == "connected" else None
        await subscriber.negotiate(viewer)
        if not viewer.connected:
            await asyncio.wait_for(connected.wait(), 10)
        sent = await asyncio.gather(*(play(p, path) for p, path in producers))
        await asyncio.sleep(tail)  # the last frames through the subscriber's jitter buffer
        ok = True
        for (producer, path), count in zip(producers, sent, strict=True):
            frames = subscriber.frames(producer.kind)
            rms = [r for t in subscriber.tracks if t.kind == producer.kind for r in t.rms]
            level = f", mean level {sum(rms) / len(rms):.3f}" if rms else ""
            print(f"{path}: {count} packets sent as {producer.codec}; the subscriber decoded {frames}"
                  f" {producer.kind} frames{level}")
            ok = ok and frames > 0
        return 0 if ok else 1
    finally:
        await subscriber.close()
        await worker.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--tail", type=float, default=0.5, help="seconds to wait after the last packet")
    args = ap.parse_args()
    raise SystemExit(asyncio.run(main(args.files, args.tail)))
