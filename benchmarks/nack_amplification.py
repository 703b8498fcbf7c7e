"""NACK amplification (issue 10): bytes retransmitted per byte of NACK, with the limits and without.

    .venv/bin/python -m benchmarks.nack_amplification            # the issue's flood, both modes
    .venv/bin/python -m benchmarks.nack_amplification --nacks 50 --runs 30

A real worker on the shared UDP port of 127.0.0.1 (compiled fan-out, as in production), an aiortc
publisher sending noisy 320x240 VP8 (frames of several packets), and an aiortc subscriber. After
``--warmup`` seconds the subscriber sends ``--nacks`` SRTCP NACK packets back to back, each with
``--runs`` FCI items asking for a run of 17 packets (PID + all 16 BLP bits): together the last
``17 * runs`` packets it was sent, the same ones in every NACK (the issue's flood: 20 NACKs,
about 2.9 KB). Printed per mode: NACK bytes on the wire (SRTCP: + 4-byte index, 10-byte tag),
retransmissions and their bytes on the wire (RTP + 10-byte SRTP tag), the factor, how long the
flood took to be answered and the byte budget for that time (``retransmit_burst`` +
``retransmit_rate`` x duration; the RTP bytes stay within it), and the consumer's counters of
requests not answered (``far``, ``recent``, ``rate``, and ``missed``: not in the history, which
keeps 2 s).

``off`` emulates the code before issue 10 (every request found in the history answered): an
unlimited byte budget, the widest window and no once-per-round-trip rule. ``on`` is the default
``WorkerSettings`` (``retransmit_rate``/``retransmit_burst`` 64 kB/s / 64 kB, ``nack_window`` 512,
RTT from the subscriber's receiver reports, 100 ms until one arrives).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import struct
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from sfu import Consumer, Worker, WorkerSettings, nack, rtcp

WIDTH, HEIGHT = 320, 240


class NoisyTrack(VideoStreamTrack):
    """30 fps frames of changing noise: the encoder makes frames of several packets."""

    def __init__(self) -> None:
        super().__init__()
        rnd = random.Random(7)
        self._frames = [bytes(rnd.getrandbits(8) for _ in range(WIDTH * HEIGHT * 3 // 2)) for _ in range(4)]
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        self._n += 1
        noise = self._frames[self._n % len(self._frames)]
        for plane in frame.planes:
            plane.update(noise[: plane.buffer_size])
        frame.pts = pts
        frame.time_base = time_base
        return frame


def flood(media_ssrc: int, newest: int, runs: int) -> bytes:
    """One NACK asking for the last ``17 * runs`` sequence numbers up to ``newest``."""
    items = b"".join(struct.pack("!HH", (newest - 17 * (k + 1) + 1) & 0xFFFF, 0xFFFF) for k in range(runs))
    return struct.pack("!BBHII", 0x80 | rtcp.RTPFB_NACK, rtcp.RTCP_RTPFB, 2 + runs, 1, media_ssrc) + items


def newest_sent(consumer: Consumer) -> int | None:
    return consumer.last_sent_seq


async def drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(Exception):
        while True:
            await track.recv()


async def run(limits: bool, warmup: float, nacks: int, runs: int) -> dict[str, Any]:
    settings = WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0)
    if not limits:
        settings = WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, retransmit_rate=10**12,
                                  retransmit_burst=10**12, nack_window=0x7FFF)
    saved = nack.DEFAULT_RTT, nack.MIN_RTT, nack.MAX_RTT
    if not limits:  # no once-per-round-trip rule either
        nack.DEFAULT_RTT = nack.MIN_RTT = nack.MAX_RTT = 0.0
    worker = Worker(settings)
    await worker.start()
    pcs: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        router = worker.create_router("bench")
        pub_t = router.create_transport("pub")
        pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pub)
        pub.addTransceiver(NoisyTrack(), direction="sendonly")
        await pub.setLocalDescription(await pub.createOffer())
        answer = await pub_t.accept_offer(pub.localDescription.sdp)
        await pub.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        mid = pub.getTransceivers()[0].mid
        assert mid is not None
        video = pub_t.produce(mid, "camera")
        sub_t = router.create_transport("sub")
        consumer = sub_t.consume(video)
        sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(sub)
        sub.on("track", lambda track: tasks.append(asyncio.ensure_future(drain(track))))
        offer = await sub_t.create_offer()
        await sub.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await sub.setLocalDescription(await sub.createAnswer())
        await sub_t.accept_answer(sub.localDescription.sdp)
        await asyncio.sleep(warmup)
        newest = newest_sent(consumer)
        if newest is None:
            raise RuntimeError("nothing was forwarded during the warm-up")
        dtls = sub.getTransceivers()[0].receiver.transport
        stats = consumer.stats
        sent_before = consumer.packets
        started = time.monotonic()
        nack_bytes = 0
        for _ in range(nacks):
            data = flood(consumer.ssrc, newest, runs)
            nack_bytes += len(data) + 14
            await dtls._send_rtp(data)
        for _ in range(500):  # polled: the consumer's counters have no event to wait on
            if stats.nack_received >= nacks * 17 * runs:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        back = stats.retransmitted_bytes + 10 * stats.retransmitted
        return {"mode": "on" if limits else "off", "nack_bytes": nack_bytes, "retransmitted": stats.retransmitted,
                "back": back, "factor": back / nack_bytes, "elapsed": elapsed, "dropped": dict(stats.nack_dropped),
                "missed": stats.retransmit_missed, "rtt": consumer.rtt, "pps": sent_before / warmup,
                "cap": settings.retransmit_burst + settings.retransmit_rate * elapsed}
    finally:
        nack.DEFAULT_RTT, nack.MIN_RTT, nack.MAX_RTT = saved
        for task in tasks:
            task.cancel()
        for pc in pcs:
            await pc.close()
        await worker.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nacks", type=int, default=20, help="NACK packets sent (default 20)")
    ap.add_argument("--runs", type=int, default=30, help="17-packet runs per NACK (default 30: 146 B each)")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of media before the flood")
    ap.add_argument("--mode", choices=("both", "off", "on"), default="both")
    args = ap.parse_args(argv)
    modes = [False, True] if args.mode == "both" else [args.mode == "on"]
    print(f"flood: {args.nacks} NACK packets x {args.runs} runs of 17 (the last {17 * args.runs} packets, "
          f"every time)")
    print(f"{'limits':>6} {'pkt/s':>6} {'NACK B':>7} {'resent':>7} {'bytes back':>11} {'factor':>7} "
          f"{'in ms':>6} {'cap B':>7} {'rtt ms':>7}  not answered")
    for limits in modes:
        r = asyncio.run(run(limits, args.warmup, args.nacks, args.runs))
        rtt = "-" if r["rtt"] is None else f"{r['rtt'] * 1000:.1f}"
        cap = "-" if r["cap"] > 10**9 else f"{r['cap']:.0f}"  # budget + rate x duration (+ SRTP tags)
        print(f"{r['mode']:>6} {r['pps']:6.0f} {r['nack_bytes']:7d} {r['retransmitted']:7d} {r['back']:11d} "
              f"{r['factor']:7.1f} {r['elapsed'] * 1000:6.0f} {cap:>7} {rtt:>7}  {r['dropped']} missed={r['missed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
