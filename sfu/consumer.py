"""Consumer: one outgoing copy of a producer, sent to one subscriber transport."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import rtcp
from .rtp import SEQ_TS_SSRC, make_id_map, parse_header, rewrite_extensions, seq_newer
from .stats import RTP_NOT_CONNECTED, WorkerStats

if TYPE_CHECKING:
    from .producer import Producer
    from .webrtc_transport import WebRtcTransport

logger = logging.getLogger(__name__)

WAIT_KEYFRAME = "wait_keyframe"  # rtp_dropped reason: video consumer not yet at a keyframe


class Consumer:
    """Forwards a :class:`Producer`'s packets to one subscriber with its own SSRC/seq/timestamps.

    Created only by :meth:`WebRtcTransport.consume`. It forwards once the subscriber's answer
    has been applied (:meth:`WebRtcTransport.accept_answer`); a video consumer starts at a
    keyframe (a PLI is sent to the publisher when it starts).
    """

    def __init__(
        self, transport: WebRtcTransport, producer: Producer, ssrc: int, stats: WorkerStats
    ) -> None:
        self.id: str = uuid.uuid4().hex[:16]
        self.on_close: Callable[[], None] | None = None
        self.ssrc = ssrc
        self.mid: str | None = None  # m-line in the subscriber's SDP, set by create_offer()
        self._producer = producer
        self._transport = transport
        self._stats = stats
        self._kind = producer.kind
        self._clock_rate = producer.codec_info.clock_rate
        self._closed = False
        self._paused = False
        self._ready = False
        self._pt = producer.codec_info.payload_type
        self._id_map: bytes | None = None
        self._waiting_keyframe = producer.kind == "video"
        self._resync = True
        self._seq_off = 0
        self._ts_off = 0
        self._offset_start: int | None = None  # producer seq from which the offsets hold
        self._last_seq: int | None = None  # last sent (rewritten) sequence number
        self._last_ts = 0
        self._last_time = 0.0
        self.packets = 0
        self.octets = 0

    # ---- public API -------------------------------------------------------------------------
    @property
    def producer(self) -> Producer:
        return self._producer

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def transport(self) -> WebRtcTransport:
        return self._transport

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def payload_type(self) -> int:
        """Payload type negotiated with the subscriber (valid once the answer is applied)."""
        return self._pt

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        if not self._paused or self._closed:
            return
        self._paused = False
        self._restart()
        if self._kind == "video":
            self._producer.request_keyframe(force=True)

    def close(self) -> None:
        """Stop forwarding; the subscriber's m-line goes inactive at the next offer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._producer._remove_consumer(self)
        self._transport._consumer_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("consumer on_close callback failed")

    def __repr__(self) -> str:
        return (
            f"Consumer(id={self.id!r}, producer={self._producer.id!r}, kind={self._kind!r}, mid={self.mid!r})"
        )

    # ---- internal -------------------------------------------------------------------------------
    def _configure(self, payload_type: int, extensions: dict[str, int]) -> None:
        """Apply the subscriber's negotiated PT and header extension ids; start forwarding."""
        self._pt = payload_type
        self._id_map = make_id_map(self._producer.extensions, extensions)
        if not self._ready:
            self._ready = True
            self._producer._activate(self)
            if self._kind == "video" and self._transport._connected:
                # (when not connected yet, the transport asks once it is: a keyframe that
                # arrived before could not be sent)
                self._producer.request_keyframe(force=True)

    def _restart(self) -> None:
        """After a pause: continue seq/timestamps from where we stopped; video waits for a keyframe."""
        self._resync = True
        if self._kind == "video":
            self._waiting_keyframe = True

    def _resync_offsets(self, seq: int, ts: int) -> None:
        if self._last_seq is None:
            self._seq_off = (random.getrandbits(15) - seq) & 0xFFFF
            self._ts_off = (random.getrandbits(31) - ts) & 0xFFFFFFFF
        else:
            ticks = max(1, int((time.monotonic() - self._last_time) * self._clock_rate))
            self._seq_off = (self._last_seq + 1 - seq) & 0xFFFF
            self._ts_off = (self._last_ts + ticks - ts) & 0xFFFFFFFF
        self._offset_start = seq
        self._resync = False

    def _forward(
        self,
        data: bytes,
        seq: int,
        ts: int,
        keyframe: bool,
        ext_profile: int,
        ext_start: int,
        ext_end: int,
    ) -> None:
        """Hot path: rewrite one producer packet for this subscriber and send it."""
        if self._paused:
            return
        if not self._transport._connected:
            self._stats.drop_rtp(RTP_NOT_CONNECTED)
            return
        if self._waiting_keyframe:
            if not keyframe:
                self._stats.drop_rtp(WAIT_KEYFRAME)
                return
            self._waiting_keyframe = False
        if self._resync:
            self._resync_offsets(seq, ts)
        buf = bytearray(data)
        buf[1] = (buf[1] & 0x80) | self._pt
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & 0xFFFFFFFF
        SEQ_TS_SSRC.pack_into(buf, 2, out_seq, out_ts, self.ssrc)
        id_map = self._id_map
        if ext_profile and id_map is not None:
            rewrite_extensions(buf, ext_profile, ext_start, ext_end, id_map)
        if self._transport._send_rtp(buf):
            last = self._last_seq
            if last is None or seq_newer(out_seq, last):
                self._last_seq = out_seq
                self._last_ts = out_ts
                self._last_time = time.monotonic()
            self.packets += 1
            self.octets += len(data) - ext_end

    def _handle_nack(self, seqs: list[int]) -> None:
        """Re-send requested packets from the producer's history with this consumer's rewrite."""
        stats = self._stats
        stats.nack_received += len(seqs)
        history = self._producer.history
        start = self._offset_start
        for out_seq in seqs:
            seq = (out_seq - self._seq_off) & 0xFFFF
            data = None
            if start is not None and not seq_newer(start, seq):
                data = history.get(seq)
            if data is None:
                stats.retransmit_missed += 1
                continue
            try:
                h = parse_header(data)
            except ValueError:
                stats.retransmit_missed += 1
                continue
            buf = bytearray(data)
            buf[1] = (buf[1] & 0x80) | self._pt
            SEQ_TS_SSRC.pack_into(buf, 2, out_seq, (h.timestamp + self._ts_off) & 0xFFFFFFFF, self.ssrc)
            if h.ext_profile and self._id_map is not None:
                rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, self._id_map)
            if self._transport._send_rtp(buf):
                stats.retransmitted += 1

    def _send_sender_report(self, ntp: int, rtp_ts: int) -> None:
        """Translate the producer's SR (NTP <-> RTP time) through this consumer's timestamp offset."""
        if self._last_seq is None or self._paused:
            return
        report = rtcp.build_sr(self.ssrc, ntp, rtp_ts + self._ts_off, self.packets, self.octets)
        if self._transport._send_rtcp(report):
            self._stats.sr_sent += 1
