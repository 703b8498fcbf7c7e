"""NoiseSuppressor: one microphone decoded, cleaned by RNNoise, encoded again, as a new producer.

    publisher's producer --direct consumer--> [audio process or thread: Opus decode (PLC) ->
    RNNoise -> Opus encode] --loop--> ``output`` (a DirectProducer of the same router)

Where the work runs: the app's :class:`~media.audio_processes.AudioProcesses` (the server: their own
GIL, a busy event loop cannot starve them) or :class:`~media.audio_workers.AudioWorkers` threads
(tests, tools: no process to start).

The room (media/noise_feature.py) makes ``output`` the track's substitute
(``MediaFeature.set_substitute``): subscribers get the cleaned audio on the same SSRC and track id.
The output keeps the input's timing: its RTP timestamps follow the input's (a DTX or pause gap stays
a gap), one 20 ms Opus packet per 20 ms of input, sent as soon as it is made (real time: the input's
pace); a cleaned frame made more than :data:`MAX_LATE_S` after its packet arrived (threads
starved of CPU) is not sent at all (:attr:`NoiseSuppressor.stale`): bounded latency, and the subscribers
conceal the gap.  Voice activity after suppression (RNNoise's own probability through
:class:`~media.voice_activity.VoiceActivity`) is :attr:`NoiseSuppressor.voice_active`, with the
optional ``on_voice(active)`` callback on the loop, and goes out as the RFC 6464 voice flag.

On threads the native objects belong to the worker thread while a job runs: :meth:`close` stops
the stream and the objects are freed when the last job lets go of them.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

from sfu import ClosedError, Producer, Router

from .audio_processes import AudioProcesses, CleanFrame, CleanStream, ProcessLane, audio_level
from .audio_workers import AudioWorkers, SerialQueue
from .rtp_opus_decoder import RTP_CLOCK
from .voice_activity import VoiceActivity

__all__ = ["CleanFrame", "NoiseSuppressor", "audio_level"]

log = logging.getLogger("urok.media")

# packets waiting for the threads: when they are behind by more (an overloaded machine), the oldest
# are dropped and concealed: a live voice 300 ms late is worse than a short glitch
QUEUE_LIMIT = 15
MAX_LATE_S = 0.12  # a cleaned frame made this long after its packet arrived is not sent
_ARRIVED = struct.Struct("d")


class NoiseSuppressor:
    """Cleans ``producer`` (Opus audio of ``router``) into :attr:`output` in ``workers``.

    ``on_first_packet()``: called once on the loop when :attr:`output` has sent packets and keeps
    up with the input (a batch of at most two frames: no backlog), the moment to switch subscribers
    over: nothing is missing then and nothing comes in a burst.  Closes itself when the producer
    closes; ``on_close`` is called then."""

    def __init__(self, router: Router, producer: Producer, workers: AudioWorkers | AudioProcesses, *,
                 on_voice: Callable[[bool], None] | None = None, max_late_s: float = MAX_LATE_S) -> None:
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
        self.stale = 0  # cleaned frames not sent: later than max_late_s
        self.max_late_s = max_late_s
        # the longest wall time between two cleaned frames sent (and from the last one to the
        # close): the stalls subscribers heard as gaps, whatever caused them
        self.longest_silence_s = 0.0
        self._last_sent: float | None = None
        self._closed = False
        self._vad = VoiceActivity()
        self._direct = router.create_direct_transport()
        self.output = self._direct.produce("audio", "audio/opus", source=producer.source)
        self._base_ts = self.output.packetizer.timestamp
        self._stream: CleanStream | None = None
        self._queue: SerialQueue[CleanFrame] | None = None
        self._lane: ProcessLane | None = None
        if isinstance(workers, AudioProcesses):
            self._lane = workers.lane(self._deliver, self.close, limit=QUEUE_LIMIT)
        else:
            self._stream = CleanStream()
            self._queue = SerialQueue(asyncio.get_running_loop(), workers, self._process, self._deliver,
                                      limit=QUEUE_LIMIT)
        try:
            self.consumer = self._direct.consume(producer, self._on_rtp)
        except ClosedError:
            self._stop_work()
            self._direct.close()
            raise
        self.consumer.on_close = self.close

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        return self._queue.dropped if self._queue is not None else self._lane.dropped if self._lane else 0

    def stats_dict(self) -> dict[str, float]:
        if self._lane is not None:
            lane = self._lane
            busy, errors, lost, garbage = lane.busy_s, lane.errors, lane.lost, lane.garbage
        else:
            assert self._stream is not None and self._queue is not None
            d = self._stream.decoder
            busy, errors, lost, garbage = self._stream.busy_s, self._queue.errors, d.lost, d.garbage
        return {"frames": self.frames, "stale": self.stale, "busy_s": round(busy, 3), "dropped": self.dropped,
                "errors": errors, "lost": lost, "garbage": garbage}

    def _stop_work(self) -> None:
        if self._queue is not None:
            self._queue.close()
        if self._lane is not None:
            self._lane.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._silence(time.monotonic())
        self._stop_work()
        callback, self.on_close = self.on_close, None
        if callback is not None:  # first: the owner moves the subscribers back to the raw track
            try:
                callback()
            except Exception:
                log.exception("noise suppressor on_close failed")
        self._direct.close()  # the output producer too (and whatever still consumes it)

    def _silence(self, now: float) -> None:
        if self._last_sent is not None:
            self.longest_silence_s = max(self.longest_silence_s, now - self._last_sent)

    # ---- on an audio thread ------------------------------------------------------------------
    def _process(self, item: bytes) -> list[CleanFrame]:
        assert self._stream is not None
        return self._stream.feed(item[_ARRIVED.size:], _ARRIVED.unpack_from(item)[0])

    # ---- on the loop ---------------------------------------------------------------------------
    def _on_rtp(self, packet: bytes) -> None:
        """The receive path: the packet goes to the workers with the time it arrived."""
        if self._lane is not None:
            self._lane.put(packet, time.monotonic())
        elif self._queue is not None:
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
            if now - arrived > self.max_late_s:
                # its packet came that long ago: the threads were starved of CPU.  Sent now, it
                # would go out in a burst, and a sender report paired with it would tell the
                # subscribers a wrong capture time; they conceal the gap instead
                self.stale += 1
                continue
            # the input's timing: its gaps (DTX, a pause) stay gaps at the subscribers
            output.packetizer.timestamp = (self._base_ts + round(t * RTP_CLOCK)) & 0xFFFFFFFF
            output.send_opus(payload, 0.02, audio_level=level, voice=self.voice_active)
            self.frames += 1
            self._silence(now)
            self._last_sent = now
        if not self.live and len(frames) <= 2 and self.frames:
            # caught up: the threads hand over each packet's frame as it comes (the first batches
            # after the start carry a backlog: switching subscribers to a burst of old frames would
            # overrun their jitter buffers, which then skip ahead: a gap)
            self.live = True
            if self.on_first_packet is not None:
                self.on_first_packet()
