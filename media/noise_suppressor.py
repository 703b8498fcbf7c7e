"""NoiseSuppressor: one microphone decoded, cleaned by RNNoise, encoded again, as a new producer.

    publisher's producer --direct consumer--> [audio thread: Opus decode (PLC) -> RNNoise -> Opus
    encode] --loop--> ``output`` (a DirectProducer of the same router)

The room (media/noise_feature.py) makes ``output`` the track's substitute
(``MediaFeature.set_substitute``): subscribers get the cleaned audio on the same SSRC and track id.
The output keeps the input's timing: its RTP timestamps follow the input's (a DTX or pause gap stays
a gap), one 20 ms Opus packet per 20 ms of input, sent as soon as it is made (real time: the input's
pace); a cleaned frame made more than :data:`MAX_LATE_S` after its packet arrived (threads
starved of CPU) is not sent at all (:attr:`NoiseSuppressor.stale`): bounded latency, and the subscribers
conceal the gap.  Voice activity after suppression (RNNoise's own probability through
:class:`~media.voice_activity.VoiceActivity`) is :attr:`NoiseSuppressor.voice_active`, with the
optional ``on_voice(active)`` callback on the loop, and goes out as the RFC 6464 voice flag.

The native objects belong to the worker thread while a job runs: :meth:`close` stops the stream
and the objects are freed when the last job lets go of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from sfu import ClosedError, Producer, Router

from .audio_workers import AudioWorkers, SerialQueue
from .opus_codec import OpusEncoder
from .rnnoise import Denoiser
from .rtp_opus_decoder import RTP_CLOCK, RtpOpusDecoder
from .voice_activity import VoiceActivity

__all__ = ["CleanFrame", "NoiseSuppressor", "audio_level"]

log = logging.getLogger("urok.media")

FRAME = 960  # 20 ms at 48 kHz: one output packet
# packets waiting for the threads: when they are behind by more (an overloaded machine), the oldest
# are dropped and concealed: a live voice 300 ms late is worse than a short glitch
QUEUE_LIMIT = 15
MAX_LATE_S = 0.12  # a cleaned frame made this long after its packet arrived is not sent
# Opus payload, t (s), audio level (-dBov), voice probability, when its packet arrived (monotonic)
CleanFrame = tuple[bytes, float, int, float, float]
_ARRIVED = struct.Struct("d")


def audio_level(pcm: npt.NDArray[np.int16]) -> int:
    """RFC 6464 level of a frame: -dBov, 0 (loudest) .. 127 (silence)."""
    x = pcm.astype(np.float32)
    power = float(np.dot(x, x)) / max(1, len(x))
    if power <= 0.0:
        return 127
    return max(0, min(127, round(-10.0 * math.log10(power / (32768.0 * 32768.0)))))


class NoiseSuppressor:
    """Cleans ``producer`` (Opus audio of ``router``) into :attr:`output` on ``workers``' threads.

    ``on_first_packet()``: called once on the loop when :attr:`output` has sent packets and keeps
    up with the input (a batch of at most two frames: no backlog), the moment to switch subscribers
    over: nothing is missing then and nothing comes in a burst.  Closes itself when the producer
    closes; ``on_close`` is called then."""

    def __init__(self, router: Router, producer: Producer, workers: AudioWorkers, *,
                 on_voice: Callable[[bool], None] | None = None) -> None:
        if producer.kind != "audio" or producer.codec_info.mime_type.lower() != "audio/opus":
            raise ValueError(f"noise suppression takes Opus audio, not {producer.kind} {producer.codec}")
        self.producer = producer
        self.on_voice = on_voice
        self.on_first_packet: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None
        self.voice_active = False
        self.voice_probability = 0.0
        self.frames = 0  # cleaned frames sent
        self.live = False  # the output keeps up with the input (see on_first_packet)
        self.stale = 0  # cleaned frames not sent: later than MAX_LATE_S
        self.busy_s = 0.0  # worker time spent on this stream (decode + RNNoise + encode)
        self._closed = False
        self._decoder = RtpOpusDecoder(48000)
        self._denoiser = Denoiser()
        self._encoder = OpusEncoder(application="audio")  # RNNoise cleaned it already
        self._vad = VoiceActivity()
        self._direct = router.create_direct_transport()
        self.output = self._direct.produce("audio", "audio/opus", source=producer.source)
        self._base_ts = self.output.packetizer.timestamp
        self._queue: SerialQueue[CleanFrame] = SerialQueue(asyncio.get_running_loop(), workers,
                                                           self._process, self._deliver, limit=QUEUE_LIMIT)
        try:
            self.consumer = self._direct.consume(producer, self._on_rtp)
        except ClosedError:
            self._direct.close()
            raise
        self.consumer.on_close = self.close

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def stats_dict(self) -> dict[str, float]:
        d = self._decoder
        return {"frames": self.frames, "stale": self.stale, "busy_s": round(self.busy_s, 3),
                "dropped": self._queue.dropped,
                "errors": self._queue.errors, "lost": d.lost, "garbage": d.garbage,
                "concealed_s": round(d.concealed_s, 3)}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        callback, self.on_close = self.on_close, None
        if callback is not None:  # first: the owner moves the subscribers back to the raw track
            try:
                callback()
            except Exception:
                log.exception("noise suppressor on_close failed")
        self._direct.close()  # the output producer too (and whatever still consumes it)

    # ---- on an audio thread ------------------------------------------------------------------
    def _process(self, item: bytes) -> list[CleanFrame]:
        started = time.perf_counter()
        arrived = _ARRIVED.unpack_from(item)[0]
        out: list[CleanFrame] = []
        for pcm, t in self._decoder.feed(item[_ARRIVED.size:]):
            for i in range(0, len(pcm) - FRAME + 1, FRAME):
                clean, probability = self._denoiser.process(pcm[i:i + FRAME])
                out.append((self._encoder.encode(clean), t + i / RTP_CLOCK, audio_level(clean), probability, arrived))
        self.busy_s += time.perf_counter() - started
        return out

    # ---- on the loop ---------------------------------------------------------------------------
    def _on_rtp(self, packet: bytes) -> None:
        """The receive path: the packet goes to the threads with the time it arrived."""
        self._queue.put(_ARRIVED.pack(time.monotonic()) + packet)

    def _deliver(self, frames: list[CleanFrame]) -> None:
        output = self.output
        now = time.monotonic()
        for payload, t, level, probability, arrived in frames:
            if self._closed or output.closed:
                return
            self.voice_probability = probability
            if self._vad.update(probability, 0.02):
                self.voice_active = self._vad.active
                if self.on_voice is not None:
                    self.on_voice(self.voice_active)
            if now - arrived > MAX_LATE_S:
                # its packet came that long ago: the threads were starved of CPU.  Sent now, it
                # would go out in a burst, and a sender report paired with it would tell the
                # subscribers a wrong capture time; they conceal the gap instead
                self.stale += 1
                continue
            # the input's timing: its gaps (DTX, a pause) stay gaps at the subscribers
            output.packetizer.timestamp = (self._base_ts + round(t * RTP_CLOCK)) & 0xFFFFFFFF
            output.send_opus(payload, 0.02, audio_level=level, voice=self.voice_active)
            self.frames += 1
        if not self.live and len(frames) <= 2 and self.frames:
            # caught up: the threads hand over each packet's frame as it comes (the first batches
            # after the start carry a backlog: switching subscribers to a burst of old frames would
            # overrun their jitter buffers, which then skip ahead: a gap)
            self.live = True
            if self.on_first_packet is not None:
                self.on_first_packet()
