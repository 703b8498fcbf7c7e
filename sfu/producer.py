"""Producer: one incoming track (one m-line of a publisher transport)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import rtcp
from .fast_path import FanOut, make_fanout
from .nack import SenderReportTimes
from .nack_generator import NackGenerator, NackStats
from .packet_history import PacketHistory
from .reception import ReceptionStats
from .rtp import (
    EXT_AUDIO_LEVEL,
    EXT_HEADER,
    SEQ_TS_SSRC,
    h264_is_keyframe,
    one_byte_extension_byte,
    vp8_is_keyframe,
)
from .rtx import RtxUnwrapper
from .sdp import CodecInfo, rtx_payload_types
from .simulcast import SimulcastLayer
from .stats import (
    RTP_NO_PRODUCER,
    RTP_RTX,
    RTP_SEND_ERROR,
    RTP_SRTP_ERROR,
    RTP_TRUNCATED,
    RTP_UNKNOWN_PT,
    WorkerStats,
)

if TYPE_CHECKING:
    from .consumer import Consumer
    from .webrtc_transport import WebRtcTransport

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 1.0  # seconds between throttled PLIs to one producer
FORCED_KEYFRAME_INTERVAL = 0.1  # even "at once" requests are merged within this window
# RFC 3550 appendix A.1 (update_seq), as mediasoup's RtpStream::UpdateSeq: a packet up to
# MAX_DROPOUT ahead of the highest sequence number is in order, up to MAX_MISORDER behind it is
# late; anything else is a jump, taken only when the next packet continues from it (a restart).
# The hot path spells the two bounds as literals (3000, 0xFF9C = 65536 - 100).
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_BAD_SEQ = "bad_seq"  # rtp_dropped reason: a lone packet far from the stream's sequence numbers
RTX_SSRCS_PER_LAYER = 2  # learned publisher RTX SSRCs kept per layer (oldest forgotten first)


class Producer(ReceptionStats):
    """An incoming RTP stream, forwarded to every :class:`Consumer` of it.

    Created only by :meth:`WebRtcTransport.produce`. ``id`` is the protocol's ``track_id``.
    """

    def __init__(
        self,
        transport: WebRtcTransport,
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
        # RFC 6464 audio level per packet: (level in -dBov 0..127, voice activity flag); set by an
        # ActiveSpeakerObserver (Router.create_active_speaker_observer)
        self.on_audio_level: Callable[[int, bool], None] | None = None
        self._audio_level_id = self.extensions.get(EXT_AUDIO_LEVEL, 0) if kind == "audio" else 0
        self.history = PacketHistory(history_size, history_age)
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
        # repair towards the publisher (sfu.nack_generator): for video whose codec has generic
        # NACK in the answer, without simulcast (per-layer generators: not yet); the RTX stream
        # (RFC 4588) of the media SSRC, when the answer has an RTX payload type for the codec
        self._nack: NackGenerator | None = None
        self._rtx: RtxUnwrapper | None = None
        self._nack_given_up = 0
        # RTX SSRCs learned from packets (not declared in the SDP), oldest first (_learn_rtx)
        self._learned_rtx: deque[int] = deque()
        self._consumers: list[Consumer] = []
        self._active: list[Consumer] = []  # negotiated consumers: the fan-out list
        self.ssrc: int | None = ssrcs[0] if ssrcs else None
        self.rtx_ssrcs: tuple[int, ...] = rtx_ssrcs
        mime = codec.mime_type.lower()
        self._keyframe_fn = (
            vp8_is_keyframe if mime == "video/vp8" else h264_is_keyframe if mime == "video/h264" else None
        )
        self._h264 = mime == "video/h264"
        self._prev_ts = -1
        self._last_pli = -1e9
        self._pli_pending = False
        # last sender report: (ntp 64-bit, rtp timestamp) and when it arrived (monotonic)
        self.last_sr: tuple[int, int] | None = None
        self._last_sr_at = 0.0
        # receive statistics for receiver reports (RFC 3550 A.3)
        self._base_seq = -1
        self._max_seq = -1  # extended (cycles << 16 | seq)
        self._bad_seq = -1  # RFC 3550 A.1: the sequence number that would confirm a jump
        self._prior_expected = 0
        self._prior_received = 0
        self.packets = 0
        self.bytes = 0
        # simulcast: one layer per rid (lowest first, see sfu.simulcast); SSRC -> layer once learned
        if simulcast_ssrcs and not rids:
            rids = tuple(str(i) for i in range(len(simulcast_ssrcs)))
        self._layers: list[SimulcastLayer] = (
            [SimulcastLayer(rid, i, history_size, history_age, make_fanout() if fast_path else None)
             for i, rid in enumerate(rids)]
            if len(rids) > 1
            else []
        )
        # the compiled fan-out of the consumers that forward steadily (sfu.fast_path); per layer
        # with simulcast
        self._fan: FanOut | None = make_fanout() if fast_path and not self._layers else None
        self._layer_by_ssrc: dict[int, SimulcastLayer] = {}
        if kind == "video" and codec.nack and not self._layers:
            self._nack = NackGenerator()
            self._nack.on_loss = transport._nack_wanted
            apt = {pt: media for pt, media in rtx_payload_types(tuple(payload_types.values())).items()
                   if media == codec.payload_type}
            if apt:
                self._rtx = RtxUnwrapper(apt, self.ssrc or 0)
        if self._layers:
            self.ssrc = None
            for ssrc, layer in zip(simulcast_ssrcs, self._layers, strict=False):
                layer.ssrc = ssrc
                layer.active = True
                self._layer_by_ssrc[ssrc] = layer

    # ---- public API -------------------------------------------------------------------------
    @property
    def codec(self) -> str:
        """MIME type of the forwarded codec, e.g. ``video/VP8`` or ``audio/opus``."""
        return self.codec_info.mime_type

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def transport(self) -> WebRtcTransport:
        return self._transport

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def simulcast(self) -> bool:
        """Whether the publisher sends several simulcast layers (rids) on this m-line."""
        return bool(self._layers)

    @property
    def layers(self) -> int:
        """Number of simulcast layers (1 without simulcast); indexes 0 (lowest) .. layers - 1."""
        return len(self._layers) or 1

    @property
    def rids(self) -> tuple[str, ...]:
        """The simulcast rids, lowest layer first (``()`` without simulcast)."""
        return tuple(layer.rid for layer in self._layers)

    def layer_stats(self) -> list[dict[str, object]]:
        """Per simulcast layer: index, rid, ssrc (None until learned), bitrate (bit/s), active, packets."""
        return [
            {"index": la.index, "rid": la.rid, "ssrc": la.ssrc, "bitrate": la.bitrate, "active": la.active,
             "packets": la.packets}
            for la in self._layers
        ]

    @property
    def nack_stats(self) -> NackStats | None:
        """What was asked of the publisher (sfu.nack_generator.NackStats: missing, asked,
        recovered, reordered, given_up, keyframe_requests); None when no NACK is negotiated (audio,
        a codec without ``nack`` feedback) or with simulcast."""
        return self._nack.stats if self._nack is not None else None

    @property
    def rtx_received(self) -> int:
        """Packets of the publisher's RTX stream unwrapped into this producer's stream."""
        return self._rtx.packets if self._rtx is not None else 0

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop forwarding to every consumer (server-side mute). Idempotent."""
        self._paused = True

    def resume(self) -> None:
        """Forward again; consumers continue their sequence numbers and timestamps without a jump."""
        if not self._paused or self._closed:
            return
        self._paused = False
        for c in self._consumers:
            c._restart()
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

    def request_keyframe(self, force: bool = False, layer: SimulcastLayer | None = None) -> bool:
        """Send a PLI to the publisher, at most once per second unless ``force``; True if sent.

        Simulcast: a PLI for ``layer``'s SSRC (throttled per layer); without ``layer``, one for
        every layer that a consumer forwards or waits for.
        """
        if self._closed or self.kind != "video":
            return False
        if self._layers:
            if layer is not None:
                return self._request_layer_keyframe(layer, force)
            sent = False
            for la in self._layers:
                if la.consumers and self._request_layer_keyframe(la, force):
                    sent = True
            return sent
        now = time.monotonic()
        interval = FORCED_KEYFRAME_INTERVAL if force else KEYFRAME_REQUEST_INTERVAL
        if now - self._last_pli < interval:
            return False
        if self.ssrc is None or not self._transport._connected:
            self._pli_pending = True
            return False
        self._last_pli = now
        self._pli_pending = False
        if self._transport._send_rtcp(rtcp.build_pli(self._transport._rtcp_ssrc, self.ssrc)):
            self._stats.pli_sent += 1
            return True
        return False

    def _request_layer_keyframe(self, layer: SimulcastLayer, force: bool) -> bool:
        now = time.monotonic()
        interval = FORCED_KEYFRAME_INTERVAL if force else KEYFRAME_REQUEST_INTERVAL
        if now - layer.last_pli < interval or layer.ssrc is None or not self._transport._connected:
            return False
        layer.last_pli = now
        if self._transport._send_rtcp(rtcp.build_pli(self._transport._rtcp_ssrc, layer.ssrc)):
            self._stats.pli_sent += 1
            return True
        return False

    def __repr__(self) -> str:
        return f"Producer(id={self.id!r}, kind={self.kind!r}, source={self.source!r}, mid={self.mid!r})"

    # ---- internal -------------------------------------------------------------------------------
    def _fans(self) -> list[FanOut]:
        """The compiled fan-outs of this producer (one, or one per simulcast layer; none without)."""
        fans = [la.fan for la in self._layers] if self._layers else [self._fan]
        return [f for f in fans if f is not None]

    def _add_consumer(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def _remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        if consumer in self._active:
            self._active.remove(consumer)
        for layer in self._layers:
            if consumer in layer.consumers:
                layer.consumers.remove(consumer)

    def _activate(self, consumer: Consumer) -> None:
        if consumer not in self._active and consumer in self._consumers:
            self._active.append(consumer)
            if self._layers:
                consumer._update_target()

    def _bind_layer(self, rid: str, ssrc: int) -> bool:
        """Simulcast: remember that ``ssrc`` carries layer ``rid`` (learned from the rid extension)."""
        layer = next((la for la in self._layers if la.rid == rid), None)
        if layer is None:
            return False
        if layer.ssrc is not None:
            self._layer_by_ssrc.pop(layer.ssrc, None)  # the publisher restarted the layer
        layer.ssrc = ssrc
        layer.active = True
        self._layer_by_ssrc[ssrc] = layer
        if self.ssrc is None:
            self.ssrc = ssrc
        for c in self._active:
            c._update_target()
        return True

    def _learn_rtx(self, ssrc: int, pt: int, rtx_ssrcs: set[int]) -> None:
        """A new SSRC on this m-line with another payload type than the media codec's: counted as
        dropped; remembered in ``rtx_ssrcs`` (the transport's table, so its next packets are
        dropped without a lookup) only when ``pt`` is an RTX payload type of the answer, and at
        most ``RTX_SSRCS_PER_LAYER`` per layer, the oldest forgotten first (issue 10: every such
        SSRC used to be kept: 5,000 packets on fresh SSRCs, 5,000 entries)."""
        if pt not in self._rtx_pts:
            self._stats.drop_rtp(RTP_UNKNOWN_PT)
            return
        self._stats.drop_rtp(RTP_RTX)
        learned = self._learned_rtx
        if len(learned) >= RTX_SSRCS_PER_LAYER * self.layers:
            rtx_ssrcs.discard(learned.popleft())
        learned.append(ssrc)
        rtx_ssrcs.add(ssrc)

    def _learned_ssrc(self, ssrc: int) -> None:
        self.ssrc = ssrc
        if self._rtx is not None:
            self._rtx.media_ssrc = ssrc
        if self._pli_pending:
            self.request_keyframe(force=True)

    def _on_transport_connected(self) -> None:
        """The publisher's transport is connected: keyframes for whoever waits."""
        if self._layers:
            for c in self._active:
                c._update_target()
            self.request_keyframe(force=True)
        elif self._pli_pending or any(c._waiting_keyframe for c in self._active):
            self.request_keyframe(force=True)

    def _on_consumer_connected(self, consumer: Consumer) -> None:
        """A subscriber's transport is connected: a keyframe if that consumer waits for one (not a
        scan of every consumer: 2000 viewers connecting would make that quadratic)."""
        if consumer._closed or not consumer._ready:
            return
        if self._layers:
            consumer._update_target()
            pending = consumer._pending_layer()
            if pending is not None:
                self._request_layer_keyframe(pending, True)
        elif self._pli_pending or consumer._waiting_keyframe:
            self.request_keyframe(force=True)

    def _on_sender_report(self, ntp: int, rtp_ts: int, ssrc: int | None = None) -> None:
        if self._layers:
            layer = self._layer_by_ssrc.get(ssrc) if ssrc is not None else None
            if layer is None:
                return
            self.sr_times.note(ntp, time.monotonic())
            layer.on_sender_report(ntp, rtp_ts, time.monotonic())
            self._fan_sender_report(layer.fan, ntp, rtp_ts)
            for c in self._active:
                if c._current is layer and c._fan is None:
                    c._send_sender_report(ntp, rtp_ts)
            return
        self.last_sr = (ntp, rtp_ts)
        self._last_sr_at = time.monotonic()
        self.sr_times.note(ntp, self._last_sr_at)
        self._fan_sender_report(self._fan, ntp, rtp_ts)
        for c in self._active:
            if c._fan is None:
                c._send_sender_report(ntp, rtp_ts)

    def _fan_sender_report(self, fan: FanOut | None, ntp: int, rtp_ts: int) -> None:
        """The SR for the consumers on the compiled fan-out, translated and sent in C."""
        if fan is not None and len(fan):
            sent = fan.sender_report(ntp, rtp_ts)
            self._stats.sr_sent += sent
            self._stats.rtcp_out += sent

    def _report_blocks(self, now: float) -> list[tuple[int, int, int, int, int, int, int]]:
        """RR blocks: one per simulcast layer seen, else this producer's one (if any)."""
        if self._layers:
            return [b for la in self._layers if (b := la.report_block(now)) is not None]
        block = self.report_block(now)
        return [block] if block is not None else []

    def _tick(self) -> None:
        """Periodic work: re-ask for a keyframe while a consumer still waits for one."""
        if self._layers:
            now = time.monotonic()
            changed = False
            for la in self._layers:
                changed = la.update_rate(now) or changed
            for c in self._active:
                if changed:
                    c._update_target()
                pending = c._pending_layer()
                if pending is not None:
                    self._request_layer_keyframe(pending, False)
            return
        if self._pli_pending or (self.kind == "video" and any(c._waiting_keyframe for c in self._active)):
            self.request_keyframe()

    def _receive_rtp(self, data: bytes) -> None:
        """Hot path: one decrypted packet from the publisher (SSRC already matched)."""
        stats = self._stats
        pt = data[1] & 0x7F
        if pt != self._pt:
            stats.drop_rtp(RTP_RTX if pt in self._other_pts else RTP_UNKNOWN_PT)
            return
        if self._closed:
            stats.drop_rtp(RTP_NO_PRODUCER)
            return
        layers = self._layer_by_ssrc
        if layers:
            self._receive_layer(data, layers)
            return
        b0 = data[0]
        n = len(data)
        pos = 12 + ((b0 & 0x0F) << 2)
        ext_profile = 0
        ext_start = ext_end = pos
        if b0 & 0x10:
            if pos + 4 > n:
                stats.drop_rtp(RTP_TRUNCATED)
                return
            ext_profile, words = EXT_HEADER.unpack_from(data, pos)
            ext_start = pos + 4
            ext_end = pos = ext_start + (words << 2)
        end = n - data[-1] if b0 & 0x20 else n
        if pos > end or (b0 & 0x20 and data[-1] == 0):
            stats.drop_rtp(RTP_TRUNCATED)
            return
        seq, ts, _ = SEQ_TS_SSRC.unpack_from(data, 2)
        max_seq = self._max_seq
        if max_seq < 0:
            self._base_seq = self._max_seq = seq
        else:
            udelta = (seq - max_seq) & 0xFFFF
            if udelta < 3000:  # MAX_DROPOUT: in order (with a gap): extend across wraps
                if seq < (max_seq & 0xFFFF):
                    max_seq += 0x10000
                self._max_seq = (max_seq & ~0xFFFF) | seq
            elif udelta <= 0xFF9C and (self._nack is None or not self._nack.is_missing(seq)):
                # neither in order nor up to MAX_MISORDER late (nor a repair of a packet still
                # asked for, which can be later than that): a jump
                if not _jump_confirmed(self, seq):
                    stats.drop_rtp(RTP_BAD_SEQ)  # a lone far packet must not move the consumers
                    return
                for c in self._active:
                    c._on_source_restart()
                if self._nack is not None:
                    self._nack.reset()
        self.packets += 1
        self.bytes += n
        now = time.monotonic()
        self.history.store(seq, data, now)
        keyframe = False
        fn = self._keyframe_fn
        if fn is not None:
            # H.264: only the first packet of an access unit starts a keyframe (an IDR frame may
            # have several slices, and SPS/PPS come first); the very first packet seen must
            # carry the SPS, since we cannot know whether it was preceded by one
            if fn(data, pos, end) and (
                not self._h264 or (ts != self._prev_ts and (self._prev_ts >= 0 or _has_sps(data, pos, end)))
            ):
                keyframe = True
                stats.keyframes += 1
            self._prev_ts = ts
        nack = self._nack
        if nack is not None and nack.on_packet(seq, keyframe, now):
            self.request_keyframe(force=True)  # too much lost to repair (sfu.nack_generator)
        level_sink = self.on_audio_level
        if level_sink is not None and ext_profile == 0xBEDE and self._audio_level_id:
            level = one_byte_extension_byte(data, ext_start, ext_end, self._audio_level_id)
            if level >= 0 and not self._paused:
                level_sink(level & 0x7F, bool(level & 0x80))
        if self._paused:
            return
        active = self._active
        fan = self._fan
        if fan is not None and self._forward_fast(fan, data, seq, ts, ext_profile, ext_start, ext_end) == len(active):
            return  # everyone is on the fan-out (its slots are active consumers)
        for consumer in active:
            if consumer._fan is not fan or fan is None:
                consumer._forward(data, seq, ts, keyframe, ext_profile, ext_start, ext_end)

    def _receive_rtx(self, data: bytes) -> None:
        """A packet of the publisher's RTX stream (RFC 4588, the SSRC paired by a=ssrc-group:FID):
        the original packet it carries goes through the receive path like a late one (history,
        NACK list, consumers). Padding-only packets (bandwidth probes) are dropped as ``rtx``."""
        rtx = self._rtx
        original = rtx.unwrap(data) if rtx is not None and self.ssrc is not None else None
        if original is None:
            self._stats.drop_rtp(RTP_RTX)
            return
        self._receive_rtp(original)

    def _nack_tick(self, now: float) -> tuple[bytes, bool]:
        """Periodic NACK work (the transport's NACK timer): the generic NACK to send now (empty:
        none) and whether numbers are still missing. A number given up (too old, asked too often)
        broke a frame at every subscriber: a keyframe is asked for (throttled like any PLI)."""
        nack = self._nack
        if nack is None or self.ssrc is None or self._closed:
            return b"", False
        seqs = nack.tick(now)
        given_up = nack.stats.given_up
        if given_up != self._nack_given_up:
            self._nack_given_up = given_up
            if self._active and not self._paused:
                self.request_keyframe()
        if not seqs:
            return b"", nack.pending > 0
        self._stats.nack_sent += len(seqs)
        packet = rtcp.build_nack_fci(self._transport._rtcp_ssrc, self.ssrc, rtcp.nack_fci(seqs))
        return packet, nack.pending > 0

    def _forward_fast(
        self, fan: FanOut, data: bytes, seq: int, ts: int, ext_profile: int, ext_start: int, ext_end: int
    ) -> int:
        """Hot path: the packet to every consumer on the compiled fan-out (one C call); returns how
        many consumers are on it."""
        slots = len(fan)
        if not slots:
            return 0
        stats = self._stats
        sent = fan.forward(data, seq, ts, ext_profile, ext_start, ext_end)
        stats.rtp_out += sent
        stats.rtp_out_bytes += fan.last_bytes
        if sent != slots:
            srtp_errors, send_errors = fan.take_errors()
            for _ in range(srtp_errors):
                stats.drop_rtp(RTP_SRTP_ERROR)
            for _ in range(send_errors):
                stats.drop_rtp(RTP_SEND_ERROR)
        return slots

    def _receive_layer(self, data: bytes, layers: dict[int, SimulcastLayer]) -> None:
        """Hot path, simulcast: one packet of one layer (the SSRC was bound to a layer)."""
        stats = self._stats
        b0 = data[0]
        n = len(data)
        pos = 12 + ((b0 & 0x0F) << 2)
        ext_profile = 0
        ext_start = ext_end = pos
        if b0 & 0x10:
            if pos + 4 > n:
                stats.drop_rtp(RTP_TRUNCATED)
                return
            ext_profile, words = EXT_HEADER.unpack_from(data, pos)
            ext_start = pos + 4
            ext_end = pos = ext_start + (words << 2)
        end = n - data[-1] if b0 & 0x20 else n
        if pos > end or (b0 & 0x20 and data[-1] == 0):
            stats.drop_rtp(RTP_TRUNCATED)
            return
        seq, ts, ssrc = SEQ_TS_SSRC.unpack_from(data, 2)
        layer = layers.get(ssrc)
        if layer is None:
            stats.drop_rtp(RTP_NO_PRODUCER)
            return
        max_seq = layer._max_seq
        if max_seq < 0:
            layer._base_seq = layer._max_seq = seq
        else:
            udelta = (seq - max_seq) & 0xFFFF
            if udelta < 3000:  # as in _receive_rtp (RFC 3550 A.1)
                if seq < (max_seq & 0xFFFF):
                    max_seq += 0x10000
                layer._max_seq = (max_seq & ~0xFFFF) | seq
            elif udelta <= 0xFF9C:
                if not _jump_confirmed(layer, seq):
                    stats.drop_rtp(RTP_BAD_SEQ)
                    return
                for c in layer.consumers:
                    if c._current is layer:
                        c._on_source_restart()
        layer.packets += 1
        layer.bytes += n
        self.packets += 1
        self.bytes += n
        layer.history.store(seq, data)
        keyframe = False
        fn = self._keyframe_fn
        if fn is not None:
            prev_ts = layer.prev_ts
            if fn(data, pos, end) and (
                not self._h264 or (ts != prev_ts and (prev_ts >= 0 or _has_sps(data, pos, end)))
            ):
                keyframe = True
                stats.keyframes += 1
            layer.prev_ts = ts
        if self._paused:
            return
        consumers = layer.consumers
        fan = layer.fan
        if (fan is not None
                and self._forward_fast(fan, data, seq, ts, ext_profile, ext_start, ext_end) == len(consumers)):
            return  # all forward this layer steadily: none waits for a switch
        for consumer in consumers:
            if consumer._fan is not fan or fan is None:
                consumer._forward_layer(layer, data, seq, ts, keyframe, ext_profile, ext_start, ext_end)


def _jump_confirmed(stream: Producer | SimulcastLayer, seq: int) -> bool:
    """A packet more than MAX_DROPOUT ahead of (or MAX_MISORDER behind) ``stream``'s highest
    sequence number (RFC 3550 A.1 update_seq; mediasoup's RtpStream::UpdateSeq). The first such
    packet is dropped and ``seq + 1`` remembered; if the next one is exactly that, the sender
    restarted its numbering: accepted, and the receive statistics continue from it (the extended
    highest sequence number keeps growing, the expected count grows by this packet). True: a
    restart, the caller forwards the packet and its consumers resync their offsets."""
    if seq != stream._bad_seq:
        stream._bad_seq = (seq + 1) & 0xFFFF
        return False
    stream._bad_seq = -1
    old = stream._max_seq
    new = old + ((seq - old) & 0xFFFF)
    stream._base_seq += new - old - 1
    stream._max_seq = new
    return True


def _has_sps(data: bytes, start: int, end: int) -> bool:
    """Whether an H.264 payload (single NAL or STAP-A) carries an SPS."""
    if end <= start:
        return False
    nal = data[start] & 0x1F
    if nal == 7:
        return True
    if nal == 24:
        pos = start + 1
        while pos + 2 < end:
            if data[pos + 2] & 0x1F == 7:
                return True
            pos += 2 + ((data[pos] << 8) | data[pos + 1])
    return False
