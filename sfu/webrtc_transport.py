"""WebRtcTransport: one aiortc ``RTCPeerConnection`` whose media the core forwards itself.

Two roles (the signalling uses two peer connections per participant, as LiveKit does): publisher
(the client offers, :meth:`accept_offer`, then :meth:`produce` per sending m-line) and subscriber
(:meth:`consume` per producer, the server offers, :meth:`create_offer`, the client answers,
:meth:`accept_answer`). The transport owns its producers, its consumers and one part per job (as
mediasoup's Transport keeps an RtpListener): :class:`~sfu.negotiation.Negotiation` (the peer
connection, SDP, candidates), :class:`~sfu.rtp_listener.RtpListener` (incoming RTP/RTCP routed to
producers and consumers), :class:`~sfu.publisher_feedback.PublisherFeedback` (receiver reports,
REMB, NACKs to the publisher) and :class:`~sfu.send_path.SendPath` (SRTP protect and send on the
selected ICE pair). They get what they need of it at construction; none imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from . import aiortc_compat as compat
from . import nack, transport_cc
from .congestion import PublisherCongestion, SubscriberCongestion, extension_ids
from .consumer import Consumer
from .errors import ClosedError
from .fast_path import FastSink
from .negotiation import MAX_REMOTE_CANDIDATES, Negotiation, capability_for, check_candidate
from .padding import PaddingPacer
from .producer import Producer
from .publisher_feedback import PublisherFeedback
from .rtp import EXT_MID, EXT_RID
from .rtp_listener import RtpListener
from .send_path import SendPath

if TYPE_CHECKING:
    from .sdp import MediaSection
    from .settings import WorkerContext

logger = logging.getLogger(__name__)

STATES = ("connecting", "connected", "failed", "closed")
PATH_REFRESH_INTERVAL = 1.0  # s between path checks of a connected transport without producers


class TransportOwner(Protocol):
    """The router as its transports see it (``t.router``); they call it only through callbacks."""

    @property
    def id(self) -> str: ...

    @property
    def closed(self) -> bool: ...


class WebRtcTransport:
    """Wraps one aiortc ``RTCPeerConnection``. Created only by :meth:`Router.create_transport`."""

    def __init__(
        self,
        transport_id: str,
        context: WorkerContext,
        *,
        owner: TransportOwner,
        on_closed: Callable[[WebRtcTransport], None],
        on_producer_added: Callable[[Producer], None],
        on_producer_removed: Callable[[Producer], None],
    ) -> None:
        self.id = transport_id
        self.stream_id = uuid.uuid4().hex  # a=msid stream id of this transport's producers
        self.on_negotiation_needed: Callable[[], None] | None = None
        self.on_state_change: Callable[[str], None] | None = None
        settings = context.settings
        self._owner = owner
        self._context = context
        self._settings = settings
        self._stats = context.stats
        self._on_closed = on_closed
        self._on_producer_added = on_producer_added
        self._on_producer_removed = on_producer_removed
        self._closed = False
        self._negotiation_needed = False
        self._state = "new"
        self._producers: dict[str, Producer] = {}
        self._consumers: dict[str, Consumer] = {}
        self._rtcp_ssrc = random.getrandbits(32) or 1  # sender SSRC of our RTCP (producers' PLI, NACK)
        self._last_refresh = -1e9
        self._dtls: Any = None
        self._connected = False  # read per packet by consumers: a plain attribute, kept by _refresh_path
        self._fast_sink: FastSink | None = None  # the send path's, for consumers joining the compiled fan-out
        self._negotiation = Negotiation(
            ice_servers=settings.normalized_ice_servers(), mux=context.mux, closed=lambda: self._closed,
            on_dtls=self._hook_dtls, on_state=self._on_pc_state, name=transport_id,
        )
        self._listener = RtpListener(self._stats, transport_id)
        self._send_path = SendPath(self._stats, context.fast_path, self._on_fast_sink)
        # congestion control (sfu.congestion): the publisher's feedback/REMB estimate, the
        # subscriber's downlink estimate shared among its video consumers
        self._congestion: PublisherCongestion | None = None
        self._downlink: SubscriberCongestion | None = None
        self._pacer: PaddingPacer | None = None  # padding clusters (sfu.padding)
        if settings.bandwidth_estimation:
            self._congestion = PublisherCongestion(self._rtcp_ssrc, settings.remb_bitrate)
            self._downlink = self._listener.downlink = SubscriberCongestion(
                padding_probes=settings.padding_probes and settings.subscriber_rtx
            )
            self._pacer = PaddingPacer(self._downlink.padding_rate)
        self._feedback = PublisherFeedback(
            rtcp_ssrc=self._rtcp_ssrc, remb_bitrate=settings.remb_bitrate, remb_interval=settings.remb_interval,
            stats=self._stats, producers=self._producers, send_rtcp=self._send_path.send_rtcp,
            connected=lambda: self._connected, name=transport_id, congestion=self._congestion,
        )
        # what producers and consumers call (their current names): the parts' bound methods, so a
        # packet costs no extra call
        self._send_rtp = self._send_path.send_rtp
        self._send_rtcp = self._send_path.send_rtcp
        self._nack_wanted = self._feedback.nack_wanted
        # the receive hooks (installed on aiortc's DTLS transport; tests feed them directly)
        self._on_rtp = self._listener.on_rtp
        self._on_rtcp = self._listener.on_rtcp
        self._on_srtp_error = self._listener.on_srtp_error

    # ---- properties ------------------------------------------------------------------------------
    @property
    def router(self) -> TransportOwner:
        return self._owner

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state(self) -> str:
        """'new' | 'connecting' | 'connected' | 'failed' | 'closed'."""
        return self._state

    @property
    def connected(self) -> bool:
        """DTLS is up and the core can send on the selected ICE pair."""
        return self._connected

    @property
    def producers(self) -> list[Producer]:
        return list(self._producers.values())

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers.values())

    @property
    def negotiation_needed(self) -> bool:
        """A consumer was added or closed since the last :meth:`create_offer`."""
        return self._negotiation_needed

    @property
    def peer_connection(self) -> Any:
        """The wrapped aiortc ``RTCPeerConnection`` (for tests and diagnostics only)."""
        return self._negotiation.pc

    @property
    def ice_lite(self) -> bool:
        """On the shared port (ICE-lite), so its negotiations wait for nothing but the CPU: no
        gathering (a STUN server), no mDNS name of a remote candidate to resolve, no checks.
        False until the first description made its ICE transport."""
        return self._negotiation.ice_lite

    def offered_media(self) -> list[MediaSection]:
        """The audio/video m-lines of the last remote offer (mid, kind, direction, ...)."""
        return list(self._negotiation.remote_media)

    # ---- publisher side ---------------------------------------------------------------------------
    async def accept_offer(self, offer_sdp: str) -> str:
        """Apply a client's offer and return the answer SDP (with all local candidates).

        Producers whose m-line is gone or no longer sending are closed.
        """
        self._check_open()
        negotiation = self._negotiation
        answer_sdp = await negotiation.accept_offer(offer_sdp)
        media = negotiation.remote_media
        congestion = self._congestion
        if congestion is not None:
            # transport-cc where the offer has it (aiortc never answers it), else abs-send-time
            answer_sdp = transport_cc.munge_answer(answer_sdp, offer_sdp)
            congestion.configure(transport_cc.answered_id(answer_sdp), extension_ids(negotiation.local_media)[1])
            self._listener.congestion = congestion if congestion.active else None
            if congestion.transport_cc:
                self._feedback.start_transport_cc()
        self._listener.set_offer(
            next((m.extensions.get(EXT_MID, 0) for m in media if EXT_MID in m.extensions), 0),
            next((m.extensions.get(EXT_RID, 0) for m in negotiation.local_media if EXT_RID in m.extensions), 0),
            [m.mid for m in media],
        )
        by_mid = {m.mid: m for m in media}
        await asyncio.sleep(0)  # closing a producer closes its consumers everywhere: a turn of its own
        for producer in list(self._producers.values()):
            section = by_mid.get(producer.mid)
            if section is None or not section.sending:
                producer.close()
        await negotiation.flush_candidates()
        return answer_sdp

    def produce(self, mid: str, source: str) -> Producer:
        """Start forwarding the track the client sends on m-line ``mid``; ``source`` is a label."""
        self._check_open()
        produced = mid in self._listener.producer_by_mid
        section, local, codec = self._negotiation.sending_mline(mid, produced)  # or UnknownMid/UnsupportedCodecError
        producer = Producer(
            self,
            mid=mid,
            kind=section.kind,
            source=source,
            codec=codec,
            payload_types={c.payload_type: c for c in local.codecs},
            extensions=dict(local.extensions),
            ssrcs=section.ssrcs,
            rtx_ssrcs=section.rtx_ssrcs,
            stats=self._stats,
            history_size=self._settings.history_size,
            history_age=self._settings.history_age,
            rids=section.rids if EXT_RID in local.extensions else (),
            simulcast_ssrcs=section.simulcast_ssrcs,
            fast_path=self._context.fast_path,
        )
        self._producers[producer.id] = producer
        ssrc = producer.ssrc
        ssrcs = section.simulcast_ssrcs if producer.simulcast else () if ssrc is None else (ssrc,)
        # the FID-paired RTX stream is unwrapped into this one when the producer asks for repairs
        repair = section.rtx_ssrc(ssrc) if producer._rtx is not None and ssrc is not None else None
        self._listener.add_producer(producer, ssrcs, section.rtx_ssrcs, repair)
        self._stats.producers += 1
        self._on_producer_added(producer)
        return producer

    # ---- subscriber side --------------------------------------------------------------------------
    def consume(self, producer: Producer) -> Consumer:
        """Add an outgoing copy of ``producer``; marks negotiation needed (call :meth:`create_offer`)."""
        self._check_open()
        if producer.closed:
            raise ClosedError("producer is closed")
        capability = capability_for(producer.kind, producer.codec_info)
        st = self._settings
        rtx_ssrc = self._new_ssrc() if st.subscriber_rtx and producer.kind == "video" else None
        transceiver = self._negotiation.open_sender(
            producer.kind, capability, lambda: self._listener.unused_ssrc(self._rtcp_ssrc, rtx_ssrc), rtx_ssrc
        )
        compat.set_sender_msid(transceiver.sender, producer.transport.stream_id, producer.id)
        guard = nack.RetransmitGuard(st.retransmit_rate, st.retransmit_burst, st.nack_window)
        consumer = Consumer(self, producer, compat.sender_ssrc(transceiver.sender), self._stats, guard, rtx_ssrc)
        self._negotiation.bind_sender(consumer.id, transceiver)
        producer._add_consumer(consumer)
        self._consumers[consumer.id] = consumer
        self._listener.add_consumer(consumer)
        self._stats.consumers += 1
        self._set_negotiation_needed()
        return consumer

    async def create_offer(self) -> str:
        """Create and apply an offer: one sendonly m-line per live consumer, closed ones inactive."""
        self._check_open()
        self._negotiation.check_can_offer()
        self._negotiation_needed = False
        return await self._negotiation.create_offer(self._set_consumer_mids)

    def _set_consumer_mids(self, mids: Mapping[str, str | None]) -> None:
        for consumer_id, mid in mids.items():
            consumer = self._consumers.get(consumer_id)
            if consumer is not None:
                consumer.mid = mid

    async def accept_answer(self, answer_sdp: str) -> None:
        """Apply the client's answer to :meth:`create_offer`; consumers start forwarding."""
        self._check_open()
        media = await self._negotiation.accept_answer(answer_sdp)
        by_mid = {m.mid: m for m in media}
        for consumer in list(self._consumers.values()):
            section = by_mid.get(consumer.mid or "")
            if section is None or section.direction not in ("recvonly", "sendrecv"):
                continue
            codec = next(
                (c for c in section.codecs if c.mime_type.lower() == consumer.producer.codec.lower()),
                None,
            )
            if codec is None:
                continue
            rtx_pt = section.rtx_payload_type(codec.payload_type) if codec.nack else None
            consumer._configure(codec.payload_type, dict(section.extensions), rtx_pt)
        await self._negotiation.flush_candidates()

    # ---- ICE -------------------------------------------------------------------------------------
    async def add_remote_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        """Add a trickled RTCIceCandidateInit (``None`` or an empty candidate: end of candidates).

        Candidates that arrive before the remote description are buffered and applied with it.
        A transport takes at most :data:`MAX_REMOTE_CANDIDATES` (end-of-candidates included):
        :class:`TooManyCandidatesError` after that.
        """
        self._check_open()
        await self._negotiation.add_remote_candidate(candidate)

    # ---- close -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close producers (and their consumers everywhere), consumers and the peer connection.

        Idempotent and synchronous: forwarding stops at once; aiortc's own shutdown runs as a
        task that :meth:`Worker.close` awaits.
        """
        if self._closed:
            return
        self._closed = True
        for producer in list(self._producers.values()):
            producer.close()
        for consumer in list(self._consumers.values()):
            consumer.close()
        self._connected = False
        self._send_path.drop()
        self._feedback.close()
        if self._pacer is not None:
            self._pacer.stop()
        self._stats.transports -= 1
        self._on_closed(self)
        self._context.spawn(self._negotiation.pc.close())
        self._set_state("closed")
        self.on_negotiation_needed = None
        self.on_state_change = None

    def __repr__(self) -> str:
        return f"WebRtcTransport(id={self.id!r}, state={self._state!r})"

    # ---- internal: what producers and consumers call ------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"transport {self.id!r} is closed")

    def _producer_closed(self, producer: Producer) -> None:
        if self._producers.pop(producer.id, None) is None:
            return
        self._stats.producers -= 1
        self._listener.remove_producer(producer, producer._learned_rtx)
        self._on_producer_removed(producer)

    def _consumer_closed(self, consumer: Consumer) -> None:
        if self._consumers.pop(consumer.id, None) is None:
            return
        self._stats.consumers -= 1
        self._listener.remove_consumer(consumer)
        if self._downlink is not None:
            self._downlink.forget(consumer.ssrc)
        if self._negotiation.close_sender(consumer.id) and not self._closed:
            self._set_negotiation_needed()

    def _new_ssrc(self) -> int:
        return self._listener.unused_ssrc(self._rtcp_ssrc)

    def _set_negotiation_needed(self) -> None:
        self._negotiation_needed = True
        self._notify("on_negotiation_needed", self.on_negotiation_needed)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._notify("on_state_change", self.on_state_change, state)

    def _notify(self, name: str, callback: Callable[..., None] | None, *args: str) -> None:
        """Call an application's callback; what it raises is logged, never raised here."""
        if callback is not None:
            try:
                callback(*args)
            except Exception:
                logger.exception("transport %s: %s failed", self.id, name)

    # ---- internal: the connection and the send path ---------------------------------------------
    def _on_pc_state(self, state: str) -> None:
        if self._closed:
            return
        if state in ("connected", "failed"):
            # failed: e.g. ICE consent lost (sfu.udp_mux.expire): the send path is gone, stop now
            self._refresh_path()
        if state in STATES:
            self._set_state(state)

    def _hook_dtls(self, transports: list[Any]) -> None:
        """The DTLS transports of a description (one, bundled): their packets come to the listener;
        the first one's SRTP session and ICE pair are the send path."""
        for dtls in transports:
            if compat.install_packet_hooks(dtls, self._on_rtp, self._on_rtcp):
                dtls.on("statechange", self._on_dtls_state)
                if self._settings.direct_receive:
                    compat.install_direct_receive(dtls, self._on_rtp, self._on_rtcp, self._on_srtp_error)
        self._dtls = transports[0]

    def _on_dtls_state(self) -> None:
        self._refresh_path()

    def _refresh_path(self) -> None:
        """Pick up the SRTP session and the selected ICE pair once DTLS is connected."""
        if self._dtls is None or self._closed:
            return
        was_connected = self._connected
        self._connected = self._send_path.refresh(self._dtls)
        if self._connected and not was_connected:
            for producer in self._producers.values():
                producer._on_transport_connected()
            for consumer in self._consumers.values():
                consumer.producer._on_consumer_connected(consumer)

    def _set_fast_sink(self, sink: FastSink | None) -> None:
        """Use ``sink`` for the compiled fan-out (tests: None for a while, then back)."""
        self._send_path.set_fast_sink(sink)

    def _on_fast_sink(self, sink: FastSink | None) -> None:
        """A new path or SRTP session: consumers leave the compiled fan-out (the Python path puts
        them back, on the new sink, after their next packet)."""
        self._fast_sink = sink
        for consumer in self._consumers.values():
            consumer._leave_fast()

    def _tick(self, now: float) -> None:
        """Periodic work (from the worker): path refresh, keyframe re-requests, REMB."""
        if self._closed:
            return
        # the path is refreshed on every DTLS state change; the tick catches a new nominated pair:
        # at once while connecting and for publishers, within a second for a receive-only
        # transport (2000 viewers: 8000 refreshes a second less)
        if self._producers or not self._connected or now - self._last_refresh >= PATH_REFRESH_INTERVAL:
            self._last_refresh = now
            self._refresh_path()
        for producer in list(self._producers.values()):
            producer._tick()
        self._feedback.tick(now)
        if self._downlink is not None and self._consumers and self._connected:
            self._downlink.share(now, self._consumers.values())  # the video consumers' layers follow it
            prober = self._downlink.prober
            if prober is not None and self._pacer is not None:
                self._downlink.prober = None
                self._pacer.start(prober, now)


__all__ = ["MAX_REMOTE_CANDIDATES", "TransportOwner", "WebRtcTransport", "check_candidate"]
