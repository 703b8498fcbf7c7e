"""AudioTap: one producer's Opus audio as PCM for a feature (captions, recording levels, noise).

A direct consumer (docs/sfu_features.md) of the producer hands its packets (already repaired by the
NACK/RTX path, numbered continuously by the consumer across pauses and ``replace_producer``) to an
:class:`~media.rtp_opus_decoder.RtpOpusDecoder`: packet loss concealment for gaps, DTX and garbage
handled without exceptions, libopus decoding directly at the rate asked for (16 kHz for Vosk).
Decoding happens only where a tap exists: a feature makes one per producer it needs.

``on_pcm(samples, t)`` is called on the event loop with int16 mono samples (a multiple of 20 ms)
and ``t``, the time of the first sample in seconds on the producer's RTP clock since the tap began
(a jump in ``t`` is a silence the publisher did not send, DTX or a pause).

Where the decoding runs: with ``workers`` (the app's :class:`~media.audio_workers.AudioWorkers`) on
a worker thread; without, on the event loop in one call per turn (Opus decoding costs ~35-70 us per
20 ms frame here: fine for a few taps, give ``workers`` for many).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from sfu import ClosedError, Producer, Router

from .audio_workers import QUEUE_LIMIT, AudioWorkers, SerialQueue
from .rtp_opus_decoder import RtpOpusDecoder

__all__ = ["AudioTap", "PcmCallback"]

log = logging.getLogger("urok.media")

PcmCallback = Callable[[npt.NDArray[np.int16], float], None]
Chunk = tuple[npt.NDArray[np.int16], float]


class AudioTap:
    """Decoded audio of ``producer`` (an Opus producer of ``router``) to ``on_pcm``.

    Raises ``ValueError`` for a producer that is not Opus audio, :class:`sfu.ClosedError` when
    the router or the producer is closed.  Closes itself when the producer closes
    (``on_close`` is then called, if set)."""

    def __init__(self, router: Router, producer: Producer, on_pcm: PcmCallback, *,
                 sample_rate: int = 48000, workers: AudioWorkers | None = None) -> None:
        if producer.kind != "audio" or producer.codec_info.mime_type.lower() != "audio/opus":
            raise ValueError(f"an audio tap decodes Opus, not {producer.kind} {producer.codec}")
        self._loop = asyncio.get_running_loop()
        self.producer = producer
        self.sample_rate = sample_rate
        self.on_close: Callable[[], None] | None = None
        self._on_pcm = on_pcm
        self._decoder = RtpOpusDecoder(sample_rate)
        self._closed = False
        self._queue: SerialQueue[Chunk] | None = None
        self._pending: collections.deque[bytes] = collections.deque()
        self._scheduled = False
        self.dropped_local = 0
        if workers is not None and not workers.closed:
            self._queue = SerialQueue(self._loop, workers, self._decoder.feed, self._deliver)
        self._direct = router.create_direct_transport()
        try:
            self.consumer = self._direct.consume(producer, self._queue.put if self._queue else self._on_rtp)
        except ClosedError:
            self._direct.close()
            self._decoder.close()
            raise
        self.consumer.on_close = self.close  # the producer went away

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        """Packets dropped because decoding was behind (bounded queue)."""
        return self._queue.dropped if self._queue is not None else self.dropped_local

    def stats_dict(self) -> dict[str, float]:
        d = self._decoder
        return {"packets": d.packets, "lost": d.lost, "concealed_s": round(d.concealed_s, 3),
                "garbage": d.garbage, "late": d.late, "dropped": self.dropped}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._queue is not None:
            self._queue.close()
        self._pending.clear()
        self._direct.close()
        if self._queue is None:
            self._decoder.close()  # a worker may still hold it otherwise: freed with the object
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("audio tap on_close failed")

    # ---- on the loop, without workers -------------------------------------------------------
    def _on_rtp(self, packet: bytes) -> None:
        """On the receive path: queue, decode later in this turn's callbacks."""
        if len(self._pending) >= QUEUE_LIMIT:
            self._pending.popleft()
            self.dropped_local += 1
        self._pending.append(packet)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        chunks: list[Chunk] = []
        while self._pending and not self._closed:
            chunks.extend(self._decoder.feed(self._pending.popleft()))
        if chunks:
            self._deliver(chunks)

    def _deliver(self, chunks: list[Chunk]) -> None:
        for pcm, t in chunks:
            if self._closed:
                return
            try:
                self._on_pcm(pcm, t)
            except Exception:
                log.exception("audio tap on_pcm failed")
