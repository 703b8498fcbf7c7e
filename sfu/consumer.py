"""Consumer: one outgoing copy of a producer, sent to one subscriber transport.

A consumer forwards one of its producer's incoming streams (:class:`~sfu.rtp_stream_recv.RtpStreamRecv`:
the only one of a plain producer, or the simulcast layer chosen by :func:`sfu.layer_selector.select_layer`)
on its own SSRC, with sequence numbers and timestamps rewritten by its
:class:`~sfu.seq_manager.SeqManager`. Streams call it through the
:class:`~sfu.rtp_stream_recv.StreamConsumer` methods, its producer through
:class:`~sfu.producer.ProducerConsumer`; a steady consumer hands its rewrite to the compiled
fan-out of its stream (``sfu.fast_path``) and takes it back at any change.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from . import rtcp, rtx
from .errors import ClosedError, UnsupportedCodecError
from .fast_path import FanOut, FastSink, Slot
from .layer_selector import HOLD_AFTER_UP, PROBE_AFTER, LayerState, select_layer
from .nack import NACK_FAR, RetransmitGuard, count_dropped
from .producer import Producer
from .rtp import SEQ_TS_SSRC, make_id_map, parse_header, rewrite_extensions
from .rtp_stream_recv import RtpStreamRecv
from .sdp import CodecInfo
from .seq_manager import SeqManager
from .simulcast import HIGHEST, layer_index
from .stats import RTP_NOT_CONNECTED, ConsumerStats, WorkerStats
from .vp8_munger import Vp8Munger

logger = logging.getLogger(__name__)

WAIT_KEYFRAME = "wait_keyframe"  # rtp_dropped reason: video consumer not yet at a keyframe


class ConsumerTransport(Protocol):
    """What a consumer needs from its subscriber transport."""

    _connected: bool  # read per packet
    _fast_sink: FastSink | None  # where the compiled fan-out sends this transport's packets

    def _send_rtp(self, data: bytes | bytearray) -> bool: ...

    def _send_rtcp(self, data: bytes) -> bool: ...

    def _consumer_closed(self, consumer: Consumer) -> None: ...


class Consumer:
    """Forwards a :class:`Producer`'s packets to one subscriber with its own SSRC/seq/timestamps.

    Created only by :meth:`WebRtcTransport.consume`. It forwards once the subscriber's answer
    has been applied (:meth:`WebRtcTransport.accept_answer`); a video consumer starts at a
    keyframe (a PLI is sent to the publisher when it starts).
    """

    def __init__(
        self, transport: ConsumerTransport, producer: Producer, ssrc: int, stats: WorkerStats,
        nack_guard: RetransmitGuard, rtx_ssrc: int | None = None,
    ) -> None:
        self.id: str = uuid.uuid4().hex[:16]
        self.on_close: Callable[[], None] | None = None
        self.ssrc = ssrc
        # RTX towards the subscriber (RFC 4588; video): the SSRC offered in a=ssrc-group:FID, the
        # payload type its answer kept (None: not negotiated, retransmissions go on ``ssrc``), the
        # RTX stream's own sequence numbers
        self.rtx_ssrc = rtx_ssrc
        self._rtx_pt: int | None = None
        self._rtx_seq = random.getrandbits(16)
        self.mid: str | None = None  # m-line in the subscriber's SDP, set by create_offer()
        self._producer = producer
        self._transport = transport
        self._stats = stats
        self._kind = producer.kind
        self._simulcast = producer.simulcast
        self._closed = False
        self._paused = False
        self._ready = False
        self._pt = producer.codec_info.payload_type
        self._id_map: bytes | None = None
        self._extensions: dict[str, int] = {}  # the subscriber's header extension ids (_configure)
        self._needs_keyframe = producer.kind == "video"  # a stream is joined at a keyframe
        self._waiting_keyframe = False  # after a resume: forward again from a keyframe
        self._seq = SeqManager(producer.codec_info.clock_rate)
        # VP8 picture ids continue across layer switches (sfu.vp8_munger); None: not simulcast VP8
        self._vp8: Vp8Munger | None = (
            Vp8Munger() if producer.simulcast and producer.codec_info.mime_type.lower() == "video/vp8" else None
        )
        self._packets = 0
        self._octets = 0
        # the compiled fan-out this consumer is on (sfu.fast_path), and its state there
        self.fan: FanOut | None = None
        self._slot: Slot | None = None
        # the stream forwarded now, the one to switch to at its next keyframe (the same but at a
        # simulcast switch, and before the first keyframe)
        self._current: RtpStreamRecv | None = None
        self._target: RtpStreamRecv | None = None
        # simulcast layer choice (sfu.layer_selector)
        self._preferred = HIGHEST
        self._available: float | None = None  # the estimate the choice uses (None: none, or reset)
        self._changed_at = 0.0  # when the target or the preference last changed
        self._last_step = 0  # direction of that change: +1 up, -1 down, 0 a new wish
        self._remb = True  # the estimate is a REMB share (False: on_bandwidth's estimator)
        self.estimate: int | None = None  # last REMB share for this consumer (bit/s)
        self.layer_switches = 0
        # NACK answering: this consumer's counters and limits (sfu.nack; made by the transport from
        # the worker's settings)
        self.stats = ConsumerStats()
        self._nack_guard = nack_guard

    # ---- public API -------------------------------------------------------------------------
    @property
    def producer(self) -> Producer:
        return self._producer

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def transport(self) -> ConsumerTransport:
        return self._transport

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def packets(self) -> int:
        """RTP packets sent to the subscriber (retransmissions not counted)."""
        slot = self._slot
        return self._packets + (slot.packets if self.fan is not None and slot is not None else 0)

    @property
    def octets(self) -> int:
        """Payload octets of :attr:`packets` (as in a sender report)."""
        slot = self._slot
        return self._octets + (slot.octets if self.fan is not None and slot is not None else 0)

    @property
    def last_sent_seq(self) -> int | None:
        """The newest sequence number sent to the subscriber (None before the first packet)."""
        slot = self._slot
        if self.fan is not None and slot is not None and slot.last_seq >= 0:
            return int(slot.last_seq)
        return self._seq.last_seq

    @property
    def fast(self) -> bool:
        """Whether this consumer forwards on the compiled fan-out now (see ``sfu.fast_path``)."""
        return self.fan is not None

    @property
    def payload_type(self) -> int:
        """Payload type negotiated with the subscriber (valid once the answer is applied)."""
        return self._pt

    @property
    def preferred_layer(self) -> int:
        """The requested simulcast layer, clamped to the producer's layers (0 = lowest)."""
        return min(self._preferred, self._producer.layers - 1)

    @property
    def current_layer(self) -> int | None:
        """Index of the simulcast layer being forwarded (None before the first keyframe, and
        without simulcast)."""
        return self._current.index if self._current is not None and self._simulcast else None

    @property
    def target_layer(self) -> int | None:
        """Index of the layer chosen now; differs from :attr:`current_layer` until its keyframe."""
        return self._target.index if self._target is not None and self._simulcast else None

    def set_preferred_layer(self, layer: int | str) -> None:
        """Choose the simulcast layer: an index (0 = lowest, clamped to what exists) or a quality
        ``"low" | "medium" | "high"`` (0, 1, 2). The switch happens at the next keyframe of that
        layer (a PLI asks for one at once). Without simulcast it is only remembered. Raises
        ``ValueError`` for anything else.
        """
        index = layer_index(layer)
        if index == self._preferred:
            return
        self._preferred = index
        self._available = None  # a new wish: try it, the next estimate steps down again if it must
        self._changed_at = time.monotonic()
        self._last_step = 0
        self.update_target()

    def set_quality(self, quality: str) -> None:
        """``"low" | "medium" | "high"``: the same as :meth:`set_preferred_layer`."""
        self.set_preferred_layer(quality)

    def pause(self) -> None:
        self._leave_fast()
        self._paused = True

    def resume(self) -> None:
        if not self._paused or self._closed:
            return
        self._paused = False
        self.on_producer_resume()
        if self._kind == "video":
            self._producer.request_keyframe(force=True, layer=self._target or self._current)

    def close(self) -> None:
        """Stop forwarding; the subscriber's m-line goes inactive at the next offer. Idempotent."""
        if self._closed:
            return
        self._leave_fast()
        self._slot = None
        self._closed = True
        self._producer.detach_consumer(self)
        self._transport._consumer_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("consumer on_close callback failed")

    def replace_producer(self, producer: Producer) -> None:
        """Forward ``producer`` instead of the current one, without renegotiating the subscriber
        (e.g. a participant's raw microphone -> its noise-suppressed one): same kind and codec
        (H.264: same profile and packetization mode). The consumer keeps its SSRC, m-line,
        payload type and track id (``a=msid`` still names the first producer); its sequence
        numbers and timestamps continue from the last packet sent (sfu.seq_manager); video waits
        for the new source's keyframe (asked for at once); the old producer's fan-out drops it and
        its close no longer closes this consumer, the new one's does. Simulcast: the preferred
        layer carries over. Raises ``ClosedError`` (either closed), ``UnsupportedCodecError``."""
        if self._closed:
            raise ClosedError("consumer is closed")
        if producer.closed:
            raise ClosedError("producer is closed")
        old = self._producer
        if producer is old:
            return
        if producer.kind != self._kind or not same_codec(producer.codec_info, old.codec_info):
            raise UnsupportedCodecError(
                f"cannot replace {old.codec} with {producer.codec}: the subscriber negotiated {old.codec}"
            )
        self._leave_fast()
        old.detach_consumer(self)
        self._producer = producer
        self._simulcast = producer.simulcast
        self._current = self._target = None
        self._waiting_keyframe = False
        self._id_map = make_id_map(producer.extensions, self._extensions) if self._ready else None
        producer._add_consumer(self)
        self.update_target()  # joins the new stream, asks for its keyframe (once ready)

    def __repr__(self) -> str:
        return (
            f"Consumer(id={self.id!r}, producer={self._producer.id!r}, kind={self._kind!r}, mid={self.mid!r})"
        )

    @property
    def rtt(self) -> float | None:
        """Round-trip time to the subscriber (seconds, smoothed) from its receiver reports; None
        until one echoed a sender report of ours."""
        return self._nack_guard.rtt

    # ---- the producer's calls (ProducerConsumer) --------------------------------------------------
    def on_producer_resume(self) -> None:
        """After a pause: continue seq/timestamps from where we stopped; video waits for a keyframe."""
        self._leave_fast()
        self._seq.resync()
        if self._kind == "video":
            self._waiting_keyframe = True

    def update_target(self) -> None:
        """Re-choose the stream to forward; a new target is joined at once and asked for a keyframe
        (the switch happens at that keyframe, see :meth:`on_rtp`)."""
        self._retarget(self._choose(probe=False))

    def pending_keyframe(self) -> RtpStreamRecv | None:
        """The stream whose keyframe this consumer waits for (to start, resume or switch)."""
        if not self._ready or self._closed:
            return None
        if self._target is not None and self._target is not self._current:
            return self._target
        if self._waiting_keyframe:
            return self._current
        return None

    def _choose(self, probe: bool) -> RtpStreamRecv | None:
        streams = self._producer.streams
        if len(streams) == 1:
            return streams[0]
        target = self._target or self._current
        index = select_layer(
            self._preferred,
            [LayerState(s.ssrc is not None and s.active, s.bitrate) for s in streams],
            target.index if target is not None else None,
            self._available,
            time.monotonic() - self._changed_at,
            probe_after=PROBE_AFTER if probe else None,
            last_step=self._last_step,
            hold_after_up=None if self._remb else HOLD_AFTER_UP,
        )
        return streams[index] if index is not None else target

    def _retarget(self, stream: RtpStreamRecv | None) -> None:
        if self._closed or not self._ready:
            return
        old = self._target
        if stream is old:
            return
        if old is not None and old is not self._current and self in old.consumers:
            old.consumers.remove(self)
        self._target = stream
        if stream is None:
            return
        if self not in stream.consumers:
            stream.consumers.append(self)
        self._changed_at = time.monotonic()
        self._last_step = 0 if old is None else (stream.index > old.index) - (stream.index < old.index)
        if stream is not self._current and self._transport._connected:
            self._producer.request_keyframe(force=True, layer=stream)

    def _on_estimate(self, bitrate: int) -> None:
        """The subscriber's REMB share for this consumer: the layer follows it (a receiver-side
        estimate never exceeds what it receives: one layer up is probed after a while)."""
        self.estimate = bitrate
        if not self._simulcast or (self._target or self._current) is None:
            return
        if not self._remb:
            return  # an estimator (on_bandwidth) already takes the REMB into account
        self._available = bitrate
        self._retarget(self._choose(probe=True))

    def on_bandwidth(self, available_bps: float | None) -> None:
        """A bandwidth estimate towards the subscriber for this consumer (bit/s; None: unknown);
        simulcast: the layer follows it (down fast, up with hysteresis). From the first call on,
        REMBs no longer move the layer by themselves (the estimator reads them)."""
        self._remb = False
        self._available = available_bps
        if self._simulcast:
            self._retarget(self._choose(probe=False))

    # ---- the stream's calls (StreamConsumer): the packet path ------------------------------------
    def on_rtp(
        self, stream: RtpStreamRecv, data: bytes, seq: int, ts: int, keyframe: bool,
        ext_profile: int, ext_start: int, ext_end: int,
    ) -> None:
        """Hot path: a packet of the stream forwarded now (rewritten and sent), or of the target
        (the switch happens at the target's keyframe; until then its packets are not forwarded).
        A consumer whose packet went out joins the stream's compiled fan-out (when there is one),
        which then forwards its next packets with the same rewrite."""
        if self._paused:
            return
        transport = self._transport
        if stream is not self._current:
            connected = transport._connected
            if not connected or stream is not self._target or (self._needs_keyframe and not keyframe):
                if self._current is None:
                    self._stats.drop_rtp(WAIT_KEYFRAME if connected else RTP_NOT_CONNECTED)
                return
            self._switch_to(stream, seq, ts, data, ext_end)
        elif not transport._connected:
            self._stats.drop_rtp(RTP_NOT_CONNECTED)
            return
        if self._waiting_keyframe:
            if not keyframe:
                self._stats.drop_rtp(WAIT_KEYFRAME)
                return
            self._waiting_keyframe = False
        sm = self._seq
        if sm.resync_pending:
            sm.sync(seq, ts, time.monotonic())
        buf = bytearray(data)
        buf[1] = (buf[1] & 0x80) | self._pt
        out_seq = (seq + sm.seq_offset) & 0xFFFF
        out_ts = (ts + sm.ts_offset) & 0xFFFFFFFF
        SEQ_TS_SSRC.pack_into(buf, 2, out_seq, out_ts, self.ssrc)
        id_map = self._id_map
        if ext_profile and id_map is not None:
            rewrite_extensions(buf, ext_profile, ext_start, ext_end, id_map)
        vp8 = self._vp8
        if vp8 is not None and vp8.active:
            vp8.rewrite(buf, ext_end, len(buf))
        if not transport._send_rtp(buf):
            return
        last = sm.last_seq
        if last is None or 0 < ((out_seq - last) & 0xFFFF) < 0x8000:  # the newest sent (SeqManager.sent)
            sm.last_seq = out_seq
            sm.last_ts = out_ts
            sm.last_time = time.monotonic()
        self._packets += 1
        self._octets += len(data) - ext_end
        fan = stream.fan
        if fan is not None:
            self._enter_fast(fan)

    def on_source_restart(self, stream: RtpStreamRecv) -> None:
        """The publisher restarted its sequence numbers (a jump confirmed by the next packet, RFC
        3550 A.1): the next packet re-derives the offsets from the last one sent, so the output
        continues without a gap (as after a pause, but without waiting for a keyframe: the media
        itself did not stop). The compiled fan-out's slot holds the old offsets: leave it; the next
        packet sent on the Python path joins it again with the new ones."""
        if stream is self._current:
            self._leave_fast()
            self._seq.resync()

    def on_sender_report(self, stream: RtpStreamRecv, ntp: int, rtp_ts: int) -> None:
        """Translate the publisher's SR (NTP <-> RTP time) through this consumer's timestamp offset."""
        seq = self._seq
        if stream is not self._current or seq.last_seq is None or self._paused:
            return
        report = rtcp.build_sr(self.ssrc, ntp, rtp_ts + seq.ts_offset, self.packets, self.octets)
        if self._transport._send_rtcp(report):
            self._stats.sr_sent += 1

    def _switch_to(self, stream: RtpStreamRecv, seq: int, ts: int, data: bytes, payload_start: int) -> None:
        """At a keyframe of ``stream`` (any packet for audio): forward it from now on, continuing
        sequence numbers and timestamps (sfu.seq_manager) and VP8 picture ids (sfu.vp8_munger)."""
        self._leave_fast()
        old = self._current
        if self._vp8 is not None and old is not None and old is not stream:
            self._continue_vp8(old, self._vp8, data, payload_start)
        if old is not None and old is not stream and old is not self._target and self in old.consumers:
            old.consumers.remove(self)
        self._current = stream
        self._waiting_keyframe = False
        now = time.monotonic()
        if old is None:
            self._seq.sync(seq, ts, now)
        else:
            self._seq.switch(seq, ts, now, old.last_sr, stream.last_sr)
        if self._simulcast:
            self.layer_switches += 1

    def _continue_vp8(self, old: RtpStreamRecv, vp8: Vp8Munger, data: bytes, payload_start: int) -> None:
        """The new layer's ids follow the last packet sent from ``old`` (read back from its history:
        once per switch, nothing per packet); when it is gone, the offsets stay."""
        sm = self._seq
        last = sm.last_seq
        seq = sm.incoming(last) if last is not None else None
        packet = old.history.get(seq, time.monotonic()) if seq is not None else None
        if packet is None:
            return
        try:
            h = parse_header(packet)
        except ValueError:
            return
        vp8.switch(vp8.outgoing(packet, h.payload_start, h.payload_end), data, payload_start, len(data))

    # ---- the transport's calls -------------------------------------------------------------------
    def _configure(self, payload_type: int, extensions: dict[str, int], rtx_payload_type: int | None = None) -> None:
        """Apply the subscriber's negotiated PT and header extension ids (and the RTX payload type
        when its answer kept RTX for that PT); start forwarding."""
        self._leave_fast()
        self._pt = payload_type
        self._rtx_pt = rtx_payload_type if self.rtx_ssrc is not None else None
        self._extensions = dict(extensions)
        self._id_map = make_id_map(self._producer.extensions, extensions)
        if not self._ready:
            self._ready = True
            # join the stream to forward; a video consumer asks for a keyframe at once when its
            # transport is connected (else the transport asks once it is: a keyframe that
            # arrived before could not be sent)
            self.update_target()

    def _leave_fast(self) -> None:
        """Back to the Python path: take the last-sent state and the counters from the slot."""
        fan, slot = self.fan, self._slot
        if fan is None or slot is None:
            return
        fan.remove(slot)
        self.fan = None
        self._packets += slot.packets
        self._octets += slot.octets
        self._seq.restore(slot.last_seq, slot.last_ts, slot.last_time)

    def _enter_fast(self, fan: FanOut) -> None:
        """Hand the steady state to ``fan`` (after a packet sent on the Python path)."""
        sm = self._seq
        if self.fan is not None or sm.last_seq is None:
            return
        sink = self._transport._fast_sink
        if sink is None:
            return
        slot = self._slot
        if slot is None:
            slot = self._slot = Slot()
        slot.configure(
            fd=sink.fd, addr=sink.addr, srtp=sink.srtp, session=sink.session, payload_type=self._pt,
            ssrc=self.ssrc, seq_offset=sm.seq_offset, ts_offset=sm.ts_offset, id_map=self._id_map,
            last_seq=sm.last_seq, last_ts=sm.last_ts, last_time=sm.last_time,
            packets=self._packets, octets=self._octets,
            vp8_pid_offset=vp8.pid_offset if (vp8 := self._vp8) is not None else 0,
            vp8_tl0_offset=vp8.tl0_offset if vp8 is not None else 0,
        )
        sink.flush()  # what the Python path queued for this subscriber goes first
        fan.add(slot)
        self.fan = fan

    def _handle_nack(self, seqs: list[int]) -> None:
        """Re-send requested packets from the current stream's history with this consumer's
        rewrite, within the limits of ``sfu.nack`` (window, once per RTT, byte budget)."""
        stats, mine, guard = self._stats, self.stats, self._nack_guard
        stats.nack_received += len(seqs)
        mine.nack_received += len(seqs)
        stream = self._current
        sm = self._seq
        newest = self.last_sent_seq
        now = time.monotonic()
        guard.refill(now)
        for out_seq in seqs:
            if newest is None or guard.far(out_seq, newest):
                count_dropped(stats, mine, NACK_FAR)
                continue
            seq = sm.incoming(out_seq)
            data = stream.history.get(seq, now) if stream is not None and seq is not None else None
            if data is not None:
                try:
                    h = parse_header(data)
                except ValueError:
                    data = None
            if data is None:
                stats.retransmit_missed += 1
                mine.retransmit_missed += 1
                continue
            reason = guard.admit(out_seq, len(data) + (2 if self._rtx_pt is not None else 0), now)  # as sent
            if reason is not None:
                count_dropped(stats, mine, reason)
                continue
            buf = bytearray(data)
            buf[1] = (buf[1] & 0x80) | self._pt
            SEQ_TS_SSRC.pack_into(buf, 2, out_seq, (h.timestamp + sm.ts_offset) & 0xFFFFFFFF, self.ssrc)
            if h.ext_profile and self._id_map is not None:
                rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, self._id_map)
            if self._vp8 is not None and self._vp8.active:
                self._vp8.rewrite(buf, h.payload_start, h.payload_end)
            out: bytes | bytearray | None = buf
            rtx_pt = self._rtx_pt
            if rtx_pt is not None and self.rtx_ssrc is not None:
                out = rtx.wrap(buf, rtx_pt, self.rtx_ssrc, self._rtx_seq)
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            if out is not None and self._transport._send_rtp(out):
                stats.retransmitted += 1
                stats.retransmitted_bytes += len(buf)  # the packet repeated (RTX adds its 2-byte OSN)
                mine.retransmitted += 1
                mine.retransmitted_bytes += len(buf)
                if out is not buf:
                    stats.rtx_sent += 1
                    mine.rtx_sent += 1

    @property
    def rtx(self) -> bool:
        """Whether the subscriber negotiated RTX for this consumer (retransmissions and padding
        probes go on :attr:`rtx_ssrc`)."""
        return self._rtx_pt is not None

    def send_padding(self, count: int) -> int:
        """Send ``count`` padding-only RTX packets (bandwidth probes, ``sfu.probe``); returns the
        RTP bytes sent (0 without RTX, before the first forwarded packet, or while paused)."""
        rtx_pt, rtx_ssrc, sm = self._rtx_pt, self.rtx_ssrc, self._seq
        if rtx_pt is None or rtx_ssrc is None or self._paused or self._closed:
            return 0
        if sm.last_seq is None:
            return 0  # nothing forwarded yet: no timestamp to pad with
        ts = self._slot.last_ts if self.fan is not None and self._slot is not None else sm.last_ts
        sent = 0
        stats, mine, send = self._stats, self.stats, self._transport._send_rtp
        for _ in range(count):
            packet = rtx.padding(rtx_pt, rtx_ssrc, self._rtx_seq, ts)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            if not send(packet):
                break
            sent += len(packet)
            stats.padding_sent += 1
            stats.padding_bytes += len(packet)
            mine.padding_sent += 1
        return sent

    @property
    def held_down(self) -> bool:
        """A simulcast consumer whose layer is below its wish while a layer between them sends:
        what a padding probe may win back."""
        stream = self._target or self._current
        streams = self._producer.streams
        if len(streams) < 2 or stream is None or self._paused:
            return False
        return any(s.ssrc is not None and s.active for s in streams[stream.index + 1:self._preferred + 1])

    def probe_goal(self) -> float:
        """The video bitrate (bit/s) this consumer would send on the layer above the one it targets
        when its wish allows one (simulcast), else on the layer it targets; 0 when unknown. A
        bandwidth probe asks whether the downlink carries the sum of these (``sfu.congestion``)."""
        stream = self._target or self._current
        if stream is None or self._paused:
            return 0.0
        streams = self._producer.streams
        if len(streams) > 1 and stream.index < min(self._preferred, len(streams) - 1):
            for up in streams[stream.index + 1:self._preferred + 1]:
                if up.ssrc is not None and up.active:
                    return float(up.bitrate)
        return float(stream.bitrate)

    def _on_report_block(self, lsr: int, dlsr: int) -> None:
        """A receiver report block about this consumer's SSRC: an RTT sample when it echoes one of
        our sender reports (RFC 3550 6.4.1: RTT = arrival - LSR - DLSR; our send time of that SR
        stands for LSR, since the NTP time in it is the publisher's)."""
        if lsr == 0:
            return  # no sender report received yet
        sent = self._producer.sr_times.sent_at(lsr)
        if sent is not None:
            self._nack_guard.on_rtt_sample(time.monotonic() - sent - dlsr / 65536)

    def _request_keyframe(self) -> None:
        """A PLI/FIR from the subscriber: ask for a keyframe of the stream it gets (throttled)."""
        self._producer.request_keyframe(layer=self._current or self._target)


def same_codec(a: CodecInfo, b: CodecInfo) -> bool:
    """Whether a subscriber negotiated for ``b`` can take ``a``'s packets: same MIME type and clock
    rate; H.264 also the same packetization mode and profile (profile_idc + constraints)."""
    if a.mime_type.lower() != b.mime_type.lower() or a.clock_rate != b.clock_rate:
        return False
    if a.mime_type.lower() != "video/h264":
        return True
    pa, pb = a.parameters, b.parameters
    return (str(pa.get("packetization-mode", "0")) == str(pb.get("packetization-mode", "0"))
            and str(pa.get("profile-level-id", "42001f")).lower()[:4]
            == str(pb.get("profile-level-id", "42001f")).lower()[:4])


__all__ = ["WAIT_KEYFRAME", "Consumer", "ConsumerTransport", "same_codec"]
