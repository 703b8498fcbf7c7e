"""DirectTransport: a transport with no network, for features (mediasoup's DirectTransport).

What a feature does with a room's media goes through one: recording and captions take a
producer's packets out (:meth:`DirectTransport.consume` -> :class:`~sfu.direct_consumer.DirectConsumer`,
a callback per packet), noise suppression, a bot's voice or a played-back file put tracks in
(:meth:`DirectTransport.produce` -> :class:`~sfu.direct_producer.DirectProducer`, ``send`` per
packet), which subscribers' WebRtcTransports consume like a publisher's. It belongs to a router
(:meth:`sfu.Router.create_direct_transport`) and closes with it; closing it closes its producers
(and so their consumers everywhere) and its consumers; a producer it consumes closing closes the
direct consumer (the same cascade as every other object, docs/sfu.md).

For its producers and consumers it is their transport (:class:`~sfu.producer.ProducerTransport`,
:class:`~sfu.consumer.ConsumerTransport`): always "connected", no compiled fan-out sink, RTP
"sent" to a consumer is its callback (by the packet's SSRC), RTCP "sent" is a sender report for a
direct consumer or a PLI/FIR for a direct producer (its ``on_keyframe_request``).
"""

from __future__ import annotations

import logging
import random
import struct
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import rtcp
from .direct_consumer import DirectConsumer, RtpCallback
from .direct_producer import DirectProducer
from .errors import ClosedError, UnsupportedCodecError
from .sdp import CodecInfo

if TYPE_CHECKING:
    from .fast_path import FastSink
    from .producer import Producer
    from .settings import WorkerContext

__all__ = ["DIRECT_PAYLOAD_TYPES", "DirectTransport", "direct_codec"]

logger = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")
# payload types of direct producers' packets (internal: each subscriber gets its own negotiated PT)
DIRECT_PAYLOAD_TYPES = {"audio/opus": 111, "audio/pcmu": 0, "audio/pcma": 8, "video/vp8": 96, "video/h264": 102}


class DirectTransportOwner(Protocol):
    """The router as its direct transports see it (``direct.router``)."""

    @property
    def id(self) -> str: ...

    @property
    def closed(self) -> bool: ...


def direct_codec(kind: str, codec: str | CodecInfo) -> CodecInfo:
    """The :class:`CodecInfo` of a direct producer: ``codec`` as given, or from a MIME type
    (``audio/opus``, ``video/VP8``, ``video/H264``, ``audio/PCMU``, ``audio/PCMA``) with aiortc's
    clock rate, channels and parameters. Raises :class:`UnsupportedCodecError` for a codec the core
    cannot offer to a subscriber, or one of the other kind."""
    from aiortc import RTCRtpSender

    if kind not in ("audio", "video"):
        raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
    mime = codec.mime_type if isinstance(codec, CodecInfo) else codec
    if not mime.lower().startswith(kind + "/"):
        raise UnsupportedCodecError(f"{mime} is not an {kind} codec")
    caps = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == mime.lower()]
    if not caps or mime.lower() not in DIRECT_PAYLOAD_TYPES:
        raise UnsupportedCodecError(f"cannot offer {mime} to a subscriber")
    if isinstance(codec, CodecInfo):
        return codec
    cap = caps[0]
    return CodecInfo(
        mime_type=cap.mimeType, payload_type=DIRECT_PAYLOAD_TYPES[mime.lower()], clock_rate=cap.clockRate,
        channels=cap.channels, parameters=dict(cap.parameters),
        # no generic "nack": nothing is lost between Python and the core, so no NACK generator
        feedback=("nack pli", "ccm fir") if kind == "video" else (),
    )


class DirectTransport:
    """A transport with no network. Created only by :meth:`sfu.Router.create_direct_transport`."""

    _connected = True  # read by producers and consumers: a direct transport is always "up"
    _fast_sink: FastSink | None = None  # never on the compiled fan-out (a callback is Python)

    def __init__(
        self, transport_id: str, context: WorkerContext, *, owner: DirectTransportOwner,
        on_closed: Callable[[DirectTransport], None], on_producer_added: Callable[[Producer], None],
        on_producer_removed: Callable[[Producer], None],
    ) -> None:
        self.id = transport_id
        self.stream_id = uuid.uuid4().hex  # a=msid stream id of this transport's producers
        self.on_close: Callable[[], None] | None = None
        self._owner = owner
        self._context = context
        self._stats = context.stats
        self._on_closed = on_closed
        self._on_producer_added = on_producer_added
        self._on_producer_removed = on_producer_removed
        self._closed = False
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._producers: dict[str, DirectProducer] = {}
        self._consumers: dict[str, DirectConsumer] = {}
        self._consumer_by_ssrc: dict[int, DirectConsumer] = {}
        self._producer_by_ssrc: dict[int, DirectProducer] = {}
        self._mids = 0

    # ---- properties ------------------------------------------------------------------------------
    @property
    def router(self) -> DirectTransportOwner:
        return self._owner

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def producers(self) -> list[DirectProducer]:
        return list(self._producers.values())

    @property
    def consumers(self) -> list[DirectConsumer]:
        return list(self._consumers.values())

    # ---- the API ---------------------------------------------------------------------------------
    def consume(
        self, producer: Producer, on_rtp: RtpCallback, *, layer: int | str | None = None
    ) -> DirectConsumer:
        """A consumer that calls ``on_rtp(packet)`` for each of ``producer``'s packets (see
        :class:`DirectConsumer`). ``layer``: for simulcast, the layer index (0 = lowest) or
        ``"low" | "medium" | "high"`` (default: the highest). A video consumer starts at a
        keyframe; one is asked for at once. Raises :class:`ClosedError` (this transport or the
        producer closed), ``ValueError`` (a bad layer)."""
        self._check_open()
        if producer.closed:
            raise ClosedError("producer is closed")
        consumer = DirectConsumer(self, producer, self._new_ssrc(), self._stats, on_rtp)
        if layer is not None:
            consumer.set_preferred_layer(layer)
        self._consumers[consumer.id] = consumer
        self._consumer_by_ssrc[consumer.ssrc] = consumer
        self._stats.consumers += 1
        producer._add_consumer(consumer)
        # "negotiated" at once: the producer's payload type and extension ids, ready to forward
        consumer._configure(producer.codec_info.payload_type, dict(producer.extensions))
        return consumer

    def produce(
        self, kind: str, codec: str | CodecInfo = "audio/opus", *, source: str = "direct", ssrc: int | None = None
    ) -> DirectProducer:
        """A producer fed by ``send`` (see :class:`DirectProducer`), of ``kind`` (``"audio"`` or
        ``"video"``) and ``codec`` (a MIME type or a :class:`CodecInfo`). ``source`` is a label,
        as for a publisher's producer. Raises :class:`UnsupportedCodecError`, ``ValueError``,
        :class:`ClosedError`."""
        self._check_open()
        info = direct_codec(kind, codec)
        if ssrc is None:
            ssrc = self._new_ssrc()
        elif ssrc in self._producer_by_ssrc or ssrc in self._consumer_by_ssrc or not 0 < ssrc < 1 << 32:
            raise ValueError(f"ssrc {ssrc} is taken or out of range")
        settings = self._context.settings
        producer = DirectProducer(
            self, mid=str(self._mids), kind=kind, source=source, codec=info, ssrc=ssrc, stats=self._stats,
            history_size=settings.history_size, history_age=settings.history_age,
            fast_path=self._context.fast_path,
        )
        self._mids += 1
        self._producers[producer.id] = producer
        self._producer_by_ssrc[ssrc] = producer
        self._stats.producers += 1
        self._on_producer_added(producer)
        return producer

    def close(self) -> None:
        """Close the producers (and their consumers everywhere) and the consumers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for producer in list(self._producers.values()):
            producer.close()
        for consumer in list(self._consumers.values()):
            consumer.close()
        self._on_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("direct transport on_close callback failed")

    def __repr__(self) -> str:
        return f"DirectTransport(id={self.id!r}, producers={len(self._producers)}, consumers={len(self._consumers)})"

    # ---- internal: what producers and consumers call (their transport Protocols) -------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"direct transport {self.id!r} is closed")

    def _new_ssrc(self) -> int:
        while True:
            ssrc = random.getrandbits(32)
            if ssrc and ssrc != self._rtcp_ssrc and ssrc not in self._consumer_by_ssrc \
                    and ssrc not in self._producer_by_ssrc:
                return ssrc

    def _send_rtp(self, data: bytes | bytearray) -> bool:
        """A consumer's rewritten packet: to its callback (the SSRC names the consumer)."""
        consumer = self._consumer_by_ssrc.get(_SSRC.unpack_from(data, 8)[0])
        return consumer is not None and consumer._deliver(data)

    def _send_rtcp(self, data: bytes) -> bool:
        """RTCP from a producer (PLI: to the direct producer's ``on_keyframe_request``) or from a
        consumer (its translated sender report: to the direct consumer)."""
        if len(data) < 12:
            return False
        pt = data[1]
        if pt == rtcp.RTCP_PSFB and data[0] & 0x1F in (rtcp.PSFB_PLI, rtcp.PSFB_FIR):
            producer = self._producer_by_ssrc.get(_SSRC.unpack_from(data, 8)[0])
            if producer is None:
                return False
            producer._keyframe_requested()
            return True
        if pt == rtcp.RTCP_SR and len(data) >= 28:
            consumer = self._consumer_by_ssrc.get(_SSRC.unpack_from(data, 4)[0])
            if consumer is None:
                return False
            ntp, rtp_ts = struct.unpack_from("!QI", data, 8)
            return consumer._deliver_rtcp(data, ntp, rtp_ts)
        return False

    def _nack_wanted(self) -> None:
        """No NACK generator runs for a direct producer (nothing is lost on the way from Python)."""

    def _producer_closed(self, producer: Producer) -> None:
        if self._producers.pop(producer.id, None) is None:
            return
        ssrc = producer.ssrc
        if ssrc is not None and self._producer_by_ssrc.get(ssrc) is producer:
            del self._producer_by_ssrc[ssrc]
        self._stats.producers -= 1
        self._on_producer_removed(producer)

    def _consumer_closed(self, consumer: object) -> None:
        if not isinstance(consumer, DirectConsumer) or self._consumers.pop(consumer.id, None) is None:
            return
        if self._consumer_by_ssrc.get(consumer.ssrc) is consumer:
            del self._consumer_by_ssrc[consumer.ssrc]
        self._stats.consumers -= 1

    def _tick(self, now: float) -> None:
        """Periodic work (the router's tick): the producers' rates and pending keyframe requests."""
        if self._closed:
            return
        for producer in list(self._producers.values()):
            producer._tick()
