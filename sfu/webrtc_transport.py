"""WebRtcTransport: one aiortc ``RTCPeerConnection`` whose media the core forwards itself.

aiortc does SDP, ICE (aioice) and DTLS; the transport hooks the decrypted packets out of the DTLS
transport (see :mod:`sfu.aiortc_compat`) and sends rewritten packets with the DTLS transport's
SRTP session straight onto the selected ICE pair's socket.

A transport is used in one of two roles (both in one transport work too, but the signalling uses
two peer connections per participant, as LiveKit does):
- publisher: the client offers (:meth:`accept_offer`), then :meth:`produce` per sending m-line;
- subscriber: :meth:`consume` per producer, the server offers (:meth:`create_offer`) and the
  client answers (:meth:`accept_answer`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp

from . import aiortc_compat as compat
from . import ice_lite, nack, rtcp
from .consumer import Consumer
from .errors import (
    ClosedError,
    InvalidCandidateError,
    InvalidSdpError,
    InvalidStateError,
    SfuError,
    TooManyCandidatesError,
    UnknownMidError,
    UnsupportedCodecError,
)
from .fast_path import FastSink, make_sink
from .producer import Producer
from .rtp import EXT_MID, EXT_RID, find_extension
from .sdp import MediaSection, check_limits, parse_media
from .simulcast import munge_answer
from .stats import (
    RTCP_ERROR,
    RTCP_SRTP_UNPROTECT,
    RTCP_TRUNCATED,
    RTCP_UNKNOWN_SSRC,
    RTP_BAD_VERSION,
    RTP_ERROR,
    RTP_NO_PRODUCER,
    RTP_NOT_CONNECTED,
    RTP_RTX,
    RTP_SEND_ERROR,
    RTP_SRTP_ERROR,
    RTP_SRTP_UNPROTECT,
    RTP_TRUNCATED,
    RTP_UNKNOWN_SSRC,
    WorkerStats,
)

if TYPE_CHECKING:
    from .router import Router
    from .worker import WorkerSettings

logger = logging.getLogger(__name__)

_U32 = struct.Struct("!I")
FORWARDABLE_CODECS = frozenset({"video/vp8", "video/h264", "audio/opus"})
STATES = ("connecting", "connected", "failed", "closed")
PATH_REFRESH_INTERVAL = 1.0  # s between path checks of a connected transport without producers
# Remote candidates a transport takes (buffered before the description, then applied): a browser
# trickles a handful per network interface; more is a client bug or a flood (each one is kept,
# and a full ICE agent would pair and check it).
MAX_REMOTE_CANDIDATES = 50
# NACKs to publishers (sfu.nack_generator): the missing lists are read this often while a producer
# of the transport has numbers missing (no timer runs while nothing is)
NACK_INTERVAL = 0.02


class WebRtcTransport:
    """Wraps one aiortc ``RTCPeerConnection``. Created only by :meth:`Router.create_transport`."""

    def __init__(
        self, router: Router, transport_id: str, settings: WorkerSettings, stats: WorkerStats
    ) -> None:
        self.id = transport_id
        self.stream_id = uuid.uuid4().hex  # a=msid stream id of this transport's producers
        self.on_negotiation_needed: Callable[[], None] | None = None
        self.on_state_change: Callable[[str], None] | None = None
        self._router = router
        self._settings = settings
        self._stats = stats
        self._closed = False
        self._negotiation_needed = False
        self._state = "new"
        servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in settings.normalized_ice_servers()
        ]
        self._pc: Any = RTCPeerConnection(
            RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._pc.on("connectionstatechange", self._on_pc_state)
        compat.guard_connect_task(self._pc)  # close() while it connects: no unretrieved task error
        self._remote_media: list[MediaSection] = []
        self._local_media: list[MediaSection] = []
        self._pending_candidates: list[Any] = []  # RTCIceCandidate or None, before a description
        self._remote_candidates = 0  # taken so far (pending and applied), at most MAX_REMOTE_CANDIDATES
        self._producers: dict[str, Producer] = {}
        self._producer_by_mid: dict[str, Producer] = {}
        self._producer_by_ssrc: dict[int, Producer] = {}
        self._rtx_ssrcs: set[int] = set()
        # RTX SSRC -> the producer whose stream it repairs (a=ssrc-group:FID of the offer)
        self._rtx_producers: dict[int, Producer] = {}
        self._nack_timer: asyncio.TimerHandle | None = None
        self._mid_ext_id = 0
        self._rid_ext_id = 0
        self._consumers: dict[str, Consumer] = {}
        self._consumer_by_ssrc: dict[int, Consumer] = {}
        self._transceiver_by_consumer: dict[str, Any] = {}
        # m-lines of closed consumers: inactive in the next offer (closing), then, once an answer
        # has confirmed that, free for the next consumer of the same kind (so a subscriber's SDP
        # does not grow with every screen share or subscribe/unsubscribe cycle)
        self._closing_transceivers: list[Any] = []
        self._free_transceivers: dict[str, list[Any]] = {"audio": [], "video": []}
        self._dtls: Any = None
        self._tx: Any = None  # pylibsrtp Session
        self._protect: compat.Protector | None = None  # fast protect bound to self._tx
        self._sock: Any = None  # asyncio datagram transport of the selected pair
        self._addr: tuple[str, int] | None = None
        # the compiled fan-out's view of (self._tx, self._sock, self._addr); None: Python path only
        self._fast_sink: FastSink | None = None
        self._connected = False
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._last_remb = 0.0
        self._last_refresh = -1e9
        self._hook_errors = 0

    # ---- properties ------------------------------------------------------------------------------
    @property
    def router(self) -> Router:
        return self._router

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
        return self._pc

    def offered_media(self) -> list[MediaSection]:
        """The audio/video m-lines of the last remote offer (mid, kind, direction, ...)."""
        return list(self._remote_media)

    # ---- publisher side ---------------------------------------------------------------------------
    async def accept_offer(self, offer_sdp: str) -> str:
        """Apply a client's offer and return the answer SDP (with all local candidates).

        Producers whose m-line is gone or no longer sending are closed.
        """
        self._check_open()
        if self._pc.signalingState != "stable":
            raise InvalidStateError(f"cannot accept an offer in state {self._pc.signalingState}")
        media = parse_media(offer_sdp)
        await asyncio.sleep(0)  # aiortc parses it again: one parse per turn of the loop
        self._check_open()
        if self._pc.signalingState != "stable":
            raise InvalidStateError(f"cannot accept an offer in state {self._pc.signalingState}")
        try:
            with ice_lite.using_mux(self._router._worker.mux), compat.parked_receivers():
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            self._prepare_transceivers()
            answer = await self._pc.createAnswer()
            await self._pc.setLocalDescription(answer)
        except Exception as exc:
            raise self._negotiation_error("cannot apply offer", exc) from exc
        self._prepare_transceivers()
        self._remote_media = media
        # aiortc drops a=rid / a=simulcast and the rid extmaps: add them back (sfu.simulcast)
        answer_sdp = munge_answer(str(self._pc.localDescription.sdp), offer_sdp)
        await asyncio.sleep(0)  # serialising and munging the answer was this turn's share
        self._check_open()
        self._local_media = parse_media(answer_sdp)
        mid_ext = next((m.extensions.get(EXT_MID, 0) for m in media if EXT_MID in m.extensions), 0)
        self._mid_ext_id = mid_ext
        self._rid_ext_id = next(
            (m.extensions.get(EXT_RID, 0) for m in self._local_media if EXT_RID in m.extensions), 0
        )
        by_mid = {m.mid: m for m in media}
        await asyncio.sleep(0)  # closing a producer closes its consumers everywhere: a turn of its own
        for producer in list(self._producers.values()):
            section = by_mid.get(producer.mid)
            if section is None or not section.sending:
                producer.close()
        await self._flush_candidates()
        return answer_sdp

    def produce(self, mid: str, source: str) -> Producer:
        """Start forwarding the track the client sends on m-line ``mid``; ``source`` is a label."""
        self._check_open()
        section = next((m for m in self._remote_media if m.mid == mid), None)
        if section is None or not section.sending:
            raise UnknownMidError(f"m-line {mid!r} is not a sending m-line of the last offer")
        if mid in self._producer_by_mid:
            raise UnknownMidError(f"m-line {mid!r} is already produced")
        local = next((m for m in self._local_media if m.mid == mid), None)
        if local is None or local.direction == "inactive":
            raise UnsupportedCodecError(f"m-line {mid!r} was rejected in the answer")
        codec = local.main_codec
        if codec is None or codec.mime_type.lower() not in FORWARDABLE_CODECS:
            raise UnsupportedCodecError(f"no forwardable codec on m-line {mid!r}")
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
            fast_path=self._router._worker.fast_path,
        )
        self._producers[producer.id] = producer
        self._producer_by_mid[mid] = producer
        if producer.simulcast:
            for ssrc in section.simulcast_ssrcs:
                self._producer_by_ssrc[ssrc] = producer
        elif producer.ssrc is not None:
            self._producer_by_ssrc[producer.ssrc] = producer
        self._rtx_ssrcs.update(section.rtx_ssrcs)
        if producer._rtx is not None and producer.ssrc is not None:
            rtx_ssrc = section.rtx_ssrc(producer.ssrc)
            if rtx_ssrc is not None:
                self._rtx_producers[rtx_ssrc] = producer
        self._stats.producers += 1
        self._router._producer_added(producer)
        return producer

    # ---- subscriber side --------------------------------------------------------------------------
    def consume(self, producer: Producer) -> Consumer:
        """Add an outgoing copy of ``producer``; marks negotiation needed (call :meth:`create_offer`)."""
        self._check_open()
        if producer.closed:
            raise ClosedError("producer is closed")
        capability = _capability_for(producer)
        free = self._free_transceivers[producer.kind]
        if free:  # an m-line a closed consumer left: same mid, new SSRC, msid and codec
            transceiver = free.pop()
            transceiver.direction = "sendonly"
            compat.set_sender_ssrc(transceiver.sender, self._new_ssrc())
        else:
            with ice_lite.using_mux(self._router._worker.mux), compat.parked_receivers():
                transceiver = self._pc.addTransceiver(compat.ParkedTrack(producer.kind), direction="sendonly")
            compat.disable_sender(transceiver.sender)
            compat.disable_receiver(transceiver.receiver)
        try:
            transceiver.setCodecPreferences([capability])
        except ValueError as exc:  # pragma: no cover - capability comes from aiortc itself
            raise UnsupportedCodecError(f"cannot offer {producer.codec}", detail=str(exc)) from exc
        compat.set_sender_msid(transceiver.sender, producer.transport.stream_id, producer.id)
        st = self._settings
        guard = nack.RetransmitGuard(st.retransmit_rate, st.retransmit_burst, st.nack_window)
        consumer = Consumer(self, producer, compat.sender_ssrc(transceiver.sender), self._stats, guard)
        producer._add_consumer(consumer)
        self._consumers[consumer.id] = consumer
        self._consumer_by_ssrc[consumer.ssrc] = consumer
        self._transceiver_by_consumer[consumer.id] = transceiver
        self._stats.consumers += 1
        self._set_negotiation_needed()
        return consumer

    @property
    def ice_lite(self) -> bool:
        """On the shared port (ICE-lite), so its negotiations wait for nothing but the CPU: no
        gathering (a STUN server), no mDNS name of a remote candidate to resolve, no checks.
        False until the first description made its ICE transport."""
        return ice_lite.is_lite(self._pc)

    async def create_offer(self) -> str:
        """Create and apply an offer: one sendonly m-line per live consumer, closed ones inactive."""
        self._check_open()
        if self._pc.signalingState != "stable":
            raise InvalidStateError(f"cannot create an offer in state {self._pc.signalingState}")
        self._negotiation_needed = False
        try:
            offer = await self._pc.createOffer()
            await self._pc.setLocalDescription(offer)
        except Exception as exc:
            raise self._negotiation_error("cannot create offer", exc) from exc
        self._prepare_transceivers()
        for consumer_id, transceiver in self._transceiver_by_consumer.items():
            consumer = self._consumers.get(consumer_id)
            if consumer is not None:
                consumer.mid = transceiver.mid
        sdp = str(self._pc.localDescription.sdp)  # aiortc writes the text anew on every read
        await asyncio.sleep(0)  # the parse in a turn of the loop of its own
        self._check_open()
        self._local_media = parse_media(sdp)
        return sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        """Apply the client's answer to :meth:`create_offer`; consumers start forwarding."""
        self._check_open()
        if self._pc.signalingState != "have-local-offer":
            raise InvalidStateError("no offer is pending")
        # an answer has the offer's m-lines: bound its parse by them before anything parses it
        check_limits(answer_sdp, len(self._local_media))
        media = parse_media(answer_sdp)
        await asyncio.sleep(0)  # aiortc parses it again: one parse per turn of the loop
        self._check_open()
        if self._pc.signalingState != "have-local-offer":
            raise InvalidStateError("no offer is pending")
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:
            raise self._negotiation_error("cannot apply answer", exc) from exc
        self._prepare_transceivers()
        self._remote_media = media
        # closing m-lines this offer made inactive (not those closed while it was in flight): the
        # answer confirmed them, they are free for the next consumer of their kind
        offered_inactive = {m.mid for m in self._local_media if m.direction == "inactive"}
        for transceiver in [t for t in self._closing_transceivers if t.mid in offered_inactive]:
            self._closing_transceivers.remove(transceiver)
            self._free_transceivers[transceiver.kind].append(transceiver)
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
            consumer._configure(codec.payload_type, dict(section.extensions))
        await self._flush_candidates()

    # ---- ICE -------------------------------------------------------------------------------------
    async def add_remote_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        """Add a trickled RTCIceCandidateInit (``None`` or an empty candidate: end of candidates).

        Candidates that arrive before the remote description are buffered and applied with it.
        A transport takes at most :data:`MAX_REMOTE_CANDIDATES` (end-of-candidates included):
        :class:`TooManyCandidatesError` after that.
        """
        self._check_open()
        parsed = _parse_candidate(candidate)
        if self._remote_candidates >= MAX_REMOTE_CANDIDATES:  # end-of-candidates counts too
            raise TooManyCandidatesError(f"at most {MAX_REMOTE_CANDIDATES} remote candidates per transport")
        self._remote_candidates += 1
        if self._pc.remoteDescription is None:
            self._pending_candidates.append(parsed)
            return
        await self._apply_candidate(parsed)

    async def _flush_candidates(self) -> None:
        pending, self._pending_candidates = self._pending_candidates, []
        for c in pending:
            await self._apply_candidate(c)

    async def _apply_candidate(self, candidate: Any) -> None:
        transceivers = self._pc.getTransceivers()
        if candidate is not None and transceivers:
            # one bundled ICE transport: every candidate belongs to the first m-line's transport
            candidate.sdpMid = transceivers[0].mid
            candidate.sdpMLineIndex = None
        try:
            await self._pc.addIceCandidate(candidate)
        except Exception as exc:
            logger.debug("transport %s: candidate ignored: %s", self.id, exc)

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
        self._tx = self._sock = self._protect = self._fast_sink = None
        if self._nack_timer is not None:
            self._nack_timer.cancel()
            self._nack_timer = None
        self._stats.transports -= 1
        self._router._transport_closed(self)
        self._router._worker._spawn(self._pc.close())
        self._set_state("closed")
        self.on_negotiation_needed = None
        self.on_state_change = None

    def __repr__(self) -> str:
        return f"WebRtcTransport(id={self.id!r}, state={self._state!r})"

    # ---- internal: parent/child bookkeeping ---------------------------------------------------
    def _negotiation_error(self, what: str, exc: Exception) -> SfuError:
        """The error for an aiortc negotiation call that raised: the transport was closed meanwhile,
        or the description could not be applied."""
        if self._closed:
            return ClosedError("transport closed during negotiation")
        # aiortc's message names its internals (e.g. "None is not in list"): logs only
        return InvalidSdpError(what, detail=f"{type(exc).__name__}: {exc}")

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"transport {self.id!r} is closed")

    def _producer_closed(self, producer: Producer) -> None:
        if self._producers.pop(producer.id, None) is None:
            return
        self._stats.producers -= 1
        if self._producer_by_mid.get(producer.mid) is producer:
            del self._producer_by_mid[producer.mid]
        for ssrc in [s for s, p in self._producer_by_ssrc.items() if p is producer]:
            del self._producer_by_ssrc[ssrc]
        for ssrc in [s for s, p in self._rtx_producers.items() if p is producer]:
            del self._rtx_producers[ssrc]
        self._rtx_ssrcs.difference_update(producer._learned_rtx)
        self._router._producer_removed(producer)

    def _consumer_closed(self, consumer: Consumer) -> None:
        if self._consumers.pop(consumer.id, None) is None:
            return
        self._stats.consumers -= 1
        self._consumer_by_ssrc.pop(consumer.ssrc, None)
        transceiver = self._transceiver_by_consumer.pop(consumer.id, None)
        if transceiver is not None and not self._closed:
            transceiver.direction = "inactive"
            self._closing_transceivers.append(transceiver)
            self._set_negotiation_needed()

    def _new_ssrc(self) -> int:
        """An SSRC no consumer of this transport uses (nor its RTCP sender SSRC)."""
        while True:
            ssrc = random.getrandbits(32)
            if ssrc and ssrc != self._rtcp_ssrc and ssrc not in self._consumer_by_ssrc:
                return ssrc

    def _set_negotiation_needed(self) -> None:
        self._negotiation_needed = True
        callback = self.on_negotiation_needed
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("transport %s: on_negotiation_needed failed", self.id)

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        callback = self.on_state_change
        if callback is not None:
            try:
                callback(state)
            except Exception:
                logger.exception("transport %s: on_state_change failed", self.id)

    def _on_pc_state(self) -> None:
        if self._closed:
            return
        state = self._pc.connectionState
        if state in ("connected", "failed"):
            # failed: e.g. ICE consent lost (sfu.udp_mux.expire): the send path is gone, stop now
            self._refresh_path()
        if state in STATES:
            self._set_state(state)

    def _prepare_transceivers(self) -> None:
        """Keep aiortc's receivers/senders idle and hook the (bundled) DTLS transport."""
        for t in self._pc.getTransceivers():
            compat.disable_receiver(t.receiver)
            compat.disable_sender(t.sender)
            dtls = t.receiver.transport
            if compat.install_packet_hooks(dtls, self._on_rtp, self._on_rtcp):
                dtls.on("statechange", self._on_dtls_state)
                if self._settings.direct_receive:
                    compat.install_direct_receive(dtls, self._on_rtp, self._on_rtcp, self._on_srtp_error)
        transceivers = self._pc.getTransceivers()
        if transceivers:
            self._dtls = transceivers[0].receiver.transport

    def _on_dtls_state(self) -> None:
        self._refresh_path()

    def _refresh_path(self) -> None:
        """Pick up the SRTP session and the selected ICE pair once DTLS is connected."""
        dtls = self._dtls
        if dtls is None or self._closed:
            return
        was_connected = self._connected
        tx = compat.tx_srtp(dtls) if dtls.state == "connected" else None
        pair = compat.selected_pair(dtls) if tx is not None else None
        if tx is None or pair is None:
            self._connected = False
            self._tx = self._sock = self._protect = None
            self._set_fast_sink(None)
            return
        if tx is not self._tx or self._protect is None:
            self._tx = tx
            self._protect = compat.fast_protect(tx)
            self._set_fast_sink(None)
        sock, addr = pair
        if sock is not self._sock or addr != self._addr:
            self._sock, self._addr = sock, addr
            self._set_fast_sink(None)
        if self._fast_sink is None and self._router._worker.fast_path:
            self._set_fast_sink(make_sink(sock, addr, tx))
        self._connected = True
        if not was_connected:
            for producer in self._producers.values():
                producer._on_transport_connected()
            for consumer in self._consumers.values():
                consumer.producer._on_consumer_connected(consumer)

    def _set_fast_sink(self, sink: FastSink | None) -> None:
        """A new path or SRTP session: consumers leave the compiled fan-out (the Python path puts
        them back, on the new sink, after their next packet)."""
        if sink is self._fast_sink:
            return
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
        if self._connected and self._producers and now - self._last_remb >= self._settings.remb_interval:
            # one compound: receiver report for every producer, then REMB
            self._last_remb = now
            blocks = [b for p in self._producers.values() for b in p._report_blocks(now)]
            if blocks:
                ssrcs = [b[0] for b in blocks]
                packet = rtcp.build_rr(self._rtcp_ssrc, blocks) + rtcp.build_remb(
                    self._rtcp_ssrc, self._settings.remb_bitrate, ssrcs
                )
                if self._send_rtcp(packet):
                    self._stats.remb_sent += 1
                    self._stats.rr_sent += 1

    def _nack_wanted(self) -> None:
        """A producer's NACK generator has numbers missing: read the lists in NACK_INTERVAL."""
        if self._nack_timer is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test feeding packets synchronously): nothing to schedule
            return
        self._nack_timer = loop.call_later(NACK_INTERVAL, self._send_nacks)

    def _send_nacks(self) -> None:
        """The NACK timer: one compound with a generic NACK per producer that has numbers due; the
        timer runs again while numbers are missing."""
        self._nack_timer = None
        if self._closed:
            return
        try:
            now = time.monotonic()
            packets: list[bytes] = []
            missing = False
            for producer in list(self._producers.values()):
                packet, pending = producer._nack_tick(now)
                if packet:
                    packets.append(packet)
                missing = missing or pending
            if packets and self._connected:
                self._send_rtcp(b"".join(packets))
            if missing:
                self._nack_wanted()
        except Exception:
            logger.exception("transport %s: NACK timer failed", self.id)

    # ---- internal: the packet path --------------------------------------------------------------
    def _send_rtp(self, data: bytes | bytearray) -> bool:
        protect = self._protect
        sock = self._sock
        stats = self._stats
        if protect is None or sock is None:
            stats.drop_rtp(RTP_NOT_CONNECTED)
            return False
        try:
            out = protect(data)
        except Exception:
            stats.drop_rtp(RTP_SRTP_ERROR)
            return False
        try:
            sock.sendto(out, self._addr)
        except Exception:
            stats.drop_rtp(RTP_SEND_ERROR)
            return False
        stats.rtp_out += 1
        stats.rtp_out_bytes += len(out)
        return True

    def _send_rtcp(self, data: bytes) -> bool:
        tx = self._tx
        sock = self._sock
        if tx is None or sock is None:
            return False
        try:
            sock.sendto(tx.protect_rtcp(data), self._addr)
        except Exception:
            return False
        self._stats.rtcp_out += 1
        return True

    def _on_srtp_error(self, is_rtcp: bool) -> None:
        if is_rtcp:
            self._stats.rtcp_in += 1
            self._stats.drop_rtcp(RTCP_SRTP_UNPROTECT)
        else:
            self._stats.rtp_in += 1
            self._stats.drop_rtp(RTP_SRTP_UNPROTECT)

    def _on_rtp(self, data: bytes) -> None:
        """Hook: one decrypted RTP packet from the client. Never raises."""
        stats = self._stats
        try:
            stats.rtp_in += 1
            stats.rtp_in_bytes += len(data)
            if len(data) < 12:
                stats.drop_rtp(RTP_TRUNCATED)
                return
            if data[0] >> 6 != 2:
                stats.drop_rtp(RTP_BAD_VERSION)
                return
            ssrc = _U32.unpack_from(data, 8)[0]
            producer = self._producer_by_ssrc.get(ssrc)
            if producer is None:
                producer = self._learn_ssrc(data, ssrc)
                if producer is None:
                    return
            producer._receive_rtp(data)
        except Exception:
            stats.drop_rtp(RTP_ERROR)
            self._hook_errors += 1
            if self._hook_errors == 1:
                logger.exception("transport %s: RTP hook error (further ones are only counted)", self.id)

    def _learn_ssrc(self, data: bytes, ssrc: int) -> Producer | None:
        """Bind an unknown SSRC to a producer through the MID header extension (counts drops)."""
        stats = self._stats
        if ssrc in self._rtx_ssrcs:
            repaired = self._rtx_producers.get(ssrc)
            if repaired is None:
                stats.drop_rtp(RTP_RTX)
            else:
                repaired._receive_rtx(data)  # unwrapped into the original stream (RFC 4588)
            return None
        mid_value = find_extension(data, self._mid_ext_id) if self._mid_ext_id else None
        if mid_value is None:
            stats.drop_rtp(RTP_UNKNOWN_SSRC)
            return None
        mid = mid_value.decode("ascii", "replace")
        producer = self._producer_by_mid.get(mid)
        if producer is None:
            known = any(m.mid == mid for m in self._remote_media)
            stats.drop_rtp(RTP_NO_PRODUCER if known else RTP_UNKNOWN_SSRC)
            return None
        if producer.simulcast:
            # one SSRC per layer: the rid extension (sent in the first packets) names the layer
            if data[1] & 0x7F != producer.codec_info.payload_type:
                producer._learn_rtx(ssrc, data[1] & 0x7F, self._rtx_ssrcs)  # bounded, counts the drop
                return None
            rid = find_extension(data, self._rid_ext_id) if self._rid_ext_id else None
            if rid is None or not producer._bind_layer(rid.decode("ascii", "replace"), ssrc):
                stats.drop_rtp(RTP_UNKNOWN_SSRC)
                return None
            self._producer_by_ssrc[ssrc] = producer
            return producer
        if producer.ssrc is not None and producer.ssrc != ssrc:
            if data[1] & 0x7F != producer.codec_info.payload_type:
                producer._learn_rtx(ssrc, data[1] & 0x7F, self._rtx_ssrcs)  # bounded, counts the drop
                return None
            if producer.packets:
                stats.drop_rtp(RTP_UNKNOWN_SSRC)  # a second stream on one m-line (simulcast): not yet
                return None
            # the SSRC announced in a=ssrc never sent anything: the MID extension wins
            if self._producer_by_ssrc.get(producer.ssrc) is producer:
                del self._producer_by_ssrc[producer.ssrc]
        self._producer_by_ssrc[ssrc] = producer
        producer._learned_ssrc(ssrc)
        return producer

    def _on_remb(self, data: bytes, start: int, end: int) -> None:
        """REMB from a subscriber: share the estimate among the simulcast consumers it names."""
        try:
            bitrate, ssrcs = rtcp.parse_remb(data, start, end)
        except ValueError:
            return  # another application-layer feedback message
        named = [c for s in ssrcs if (c := self._consumer_by_ssrc.get(s)) is not None and c.kind == "video"]
        if not named:
            return
        share = bitrate // len(named)
        for consumer in named:
            if consumer.producer.simulcast:
                consumer._on_estimate(share)
            else:
                consumer.estimate = share

    def _on_rtcp(self, data: bytes) -> None:
        """Hook: one decrypted RTCP compound from the client. Never raises."""
        stats = self._stats
        try:
            stats.rtcp_in += 1
            try:
                packets = rtcp.split_compound(data)
            except ValueError:
                stats.drop_rtcp(RTCP_TRUNCATED)
                return
            for pt, fmt, start, end in packets:
                if pt == rtcp.RTCP_SR:
                    stats.sr_received += 1
                    ssrc, ntp, rtp_ts = rtcp.parse_sr(data, start, end)
                    producer = self._producer_by_ssrc.get(ssrc)
                    if producer is not None:
                        producer._on_sender_report(ntp, rtp_ts, ssrc)
                elif pt == rtcp.RTCP_RR:
                    stats.rr_received += 1
                    nack.on_receiver_report(self._consumer_by_ssrc, data, start, end, fmt)  # RTT
                elif pt == rtcp.RTCP_RTPFB and fmt == rtcp.RTPFB_NACK:
                    media, seqs = rtcp.parse_nack(data, start, end)
                    consumer = self._consumer_by_ssrc.get(media)
                    if consumer is None:
                        stats.drop_rtcp(RTCP_UNKNOWN_SSRC)
                    else:
                        consumer._handle_nack(seqs)
                elif pt == rtcp.RTCP_PSFB and fmt in (rtcp.PSFB_PLI, rtcp.PSFB_FIR):
                    if fmt == rtcp.PSFB_PLI:
                        targets = [rtcp.feedback_ssrcs(data, start, end)[1]]
                    else:
                        targets = rtcp.parse_fir_ssrcs(data, start, end)
                    for media in targets:
                        consumer = self._consumer_by_ssrc.get(media)
                        if consumer is None:
                            stats.drop_rtcp(RTCP_UNKNOWN_SSRC)
                            continue
                        stats.pli_received += 1
                        consumer._request_keyframe()
                elif pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_APP:
                    self._on_remb(data, start, end)
        except Exception:
            stats.drop_rtcp(RTCP_ERROR)
            self._hook_errors += 1
            if self._hook_errors == 1:
                logger.exception("transport %s: RTCP hook error (further ones are only counted)", self.id)


def _capability_for(producer: Producer) -> Any:
    """The aiortc codec capability that matches the producer's codec (H.264: same profile/mode)."""
    mime = producer.codec.lower()
    params = producer.codec_info.parameters
    caps = [c for c in RTCRtpSender.getCapabilities(producer.kind).codecs if c.mimeType.lower() == mime]
    if mime == "video/h264":
        want_mode = str(params.get("packetization-mode", "0"))
        want_profile = str(params.get("profile-level-id", "42001f")).lower()[:4]
        for c in caps:
            if (
                str(c.parameters.get("packetization-mode", "0")) == want_mode
                and str(c.parameters.get("profile-level-id", "")).lower()[:4] == want_profile
            ):
                return c
        caps = [c for c in caps if str(c.parameters.get("packetization-mode", "0")) == want_mode]
    if not caps:
        raise UnsupportedCodecError(f"cannot offer {producer.codec} to a subscriber")
    return caps[0]


def check_candidate(candidate: Mapping[str, Any] | None) -> None:
    """Raise :class:`InvalidCandidateError` for a candidate :meth:`WebRtcTransport.add_remote_candidate`
    would refuse (for callers that hold candidates until a transport exists)."""
    _parse_candidate(candidate)


def _parse_candidate(candidate: Mapping[str, Any] | None) -> Any:
    if candidate is None:
        return None
    if not isinstance(candidate, Mapping):
        raise InvalidCandidateError("candidate must be an RTCIceCandidateInit object or null")
    text = candidate.get("candidate")
    if not text:
        return None  # an empty candidate string also means end of candidates
    if not isinstance(text, str):
        raise InvalidCandidateError("candidate.candidate must be a string")
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        parsed = candidate_from_sdp(text)
    except Exception as exc:
        raise InvalidCandidateError("cannot parse candidate", detail=f"{type(exc).__name__}: {exc}") from exc
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return parsed


__all__ = ["MAX_REMOTE_CANDIDATES", "WebRtcTransport", "check_candidate"]
