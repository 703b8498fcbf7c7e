"""Producer: one incoming track (one m-line of a publisher transport).

The receive path itself is :class:`~sfu.rtp_stream_recv.RtpStreamRecv`: a producer holds one (a
plain track) or one per simulcast layer, and routes each packet to the stream of its SSRC. What is
the producer's: the track's identity, pause, the consumers (through :class:`ProducerConsumer`),
PLIs to the publisher, RTX SSRCs learned from packets.
"""

from __future__ import annotations

import logging
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

from . import rtcp
from .fast_path import FanOut, make_fanout
from .nack import SenderReportTimes
from .nack_generator import NackGenerator, NackStats
from .packet_history import PacketHistory
from .reception import ReportBlock
from .rtp import EXT_AUDIO_LEVEL, EXT_RRID, find_extension
from .rtp_stream_recv import MAX_DROPOUT, MAX_MISORDER, RTP_BAD_SEQ, RtpStreamRecv, StreamConsumer
from .sdp import CodecInfo, rtx_payload_types
from .stats import RTP_NO_PRODUCER, RTP_RTX, RTP_UNKNOWN_PT, WorkerStats

__all__ = [
    "FORCED_KEYFRAME_INTERVAL",
    "KEYFRAME_REQUEST_INTERVAL",
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "RTP_BAD_SEQ",
    "RTX_SSRCS_PER_LAYER",
    "Producer",
    "ProducerConsumer",
    "ProducerTransport",
]

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 1.0  # seconds between throttled PLIs to one stream
FORCED_KEYFRAME_INTERVAL = 0.1  # even "at once" requests are merged within this window
RTX_SSRCS_PER_LAYER = 2  # learned publisher RTX SSRCs kept per layer (oldest forgotten first)
_SSRC = struct.Struct("!I")


class ProducerTransport(Protocol):
    """What a producer (and its consumers' PLIs) needs from its publisher transport."""

    _connected: bool  # read per call: whether RTCP can go out now
    _rtcp_ssrc: int  # sender SSRC of our RTCP

    @property
    def stream_id(self) -> str: ...

    def _send_rtcp(self, data: bytes) -> bool: ...

    def _nack_wanted(self) -> None: ...

    def _producer_closed(self, producer: Producer) -> None: ...


class ProducerConsumer(StreamConsumer, Protocol):
    """What a producer calls on its consumers (besides the stream's :class:`StreamConsumer`)."""

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def on_producer_resume(self) -> None:
        """The producer resumed: continue numbering from the last packet sent, wait for a keyframe."""

    def update_target(self) -> None:
        """Choose the stream (simulcast layer) to forward again: layers appeared or stopped."""

    def pending_keyframe(self) -> RtpStreamRecv | None:
        """The stream whose keyframe the consumer waits for (to start, resume or switch)."""


class Producer:
    """An incoming RTP stream, forwarded to every consumer of it.

    Created only by :meth:`WebRtcTransport.produce`. ``id`` is the protocol's ``track_id``.
    """

    def __init__(
        self,
        transport: ProducerTransport,
        *,
        mid: str,
        kind: str,
        source: str,
        codec: CodecInfo,
        payload_types: dict[int, CodecInfo],
        extensions: dict[str, int],
        ssrcs: tuple[int, ...],
        rtx_ssrcs: tuple[int, ...],
        stats: WorkerStats,
        history_size: int = 1024,
        history_age: float = 2.0,
        rids: tuple[str, ...] = (),
        simulcast_ssrcs: tuple[int, ...] = (),
        fast_path: bool = False,
    ) -> None:
        self.id: str = uuid.uuid4().hex[:16]
        self.kind = kind
        self.source = source
        self.mid = mid
        self.codec_info = codec
        self.extensions: dict[str, int] = dict(extensions)
        self.on_close: Callable[[], None] | None = None
        self._on_audio_level: Callable[[int, bool], None] | None = None
        # when our translated SRs went out, for the consumers' RTT from receiver reports (sfu.nack)
        self.sr_times = SenderReportTimes()
        self._transport = transport
        self._stats = stats
        self._closed = False
        self._paused = False
        self._pt = codec.payload_type
        self._other_pts = frozenset(pt for pt in payload_types if pt != codec.payload_type)
        self._rtx_pts = frozenset(
            pt for pt, c in payload_types.items() if c.mime_type.split("/")[-1].lower() == "rtx"
        )
        self._rrid_ext_id = self.extensions.get(EXT_RRID, 0)
        # RTX SSRCs learned from packets (not declared in the SDP), oldest first (_learn_rtx)
        self._learned_rtx: deque[int] = deque()
        self._consumers: list[ProducerConsumer] = []
        self.rtx_ssrcs: tuple[int, ...] = rtx_ssrcs
        if simulcast_ssrcs and not rids:
            rids = tuple(str(i) for i in range(len(simulcast_ssrcs)))
        layers = rids if len(rids) > 1 else ("",)
        # repair towards the publisher (sfu.nack_generator, sfu.rtx): video whose codec has generic
        # NACK in the answer, every stream; RTX when the answer has an RTX payload type for the codec
        repair = kind == "video" and codec.nack
        apt = {pt: media for pt, media in rtx_payload_types(tuple(payload_types.values())).items()
               if media == codec.payload_type} if repair else {}
        audio_level_id = self.extensions.get(EXT_AUDIO_LEVEL, 0) if kind == "audio" else 0
        self._streams: tuple[RtpStreamRecv, ...] = tuple(
            RtpStreamRecv(
                stats=stats, mime_type=codec.mime_type, request_keyframe=self._request_stream_keyframe,
                index=i, rid=rid, history_size=history_size, history_age=history_age,
                nack=self._new_nack() if repair else None, rtx_apt=apt,
                fan=make_fanout() if fast_path else None, audio_level_id=audio_level_id,
            )
            for i, rid in enumerate(layers)
        )
        self._stream_by_ssrc: dict[int, RtpStreamRecv] = {}
        self._stream_by_rtx: dict[int, RtpStreamRecv] = {}
        # the stream of a plain producer (every packet of the producer's SSRC is its); None with
        # simulcast (the SSRC names the layer)
        self._single: RtpStreamRecv | None = self._streams[0] if len(self._streams) == 1 else None
        self._first_ssrc: int | None = None
        if self._single is not None:
            if ssrcs:
                self._bind(self._single, ssrcs[0])
        else:
            for ssrc, stream in zip(simulcast_ssrcs, self._streams, strict=False):
                self._bind(stream, ssrc)
            self._first_ssrc = None  # as before: learned from the first packet's layer

    def _new_nack(self) -> NackGenerator:
        nack = NackGenerator()
        nack.on_loss = self._transport._nack_wanted
        return nack

    # ---- public API -------------------------------------------------------------------------
    @property
    def codec(self) -> str:
        """MIME type of the forwarded codec, e.g. ``video/VP8`` or ``audio/opus``."""
        return self.codec_info.mime_type

    @property
    def consumers(self) -> list[ProducerConsumer]:
        return list(self._consumers)

    @property
    def transport(self) -> ProducerTransport:
        return self._transport

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ssrc(self) -> int | None:
        """The media SSRC (simulcast: the first layer's SSRC learned); None until known."""
        if self._single is not None:
            return self._single.ssrc
        return self._first_ssrc

    @property
    def streams(self) -> tuple[RtpStreamRecv, ...]:
        """The incoming streams: one, or one per simulcast layer (lowest first)."""
        return self._streams

    @property
    def history(self) -> PacketHistory:
        """The first stream's packet history (a plain producer's only one)."""
        return self._streams[0].history

    @property
    def packets(self) -> int:
        """Media packets received (all streams)."""
        return sum(s.packets for s in self._streams)

    @property
    def last_sr(self) -> tuple[int, int] | None:
        """The first stream's last sender report (ntp, rtp)."""
        return self._streams[0].last_sr

    @property
    def on_audio_level(self) -> Callable[[int, bool], None] | None:
        """RFC 6464 audio level per packet: (level in -dBov 0..127, voice activity flag); set by an
        ActiveSpeakerObserver (Router.create_active_speaker_observer)."""
        return self._on_audio_level

    @on_audio_level.setter
    def on_audio_level(self, sink: Callable[[int, bool], None] | None) -> None:
        self._on_audio_level = sink
        for stream in self._streams:
            stream.level_sink = sink

    @property
    def simulcast(self) -> bool:
        """Whether the publisher sends several simulcast layers (rids) on this m-line."""
        return self._single is None

    @property
    def layers(self) -> int:
        """Number of simulcast layers (1 without simulcast); indexes 0 (lowest) .. layers - 1."""
        return len(self._streams)

    @property
    def rids(self) -> tuple[str, ...]:
        """The simulcast rids, lowest layer first (``()`` without simulcast)."""
        return () if self._single is not None else tuple(s.rid for s in self._streams)

    def layer_stats(self) -> list[dict[str, object]]:
        """Per simulcast layer: index, rid, ssrc (None until learned), bitrate (bit/s), active, packets."""
        if self._single is not None:
            return []
        return [
            {"index": s.index, "rid": s.rid, "ssrc": s.ssrc, "bitrate": s.bitrate, "active": s.active,
             "packets": s.packets}
            for s in self._streams
        ]

    @property
    def nack_stats(self) -> NackStats | None:
        """What was asked of the publisher (sfu.nack_generator.NackStats: missing, asked,
        recovered, reordered, given_up, keyframe_requests), summed over the streams (simulcast
        layers); None when no NACK is negotiated (audio, a codec without ``nack`` feedback)."""
        gens = [s.nack for s in self._streams if s.nack is not None]
        if not gens:
            return None
        if len(gens) == 1:
            return gens[0].stats
        total = NackStats()
        for gen in gens:
            for name in NackStats.__slots__:
                setattr(total, name, getattr(total, name) + getattr(gen.stats, name))
        return total

    @property
    def rtx_received(self) -> int:
        """Packets of the publisher's RTX streams unwrapped into this producer's streams."""
        return sum(s.rtx.packets for s in self._streams if s.rtx is not None)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop forwarding to every consumer (server-side mute). Idempotent."""
        self._paused = True
        for stream in self._streams:
            stream.paused = True

    def resume(self) -> None:
        """Forward again; consumers continue their sequence numbers and timestamps without a jump."""
        if not self._paused or self._closed:
            return
        self._paused = False
        for stream in self._streams:
            stream.paused = False
        for c in self._consumers:
            c.on_producer_resume()
        if self.kind == "video" and self._consumers:
            self.request_keyframe(force=True)

    def close(self) -> None:
        """Close this producer and every consumer of it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for c in list(self._consumers):
            c.close()
        self._transport._producer_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("producer on_close callback failed")

    def request_keyframe(self, force: bool = False, layer: RtpStreamRecv | None = None) -> bool:
        """Send a PLI to the publisher, at most once per second per stream unless ``force``; True
        if sent. ``layer``: that stream's SSRC; without it, the only stream of a plain producer,
        or every simulcast layer that a consumer forwards or waits for."""
        if self._closed or self.kind != "video":
            return False
        if layer is not None:
            return self._request_stream_keyframe(layer, force)
        if self._single is not None:
            return self._request_stream_keyframe(self._single, force)
        sent = False
        for stream in self._streams:
            if stream.consumers and self._request_stream_keyframe(stream, force):
                sent = True
        return sent

    def __repr__(self) -> str:
        return f"Producer(id={self.id!r}, kind={self.kind!r}, source={self.source!r}, mid={self.mid!r})"

    # ---- internal: the transport's calls ---------------------------------------------------------
    def _request_stream_keyframe(self, stream: RtpStreamRecv, force: bool) -> bool:
        if self._closed or self.kind != "video":
            return False
        now = time.monotonic()
        interval = FORCED_KEYFRAME_INTERVAL if force else KEYFRAME_REQUEST_INTERVAL
        if now - stream.last_pli < interval:
            return False
        transport = self._transport
        if stream.ssrc is None or not transport._connected:
            stream.pli_pending = True
            return False
        stream.last_pli = now
        stream.pli_pending = False
        if transport._send_rtcp(rtcp.build_pli(transport._rtcp_ssrc, stream.ssrc)):
            self._stats.pli_sent += 1
            return True
        return False

    @property
    def _rtx(self) -> object | None:
        """Whether the (plain) producer unwraps an RTX stream (the transport registers the
        a=ssrc-group:FID partner of :attr:`ssrc` then)."""
        return self._streams[0].rtx

    def _fans(self) -> list[FanOut]:
        """The compiled fan-outs of this producer (one per stream; none without the extension)."""
        return [s.fan for s in self._streams if s.fan is not None]

    def _add_consumer(self, consumer: ProducerConsumer) -> None:
        self._consumers.append(consumer)

    def detach_consumer(self, consumer: ProducerConsumer) -> None:
        """A consumer of this producer closed (called by the consumer)."""
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        for stream in self._streams:
            if consumer in stream.consumers:
                stream.consumers.remove(consumer)

    def _bind(self, stream: RtpStreamRecv, ssrc: int) -> None:
        if stream.ssrc is not None and self._stream_by_ssrc.get(stream.ssrc) is stream:
            del self._stream_by_ssrc[stream.ssrc]  # the publisher restarted the layer
        stream.bind(ssrc)
        self._stream_by_ssrc[ssrc] = stream

    def _bind_layer(self, rid: str, ssrc: int) -> bool:
        """Simulcast: remember that ``ssrc`` carries layer ``rid`` (learned from the rid extension)."""
        if self._single is not None:
            return False
        stream = next((s for s in self._streams if s.rid == rid), None)
        if stream is None:
            return False
        self._bind(stream, ssrc)
        if self._first_ssrc is None:
            self._first_ssrc = ssrc
        for c in self._consumers:
            c.update_target()
        if stream.pli_pending:
            self._request_stream_keyframe(stream, True)
        return True

    def _learn_rtx(
        self, ssrc: int, pt: int, rtx_ssrcs: set[int], data: bytes | None = None,
        rtx_producers: dict[int, Producer] | None = None,
    ) -> None:
        """A new SSRC on this m-line with another payload type than the media codec's, counted as
        dropped unless it is bound below; remembered in ``rtx_ssrcs`` (the transport's table, so
        its next packets are dropped without a lookup) only when ``pt`` is an RTX payload type of
        the answer, and at most ``RTX_SSRCS_PER_LAYER`` per layer, the oldest forgotten first
        (issue 10: every such SSRC used to be kept).

        Simulcast (``data`` and the transport's ``rtx_producers`` given): a packet whose
        repaired-rtp-stream-id names a layer binds the SSRC as that layer's RTX stream (Chromium
        announces no RTX SSRCs for rid simulcast): it goes into ``rtx_producers`` and the packet is
        unwrapped into the layer at once."""
        if pt not in self._rtx_pts:
            self._stats.drop_rtp(RTP_UNKNOWN_PT)
            return
        learned = self._learned_rtx
        if len(learned) >= RTX_SSRCS_PER_LAYER * self.layers:
            old = learned.popleft()
            rtx_ssrcs.discard(old)
            if rtx_producers is not None and rtx_producers.get(old) is self:
                del rtx_producers[old]
            stale = self._stream_by_rtx.pop(old, None)
            if stale is not None and stale.rtx_ssrc == old:
                stale.rtx_ssrc = None
        learned.append(ssrc)
        rtx_ssrcs.add(ssrc)
        stream = self._repaired_layer(data) if data is not None and rtx_producers is not None else None
        if stream is None or rtx_producers is None or data is None:
            self._stats.drop_rtp(RTP_RTX)
            return
        if stream.rtx_ssrc is not None:
            self._stream_by_rtx.pop(stream.rtx_ssrc, None)
        stream.rtx_ssrc = ssrc
        self._stream_by_rtx[ssrc] = stream
        rtx_producers[ssrc] = self
        self._receive_rtx(data)

    def _repaired_layer(self, data: bytes) -> RtpStreamRecv | None:
        """Simulcast: the layer an RTX packet's repaired-rtp-stream-id names (with RTX negotiated)."""
        if self._single is not None or not self._rrid_ext_id:
            return None
        value = find_extension(data, self._rrid_ext_id)
        if value is None:
            return None
        rid = value.decode("ascii", "replace")
        stream = next((s for s in self._streams if s.rid == rid), None)
        return stream if stream is not None and stream.rtx is not None else None

    def _learned_ssrc(self, ssrc: int) -> None:
        """A plain producer's SSRC, learned through the MID extension."""
        stream = self._single
        if stream is None:
            return
        self._bind(stream, ssrc)
        if stream.pli_pending:
            self._request_stream_keyframe(stream, True)

    def _on_transport_connected(self) -> None:
        """The publisher's transport is connected: keyframes for whoever waits."""
        for c in self._consumers:
            c.update_target()
        waiting = {id(s) for c in self._consumers if (s := c.pending_keyframe()) is not None}
        for stream in self._streams:
            if stream.pli_pending or id(stream) in waiting:
                self._request_stream_keyframe(stream, True)

    def _on_consumer_connected(self, consumer: ProducerConsumer) -> None:
        """A subscriber's transport is connected: a keyframe if that consumer waits for one (not a
        scan of every consumer: 2000 viewers connecting would make that quadratic)."""
        if consumer.closed:
            return
        consumer.update_target()
        stream = consumer.pending_keyframe()
        if stream is not None:
            self._request_stream_keyframe(stream, True)

    def _on_sender_report(self, ntp: int, rtp_ts: int, ssrc: int | None = None) -> None:
        stream = self._single if ssrc is None else self._stream_by_ssrc.get(ssrc)
        if stream is None:
            return
        now = time.monotonic()
        self.sr_times.note(ntp, now)
        stream.on_sender_report(ntp, rtp_ts, now)

    def _report_blocks(self, now: float) -> list[ReportBlock]:
        """RR blocks: one per stream seen."""
        return [b for s in self._streams if (b := s.report_block(now)) is not None]

    def _tick(self) -> None:
        """Periodic work: layer rates (and so targets), keyframes for consumers still waiting."""
        now = time.monotonic()
        changed = False
        for stream in self._streams:
            changed = stream.update_rate(now) or changed
        waiting: list[RtpStreamRecv] = []
        for c in self._consumers:
            if changed and self._single is None:
                c.update_target()
            pending = c.pending_keyframe()
            if pending is not None and pending not in waiting:
                waiting.append(pending)
        for stream in self._streams:
            if stream.pli_pending or stream in waiting:
                self._request_stream_keyframe(stream, False)

    def _receive_rtp(self, data: bytes) -> None:
        """Hot path: one decrypted packet from the publisher (SSRC already matched)."""
        pt = data[1] & 0x7F
        if pt != self._pt:
            self._stats.drop_rtp(RTP_RTX if pt in self._other_pts else RTP_UNKNOWN_PT)
            return
        if self._closed:
            self._stats.drop_rtp(RTP_NO_PRODUCER)
            return
        stream = self._single or self._stream_by_ssrc.get(_SSRC.unpack_from(data, 8)[0])
        if stream is None:
            self._stats.drop_rtp(RTP_NO_PRODUCER)
            return
        stream.receive(data)

    def _receive_rtx(self, data: bytes) -> None:
        """A packet of one of the publisher's RTX streams (RFC 4588: the SSRC paired by
        a=ssrc-group:FID, or a simulcast layer's bound by repaired-rtp-stream-id): the original
        packet goes through the receive path like a late one (history, NACK list, consumers).
        Padding-only packets (bandwidth probes) are dropped as ``rtx``."""
        stream: RtpStreamRecv | None = self._single
        if stream is None and len(data) >= 12:
            stream = self._stream_by_rtx.get(_SSRC.unpack_from(data, 8)[0])
        original = stream.unwrap_rtx(data) if stream is not None else None
        if original is None:
            self._stats.drop_rtp(RTP_RTX)
            return
        self._receive_rtp(original)

    def _nack_tick(self, now: float) -> tuple[bytes, bool]:
        """Periodic NACK work (the transport's NACK timer): the generic NACKs to send now (empty:
        none) and whether numbers are still missing. A number given up (too old, asked too often)
        broke a frame at every subscriber of that stream: a keyframe is asked for (throttled)."""
        if self._closed:
            return b"", False
        packets: list[bytes] = []
        pending = False
        sender = self._transport._rtcp_ssrc
        for stream in self._streams:
            packet, missing, broke = stream.nack_tick(now, sender)
            if packet:
                packets.append(packet)
            pending = pending or missing
            if broke and stream.consumers and not self._paused:
                self._request_stream_keyframe(stream, False)
        return b"".join(packets), pending
