"""Negotiation of one transport: the aiortc ``RTCPeerConnection``, its SDP and its candidates.

aiortc's ``RTCPeerConnection`` does offer/answer, ICE and DTLS; mediasoup has no SDP at all (its
clients' libraries write it). This object owns the peer connection and everything about
descriptions: applying a client's offer and returning the answer (with the simulcast lines aiortc
drops, :func:`sfu.simulcast.munge_answer`), the server's offers to a subscriber (one ``sendonly``
m-line per sender, m-lines of closed senders ``inactive`` and then reused), the client's answers,
trickled candidates (bounded, buffered until a description exists), the bounds and the one-parse-
per-turn pacing (docs/sfu.md, "Public API"). Every aiortc call that creates ICE gatherers runs
inside :func:`sfu.ice_lite.using_mux`.

It knows nothing of producers or consumers: the transport names each outgoing m-line by a key
(the consumer's id) and reads the parsed m-lines (:class:`sfu.sdp.MediaSection`). After every
description aiortc's senders and receivers are kept idle (the core moves the packets) and
``on_dtls`` gets the DTLS transports (one when bundled), for the transport to hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp

from . import aiortc_compat as compat
from . import ice_lite
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
from .sdp import CodecInfo, MediaSection, check_limits, parse_media
from .settings import IceServer
from .simulcast import munge_answer
from .udp_mux import UdpMux

logger = logging.getLogger(__name__)

FORWARDABLE_CODECS = frozenset({"video/vp8", "video/h264", "audio/opus"})
# Remote candidates a transport takes (buffered before the description, then applied): a browser
# trickles a handful per network interface; more is a client bug or a flood (each one is kept,
# and a full ICE agent would pair and check it).
MAX_REMOTE_CANDIDATES = 50


class Negotiation:
    """The peer connection of one transport and its descriptions. ``closed`` says whether the
    transport closed (checked after every await); ``name`` labels log lines."""

    def __init__(
        self,
        *,
        ice_servers: list[IceServer],
        mux: Callable[[], UdpMux | None],
        closed: Callable[[], bool],
        on_dtls: Callable[[list[Any]], None],
        on_state: Callable[[str], None],
        name: str,
    ) -> None:
        self._mux = mux
        self._closed = closed
        self._on_dtls = on_dtls
        self._name = name
        servers = [RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential) for s in ice_servers]
        self.pc: Any = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc.on("connectionstatechange", lambda: on_state(self.pc.connectionState))
        compat.guard_connect_task(self.pc)  # close() while it connects: no unretrieved task error
        self.remote_media: list[MediaSection] = []
        self.local_media: list[MediaSection] = []
        self._pending_candidates: list[Any] = []  # RTCIceCandidate or None, before a description
        self._remote_candidates = 0  # taken so far (pending and applied), at most MAX_REMOTE_CANDIDATES
        self._senders: dict[str, Any] = {}  # key (consumer id) -> its sendonly transceiver
        # m-lines of closed senders: inactive in the next offer (closing), then, once an answer
        # has confirmed that, free for the next sender of the same kind (so a subscriber's SDP
        # does not grow with every screen share or subscribe/unsubscribe cycle)
        self._closing: list[Any] = []
        self._free: dict[str, list[Any]] = {"audio": [], "video": []}

    @property
    def pending_candidates(self) -> int:
        """Candidates held until a remote description exists."""
        return len(self._pending_candidates)

    @property
    def ice_lite(self) -> bool:
        return ice_lite.is_lite(self.pc)

    def _check_open(self) -> None:
        if self._closed():
            raise ClosedError(f"transport {self._name!r} is closed")

    def _check_state(self, state: str, message: str) -> None:
        if self.pc.signalingState != state:
            raise InvalidStateError(message.format(state=self.pc.signalingState))

    def _error(self, what: str, exc: Exception) -> SfuError:
        """The error for an aiortc negotiation call that raised: the transport was closed meanwhile,
        or the description could not be applied."""
        if self._closed():
            return ClosedError("transport closed during negotiation")
        # aiortc's message names its internals (e.g. "None is not in list"): logs only
        return InvalidSdpError(what, detail=f"{type(exc).__name__}: {exc}")

    def _prepare(self) -> None:
        """Keep aiortc's receivers/senders idle; hand the DTLS transports on (the first m-line's
        first: with BUNDLE, the only one)."""
        transceivers = self.pc.getTransceivers()
        for t in transceivers:
            compat.disable_receiver(t.receiver)
            compat.disable_sender(t.sender)
        if transceivers:
            self._on_dtls([t.receiver.transport for t in transceivers])

    # ---- the client offers (publisher) ------------------------------------------------------------
    async def accept_offer(self, offer_sdp: str) -> str:
        """Apply a client's offer; returns the answer (``remote_media`` / ``local_media`` set)."""
        self._check_state("stable", "cannot accept an offer in state {state}")
        media = parse_media(offer_sdp)
        await asyncio.sleep(0)  # aiortc parses it again: one parse per turn of the loop
        self._check_open()
        self._check_state("stable", "cannot accept an offer in state {state}")
        try:
            with ice_lite.using_mux(self._mux()), compat.parked_receivers():
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            self._prepare()
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise self._error("cannot apply offer", exc) from exc
        self._prepare()
        self.remote_media = media
        # aiortc drops a=rid / a=simulcast and the rid extmaps: add them back (sfu.simulcast)
        answer_sdp = munge_answer(str(self.pc.localDescription.sdp), offer_sdp)
        await asyncio.sleep(0)  # serialising and munging the answer was this turn's share
        self._check_open()
        self.local_media = parse_media(answer_sdp)
        return answer_sdp

    def sending_mline(self, mid: str, produced: bool) -> tuple[MediaSection, MediaSection, CodecInfo]:
        """The offer's m-line ``mid``, its answer and the codec to forward, if the client sends a
        forwardable codec on it and it is not ``produced`` yet (else UnknownMidError /
        UnsupportedCodecError)."""
        section = next((m for m in self.remote_media if m.mid == mid), None)
        if section is None or not section.sending:
            raise UnknownMidError(f"m-line {mid!r} is not a sending m-line of the last offer")
        if produced:
            raise UnknownMidError(f"m-line {mid!r} is already produced")
        local = next((m for m in self.local_media if m.mid == mid), None)
        if local is None or local.direction == "inactive":
            raise UnsupportedCodecError(f"m-line {mid!r} was rejected in the answer")
        codec = local.main_codec
        if codec is None or codec.mime_type.lower() not in FORWARDABLE_CODECS:
            raise UnsupportedCodecError(f"no forwardable codec on m-line {mid!r}")
        return section, local, codec

    # ---- the server offers (subscriber) -----------------------------------------------------------
    def open_sender(
        self, kind: str, capability: Any, ssrc: Callable[[], int], rtx_ssrc: int | None = None
    ) -> Any:
        """A ``sendonly`` m-line offering only ``capability``; reuses an m-line a closed sender left
        (same mid; ``ssrc()`` gives it a new SSRC). With ``rtx_ssrc`` (video) the m-line also offers
        RTX (RFC 4588: ``rtx/90000`` with ``apt``, ``a=ssrc-group:FID <ssrc> <rtx_ssrc>``). Returns
        aiortc's transceiver; name it with :meth:`bind_sender` (``compat.sender_ssrc`` /
        ``set_sender_msid`` apply to its sender)."""
        free = self._free[kind]
        if free:  # an m-line a closed sender left: same mid, new SSRC, msid and codec
            transceiver = free.pop()
            transceiver.direction = "sendonly"
            compat.set_sender_ssrc(transceiver.sender, ssrc())
        else:
            with ice_lite.using_mux(self._mux()), compat.parked_receivers():
                transceiver = self.pc.addTransceiver(compat.ParkedTrack(kind), direction="sendonly")
            compat.disable_sender(transceiver.sender)
            compat.disable_receiver(transceiver.receiver)
        preferences = [capability]
        if rtx_ssrc is not None:
            compat.set_sender_rtx_ssrc(transceiver.sender, rtx_ssrc)
            preferences.append(rtx_capability(kind))
        try:
            transceiver.setCodecPreferences(preferences)
        except ValueError as exc:  # pragma: no cover - capability comes from aiortc itself
            raise UnsupportedCodecError(f"cannot offer {capability.mimeType}", detail=str(exc)) from exc
        return transceiver

    def bind_sender(self, key: str, transceiver: Any) -> None:
        """``transceiver`` (from :meth:`open_sender`) sends for ``key`` (a consumer's id)."""
        self._senders[key] = transceiver

    def close_sender(self, key: str) -> bool:
        """The sender ``key`` closed: its m-line goes ``inactive`` in the next offer. False when
        there was none."""
        transceiver = self._senders.pop(key, None)
        if transceiver is None:
            return False
        transceiver.direction = "inactive"
        self._closing.append(transceiver)
        return True

    def check_can_offer(self) -> None:
        """InvalidStateError while an offer is pending."""
        self._check_state("stable", "cannot create an offer in state {state}")

    async def create_offer(self, on_mids: Callable[[dict[str, str | None]], None]) -> str:
        """Create and apply an offer: one sendonly m-line per open sender, closed ones inactive.
        ``on_mids`` gets each sender's mid (key -> mid) once the offer is applied."""
        self.check_can_offer()
        try:
            offer = await self.pc.createOffer()
            await self.pc.setLocalDescription(offer)
        except Exception as exc:
            raise self._error("cannot create offer", exc) from exc
        self._prepare()
        on_mids({key: t.mid for key, t in self._senders.items()})
        sdp = str(self.pc.localDescription.sdp)  # aiortc writes the text anew on every read
        await asyncio.sleep(0)  # the parse in a turn of the loop of its own
        self._check_open()
        self.local_media = parse_media(sdp)
        return sdp

    async def accept_answer(self, answer_sdp: str) -> list[MediaSection]:
        """Apply the client's answer to :meth:`create_offer`; returns its m-lines."""
        self._check_state("have-local-offer", "no offer is pending")
        # an answer has the offer's m-lines: bound its parse by them before anything parses it
        check_limits(answer_sdp, len(self.local_media))
        media = parse_media(answer_sdp)
        await asyncio.sleep(0)  # aiortc parses it again: one parse per turn of the loop
        self._check_open()
        self._check_state("have-local-offer", "no offer is pending")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:
            raise self._error("cannot apply answer", exc) from exc
        self._prepare()
        self.remote_media = media
        # closing m-lines this offer made inactive (not those closed while it was in flight): the
        # answer confirmed them, they are free for the next sender of their kind
        offered_inactive = {m.mid for m in self.local_media if m.direction == "inactive"}
        for transceiver in [t for t in self._closing if t.mid in offered_inactive]:
            self._closing.remove(transceiver)
            self._free[transceiver.kind].append(transceiver)
        return media

    # ---- ICE ------------------------------------------------------------------------------------
    async def add_remote_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        """A trickled RTCIceCandidateInit (None or an empty candidate: end of candidates); held
        until a remote description exists; at most :data:`MAX_REMOTE_CANDIDATES`."""
        parsed = _parse_candidate(candidate)
        if self._remote_candidates >= MAX_REMOTE_CANDIDATES:  # end-of-candidates counts too
            raise TooManyCandidatesError(f"at most {MAX_REMOTE_CANDIDATES} remote candidates per transport")
        self._remote_candidates += 1
        if self.pc.remoteDescription is None:
            self._pending_candidates.append(parsed)
            return
        await self._apply_candidate(parsed)

    async def flush_candidates(self) -> None:
        """Apply the candidates that arrived before the remote description."""
        pending, self._pending_candidates = self._pending_candidates, []
        for c in pending:
            await self._apply_candidate(c)

    async def _apply_candidate(self, candidate: Any) -> None:
        transceivers = self.pc.getTransceivers()
        if candidate is not None and transceivers:
            # one bundled ICE transport: every candidate belongs to the first m-line's transport
            candidate.sdpMid = transceivers[0].mid
            candidate.sdpMLineIndex = None
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:
            logger.debug("transport %s: candidate ignored: %s", self._name, exc)


def capability_for(kind: str, codec: CodecInfo) -> Any:
    """The aiortc codec capability that matches ``codec`` (H.264: same profile and mode)."""
    mime = codec.mime_type.lower()
    params = codec.parameters
    caps = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == mime]
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
        raise UnsupportedCodecError(f"cannot offer {codec.mime_type} to a subscriber")
    return caps[0]


def rtx_capability(kind: str) -> Any:
    """aiortc's RTX capability for ``kind`` (aiortc adds the ``apt`` of the codec it follows)."""
    return next(c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower().endswith("/rtx"))


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


__all__ = ["MAX_REMOTE_CANDIDATES", "Negotiation", "capability_for", "check_candidate", "rtx_capability"]
