"""Consumer: one outgoing copy of a producer, sent to one subscriber transport."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import rtcp
from .fast_path import FanOut, Slot
from .nack import NACK_FAR, RetransmitGuard, count_dropped
from .rtp import SEQ_TS_SSRC, make_id_map, parse_header, rewrite_extensions, seq_newer
from .simulcast import HIGHEST, layer_index
from .stats import RTP_NOT_CONNECTED, ConsumerStats, WorkerStats

if TYPE_CHECKING:
    from .producer import Producer
    from .simulcast import SimulcastLayer
    from .webrtc_transport import WebRtcTransport

logger = logging.getLogger(__name__)

WAIT_KEYFRAME = "wait_keyframe"  # rtp_dropped reason: video consumer not yet at a keyframe

# Simulcast bandwidth rules (REMB from the subscriber, see docs/sfu.md "Simulcast")
BWE_DOWN_FACTOR = 0.75  # step down when a falling estimate share < 0.75 x the layer's bitrate
BWE_GRACE = 4.0  # seconds after a switch or a preference change during which REMB cannot step down
BWE_RETRY_UP = 15.0  # seconds after a step down before trying one layer higher again
MAX_SWITCH_TS_JUMP = 90000 * 5  # an SR-derived timestamp offset further than this is not trusted


class Consumer:
    """Forwards a :class:`Producer`'s packets to one subscriber with its own SSRC/seq/timestamps.

    Created only by :meth:`WebRtcTransport.consume`. It forwards once the subscriber's answer
    has been applied (:meth:`WebRtcTransport.accept_answer`); a video consumer starts at a
    keyframe (a PLI is sent to the publisher when it starts).
    """

    def __init__(
        self, transport: WebRtcTransport, producer: Producer, ssrc: int, stats: WorkerStats,
        nack_guard: RetransmitGuard,
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
        self._packets = 0
        self._octets = 0
        # the compiled fan-out this consumer is on (sfu.fast_path), and its state there
        self._fan: FanOut | None = None
        self._slot: Slot | None = None
        # simulcast: the layer forwarded now, the one to switch to at its next keyframe
        self._current: SimulcastLayer | None = None
        self._target: SimulcastLayer | None = None
        self._preferred = HIGHEST
        self._bwe_cap: int | None = None  # highest layer index the subscriber's REMB allows
        self._bwe_at = 0.0  # when the cap (or the preference) last changed
        self._switched_at = 0.0
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
    def transport(self) -> WebRtcTransport:
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
        fan, slot = self._fan, self._slot
        return self._packets + (slot.packets if fan is not None and slot is not None else 0)

    @property
    def octets(self) -> int:
        """Payload octets of :attr:`packets` (as in a sender report)."""
        fan, slot = self._fan, self._slot
        return self._octets + (slot.octets if fan is not None and slot is not None else 0)

    @property
    def fast(self) -> bool:
        """Whether this consumer forwards on the compiled fan-out now (see ``sfu.fast_path``)."""
        return self._fan is not None

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
        return self._current.index if self._current is not None else None

    @property
    def target_layer(self) -> int | None:
        """Index of the layer chosen now; differs from :attr:`current_layer` until its keyframe."""
        return self._target.index if self._target is not None else None

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
        self._bwe_cap = None  # a new wish: try it, REMB steps down again if it must
        self._bwe_at = time.monotonic()
        if self._producer.simulcast and self._ready and not self._closed:
            self._update_target()

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
        self._restart()
        if self._kind == "video":
            self._producer.request_keyframe(force=True, layer=self._target or self._current)

    def close(self) -> None:
        """Stop forwarding; the subscriber's m-line goes inactive at the next offer. Idempotent."""
        if self._closed:
            return
        self._leave_fast()
        self._slot = None
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
        self._leave_fast()
        self._pt = payload_type
        self._id_map = make_id_map(self._producer.extensions, extensions)
        if not self._ready:
            self._ready = True
            self._producer._activate(self)
            if self._kind == "video" and self._transport._connected and not self._producer.simulcast:
                # (when not connected yet, the transport asks once it is: a keyframe that
                # arrived before could not be sent; simulcast: _update_target asks)
                self._producer.request_keyframe(force=True)

    def _restart(self) -> None:
        """After a pause: continue seq/timestamps from where we stopped; video waits for a keyframe."""
        self._leave_fast()
        self._resync = True
        if self._kind == "video":
            self._waiting_keyframe = True

    def _on_source_restart(self) -> None:
        """The publisher restarted its sequence numbers (a jump confirmed by the next packet, RFC
        3550 A.1): the next packet re-derives the offsets from the last one sent, so the output
        continues without a gap (as after a pause, but without waiting for a keyframe: the media
        itself did not stop). The compiled fan-out's slot holds the old offsets: leave it; the next
        packet sent on the Python path joins it again with the new ones."""
        self._leave_fast()
        self._resync = True

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

    # ---- simulcast ------------------------------------------------------------------------------
    def _choose_layer(self) -> SimulcastLayer | None:
        """The layer to forward: the preferred one, capped by REMB, falling back to active layers."""
        layers = self._producer._layers
        want = min(self._preferred, len(layers) - 1)
        if self._bwe_cap is not None:
            want = min(want, self._bwe_cap)
        for layer in reversed(layers[: want + 1]):  # highest active layer at or below the wish
            if layer.ssrc is not None and layer.active:
                return layer
        for layer in layers[want + 1 :]:  # none below: the lowest active one above
            if layer.ssrc is not None and layer.active:
                return layer
        return self._target or self._current

    def _update_target(self) -> None:
        """Re-choose the target layer; a new target is joined at once and asked for a keyframe."""
        if self._closed or not self._ready:
            return
        layer = self._choose_layer()
        old = self._target
        if layer is old:
            return
        if old is not None and old is not self._current and self in old.consumers:
            old.consumers.remove(self)
        self._target = layer
        if layer is None:
            return
        if self not in layer.consumers:
            layer.consumers.append(self)
        self._bwe_at = time.monotonic()
        if layer is not self._current and self._transport._connected:
            self._producer.request_keyframe(force=True, layer=layer)

    def _pending_layer(self) -> SimulcastLayer | None:
        """The layer whose keyframe this consumer waits for (to start, resume or switch)."""
        if self._target is not None and self._target is not self._current:
            return self._target
        if self._waiting_keyframe:
            return self._current
        return None

    def _on_estimate(self, bitrate: int) -> None:
        """The subscriber's REMB share for this consumer: step down / up between layers."""
        previous, self.estimate = self.estimate, bitrate
        layer = self._target or self._current
        if layer is None:
            return
        now = time.monotonic()
        if now - self._bwe_at < BWE_GRACE:
            return
        layers = self._producer._layers
        falling = previous is not None and bitrate < previous  # the receiver detected overuse
        if falling and layer.index > 0 and bitrate < layer.bitrate * BWE_DOWN_FACTOR:
            cap = layer.index - 1
            while cap > 0 and layers[cap].bitrate > bitrate:
                cap -= 1
            self._bwe_cap = cap
            self._bwe_at = now
            self._update_target()
        elif self._bwe_cap is not None:
            nxt = self._bwe_cap + 1
            if nxt >= len(layers):
                self._bwe_cap = None
            elif bitrate >= layers[nxt].bitrate or now - self._bwe_at >= BWE_RETRY_UP:
                self._bwe_cap = nxt if nxt < len(layers) - 1 else None
                self._bwe_at = now
                self._update_target()

    def _switch_to(self, layer: SimulcastLayer, seq: int, ts: int) -> None:
        """At a keyframe of ``layer``: forward it from now on, continuing seq and timestamps."""
        self._leave_fast()
        old = self._current
        if old is not None and old is not layer and old is not self._target and self in old.consumers:
            old.consumers.remove(self)
        self._current = layer
        self._waiting_keyframe = False
        now = time.monotonic()
        if old is None or self._last_seq is None or self._resync:
            self._resync_offsets(seq, ts)
        else:
            # sequence numbers: continue without a gap; timestamps: the new layer's capture time
            # on the old layer's clock (both sender reports), else the wall-clock time since the
            # last forwarded packet; always after the last forwarded timestamp
            ticks = max(1, int((now - self._last_time) * self._clock_rate))
            new_ts = (self._last_ts + ticks) & 0xFFFFFFFF
            if old.last_sr is not None and layer.last_sr is not None:
                old_ntp, old_rtp = old.last_sr
                new_ntp, new_rtp = layer.last_sr
                delta_ntp = ((new_ntp - old_ntp) * self._clock_rate) >> 32
                mapped = ((ts - new_rtp) & 0xFFFFFFFF) if ((ts - new_rtp) & 0xFFFFFFFF) < 0x80000000 else (
                    ((ts - new_rtp) & 0xFFFFFFFF) - 0x100000000
                )
                candidate = (old_rtp + delta_ntp + mapped + self._ts_off) & 0xFFFFFFFF
                step = (candidate - self._last_ts) & 0xFFFFFFFF
                if 0 < step < MAX_SWITCH_TS_JUMP:
                    new_ts = candidate
            self._seq_off = (self._last_seq + 1 - seq) & 0xFFFF
            self._ts_off = (new_ts - ts) & 0xFFFFFFFF
            self._offset_start = seq
            self._resync = False
        self._switched_at = now
        self.layer_switches += 1

    def _forward_layer(
        self,
        layer: SimulcastLayer,
        data: bytes,
        seq: int,
        ts: int,
        keyframe: bool,
        ext_profile: int,
        ext_start: int,
        ext_end: int,
    ) -> None:
        """Hot path, simulcast: a packet of the current layer, or of the target layer (a switch
        happens at the target's keyframe; until then its packets are not forwarded)."""
        if layer is not self._current:
            if not keyframe or layer is not self._target or self._paused or not self._transport._connected:
                if self._current is None:
                    self._stats.drop_rtp(WAIT_KEYFRAME if self._transport._connected else RTP_NOT_CONNECTED)
                return
            self._switch_to(layer, seq, ts)
        if self._forward(data, seq, ts, keyframe, ext_profile, ext_start, ext_end) and layer.fan is not None:
            self._enter_fast(layer.fan)

    def _forward(
        self,
        data: bytes,
        seq: int,
        ts: int,
        keyframe: bool,
        ext_profile: int,
        ext_start: int,
        ext_end: int,
    ) -> bool:
        """Hot path: rewrite one producer packet for this subscriber and send it; True if sent.

        Without simulcast, a consumer whose packet went out joins the producer's compiled fan-out
        (when there is one), which then forwards its next packets with the same rewrite."""
        if self._paused:
            return False
        if not self._transport._connected:
            self._stats.drop_rtp(RTP_NOT_CONNECTED)
            return False
        if self._waiting_keyframe:
            if not keyframe:
                self._stats.drop_rtp(WAIT_KEYFRAME)
                return False
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
        if not self._transport._send_rtp(buf):
            return False
        last = self._last_seq
        if last is None or seq_newer(out_seq, last):
            self._last_seq = out_seq
            self._last_ts = out_ts
            self._last_time = time.monotonic()
        self._packets += 1
        self._octets += len(data) - ext_end
        fan = self._producer._fan
        if fan is not None:
            self._enter_fast(fan)
        return True

    def _enter_fast(self, fan: FanOut) -> None:
        """Hand the steady state to ``fan`` (after a packet sent on the Python path)."""
        if self._fan is not None or self._last_seq is None:
            return
        sink = self._transport._fast_sink
        if sink is None:
            return
        slot = self._slot
        if slot is None:
            slot = self._slot = Slot()
        slot.configure(
            fd=sink.fd, addr=sink.addr, srtp=sink.srtp, session=sink.session, payload_type=self._pt,
            ssrc=self.ssrc, seq_offset=self._seq_off, ts_offset=self._ts_off, id_map=self._id_map,
            last_seq=self._last_seq, last_ts=self._last_ts, last_time=self._last_time,
            packets=self._packets, octets=self._octets,
        )
        sink.flush()  # what the Python path queued for this subscriber goes first
        fan.add(slot)
        self._fan = fan

    def _leave_fast(self) -> None:
        """Back to the Python path: take the last-sent state and the counters from the slot."""
        fan, slot = self._fan, self._slot
        if fan is None or slot is None:
            return
        fan.remove(slot)
        self._fan = None
        self._packets += slot.packets
        self._octets += slot.octets
        if slot.last_seq >= 0:
            self._last_seq = slot.last_seq
            self._last_ts = slot.last_ts
            self._last_time = slot.last_time

    @property
    def rtt(self) -> float | None:
        """Round-trip time to the subscriber (seconds, smoothed) from its receiver reports; None
        until one echoed a sender report of ours."""
        return self._nack_guard.rtt

    def _handle_nack(self, seqs: list[int]) -> None:
        """Re-send requested packets from the producer's history with this consumer's rewrite,
        within the limits of ``sfu.nack`` (window, once per RTT, byte budget)."""
        stats, mine, guard = self._stats, self.stats, self._nack_guard
        stats.nack_received += len(seqs)
        mine.nack_received += len(seqs)
        history = self._current.history if self._current is not None else self._producer.history
        start = self._offset_start
        slot = self._slot
        newest = slot.last_seq if self._fan is not None and slot is not None and slot.last_seq >= 0 else self._last_seq
        now = time.monotonic()
        guard.refill(now)
        for out_seq in seqs:
            if newest is None or guard.far(out_seq, newest):
                count_dropped(stats, mine, NACK_FAR)
                continue
            seq = (out_seq - self._seq_off) & 0xFFFF
            data = None
            if start is not None and not seq_newer(start, seq):
                data = history.get(seq, now)
            if data is not None:
                try:
                    h = parse_header(data)
                except ValueError:
                    data = None
            if data is None:
                stats.retransmit_missed += 1
                mine.retransmit_missed += 1
                continue
            reason = guard.admit(out_seq, len(data), now)
            if reason is not None:
                count_dropped(stats, mine, reason)
                continue
            buf = bytearray(data)
            buf[1] = (buf[1] & 0x80) | self._pt
            SEQ_TS_SSRC.pack_into(buf, 2, out_seq, (h.timestamp + self._ts_off) & 0xFFFFFFFF, self.ssrc)
            if h.ext_profile and self._id_map is not None:
                rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, self._id_map)
            if self._transport._send_rtp(buf):
                stats.retransmitted += 1
                stats.retransmitted_bytes += len(buf)
                mine.retransmitted += 1
                mine.retransmitted_bytes += len(buf)

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
        """A PLI/FIR from the subscriber: ask for a keyframe of the layer it gets (throttled)."""
        self._producer.request_keyframe(layer=self._current or self._target)

    def _send_sender_report(self, ntp: int, rtp_ts: int) -> None:
        """Translate the producer's SR (NTP <-> RTP time) through this consumer's timestamp offset."""
        if self._last_seq is None or self._paused:
            return
        report = rtcp.build_sr(self.ssrc, ntp, rtp_ts + self._ts_off, self.packets, self.octets)
        if self._transport._send_rtcp(report):
            self._stats.sr_sent += 1
