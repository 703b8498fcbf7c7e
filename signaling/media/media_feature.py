"""The media plane of one room: a sfu Router, every participant's ParticipantMedia, the tracks.

Attached to a LiveRoom as a RoomFeature; the WebSocket handlers in handlers/media_handlers.py call
its methods.  Everyone receives every track of a small room by default; `subscribe` /
`unsubscribe` steer what one participant receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sfu import Producer, SfuError, Worker
from sfu.errors import (
    InvalidCandidateError,
    InvalidSdpError,
    TooManySectionsError,
    UnknownMidError,
    UnsupportedCodecError,
)
from sfu.sdp import check_limits, parse_media
from signaling.errors import ApiError, InvalidMessage, InvalidSdp, NotFound, TooManyTracks
from signaling.media.participant_media import ParticipantMedia
from signaling.media.subscriber_connection import SubscriberConnection, SubscriberPlacer
from signaling.rooms import Action, InvalidState, Participant, PermissionDenied, denial
from signaling.rooms.rate_limit import RateRule

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

log = logging.getLogger("urok.media")

SOURCE_ACTION = {
    "microphone": Action.PUBLISH_MICROPHONE,
    "camera": Action.PUBLISH_CAMERA,
    "screen": Action.PUBLISH_SCREEN,
    "screen_audio": Action.PUBLISH_SCREEN,
}
SOURCE_KIND = {"microphone": "audio", "camera": "video", "screen": "video", "screen_audio": "audio"}
MEDIA_KEY = "media"
# A client publishes on joining and when a source starts or stops (the browser client reuses its
# camera and microphone m-lines; a screen share starts and stops one): a burst covers a quick
# share/stop/share, and each publish renegotiates every listener of the room (issue 10).
PUBLISH_RATE = RateRule(rate_per_s=1.0, burst=8)
# Consumers made per turn of the loop: each is an aiortc transceiver (~0.2-0.5 ms), and a track
# published in a room of 50 (or a speaker's audio in a webinar of 2000) is one per listener.
CONSUMES_PER_TURN = 16
# core errors that refuse the description or candidate itself: invalid_sdp (issue 21), final for the
# client (the same text is refused again); the rest (state, closed, candidate count) stay as they were
SDP_REFUSALS = (InvalidSdpError, InvalidCandidateError, UnknownMidError, UnsupportedCodecError)


def sdp_error(session: Session, field: str, e: SfuError, *, offer: bool = False) -> ApiError:
    """The protocol error for a failed SDP or ICE step.  ``str(e)`` is the core's own wording;
    what aiortc said (``e.detail``: its internals, e.g. "None is not in list") is only logged.
    Too many m-lines in an ``offer`` is ``too_many_tracks`` (the client can do with fewer); a
    description or candidate refused as such is ``invalid_sdp`` (its message names the SDP line
    where sfu.sdp.check_lines found it)."""
    # INFO for a description aiortc refused (publishes are rate limited; a bad answer is a client
    # bug worth seeing), DEBUG for the rest: a candidate flood must not flood the log
    if e.detail and field == "sdp":
        session.log.info("%s rejected: %s (%s)", field, e, e.detail)
    else:
        session.log.debug("%s rejected: %s (%s)", field, e, e.detail or e.code)
    if offer and isinstance(e, TooManySectionsError):
        return TooManyTracks(f"{field}: {e}")
    if isinstance(e, SDP_REFUSALS):
        return InvalidSdp(f"{field}: {e}")
    return InvalidMessage(f"{field}: {e}")


@dataclass(frozen=True, slots=True)
class Track:
    participant_id: str
    producer: Producer

    def to_json(self) -> dict[str, Any]:
        p = self.producer
        return {"participant_id": self.participant_id, "track_id": p.id, "kind": p.kind, "source": p.source,
                "mid": p.mid, "codec": p.codec, "muted": p.paused}


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    """How much a participant receives: everything in a small room; in a large one the N most
    active speakers' audio and only the video it asks for (`subscribe`)."""

    large_room_threshold: int = 50
    last_n_audio: int = 3


class TrackObserver(Protocol):
    """A room feature that follows the room's published tracks (recording, noise suppression,
    captions): told after a track is published and after it is gone.  Both are called on the event
    loop, once per track; an observer added late gets the tracks published before through
    :meth:`MediaFeature.observe`."""

    def on_track_added(self, track: Track) -> None: ...

    def on_track_removed(self, track: Track) -> None: ...


# Who may receive a track at all (breakout groups, signaling/rooms/live_breakouts.py): called with the
# listener's participant id; None (the default) lets everyone receive everything.
Audience = Callable[[str, Track], bool]


def media_feature_of(live: LiveRoom) -> MediaFeature | None:
    """The media plane of a live room (None in a room served without media)."""
    for feature in live.features:
        if isinstance(feature, MediaFeature):
            return feature
    return None


class MediaFeature:
    def __init__(self, live: LiveRoom, worker: Worker, policy: ForwardingPolicy | None = None, *,
                 placer: SubscriberPlacer | None = None) -> None:
        self.live = live
        self.policy = policy or ForwardingPolicy()
        # where joining participants' subscriber connections go (a room spanning workers,
        # signaling/cluster/span.py); None: all on this worker's router
        self.placer = placer
        self.router = worker.get_router(live.room_id) or worker.create_router(live.room_id)
        self.media: dict[str, ParticipantMedia] = {}
        self.tracks: dict[str, Track] = {}
        self._connections = itertools.count(1)
        self.speakers = self.router.create_active_speaker_observer()
        self.speakers.on_dominant_speaker = self._dominant_speaker
        self._loudest: set[str] = set()  # audio track ids forwarded in a large room
        # One negotiation (a subscriber's offer or answer, a publisher's new offer) of this room at
        # a time.  Each costs aiortc ~5-25 ms of CPU in a few callbacks; a publish in a room of 20
        # makes 20 subscriber offers, and 20 tasks ready at once held the loop for all of them in
        # one turn (issue 10: other rooms' pings waited > 100 ms).  Serialised, the room adds one
        # step per turn of the loop and its renegotiations take their turns with everyone else's.
        # On the shared port only (ICE-lite, the default), where a step waits for nothing else.
        self.negotiation = asyncio.Lock()
        self.observers: list[TrackObserver] = []
        # track id -> a processed copy its subscribers receive instead (noise suppression): set_substitute
        self.substitutes: dict[str, Producer] = {}
        self.audience: Audience | None = None
        # track ids each participant was told about (track_published) while an audience is set: a
        # change of the audience tells each one what appeared and what went (refresh_audience)
        self._shown: dict[str, set[str]] = {}

    def observe(self, observer: TrackObserver) -> None:
        """Follow the room's tracks: the ones published now are reported at once."""
        self.observers.append(observer)
        for track in list(self.tracks.values()):
            if not track.producer.closed:
                observer.on_track_added(track)

    def unobserve(self, observer: TrackObserver) -> None:
        with contextlib.suppress(ValueError):
            self.observers.remove(observer)

    def may_receive(self, participant_id: str, track: Track) -> bool:
        return self.audience is None or self.audience(participant_id, track)

    def _told(self, track: Track) -> list[str] | None:
        """Who hears of this track's news (mute, speaking, gone): None = everyone (no audience set)."""
        if self.audience is None:
            return None
        tid = track.producer.id
        return [track.participant_id, *(pid for pid, shown in self._shown.items() if tid in shown)]

    async def refresh_audience(self, participant_ids: Iterable[str] | None = None) -> None:
        """The audience changed (a breakout group opened, a move, a close): each participant named
        (default: everyone) stops receiving what it may no longer receive and starts receiving what
        it now may, on its existing subscriber connection (one renegotiation), and is told
        track_unpublished / track_published for the difference."""
        large = self.large
        made = 0
        for pid in list(self.media if participant_ids is None else participant_ids):
            pm = self.media.get(pid)
            if pm is None or pm.closed:
                continue
            shown = self._shown.setdefault(pid, {t for t in self.tracks if self.tracks[t].participant_id != pid})
            for track in list(self.tracks.values()):
                tid = track.producer.id
                if track.participant_id == pid or track.producer.closed:
                    continue
                if not self.may_receive(pid, track):
                    pm.stop_consuming(tid)
                    if tid in shown:
                        shown.discard(tid)
                        pm.send_event("track_unpublished", **track.to_json())
                elif tid not in shown:
                    shown.add(tid)
                    pm.send_event("track_published", **track.to_json())
                    if self._auto_receives(track, large) or tid in pm.quality:
                        self._consume(pm, track, large)
                        made += 1
                        if made % CONSUMES_PER_TURN == 0:
                            await asyncio.sleep(0)
        if self.audience is None:
            self._shown.clear()

    @property
    def large(self) -> bool:
        return self.live.room.num_joined > self.policy.large_room_threshold

    @staticmethod
    def _auto_receives(track: Track, large: bool) -> bool:
        """Whether a participant gets this track without asking for it."""
        return track.producer.kind == "audio" or not large

    def _dominant_speaker(self, track_id: str) -> None:
        track = self.tracks.get(track_id)
        if track is None or self.live.closed:
            return
        self.live.broadcast({"event": "active_speaker", "participant_id": track.participant_id,
                             "track_id": track_id}, to=self._told(track))
        self._apply_last_n()

    def _apply_last_n(self) -> None:
        """In a large room, forward to everyone only the most active speakers' audio."""
        audio = [t for t in self.speakers.ranking() if t in self.tracks]
        loudest = set(audio[: self.policy.last_n_audio]) if self.large else set(audio)
        if loudest == self._loudest:
            return
        self._loudest = loudest
        for pm in self.media.values():
            for track_id, consumer in pm.consumers.items():
                if consumer.kind != "audio" or track_id in pm.unsubscribed:
                    continue
                if track_id in loudest and consumer.paused:
                    consumer.resume()
                elif track_id not in loudest and not consumer.paused:
                    consumer.pause()

    # --- RoomFeature hooks -------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        pid = session.participant_id
        old = self.media.pop(pid, None)
        if old is not None:
            old.close()
        connection = next(self._connections)
        subscriber: SubscriberConnection | None = None
        if self.placer is not None:
            local = sum(1 for m in self.media.values() if not m.remote)
            subscriber = await self.placer.place(self.live.room_id, pid, connection, local=local)
            if self.live.sessions.get(pid) is not session or pid in self.media:
                if subscriber is not None:  # left (or joined again) while it was placed
                    subscriber.close()
                return
        pm = ParticipantMedia(self.router, pid, connection=connection,
                              send_event=session.send_event, negotiation=self.negotiation,
                              on_failed=self._media_failed, subscriber=subscriber)
        self.media[pid] = pm
        session.extensions[MEDIA_KEY] = pm
        large = self.large  # once: it counts the joined participants
        made = 0
        shown: set[str] = set()
        if self.audience is not None:
            self._shown[pid] = shown
        for track in list(self.tracks.values()):
            if track.participant_id == pid or track.producer.closed or not self.may_receive(pid, track):
                continue
            shown.add(track.producer.id)
            session.send_event("track_published", **track.to_json())
            if self._auto_receives(track, large):
                self._consume(pm, track, large)
                made += 1
                if made % CONSUMES_PER_TURN == 0:
                    await asyncio.sleep(0)
                    if pm.closed:
                        return
        self._apply_last_n()

    async def on_left(self, session: Session) -> None:
        pm = session.extensions.pop(MEDIA_KEY, None)
        if not isinstance(pm, ParticipantMedia):
            return
        if self.media.get(session.participant_id) is pm:
            del self.media[session.participant_id]
            self._shown.pop(session.participant_id, None)
        pm.close()  # its producers close, which unpublishes their tracks everywhere

    async def settled(self, session: Session) -> None:
        """Returns once the session's media is set up: its subscriber connection connected (ICE and
        DTLS done), at once if it has nothing to receive yet (join_gate.py holds a join's slot
        until then: the handshakes are most of a join's cost)."""
        pm = session.extensions.get(MEDIA_KEY)
        if not isinstance(pm, ParticipantMedia) or pm.closed or not pm.consumers:
            return
        await pm.subscriber_up.wait()

    def _media_failed(self, pm: ParticipantMedia, target: str) -> None:
        """One of the participant's transports lost its path (ICE consent, RFC 7675): its tracks
        leave the room now (listeners stop waiting for them) and the client is told, so that it
        reconnects at once instead of after its own ICE timeout. The session stays; its next
        join (a reconnect) gets fresh media."""
        if pm.closed:
            return
        log.info("media failed (%s transport): torn down", target, extra={"participant_id": pm.participant_id})
        pm.close()  # its producers close, which unpublishes their tracks everywhere
        pm.send_event("media_failed", target=target, reason="ice_failed")

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        for track in list(self.tracks.values()):
            if track.participant_id == participant.participant_id and track.producer.source == source:
                self._apply_mute(track, muted)

    async def close(self) -> None:
        for pm in list(self.media.values()):
            pm.close()
        self.media.clear()
        self.router.close()

    # --- requests ----------------------------------------------------------------------------
    @staticmethod
    def media_of(session: Session) -> ParticipantMedia:
        pm = session.extensions.get(MEDIA_KEY)
        if not isinstance(pm, ParticipantMedia):
            raise InvalidMessage("no media session: join the room first")
        if pm.closed:
            raise InvalidState("the media connection failed (media_failed): reconnect")
        return pm

    def check_may_publish(self, session: Session) -> None:
        """Before looking at the parameters: may this participant publish anything at all?"""
        p, lock = session.participant, self.live.room.settings.lock
        reasons = [denial(p.role, p.registered, a, lock) for a in set(SOURCE_ACTION.values())]
        if all(reasons):
            raise PermissionDenied(next(r for r in reasons if r))

    async def publish(self, session: Session, sdp: str, sources: dict[str, str]) -> dict[str, Any]:
        pm = self.media_of(session)
        participant = session.participant
        self.live.room.limits.take(participant.participant_id, "publish", PUBLISH_RATE, self.live.clock())
        # the limits first, on the text: the parses (here, in the transport, in aiortc) and each
        # listener's consumer cost the loop per m-line (issue 10: 150 m-lines stalled every room)
        per_source = Counter(sources.values())
        over = sorted(source for source, n in per_source.items() if n > 1)
        if over:
            raise TooManyTracks(f"sources: one track per source; {per_source[over[0]]} m-lines are {over[0]}")
        try:
            check_limits(sdp, session.settings.rtc_max_mlines)
            offered = parse_media(sdp)
        except SfuError as e:
            raise sdp_error(session, "sdp", e, offer=True) from None
        sending = {m.mid: m for m in offered if m.sending}
        unknown = sorted(set(sources) - set(sending))
        if unknown:
            # name the SDP line that decided it (issue 21: Firefox's bundle-only m-lines were refused
            # here with no word of why)
            section = next((m for m in offered if m.mid == unknown[0]), None)
            line = (f"{section.where}: {section.direction_line}" if section is not None
                    else f"no m-line has a=mid:{unknown[0][:32]}")
            raise InvalidSdp(f"sources: {', '.join(unknown)} is not a sending m-line of the offer ({line})")
        unlisted = sorted(set(sending) - set(sources))
        if unlisted:
            first = sending[unlisted[0]]
            raise InvalidSdp(f"sources: every sending m-line must be listed; missing mid {', '.join(unlisted)} "
                             f"({first.where}: {first.direction_line})")
        for mid, source in sources.items():
            if sending[mid].kind != SOURCE_KIND[source]:
                raise InvalidSdp(f"sources: mid {mid} is {sending[mid].kind}, not a {source} track "
                                 f"({sending[mid].where}: m={sending[mid].kind})")
            reason = denial(participant.role, participant.registered, SOURCE_ACTION[source],
                            self.live.room.settings.lock)
            if reason:
                raise PermissionDenied(reason)
        await asyncio.sleep(0)  # one parse per turn of the loop
        transport = pm.publisher_transport()
        # A renegotiation takes the room's turn (self.negotiation) like the listeners' offers it
        # causes: a publisher cannot turn tracks over faster than the room renegotiates.  Not the
        # first offer, nor with full ICE: their steps can wait for the network (a STUN server).
        turn = self.negotiation if transport.ice_lite else contextlib.nullcontext()
        try:
            async with turn:
                answer = await transport.accept_offer(sdp)
        except SfuError as e:
            raise sdp_error(session, "sdp", e) from None
        await pm.flush_early_candidates()
        produced = {p.mid: p for p in transport.producers}
        for mid, source in sources.items():
            existing = produced.get(mid)
            if existing is not None and existing.source == source:
                continue
            await asyncio.sleep(0)  # each new track reaches every listener: one per turn of the loop
            if existing is not None:
                existing.close()
            try:
                producer = transport.produce(mid=mid, source=source)
            except SfuError as e:
                raise sdp_error(session, f"sources: mid {mid}", e) from None
            await self._add_track(participant, producer)
        tracks = [t.to_json() for t in self.tracks.values() if t.participant_id == participant.participant_id]
        return {"sdp": answer, "tracks": tracks}

    async def _add_track(self, participant: Participant, producer: Producer) -> None:
        track = Track(participant.participant_id, producer)
        self.tracks[producer.id] = track
        if participant.muted.get(producer.source):
            producer.pause()  # muted by a host before publishing: stays muted at the server

        def unpublished() -> None:
            self.speakers.remove_producer(producer)
            self._loudest.discard(producer.id)
            substitute = self.substitutes.pop(producer.id, None)
            for pm in self.media.values():
                pm.forget_track(producer.id)  # per-session state stays within the room's tracks
                if substitute is not None:
                    pm.stop_consuming(producer.id)  # it follows the substitute, which the track's close does not close
            if self.tracks.pop(producer.id, None) is not None:
                for observer in list(self.observers):
                    observer.on_track_removed(track)
                if not self.live.closed:
                    self.live.broadcast({"event": "track_unpublished", **track.to_json()}, to=self._told(track))
                for shown in self._shown.values():
                    shown.discard(producer.id)

        producer.on_close = unpublished
        listeners = None
        if self.audience is not None:
            listeners = [pid for pid in self.media
                         if pid != participant.participant_id and self.may_receive(pid, track)]
            for pid in listeners:
                self._shown.setdefault(pid, set()).add(producer.id)
        self.live.broadcast({"event": "track_published", **track.to_json()},
                            exclude=participant.participant_id, to=listeners)
        if producer.kind == "audio":
            self.speakers.add_producer(producer)
        for observer in list(self.observers):
            observer.on_track_added(track)
        large = self.large
        if not self._auto_receives(track, large):
            return
        made = 0
        for other_pid, other in list(self.media.items()):
            if other_pid == participant.participant_id or not self.may_receive(other_pid, track):
                continue
            self._consume(other, track, large)  # nothing for a participant who left meanwhile
            made += 1
            if made % CONSUMES_PER_TURN == 0:
                await asyncio.sleep(0)
                if producer.closed:
                    return

    def set_substitute(self, track_id: str, producer: Producer | None) -> None:
        """The track's subscribers receive ``producer`` (a processed copy of the same kind and codec:
        the noise-suppressed microphone) in its place, or the track itself again (None).  Each
        consumer switches with Consumer.replace_producer: same SSRC, m-line and track id, numbering
        continuous, no renegotiation; new consumers start on the substitute.  NotFound: no such
        track; sfu.ClosedError: ``producer`` is closed."""
        track = self.tracks.get(track_id)
        if track is None:
            raise NotFound(f"no track {track_id!r} in this room")
        if producer is None:
            self.substitutes.pop(track_id, None)
        else:
            self.substitutes[track_id] = producer
        source = producer or track.producer
        for pm in self.media.values():
            consumer = pm.consumers.get(track_id)
            if consumer is not None and not consumer.closed:
                consumer.replace_producer(source)

    def _consume(self, pm: ParticipantMedia, track: Track, large: bool) -> None:
        consumer = pm.consume(track.producer)
        substitute = self.substitutes.get(track.producer.id)
        if consumer is not None and substitute is not None and not substitute.closed:
            consumer.replace_producer(substitute)  # a=msid names the track; the packets are the copy's
        if consumer is not None and track.producer.id in pm.quality:
            consumer.set_quality(pm.quality[track.producer.id])  # simulcast layer (low/medium/high)
        if consumer is not None and track.producer.kind == "audio" and large and \
                track.producer.id not in self._loudest:
            consumer.pause()  # not among the most active speakers: nothing is forwarded

    def _apply_mute(self, track: Track, muted: bool) -> None:
        if muted == track.producer.paused:
            return
        if muted:
            track.producer.pause()
        else:
            track.producer.resume()
        self.live.broadcast({"event": "track_muted", **track.to_json()}, to=self._told(track))

    async def set_muted(self, session: Session, source: str, muted: bool) -> dict[str, Any]:
        p = session.participant
        if not muted and p.muted.get(source):
            self.live.room.check_self_unmute(p, source)  # role, source lock, self_unmute lock / allowance
        await self.live.set_muted(p, source, muted)
        return {"source": source, "muted": muted}

    async def subscribe(self, session: Session, tracks: list[tuple[str, str]]) -> dict[str, Any]:
        pm = self.media_of(session)
        # another breakout group's track is refused as if it did not exist (nothing to learn from it)
        missing = [tid for tid, _ in tracks if tid not in self.tracks
                   or not self.may_receive(session.participant_id, self.tracks[tid])]
        if missing:
            raise NotFound(f"no track {missing[0]!r} in this room")
        for tid, quality in tracks:
            pm.unsubscribed.discard(tid)
            pm.quality[tid] = quality
            if self.tracks[tid].participant_id != session.participant_id:
                self._consume(pm, self.tracks[tid], self.large)
            if tid in pm.consumers:
                pm.consumers[tid].set_quality(quality)  # already received: switch layer
        return {"track_ids": [tid for tid, _ in tracks]}

    async def unsubscribe(self, session: Session, track_ids: list[str]) -> dict[str, Any]:
        pm = self.media_of(session)
        missing = [tid for tid in track_ids if tid not in self.tracks]
        if missing:  # nothing is stored for an id that is no track (issue 10: memory grew per id)
            raise NotFound(f"no track {missing[0]!r} in this room")
        for tid in track_ids:
            pm.unsubscribed.add(tid)
            pm.stop_consuming(tid)
        return {"track_ids": track_ids}
