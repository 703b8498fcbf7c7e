"""Producer: one incoming track (one m-line of a publisher transport)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import rtcp
from .packet_history import PacketHistory
from .rtp import (
    EXT_AUDIO_LEVEL,
    EXT_HEADER,
    SEQ_TS_SSRC,
    h264_is_keyframe,
    one_byte_extension_byte,
    vp8_is_keyframe,
)
from .sdp import CodecInfo
from .stats import RTP_NO_PRODUCER, RTP_RTX, RTP_TRUNCATED, RTP_UNKNOWN_PT, WorkerStats

if TYPE_CHECKING:
    from .consumer import Consumer
    from .webrtc_transport import WebRtcTransport

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 1.0  # seconds between throttled PLIs to one producer
FORCED_KEYFRAME_INTERVAL = 0.1  # even "at once" requests are merged within this window


class Producer:
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
        self._transport = transport
        self._stats = stats
        self._closed = False
        self._paused = False
        self._pt = codec.payload_type
        self._other_pts = frozenset(pt for pt in payload_types if pt != codec.payload_type)
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
        self._prior_expected = 0
        self._prior_received = 0
        self.packets = 0
        self.bytes = 0

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

    def request_keyframe(self, force: bool = False) -> bool:
        """Send a PLI to the publisher, at most once per second unless ``force``; True if sent."""
        if self._closed or self.kind != "video":
            return False
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

    def __repr__(self) -> str:
        return f"Producer(id={self.id!r}, kind={self.kind!r}, source={self.source!r}, mid={self.mid!r})"

    # ---- internal -------------------------------------------------------------------------------
    def _add_consumer(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def _remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        if consumer in self._active:
            self._active.remove(consumer)

    def _activate(self, consumer: Consumer) -> None:
        if consumer not in self._active and consumer in self._consumers:
            self._active.append(consumer)

    def _learned_ssrc(self, ssrc: int) -> None:
        self.ssrc = ssrc
        if self._pli_pending:
            self.request_keyframe(force=True)

    def _on_transport_connected(self) -> None:
        if self._pli_pending or any(c._waiting_keyframe for c in self._active):
            self.request_keyframe(force=True)

    def _on_sender_report(self, ntp: int, rtp_ts: int) -> None:
        self.last_sr = (ntp, rtp_ts)
        self._last_sr_at = time.monotonic()
        for c in self._active:
            c._send_sender_report(ntp, rtp_ts)

    def _report_block(self, now: float) -> tuple[int, int, int, int, int, int, int] | None:
        """One RR block for this producer (None before the first packet)."""
        if self.ssrc is None or self._max_seq < 0:
            return None
        expected = self._max_seq - self._base_seq + 1
        lost = expected - self.packets
        expected_interval = expected - self._prior_expected
        received_interval = self.packets - self._prior_received
        self._prior_expected = expected
        self._prior_received = self.packets
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        lsr = dlsr = 0
        if self.last_sr is not None:
            lsr = (self.last_sr[0] >> 16) & 0xFFFFFFFF
            dlsr = int((now - self._last_sr_at) * 65536)
        return (self.ssrc, min(fraction, 255), lost, self._max_seq, 0, lsr, dlsr)

    def _tick(self) -> None:
        """Periodic work: re-ask for a keyframe while a consumer still waits for one."""
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
        elif ((seq - max_seq) & 0xFFFF) < 0x8000:  # newer: extend across wraps
            if seq < (max_seq & 0xFFFF):
                max_seq += 0x10000
            self._max_seq = (max_seq & ~0xFFFF) | seq
        self.packets += 1
        self.bytes += n
        self.history.store(seq, data)
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
        level_sink = self.on_audio_level
        if level_sink is not None and ext_profile == 0xBEDE and self._audio_level_id:
            level = one_byte_extension_byte(data, ext_start, ext_end, self._audio_level_id)
            if level >= 0 and not self._paused:
                level_sink(level & 0x7F, bool(level & 0x80))
        if self._paused:
            return
        for consumer in self._active:
            consumer._forward(data, seq, ts, keyframe, ext_profile, ext_start, ext_end)


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
