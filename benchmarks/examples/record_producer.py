"""Record one producer's packets to a file, through the feature API (docs/sfu_features.md).

    .venv/bin/python -m benchmarks.examples.record_producer --seconds 5 --out /tmp/rec

A demo room: an aiortc publisher on 127.0.0.1 sends a 440 Hz tone and a moving pattern (VP8); a
:class:`Recorder` per producer writes ``<out>-audio.rtpdump`` and ``<out>-video.rtpdump`` (rtpdump
files, Wireshark opens them; ``.json`` sidecars name the codecs). Play them back into a room with
``benchmarks.examples.play_file``.

The recorder is the pattern for any feature that takes media out: a DirectConsumer whose callback
only appends to a queue (it runs on the receive path, per packet), and a task that does the work.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from pathlib import Path

from sfu import Producer, Router, Worker, WorkerSettings

from .clients import PatternTrack, ToneTrack, publish
from .rtpdump import RtpDumpWriter, StreamInfo

FLUSH_INTERVAL = 0.2  # s between the writer's turns


class Recorder:
    """Writes every packet of ``producer`` (from its first keyframe for video) to ``path``."""

    def __init__(self, router: Router, producer: Producer, path: Path) -> None:
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._writer = RtpDumpWriter(path, StreamInfo(producer.kind, producer.codec, producer.codec_info.clock_rate))
        self._direct = router.create_direct_transport()
        self.consumer = self._direct.consume(producer, self._on_rtp)
        self.consumer.on_close = self._direct.close  # the producer went away: stop
        self._task = asyncio.ensure_future(self._drain())

    def _on_rtp(self, packet: bytes) -> None:
        self._queue.append((time.monotonic(), packet))  # on the receive path: nothing more

    async def _drain(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self._flush()

    def _flush(self) -> None:
        queue = self._queue
        while queue:
            at, packet = queue.popleft()
            self._writer.write(packet, at)

    async def close(self) -> dict[str, int]:
        """Stop, write what is queued, close the file; the consumer's stats."""
        self._task.cancel()
        self._direct.close()
        self._flush()
        self._writer.close()
        return self.consumer.stats_dict()


async def main(seconds: float, out: str) -> int:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    pc = None
    try:
        router = worker.create_router("demo")
        publisher = router.create_transport("alice:publisher")
        pc, mids = await publish(publisher, [ToneTrack(), PatternTrack()])
        audio = publisher.produce(mids[0], "microphone")
        video = publisher.produce(mids[1], "camera")
        recorders = {p.kind: Recorder(router, p, Path(f"{out}-{p.kind}.rtpdump")) for p in (audio, video)}
        await asyncio.sleep(seconds)
        ok = True
        for kind, recorder in recorders.items():
            stats = await recorder.close()
            print(f"{kind}: {stats['packets']} packets, {stats['bytes']} bytes, {stats['keyframes']} keyframes"
                  f" -> {out}-{kind}.rtpdump")
            ok = ok and stats["packets"] > 0
        return 0 if ok else 1
    finally:
        if pc is not None:
            await pc.close()
        await worker.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", default="recording", help="file name prefix (default: ./recording)")
    args = ap.parse_args()
    raise SystemExit(asyncio.run(main(args.seconds, args.out)))
