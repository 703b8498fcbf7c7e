"""DirectProducer: a producer fed from Python (mediasoup's DirectProducer ``send``).

A :class:`DirectProducer` is a :class:`~sfu.producer.Producer` whose packets come from a feature
instead of a publisher's network: ``send(packet)`` puts one RTP packet through the same receive
path (:class:`~sfu.rtp_stream_recv.RtpStreamRecv`: history for the subscribers' NACKs, keyframe
detection, audio levels, the compiled fan-out), after writing the producer's SSRC and payload type
into it. Subscribers (``WebRtcTransport.consume``) and direct consumers take it like any other
producer. It sends sender reports itself (NTP wall clock against the RTP timestamp of the packet
just sent, at the first packet and then every :data:`SR_INTERVAL`), so a subscriber can line up a
direct audio producer with a direct video producer whose packets are sent in real time.

Helpers that make the packets: :meth:`DirectProducer.send_opus` (an encoded Opus packet),
:meth:`DirectProducer.send_frame` (a video frame's payloads as the encoder packetized them), both on
the producer's own :class:`~sfu.rtp_packetizer.RtpPacketizer`. Do not mix them with ``send`` of
packets numbered elsewhere: one stream has one numbering.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable

from .errors import ClosedError
from .producer import Producer, ProducerTransport
from .rtp import EXT_AUDIO_LEVEL, parse_header, rewrite_extensions
from .rtp_packetizer import OpusPacketizer, RtpPacketizer
from .sdp import CodecInfo
from .stats import WorkerStats

__all__ = ["NTP_EPOCH_OFFSET", "SR_INTERVAL", "DirectProducer"]

logger = logging.getLogger(__name__)

SR_INTERVAL = 1.0  # s between the sender reports of a direct producer
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_SSRC = struct.Struct("!I")


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (RFC 3550 4)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


class DirectProducer(Producer):
    """A track whose packets a feature sends. Created only by :meth:`sfu.DirectTransport.produce`.

    ``on_keyframe_request`` (a plain attribute, optional): called when a subscriber or a consumer
    asks for a keyframe (a PLI/FIR, throttled as for a publisher: at most once a second unless
    forced); a live encoder should make one then."""

    def __init__(
        self, transport: ProducerTransport, *, mid: str, kind: str, source: str, codec: CodecInfo,
        ssrc: int, stats: WorkerStats, history_size: int, history_age: float, fast_path: bool,
    ) -> None:
        extensions = {EXT_AUDIO_LEVEL: 1} if kind == "audio" else {}
        super().__init__(
            transport, mid=mid, kind=kind, source=source, codec=codec,
            payload_types={codec.payload_type: codec}, extensions=extensions, ssrcs=(ssrc,), rtx_ssrcs=(),
            stats=stats, history_size=history_size, history_age=history_age, fast_path=fast_path,
        )
        self.on_keyframe_request: Callable[[], None] | None = None
        self._ssrc_bytes = _SSRC.pack(ssrc)
        keep = bytearray(256)
        for ext_id in self.extensions.values():
            keep[ext_id] = ext_id
        self._keep_ids = bytes(keep)
        self._sr_at = -1e9
        self._packetizer: RtpPacketizer | None = None
        self.sent = 0  # packets given to send() and forwarded into the receive path

    @property
    def packetizer(self) -> RtpPacketizer:
        """The packetizer of :meth:`send_opus` / :meth:`send_frame` (an :class:`OpusPacketizer`
        for Opus), made at first use with this producer's SSRC and payload type."""
        packetizer = self._packetizer
        if packetizer is None:
            codec = self.codec_info
            if codec.mime_type.lower() == "audio/opus":
                packetizer = OpusPacketizer(codec.payload_type, self._ssrc_value,
                                            audio_level_id=self.extensions.get(EXT_AUDIO_LEVEL, 0))
            else:
                packetizer = RtpPacketizer(codec.clock_rate, codec.payload_type, self._ssrc_value,
                                           audio_level_id=self.extensions.get(EXT_AUDIO_LEVEL, 0))
            self._packetizer = packetizer
        return packetizer

    @property
    def _ssrc_value(self) -> int:
        return int(_SSRC.unpack(self._ssrc_bytes)[0])

    def send(self, packet: bytes | bytearray | memoryview) -> None:
        """Forward one RTP packet (its sequence number, timestamp, marker and payload as given;
        SSRC and payload type become the producer's; header extensions other than the producer's
        own, :attr:`extensions`, become padding). Synchronous: the subscribers' packets are on
        their way when it returns. Raises ``ValueError`` for a buffer that is not an RTP packet
        (shorter than 12 bytes, version not 2, a header that overruns it), :class:`ClosedError`
        once closed. A paused producer takes the packet (history) but forwards nothing."""
        if self._closed:
            raise ClosedError("producer is closed")
        if len(packet) < 12 or packet[0] >> 6 != 2:
            raise ValueError("not an RTP packet")
        buf = bytearray(packet)
        buf[1] = (buf[1] & 0x80) | self._pt
        buf[8:12] = self._ssrc_bytes
        if buf[0] & 0x10:
            # only the producer's own extensions (ids as in self.extensions) go on: subscribers map
            # those by URI; any other element (a recording's MID, abs-send-time...) becomes padding
            h = parse_header(buf)
            rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, self._keep_ids)
        data = bytes(buf)
        self.sent += 1
        self._receive_rtp(data)
        now = time.monotonic()
        if now - self._sr_at >= SR_INTERVAL:
            self._sr_at = now
            # the packet just sent was captured "now": its timestamp stands for the wall clock
            self._on_sender_report(ntp_now(), _SSRC.unpack_from(data, 4)[0])

    def send_opus(
        self, frame: bytes, duration_s: float = 0.02, *, audio_level: int | None = None, voice: bool = False
    ) -> None:
        """One encoded Opus packet (what ``libopus`` / PyAV's ``libopus`` encoder returns for
        ``duration_s`` seconds of audio) as one RTP packet. ``audio_level`` (-dBov, 0 loudest ..
        127) and ``voice`` go into the RFC 6464 extension, so an active speaker observer hears it."""
        packetizer = self.packetizer
        if not isinstance(packetizer, OpusPacketizer):
            raise ValueError(f"send_opus on a {self.codec} producer")
        self.send(packetizer.packetize(frame, duration_s, audio_level=audio_level, voice=voice))

    def send_frame(self, payloads: list[bytes], duration_s: float) -> None:
        """One video frame as its encoder's RTP payloads (payload descriptors included, e.g.
        aiortc's ``Vp8Encoder.encode``): one timestamp, the marker on the last packet; the RTP clock
        then advances by ``duration_s``."""
        for packet in self.packetizer.frame(payloads, duration_s):
            self.send(packet)

    def __repr__(self) -> str:
        return f"DirectProducer(id={self.id!r}, kind={self.kind!r}, source={self.source!r}, codec={self.codec!r})"

    # ---- internal: the direct transport's call ----------------------------------------------
    def _keyframe_requested(self) -> None:
        callback = self.on_keyframe_request
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("direct producer %s: on_keyframe_request failed", self.id)
