"""The sending half of a pipe: :class:`PipeConsumer` and what the other end needs to know of it.

A :class:`PipeConsumer` (mediasoup's PipeConsumer) takes *every* stream of a producer (all its
simulcast layers) and sends each over the pipe on an SSRC of its own, with the producer's payload
type, header extension ids and RTP timestamps unchanged: the router at the other end chooses the
layer for each of its subscribers (so the choice follows each subscriber's own downlink), and
forwarding there is the same as for a local publisher. Only sequence numbers are rewritten, by a
per-stream offset, so that a stream goes on without a jump after a pause of the producer or a
restart of the publisher's numbering. A video stream starts (and restarts after a pause) at a
keyframe, asked for at once.

What the other end produces is described by :class:`PipeProducerDescription` (``consumer.description``):
a plain value with ``to_dict`` / ``from_dict``, for the signalling to carry between processes.

What comes back over the pipe for these SSRCs: PLI/FIR (a subscriber over there needs a keyframe:
asked of the origin producer), generic NACKs (answered here, from the origin stream's packet
history: the pipe is one more hop that repairs its own losses, as between a publisher and the
SFU), receiver reports (their round trip times pace those answers).
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import rtcp
from .errors import SfuError
from .fast_path import FanOut
from .nack import NACK_FAR, RetransmitGuard
from .producer import Producer
from .rtp import SEQ_TS_SSRC
from .rtp_stream_recv import RtpStreamRecv
from .sdp import CodecInfo
from .seq_manager import seq_newer
from .stats import WorkerStats

__all__ = ["InvalidPipeDescriptionError", "PipeConsumer", "PipeConsumerTransport", "PipeProducerDescription"]

logger = logging.getLogger(__name__)

_SEQ = struct.Struct("!H")
WAIT_KEYFRAME = "wait_keyframe"  # rtp_dropped reason (as the consumers'): a pipe stream waits for a keyframe


class InvalidPipeDescriptionError(SfuError):
    """A :class:`PipeProducerDescription` (or its dict) that cannot describe a producer."""

    code = "invalid_pipe_description"


@dataclass(frozen=True, slots=True)
class PipeProducerDescription:
    """What the far end of a pipe produces for one :class:`PipeConsumer` (mediasoup passes the
    pipe consumer's ``rtpParameters`` to the remote ``produce``): the origin producer's id (the far
    producer takes the same id, so a track keeps its name across workers), kind, source label, codec,
    header extensions, one SSRC per stream (with the simulcast rids, lowest layer first), and the
    origin's msid stream id (the far producer keeps it: a publisher's tracks stay one stream).
    ``paused``: whether the origin was paused when described (information: the far producer is
    not paused by it, the origin's pause already stops the packets)."""

    producer_id: str
    kind: str
    source: str
    codec: CodecInfo
    extensions: Mapping[str, int] = field(default_factory=dict)
    ssrcs: tuple[int, ...] = ()
    rids: tuple[str, ...] = ()
    paused: bool = False
    stream_id: str = ""  # the origin's a=msid stream id (its transport's): the far producer keeps it

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (str, int, bool, lists and dicts only)."""
        c = self.codec
        return {
            "producer_id": self.producer_id, "kind": self.kind, "source": self.source,
            "codec": {"mime_type": c.mime_type, "payload_type": c.payload_type, "clock_rate": c.clock_rate,
                      "channels": c.channels, "parameters": dict(c.parameters), "feedback": list(c.feedback)},
            "extensions": dict(self.extensions), "ssrcs": list(self.ssrcs), "rids": list(self.rids),
            "paused": self.paused, "stream_id": self.stream_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipeProducerDescription:
        """The inverse of :meth:`to_dict`, checked (it may come from another process): raises
        :class:`InvalidPipeDescriptionError`."""
        try:
            c = data["codec"]
            codec = CodecInfo(
                mime_type=str(c["mime_type"]), payload_type=int(c["payload_type"]), clock_rate=int(c["clock_rate"]),
                channels=None if c.get("channels") is None else int(c["channels"]),
                parameters={str(k): v for k, v in dict(c.get("parameters") or {}).items()},
                feedback=tuple(str(f) for f in c.get("feedback") or ()),
            )
            description = cls(
                producer_id=str(data["producer_id"]), kind=str(data["kind"]), source=str(data.get("source", "")),
                codec=codec, extensions={str(k): int(v) for k, v in dict(data.get("extensions") or {}).items()},
                ssrcs=tuple(int(s) for s in data["ssrcs"]), rids=tuple(str(r) for r in data.get("rids") or ()),
                paused=bool(data.get("paused", False)), stream_id=str(data.get("stream_id") or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidPipeDescriptionError(f"not a pipe producer description: {exc}") from exc
        description.check()
        return description

    def check(self) -> None:
        """Raises :class:`InvalidPipeDescriptionError` for values no producer can have."""
        if self.kind not in ("audio", "video") or not self.codec.mime_type.lower().startswith(self.kind + "/"):
            raise InvalidPipeDescriptionError(f"kind {self.kind!r} with codec {self.codec.mime_type!r}")
        if not 0 <= self.codec.payload_type < 128 or self.codec.clock_rate <= 0:
            raise InvalidPipeDescriptionError("payload type or clock rate out of range")
        if not self.ssrcs or len(set(self.ssrcs)) != len(self.ssrcs) or not all(0 < s < 1 << 32 for s in self.ssrcs):
            raise InvalidPipeDescriptionError("ssrcs: one distinct non-zero 32-bit SSRC per stream")
        if len(self.ssrcs) > 1 and len(self.rids) != len(self.ssrcs):
            raise InvalidPipeDescriptionError("a simulcast description names one rid per SSRC")
        if not all(0 < i < 256 for i in self.extensions.values()):
            raise InvalidPipeDescriptionError("header extension ids are 1..255")
        if not self.producer_id or len(self.producer_id) > 128:
            raise InvalidPipeDescriptionError("producer_id: 1 to 128 characters")
        if len(self.stream_id) > 64 or not all(c.isalnum() or c in "-_." for c in self.stream_id):
            raise InvalidPipeDescriptionError("stream_id: up to 64 letters, digits, '-', '_', '.'")


class PipeConsumerTransport(Protocol):
    """What a pipe consumer needs of its pipe transport."""

    _connected: bool

    def _send_rtp(self, data: bytes | bytearray) -> bool: ...

    def _send_rtcp(self, data: bytes) -> bool: ...

    def _consumer_closed(self, consumer: PipeConsumer) -> None: ...


class _Layer:
    """The send state of one stream of the producer on the pipe."""

    __slots__ = ("keyframe", "last_seq", "octets", "packets", "seq_offset", "ssrc", "start", "stream", "sync")

    def __init__(self, stream: RtpStreamRecv, ssrc: int, video: bool) -> None:
        self.stream = stream
        self.ssrc = ssrc
        self.seq_offset = 0  # out = in + offset; 0 until a pause or a restart: the publisher's numbers
        self.start = -1  # the incoming sequence number from which the offset holds
        self.last_seq = -1  # newest sent (-1: none)
        self.sync = True  # the next packet sent derives the offset
        self.keyframe = video  # and must be a keyframe
        self.packets = 0
        self.octets = 0


class PipeConsumer:
    """Every stream of a producer, over a pipe. Created only by :meth:`sfu.PipeTransport.consume`.

    ``on_close`` (optional, a plain attribute) runs once when it closes: its producer closed, its
    pipe transport closed, or :meth:`close`."""

    fan: FanOut | None = None  # never on a compiled fan-out: the streams call on_rtp

    def __init__(
        self, transport: PipeConsumerTransport, producer: Producer, ssrcs: tuple[int, ...], stats: WorkerStats,
        guard: RetransmitGuard,
    ) -> None:
        self.id: str = uuid.uuid4().hex[:16]
        self.on_close: Callable[[], None] | None = None
        self._transport = transport
        self._producer = producer
        self._stats = stats
        self._guard = guard
        self._video = producer.kind == "video"
        self._closed = False
        self._layers = tuple(_Layer(s, ssrc, self._video) for s, ssrc in zip(producer.streams, ssrcs, strict=True))
        self._by_ssrc = {layer.ssrc: layer for layer in self._layers}
        self.nack_received = 0  # sequence numbers the far end asked for
        self.retransmitted = 0  # of those, re-sent from the origin's history
        self.keyframe_requests = 0  # PLI/FIR from the far end
        # the far producer when both ends are in this process (Router.pipe_to_router): closed with it
        self._far: Producer | None = None
        for stream in producer.streams:
            stream.consumers.append(self)

    # ---- public API -------------------------------------------------------------------------
    @property
    def producer(self) -> Producer:
        return self._producer

    @property
    def kind(self) -> str:
        return self._producer.kind

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ssrcs(self) -> tuple[int, ...]:
        """The SSRC of each stream on the pipe (lowest simulcast layer first)."""
        return tuple(layer.ssrc for layer in self._layers)

    @property
    def packets(self) -> int:
        """RTP packets sent over the pipe (retransmissions not counted)."""
        return sum(layer.packets for layer in self._layers)

    @property
    def description(self) -> PipeProducerDescription:
        """What the far end produces for this consumer (``PipeTransport.produce`` there)."""
        p = self._producer
        codec = p.codec_info
        if p.kind == "video" and not codec.nack:
            # the pipe is a network hop: the far producer asks for what it lost (answered here)
            # even when the origin's own publisher does not (a direct producer)
            codec = dataclasses.replace(codec, feedback=(*codec.feedback, "nack"))
        return PipeProducerDescription(
            producer_id=p.id, kind=p.kind, source=p.source, codec=codec, extensions=dict(p.extensions),
            ssrcs=self.ssrcs, rids=p.rids, paused=p.paused, stream_id=p.transport.stream_id,
        )

    def stats_dict(self) -> dict[str, int]:
        """``packets``, ``octets``, ``nack_received``, ``retransmitted``, ``keyframe_requests``."""
        return {"packets": self.packets, "octets": sum(layer.octets for layer in self._layers),
                "nack_received": self.nack_received, "retransmitted": self.retransmitted,
                "keyframe_requests": self.keyframe_requests}

    def close(self) -> None:
        """Stop sending (the far end's producer is told with an RTCP BYE). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._producer.detach_consumer(self)
        self._transport._consumer_closed(self)
        far, self._far = self._far, None
        if far is not None:
            far.close()
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("pipe consumer on_close callback failed")

    def __repr__(self) -> str:
        return f"PipeConsumer(id={self.id!r}, producer={self._producer.id!r}, ssrcs={self.ssrcs})"

    # ---- the streams' calls (StreamConsumer): the packet path --------------------------------------
    def on_rtp(
        self, stream: RtpStreamRecv, data: bytes, seq: int, ts: int, keyframe: bool,
        ext_profile: int, ext_start: int, ext_end: int,
    ) -> None:
        """Hot path: one packet of one stream, out on its pipe SSRC (sequence number offset only)."""
        layer = self._layers[stream.index]
        if layer.sync:
            if layer.keyframe and not keyframe:
                self._stats.drop_rtp(WAIT_KEYFRAME)
                return
            if not self._transport._connected:
                return  # counted by the transport's send when it is connected, not before
            layer.seq_offset = 0 if layer.last_seq < 0 else (layer.last_seq + 1 - seq) & 0xFFFF
            layer.start = seq
            layer.sync = layer.keyframe = False
        buf = bytearray(data)
        out_seq = (seq + layer.seq_offset) & 0xFFFF
        SEQ_TS_SSRC.pack_into(buf, 2, out_seq, ts, layer.ssrc)
        if not self._transport._send_rtp(buf):
            return
        last = layer.last_seq
        if last < 0 or 0 < ((out_seq - last) & 0xFFFF) < 0x8000:
            layer.last_seq = out_seq
        layer.packets += 1
        layer.octets += len(data) - ext_end

    def on_source_restart(self, stream: RtpStreamRecv) -> None:
        """The publisher restarted its numbering: continue ours from the last packet sent."""
        self._layers[stream.index].sync = True

    def on_sender_report(self, stream: RtpStreamRecv, ntp: int, rtp_ts: int) -> None:
        """The publisher's SR for a stream: over the pipe on that stream's SSRC (timestamps are the
        publisher's, so NTP/RTP need no translation)."""
        layer = self._layers[stream.index]
        if layer.last_seq < 0 or self._closed:
            return
        if self._transport._send_rtcp(rtcp.build_sr(layer.ssrc, ntp, rtp_ts, layer.packets, layer.octets)):
            self._stats.sr_sent += 1

    # ---- the producer's calls (ProducerConsumer) --------------------------------------------------
    def on_producer_resume(self) -> None:
        """After a pause: every stream continues its numbering, video from a keyframe."""
        for layer in self._layers:
            layer.sync = True
            layer.keyframe = self._video

    def update_target(self) -> None:
        """Layers appeared or stopped: nothing to choose (every stream goes over the pipe); a
        stream still waiting for its first keyframe asks again (throttled by the producer)."""
        self.request_keyframes(force=False)

    def pending_keyframe(self) -> RtpStreamRecv | None:
        """The first stream that waits for a keyframe (``request_keyframes`` asks for all of them)."""
        if self._closed or not self._transport._connected:
            return None
        return next((layer.stream for layer in self._layers if layer.keyframe), None)

    def request_keyframes(self, force: bool = True) -> None:
        """Ask the producer for a keyframe of each stream still waiting for one (video)."""
        if self._closed or not self._video or not self._transport._connected:
            return
        for layer in self._layers:
            if layer.keyframe and layer.stream.ssrc is not None:
                self._producer.request_keyframe(force=force, layer=layer.stream)

    # ---- the pipe transport's calls: feedback from the far end ----------------------------------
    def _keyframe_request(self, ssrc: int) -> bool:
        """A PLI/FIR from the far end (a subscriber there needs a keyframe; that end throttles its
        own requests, so this one is forced: merged only within 100 ms)."""
        layer = self._by_ssrc.get(ssrc)
        if layer is None:
            return False
        self.keyframe_requests += 1
        self._producer.request_keyframe(force=True, layer=layer.stream)
        return True

    def _handle_nack(self, ssrc: int, seqs: list[int]) -> bool:
        """A generic NACK from the far end's producer: re-send from the origin stream's history
        (the same packet on the same SSRC: no RTX on a pipe), within the guard's limits."""
        layer = self._by_ssrc.get(ssrc)
        if layer is None:
            return False
        stats, guard, stream = self._stats, self._guard, layer.stream
        self.nack_received += len(seqs)
        stats.nack_received += len(seqs)
        now = time.monotonic()
        guard.refill(now)
        newest = layer.last_seq
        for out_seq in seqs:
            if newest < 0 or guard.far(out_seq, newest):
                stats.nack_dropped[NACK_FAR] = stats.nack_dropped.get(NACK_FAR, 0) + 1
                continue
            seq = (out_seq - layer.seq_offset) & 0xFFFF
            data = None if seq_newer(layer.start, seq) else stream.history.get(seq, now)
            if data is None:
                stats.retransmit_missed += 1
                continue
            reason = guard.admit(out_seq, len(data), now)
            if reason is not None:
                stats.nack_dropped[reason] = stats.nack_dropped.get(reason, 0) + 1
                continue
            buf = bytearray(data)
            _SEQ.pack_into(buf, 2, out_seq)
            buf[8:12] = layer.ssrc.to_bytes(4, "big")
            if self._transport._send_rtp(buf):
                self.retransmitted += 1
                stats.retransmitted += 1
                stats.retransmitted_bytes += len(buf)
        return True

    def _on_report_block(self, ssrc: int, lsr: int, dlsr: int) -> None:
        """A receiver report block from the far end: an RTT sample for the NACK guard (as a
        subscriber's, ``Consumer._on_report_block``)."""
        if lsr == 0 or ssrc not in self._by_ssrc:
            return
        sent = self._producer.sr_times.sent_at(lsr)
        if sent is not None:
            self._guard.on_rtt_sample(time.monotonic() - sent - dlsr / 65536)
