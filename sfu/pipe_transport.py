"""PipeTransport: plain RTP/RTCP over UDP between two routers (mediasoup's PipeTransport).

One room can span workers (processes) and machines: a producer of router A is sent to router B
over a pipe, and B's subscribers consume the pipe's producer like a local publisher's. Each end is
a :class:`PipeTransport` (``Router.create_pipe_transport``): one UDP socket, RTP and RTCP on it
(rtcp-mux), no ICE and no DTLS. The ends learn each other's address (``local_address`` ->
``connect``) and, with ``srtp=True``, keys (``srtp_parameters`` -> ``connect``, see
:mod:`sfu.pipe_srtp`) over the signalling. Once connected, an end takes datagrams from that
address only.

- ``consume(producer)`` at the origin -> :class:`~sfu.pipe_consumer.PipeConsumer`: every stream of
  the producer (each simulcast layer on its own SSRC) goes over the pipe;
  ``consumer.description`` says what the far end produces.
- ``produce(description)`` at the far end -> a :class:`~sfu.producer.Producer` (with the origin's
  id) whose streams are fed by the pipe; its consumers there choose their layers themselves.
- Back over the pipe: PLI/FIR (to the origin producer), generic NACKs from the far producer's NACK
  generator (answered at the origin from its packet history), receiver reports; forward: the
  publisher's sender reports, and an RTCP BYE when a pipe consumer closes, which closes the far
  producer (so the cascade crosses processes without the signalling's help; the signalling still
  relays it, a BYE can be lost).

``Router.pipe_to_router(producer, other)`` joins two routers of one process this way (mediasoup's
``pipeToRouter``). The socket, SRTP and the send and receive paths are
:class:`~sfu.pipe_socket.PipeSocket`'s; errors in the packet path are counted
(:attr:`PipeTransport.stats`), never raised.
"""

from __future__ import annotations

import logging
import random
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from . import rtcp
from .errors import ClosedError, DuplicateIdError, InvalidStateError, SfuError
from .nack import RetransmitGuard, report_blocks
from .pipe_consumer import InvalidPipeDescriptionError, PipeConsumer, PipeProducerDescription
from .pipe_socket import PipeAddressError, PipeSocket, PipeStats, peer_address
from .pipe_srtp import InvalidSrtpParametersError, SrtpPair, SrtpParameters
from .producer import Producer
from .publisher_feedback import PublisherFeedback
from .stats import RTCP_TRUNCATED

if TYPE_CHECKING:
    from .settings import WorkerContext

__all__ = ["InvalidPipeDescriptionError", "PipeAddressError", "PipeStats", "PipeTransport", "pipe_to_router"]

logger = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")
# the NACK guard of a pipe consumer: one consumer per producer carries every layer, so it gets a few
# subscribers' worth of retransmission budget (WorkerSettings.retransmit_rate is per subscriber)
PIPE_NACK_BUDGET = 8
RTCP_ERROR = "rtcp_error"  # PipeStats.dropped: an RTCP compound that does not parse


class PipeTransportOwner(Protocol):
    """The router as its pipe transports see it."""

    @property
    def id(self) -> str: ...

    @property
    def closed(self) -> bool: ...


class PipeTransport:
    """One end of a pipe. Created only by :meth:`sfu.Router.create_pipe_transport`."""

    _fast_sink = None  # ProducerTransport/ConsumerTransport shape; a pipe never uses the compiled sink

    def __init__(
        self, transport_id: str, context: WorkerContext, *, owner: PipeTransportOwner, listen_ip: str,
        port: int, srtp: bool, on_closed: Callable[[PipeTransport], None],
        on_producer_added: Callable[[Producer], None], on_producer_removed: Callable[[Producer], None],
    ) -> None:
        self.id = transport_id
        # a=msid stream id of the far producers whose description has none (see _FarLink)
        self.stream_id = uuid.uuid4().hex
        self.on_close: Callable[[], None] | None = None
        self._owner = owner
        self._context = context
        self._wstats = context.stats
        self._on_closed = on_closed
        self._on_producer_added = on_producer_added
        self._on_producer_removed = on_producer_removed
        self._closed = False
        self._connected = False  # read per packet by the consumers, per PLI by the producers
        self._srtp_local = SrtpParameters.generate() if srtp else None
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._producers: dict[str, Producer] = {}
        self._producer_by_ssrc: dict[int, Producer] = {}
        self._consumers: dict[str, PipeConsumer] = {}
        self._consumer_by_ssrc: dict[int, PipeConsumer] = {}
        # pipe_to_router's pairs in one process: the far producer closing closes its pipe consumer
        self._linked: dict[str, PipeConsumer] = {}
        self._links: dict[str, _FarLink] = {}  # the far producers' view of this pipe, by producer id
        try:
            self._io = PipeSocket(listen_ip, port, name=transport_id, stats=self._wstats,
                                  producers=self._producer_by_ssrc, on_rtcp=self._on_rtcp)
        except RuntimeError:
            raise InvalidStateError("a pipe transport is made inside the worker's event loop") from None
        self.stats = self._io.stats
        # what the consumers and producers call: the socket's bound methods (no extra call per packet)
        self._send_rtp = self._io.send_rtp
        self._send_rtcp = self._io.send_rtcp
        settings = context.settings
        # receiver reports (RTT for the origin's NACK answers) and the NACK timer of the far producers
        self._feedback = PublisherFeedback(
            rtcp_ssrc=self._rtcp_ssrc, remb_bitrate=settings.remb_bitrate, remb_interval=settings.remb_interval,
            stats=self._wstats, producers=self._producers, send_rtcp=self._send_rtcp,
            connected=lambda: self._connected, name=transport_id,
        )
        self._nack_wanted = self._feedback.nack_wanted

    # ---- properties ------------------------------------------------------------------------------
    @property
    def router(self) -> PipeTransportOwner:
        return self._owner

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def local_address(self) -> tuple[str, int]:
        """(IP, port) this end listens on: what the other end's :meth:`connect` takes."""
        return self._io.local_address

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self._io.remote

    @property
    def srtp_parameters(self) -> SrtpParameters | None:
        """This end's SRTP key (``srtp=True``; None without SRTP): the other end's :meth:`connect` takes it."""
        return self._srtp_local

    @property
    def producers(self) -> list[Producer]:
        return list(self._producers.values())

    @property
    def consumers(self) -> list[PipeConsumer]:
        return list(self._consumers.values())

    # ---- the API ---------------------------------------------------------------------------------
    def connect(
        self, ip: str, port: int, srtp_parameters: SrtpParameters | Mapping[str, Any] | None = None
    ) -> None:
        """Send to (and accept datagrams only from) ``ip``:``port``, the other end's
        :attr:`local_address`; ``srtp_parameters``: the other end's :attr:`srtp_parameters`
        (required with SRTP, refused without). Once only. Raises :class:`PipeAddressError`,
        :class:`~sfu.pipe_srtp.InvalidSrtpParametersError`, :class:`InvalidStateError` (connected
        already), :class:`ClosedError`."""
        self._check_open()
        if self._io.remote is not None:
            raise InvalidStateError("the pipe is connected already")
        remote_address = peer_address(ip, port, self._io.family)
        local = self._srtp_local
        pair: SrtpPair | None = None
        if local is None and srtp_parameters is not None:
            raise InvalidSrtpParametersError("srtp_parameters given to a pipe without SRTP")
        if local is not None:
            if srtp_parameters is None:
                raise InvalidSrtpParametersError("this pipe uses SRTP: connect needs the other end's srtp_parameters")
            remote = (srtp_parameters if isinstance(srtp_parameters, SrtpParameters)
                      else SrtpParameters.from_dict(srtp_parameters))
            pair = SrtpPair(local, remote)
        self._io.connect(remote_address, pair)
        self._connected = True
        for link in self._links.values():
            link._connected = True
        for consumer in self._consumers.values():
            consumer.request_keyframes()
        for producer in self._producers.values():
            producer._on_transport_connected()

    def consume(self, producer: Producer) -> PipeConsumer:
        """Send every stream of ``producer`` (of this router) over the pipe; the far end produces
        ``consumer.description``. Video starts at a keyframe, asked for once connected. Raises
        :class:`ClosedError`."""
        self._check_open()
        if producer.closed:
            raise ClosedError("producer is closed")
        taken: set[int] = set()
        ssrcs = tuple(self._new_ssrc(taken) for _ in producer.streams)
        st = self._context.settings
        guard = RetransmitGuard(st.retransmit_rate * PIPE_NACK_BUDGET, st.retransmit_burst * PIPE_NACK_BUDGET,
                                st.nack_window)
        consumer = PipeConsumer(self, producer, ssrcs, self._wstats, guard)
        producer._add_consumer(consumer)
        self._consumers[consumer.id] = consumer
        for ssrc in ssrcs:
            self._consumer_by_ssrc[ssrc] = consumer
        self._wstats.consumers += 1
        consumer.request_keyframes()
        return consumer

    def produce(self, description: PipeProducerDescription | Mapping[str, Any]) -> Producer:
        """The producer that the other end's pipe consumer feeds (its ``description``, or that as
        a dict): same id, kind, codec and extensions as the origin producer; one stream per SSRC
        (simulcast: the layers, which this router's consumers choose among). Raises
        :class:`~sfu.pipe_consumer.InvalidPipeDescriptionError`, :class:`DuplicateIdError` (a
        producer of that id, or an SSRC, on this pipe already), :class:`ClosedError`."""
        self._check_open()
        d = description if isinstance(description, PipeProducerDescription) else \
            PipeProducerDescription.from_dict(description)
        d.check()
        if d.producer_id in self._producers:
            raise DuplicateIdError(f"producer {d.producer_id!r} exists on this pipe")
        if any(s in self._producer_by_ssrc or s in self._consumer_by_ssrc for s in d.ssrcs):
            raise DuplicateIdError("an SSRC of this description is taken on this pipe")
        codec = d.codec
        settings = self._context.settings
        simulcast = len(d.ssrcs) > 1
        link = _FarLink(self, d.stream_id or self.stream_id)
        producer = Producer(
            link, mid=str(len(self._producers)), kind=d.kind, source=d.source, codec=codec,
            payload_types={codec.payload_type: codec}, extensions=dict(d.extensions),
            ssrcs=() if simulcast else d.ssrcs, rtx_ssrcs=(), stats=self._wstats,
            history_size=settings.history_size, history_age=settings.history_age,
            rids=d.rids if simulcast else (), simulcast_ssrcs=d.ssrcs if simulcast else (),
            fast_path=self._context.fast_path,
        )
        # the track keeps its name across the pipe (as mediasoup's); ``paused`` is not applied: the
        # origin's pause stops the packets themselves, and a far producer paused here would stay
        # paused when the origin resumes unless the signalling relayed that too
        producer.id = d.producer_id
        self._producers[producer.id] = producer
        self._links[producer.id] = link
        for ssrc in d.ssrcs:
            self._producer_by_ssrc[ssrc] = producer
        self._wstats.producers += 1
        self._on_producer_added(producer)
        return producer

    def close(self) -> None:
        """Close the producers (and their consumers everywhere), the pipe consumers (the far end
        is told by BYE) and the socket. Idempotent."""
        if self._closed:
            return
        for producer in list(self._producers.values()):
            producer.close()
        for consumer in list(self._consumers.values()):
            consumer.close()
        self._closed = True
        self._connected = False
        for link in self._links.values():
            link._connected = False
        self._feedback.close()
        self._io.close()
        self._on_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("pipe transport on_close callback failed")

    def __repr__(self) -> str:
        return (f"PipeTransport(id={self.id!r}, remote={self._io.remote}, producers={len(self._producers)}, "
                f"consumers={len(self._consumers)})")

    # ---- internal: RTCP from the other end -----------------------------------------------------------
    def _on_rtcp(self, data: bytes) -> None:
        try:
            packets = rtcp.split_compound(data)
        except ValueError:
            self.stats.drop(RTCP_ERROR)
            self._wstats.drop_rtcp(RTCP_TRUNCATED)
            return
        w = self._wstats
        for pt, fmt, start, end in packets:
            if pt == rtcp.RTCP_SR:
                w.sr_received += 1
                ssrc, ntp, rtp_ts = rtcp.parse_sr(data, start, end)
                producer = self._producer_by_ssrc.get(ssrc)
                if producer is not None:
                    producer._on_sender_report(ntp, rtp_ts, ssrc)
            elif pt == rtcp.RTCP_RR:
                w.rr_received += 1
                for ssrc, lsr, dlsr in report_blocks(data, start, end, fmt):
                    consumer = self._consumer_by_ssrc.get(ssrc)
                    if consumer is not None:
                        consumer._on_report_block(ssrc, lsr, dlsr)
            elif pt == rtcp.RTCP_RTPFB and fmt == rtcp.RTPFB_NACK:
                media, seqs = rtcp.parse_nack(data, start, end)
                consumer = self._consumer_by_ssrc.get(media)
                if consumer is not None:
                    consumer._handle_nack(media, seqs)
            elif pt == rtcp.RTCP_PSFB and fmt in (rtcp.PSFB_PLI, rtcp.PSFB_FIR):
                targets = ([rtcp.feedback_ssrcs(data, start, end)[1]] if fmt == rtcp.PSFB_PLI
                           else rtcp.parse_fir_ssrcs(data, start, end))
                for media in targets:
                    consumer = self._consumer_by_ssrc.get(media)
                    if consumer is not None:
                        w.pli_received += 1
                        consumer._keyframe_request(media)
            elif pt == rtcp.RTCP_BYE:
                # the origin's pipe consumer closed: so does the producer it fed
                for i in range(fmt):
                    pos = start + 4 + 4 * i
                    if pos + 4 > end:
                        break
                    producer = self._producer_by_ssrc.get(_SSRC.unpack_from(data, pos)[0])
                    if producer is not None:
                        producer.close()

    # ---- internal: bookkeeping ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"pipe transport {self.id!r} is closed")

    def _new_ssrc(self, taken: set[int]) -> int:
        while True:
            ssrc = random.getrandbits(32)
            if ssrc and ssrc != self._rtcp_ssrc and ssrc not in taken and ssrc not in self._consumer_by_ssrc \
                    and ssrc not in self._producer_by_ssrc:
                taken.add(ssrc)
                return ssrc

    def _producer_closed(self, producer: Producer) -> None:
        if self._producers.pop(producer.id, None) is not producer:
            return
        link = self._links.pop(producer.id, None)
        if link is not None:
            link._connected = False
        for ssrc in [s for s, p in self._producer_by_ssrc.items() if p is producer]:
            del self._producer_by_ssrc[ssrc]
        self._wstats.producers -= 1
        self._on_producer_removed(producer)
        linked = self._linked.pop(producer.id, None)
        if linked is not None:
            linked.close()

    def _consumer_closed(self, consumer: PipeConsumer) -> None:
        if self._consumers.pop(consumer.id, None) is None:
            return
        for ssrc in consumer.ssrcs:
            self._consumer_by_ssrc.pop(ssrc, None)
        self._wstats.consumers -= 1
        if self._connected:
            self._send_rtcp(_bye(self._rtcp_ssrc, consumer.ssrcs))

    def _tick(self, now: float) -> None:
        """Periodic work (the router's tick): the far producers' rates (layer choice there) and
        pending keyframes, receiver reports; pipe streams still waiting for a keyframe ask again."""
        if self._closed:
            return
        for producer in list(self._producers.values()):
            producer._tick()
        self._feedback.tick(now)
        for consumer in list(self._consumers.values()):
            consumer.request_keyframes(force=False)


class _FarLink:
    """A far producer's transport (``producer.transport``; ``pipe`` is the pipe transport): the
    pipe's RTCP and state, with the origin's msid stream id, so that a far subscriber groups a
    publisher's audio and video in one stream as at the origin (a browser syncs the tracks of one
    stream: one id for every producer of the pipe would put every piped publisher in one)."""

    __slots__ = ("_connected", "_nack_wanted", "_rtcp_ssrc", "_send_rtcp", "pipe", "stream_id")

    def __init__(self, pipe: PipeTransport, stream_id: str) -> None:
        self.pipe = pipe
        self.stream_id = stream_id
        self._connected = pipe._connected  # kept in step by the pipe (connect, close)
        self._rtcp_ssrc = pipe._rtcp_ssrc
        self._send_rtcp = pipe._send_rtcp
        self._nack_wanted = pipe._nack_wanted

    def _producer_closed(self, producer: Producer) -> None:
        self.pipe._producer_closed(producer)


def _bye(sender_ssrc: int, ssrcs: tuple[int, ...]) -> bytes:
    """An RTCP BYE (RFC 3550 6.6) for ``ssrcs`` (the RR before it makes a valid compound)."""
    rr = rtcp.build_rr(sender_ssrc, [])
    count = min(len(ssrcs), 31)
    return rr + struct.pack(f"!BBH{count}I", 0x80 | count, rtcp.RTCP_BYE, count, *ssrcs[:count])


def pipe_to_router(producer: Producer, origin: Any, other: Any, *, srtp: bool = False) -> tuple[PipeConsumer, Producer]:
    """``Router.pipe_to_router``'s work (see there): a cached pipe pair per router pair."""
    if other is origin:
        raise ValueError("pipe_to_router needs another router")
    if producer.closed:
        raise ClosedError("producer is closed")
    if origin.get_producer(producer.id) is not producer:
        raise ValueError("the producer is not this router's")
    if other.closed:
        raise ClosedError(f"router {other.id!r} is closed")
    pairs: dict[int, tuple[PipeTransport, PipeTransport]] = origin._pipe_pairs
    pair = pairs.get(id(other))
    if pair is None or pair[0].closed or pair[1].closed:
        if pair is not None:
            pair[0].close()
            pair[1].close()
        local = origin.create_pipe_transport("127.0.0.1", 0, srtp=srtp)
        remote = other.create_pipe_transport("127.0.0.1", 0, srtp=srtp)
        local.connect(*remote.local_address, srtp_parameters=remote.srtp_parameters)
        remote.connect(*local.local_address, srtp_parameters=local.srtp_parameters)
        pair = pairs[id(other)] = (local, remote)
    local, remote = pair
    existing = remote._linked.get(producer.id)
    if existing is not None and not existing.closed:
        far = remote._producers.get(producer.id)
        if far is not None:
            return existing, far
    consumer = local.consume(producer)
    try:
        far = remote.produce(consumer.description)
    except SfuError:
        consumer.close()
        raise
    remote._linked[far.id] = consumer
    consumer._far = far
    return consumer, far

