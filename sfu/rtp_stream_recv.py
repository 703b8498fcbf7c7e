"""One incoming RTP stream (one SSRC): the receive path of a producer, plain or simulcast.

A :class:`~sfu.producer.Producer` holds one :class:`RtpStreamRecv` (a plain track) or one per
simulcast layer, and hands each packet to the stream its SSRC names. The stream does everything
that concerns the stream itself, once, for every kind of producer (mediasoup's ``RtpStreamRecv``,
LiveKit's ``Buffer``; the code is this project's own):

- header bounds (CSRCs, extension block, padding) and the RFC 3550 A.1 sequence checks: extended
  sequence numbers across wraps, a lone far packet dropped (``bad_seq``), a jump confirmed by the
  next packet taken as a restart of the sender's numbering (its consumers resync);
- reception statistics and the receiver-report block (:class:`~sfu.reception.ReceptionStats`),
  the bitrate over 1 s windows and whether the stream is sending (``active``);
- the packet history that answers subscribers' NACKs;
- keyframe detection (VP8, H.264);
- the NACK generator towards the publisher (video with ``nack`` feedback: plain producers and
  every simulcast layer alike) and the RTX stream paired with it (RFC 4588; an SSRC from the
  offer's ``a=ssrc-group:FID``, or, for rid simulcast, bound through the repaired-rtp-stream-id
  header extension);
- the publisher's sender reports;
- the fan-out: the compiled one (``sfu.fast_path``) for the consumers that forward it steadily,
  then :meth:`StreamConsumer.on_rtp` for the others.

Consumers are reached only through :class:`StreamConsumer`; the producer's part (pause, PLIs,
audio levels) through the attributes and callbacks it sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from . import rtcp
from .fast_path import FanOut
from .nack_generator import NackGenerator
from .packet_history import PacketHistory
from .reception import ReceptionStats
from .rtp import EXT_HEADER, SEQ_TS_SSRC, h264_is_keyframe, one_byte_extension_byte, vp8_is_keyframe
from .rtx import RtxUnwrapper
from .stats import RTP_SEND_ERROR, RTP_SRTP_ERROR, RTP_TRUNCATED, WorkerStats

# RFC 3550 appendix A.1 (update_seq), as mediasoup's RtpStream::UpdateSeq: a packet up to
# MAX_DROPOUT ahead of the highest sequence number is in order, up to MAX_MISORDER behind it is
# late; anything else is a jump, taken only when the next packet continues from it (a restart).
# The hot path spells the two bounds as literals (3000, 0xFF9C = 65536 - 100).
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_BAD_SEQ = "bad_seq"  # rtp_dropped reason: a lone packet far from the stream's sequence numbers
RATE_WINDOW = 1.0  # s: bitrate measurement window


class StreamConsumer(Protocol):
    """What a stream calls on the consumers in its fan-out list (``RtpStreamRecv.consumers``)."""

    fan: FanOut | None  # the compiled fan-out this consumer is on now (None: the Python path)

    def on_rtp(
        self, stream: RtpStreamRecv, data: bytes, seq: int, ts: int, keyframe: bool,
        ext_profile: int, ext_start: int, ext_end: int,
    ) -> None:
        """A packet of ``stream`` for a consumer not on its compiled fan-out."""

    def on_source_restart(self, stream: RtpStreamRecv) -> None:
        """``stream``'s sender restarted its sequence numbers (RFC 3550 A.1)."""

    def on_sender_report(self, stream: RtpStreamRecv, ntp: int, rtp_ts: int) -> None:
        """A sender report of ``stream``, for a consumer not on its compiled fan-out."""


class RtpStreamRecv(ReceptionStats):
    """The receive state of one incoming SSRC (see the module docstring).

    ``index`` is the simulcast layer (0 = lowest; 0 without simulcast), ``rid`` its rid ("" without
    simulcast); ``ssrc`` is None until known (from the SDP or learned from packets).
    ``request_keyframe(stream, force)``: the producer's PLI, called when the NACK generator gives
    up on a loss it cannot repair."""

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_bytes_at",
        "_h264",
        "_keyframe_fn",
        "_last_sr_at",
        "_max_seq",
        "_nack_given_up",
        "_packets_at",
        "_prior_expected",
        "_prior_received",
        "_request_keyframe",
        "_stats",
        "_window_start",
        "active",
        "audio_level_id",
        "bitrate",
        "bytes",
        "consumers",
        "fan",
        "history",
        "index",
        "last_pli",
        "last_sr",
        "level_sink",
        "nack",
        "packets",
        "paused",
        "pli_pending",
        "prev_ts",
        "rid",
        "rtx",
        "rtx_ssrc",
        "ssrc",
    )

    def __init__(
        self,
        *,
        stats: WorkerStats,
        mime_type: str,
        request_keyframe: Callable[[RtpStreamRecv, bool], bool],
        index: int = 0,
        rid: str = "",
        ssrc: int | None = None,
        history_size: int = 1024,
        history_age: float = 2.0,
        nack: NackGenerator | None = None,
        rtx_apt: dict[int, int] | None = None,
        fan: FanOut | None = None,
        audio_level_id: int = 0,
    ) -> None:
        self._stats = stats
        self._request_keyframe = request_keyframe
        self.index = index
        self.rid = rid
        self.ssrc = ssrc
        self.rtx_ssrc: int | None = None
        self.history = PacketHistory(history_size, history_age)
        self.nack = nack
        self.rtx = RtxUnwrapper(rtx_apt, ssrc or 0) if rtx_apt else None
        self._nack_given_up = 0
        self.fan = fan
        self.consumers: list[StreamConsumer] = []
        mime = mime_type.lower()
        self._keyframe_fn = (
            vp8_is_keyframe if mime == "video/vp8" else h264_is_keyframe if mime == "video/h264" else None
        )
        self._h264 = mime == "video/h264"
        self.audio_level_id = audio_level_id
        # RFC 6464 audio level per packet (level -dBov, voice activity): the producer's observer
        self.level_sink: Callable[[int, bool], None] | None = None
        self.paused = False  # the producer is paused: received and stored, not forwarded
        self.packets = 0
        self.bytes = 0
        self.prev_ts = -1
        self.last_pli = -1e9
        self.pli_pending = False  # a PLI could not be sent yet (no SSRC, not connected)
        self.last_sr: tuple[int, int] | None = None
        self._last_sr_at = 0.0
        self.bitrate = 0  # bit/s, smoothed over RATE_WINDOW windows
        self.active = ssrc is not None  # received packets in the last window
        self._base_seq = -1
        self._max_seq = -1  # extended (cycles << 16 | seq)
        self._bad_seq = -1  # RFC 3550 A.1: the sequence number that would confirm a jump
        self._prior_expected = 0
        self._prior_received = 0
        self._window_start = 0.0
        self._bytes_at = 0
        self._packets_at = 0

    # ---- binding ----------------------------------------------------------------------------------
    def bind(self, ssrc: int) -> None:
        """The stream's SSRC (announced, or learned from packets; a restarted layer rebinds)."""
        self.ssrc = ssrc
        self.active = True
        if self.rtx is not None:
            self.rtx.media_ssrc = ssrc

    # ---- the hot path -----------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """One decrypted packet of this stream (SSRC and payload type already checked)."""
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
        seq, ts, _ = SEQ_TS_SSRC.unpack_from(data, 2)
        nack = self.nack
        max_seq = self._max_seq
        if max_seq < 0:
            self._base_seq = self._max_seq = seq
        else:
            udelta = (seq - max_seq) & 0xFFFF
            if udelta < 3000:  # MAX_DROPOUT: in order (with a gap): extend across wraps
                if seq < (max_seq & 0xFFFF):
                    max_seq += 0x10000
                self._max_seq = (max_seq & ~0xFFFF) | seq
            elif udelta <= 0xFF9C and (nack is None or not nack.is_missing(seq)):
                # neither in order nor up to MAX_MISORDER late (nor a repair of a packet still
                # asked for, which can be later than that): a jump
                if not self._jump_confirmed(seq):
                    stats.drop_rtp(RTP_BAD_SEQ)  # a lone far packet must not move the consumers
                    return
                for c in self.consumers:
                    c.on_source_restart(self)
                if nack is not None:
                    nack.reset()
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
            prev_ts = self.prev_ts
            if fn(data, pos, end) and (
                not self._h264 or (ts != prev_ts and (prev_ts >= 0 or _has_sps(data, pos, end)))
            ):
                keyframe = True
                stats.keyframes += 1
            self.prev_ts = ts
        if nack is not None and nack.on_packet(seq, keyframe, now):
            self._request_keyframe(self, True)  # too much lost to repair (sfu.nack_generator)
        level_sink = self.level_sink
        if level_sink is not None and ext_profile == 0xBEDE and self.audio_level_id:
            level = one_byte_extension_byte(data, ext_start, ext_end, self.audio_level_id)
            if level >= 0 and not self.paused:
                level_sink(level & 0x7F, bool(level & 0x80))
        if self.paused:
            return
        consumers = self.consumers
        fan = self.fan
        if (fan is not None
                and self._forward_fast(fan, data, seq, ts, ext_profile, ext_start, ext_end) == len(consumers)):
            return  # everyone forwards this stream steadily, on the compiled fan-out
        for consumer in consumers:
            if consumer.fan is not fan or fan is None:
                consumer.on_rtp(self, data, seq, ts, keyframe, ext_profile, ext_start, ext_end)

    def _forward_fast(
        self, fan: FanOut, data: bytes, seq: int, ts: int, ext_profile: int, ext_start: int, ext_end: int
    ) -> int:
        """The packet to every consumer on the compiled fan-out (one C call); returns how many
        consumers are on it."""
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

    def _jump_confirmed(self, seq: int) -> bool:
        """A packet more than MAX_DROPOUT ahead of (or MAX_MISORDER behind) the highest sequence
        number (RFC 3550 A.1 update_seq). The first such packet is dropped and ``seq + 1``
        remembered; if the next one is exactly that, the sender restarted its numbering: accepted,
        and the receive statistics continue from it (the extended highest sequence number keeps
        growing, the expected count grows by this packet). True: a restart."""
        if seq != self._bad_seq:
            self._bad_seq = (seq + 1) & 0xFFFF
            return False
        self._bad_seq = -1
        old = self._max_seq
        new = old + ((seq - old) & 0xFFFF)
        self._base_seq += new - old - 1
        self._max_seq = new
        return True

    def unwrap_rtx(self, data: bytes) -> bytes | None:
        """The original packet inside a packet of this stream's RTX stream (RFC 4588), or None
        (no RTX for this stream, SSRC unknown, padding-only probe, malformed)."""
        rtx = self.rtx
        if rtx is None or self.ssrc is None:
            return None
        return rtx.unwrap(data)

    # ---- RTCP and periodic work -----------------------------------------------------------------
    def on_sender_report(self, ntp: int, rtp_ts: int, now: float) -> None:
        """The publisher's SR for this stream: remembered (receiver reports, switch timestamps) and
        translated for every consumer forwarding it (in C for those on the compiled fan-out)."""
        self.last_sr = (ntp, rtp_ts)
        self._last_sr_at = now
        fan = self.fan
        if fan is not None and len(fan):
            sent = fan.sender_report(ntp, rtp_ts)
            self._stats.sr_sent += sent
            self._stats.rtcp_out += sent
        for consumer in self.consumers:
            if consumer.fan is None:
                consumer.on_sender_report(self, ntp, rtp_ts)

    def update_rate(self, now: float, window: float = RATE_WINDOW) -> bool:
        """Close a measurement window when ``window`` s have passed; True when ``active`` changed."""
        if self.ssrc is None:
            return False
        if self._window_start == 0.0:
            self._window_start = now
            self._bytes_at, self._packets_at = self.bytes, self.packets
            return False
        elapsed = now - self._window_start
        if elapsed < window:
            return False
        rate = int((self.bytes - self._bytes_at) * 8 / elapsed)
        self.bitrate = rate if self.bitrate == 0 else (self.bitrate + rate) // 2
        was = self.active
        self.active = self.packets > self._packets_at
        self._window_start = now
        self._bytes_at, self._packets_at = self.bytes, self.packets
        return was != self.active

    def nack_tick(self, now: float, sender_ssrc: int) -> tuple[bytes, bool, bool]:
        """The NACK generator's periodic work: the generic NACK to send now (empty: none), whether
        numbers are still missing, and whether numbers were given up since the last call (a frame
        broke at every subscriber: the caller asks for a keyframe)."""
        nack = self.nack
        if nack is None or self.ssrc is None:
            return b"", False, False
        seqs = nack.tick(now)
        given_up = nack.stats.given_up
        broke = given_up != self._nack_given_up
        self._nack_given_up = given_up
        if not seqs:
            return b"", nack.pending > 0, broke
        self._stats.nack_sent += len(seqs)
        packet = rtcp.build_nack_fci(sender_ssrc, self.ssrc, rtcp.nack_fci(seqs))
        return packet, nack.pending > 0, broke

    def __repr__(self) -> str:
        return f"RtpStreamRecv(rid={self.rid!r}, index={self.index}, ssrc={self.ssrc}, bitrate={self.bitrate})"


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
