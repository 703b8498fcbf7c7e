"""DirectConsumer: a producer's packets handed to a Python callback (mediasoup's DirectConsumer).

A :class:`DirectConsumer` is a :class:`~sfu.consumer.Consumer` whose "network" is a function: it
sits in its stream's fan-out like any subscriber (:class:`~sfu.rtp_stream_recv.StreamConsumer`,
:class:`~sfu.producer.ProducerConsumer`), so it gets what they get (decrypted, repaired by the NACK
generator and RTX, the simulcast layer chosen, from a keyframe on, sequence numbers and timestamps
continuous through its :class:`~sfu.seq_manager.SeqManager` across pauses, restarts, layer
switches and :meth:`~sfu.consumer.Consumer.replace_producer`). It never joins the compiled fan-out
(its transport has no sink), so network consumers of the same stream keep theirs.

The callback runs synchronously on the receive path, once per packet, in order: it must be quick
(microseconds) and never block or await; work goes to a queue or a thread. What it raises is
counted (:attr:`DirectConsumer.callback_errors`), logged once, and never reaches the packet path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .consumer import Consumer, ConsumerTransport
from .nack import RetransmitGuard
from .producer import Producer
from .rtp_stream_recv import RtpStreamRecv
from .stats import WorkerStats

__all__ = ["DirectConsumer", "RtpCallback"]

logger = logging.getLogger(__name__)

RtpCallback = Callable[[bytes], None]


class DirectConsumer(Consumer):
    """Delivers a producer's RTP packets to ``callback(packet: bytes)``.

    Created only by :meth:`sfu.DirectTransport.consume`. The packets carry this consumer's
    :attr:`ssrc`, the producer's payload type and header extension ids, and the rewritten sequence
    numbers/timestamps. ``on_rtcp`` (optional, a plain attribute): the producer's sender reports
    translated to this consumer's timestamps (``bytes`` of one RTCP SR), for lip sync in a
    recording; :attr:`last_sender_report` keeps the last one as ``(ntp, rtp_ts)``."""

    def __init__(
        self, transport: ConsumerTransport, producer: Producer, ssrc: int, stats: WorkerStats,
        callback: RtpCallback,
    ) -> None:
        super().__init__(transport, producer, ssrc, stats, RetransmitGuard(0, 0, 0))
        self._callback = callback
        self._keyframe = False
        self.on_rtcp: Callable[[bytes], None] | None = None
        self.last_sender_report: tuple[int, int] | None = None
        self.bytes = 0  # RTP bytes delivered (whole packets)
        self.keyframes = 0  # keyframes delivered (their first packets)
        self.callback_errors = 0  # exceptions the callback raised

    @property
    def callback(self) -> RtpCallback:
        return self._callback

    def request_keyframe(self, force: bool = False) -> bool:
        """Ask the publisher for a keyframe of the stream forwarded (video; at most once a second
        unless ``force``). True if a PLI went out."""
        if self._closed:
            return False
        return self._producer.request_keyframe(force=force, layer=self._current or self._target)

    def stats_dict(self) -> dict[str, int]:
        """``packets``, ``bytes``, ``keyframes``, ``callback_errors``."""
        return {"packets": self.packets, "bytes": self.bytes, "keyframes": self.keyframes,
                "callback_errors": self.callback_errors}

    def __repr__(self) -> str:
        return f"DirectConsumer(id={self.id!r}, producer={self._producer.id!r}, kind={self._kind!r})"

    # ---- the stream's call (StreamConsumer) -----------------------------------------------------
    def on_rtp(
        self, stream: RtpStreamRecv, data: bytes, seq: int, ts: int, keyframe: bool,
        ext_profile: int, ext_start: int, ext_end: int,
    ) -> None:
        self._keyframe = keyframe  # for _deliver, which Consumer.on_rtp reaches through the transport
        Consumer.on_rtp(self, stream, data, seq, ts, keyframe, ext_profile, ext_start, ext_end)

    # ---- the transport's calls -----------------------------------------------------------------
    def _deliver(self, buf: bytes | bytearray) -> bool:
        """One rewritten packet (from Consumer.on_rtp): to the callback."""
        packet = bytes(buf)
        self.bytes += len(packet)
        if self._keyframe:
            self.keyframes += 1
        try:
            self._callback(packet)
        except Exception:
            self.callback_errors += 1
            if self.callback_errors == 1:
                logger.exception("direct consumer %s: callback failed (further failures only counted)", self.id)
        return True

    def _deliver_rtcp(self, data: bytes, ntp: int, rtp_ts: int) -> bool:
        """A translated sender report of this consumer's stream."""
        self.last_sender_report = (ntp, rtp_ts)
        callback = self.on_rtcp
        if callback is None:
            return False
        try:
            callback(data)
        except Exception:
            logger.exception("direct consumer %s: on_rtcp failed", self.id)
        return True
