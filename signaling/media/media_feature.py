"""The media plane of one room: a sfu Router, every participant's ParticipantMedia, the tracks.

Attached to a LiveRoom as a RoomFeature; the WebSocket handlers in handlers/media_handlers.py call
its methods.  Everyone receives every track of a small room by default; `subscribe` /
`unsubscribe` steer what one participant receives.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfu import Producer, SfuError, Worker
from sfu.sdp import parse_media
from signaling.errors import InvalidMessage, NotFound
from signaling.media.participant_media import ParticipantMedia
from signaling.rooms import Action, Participant, PermissionDenied, denial

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


@dataclass(frozen=True, slots=True)
class Track:
    participant_id: str
    producer: Producer

    def to_json(self) -> dict[str, Any]:
        p = self.producer
        return {"participant_id": self.participant_id, "track_id": p.id, "kind": p.kind, "source": p.source,
                "mid": p.mid, "codec": p.codec, "muted": p.paused}


class MediaFeature:
    def __init__(self, live: LiveRoom, worker: Worker) -> None:
        self.live = live
        self.router = worker.get_router(live.room_id) or worker.create_router(live.room_id)
        self.media: dict[str, ParticipantMedia] = {}
        self.tracks: dict[str, Track] = {}
        self._connections = itertools.count(1)

    # --- RoomFeature hooks -------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        pid = session.participant_id
        old = self.media.pop(pid, None)
        if old is not None:
            old.close()
        pm = ParticipantMedia(self.router, pid, connection=next(self._connections),
                              send_event=session.send_event)
        self.media[pid] = pm
        session.extensions[MEDIA_KEY] = pm
        for track in list(self.tracks.values()):
            if track.participant_id != pid:
                session.send_event("track_published", **track.to_json())
                pm.consume(track.producer)

    async def on_left(self, session: Session) -> None:
        pm = session.extensions.pop(MEDIA_KEY, None)
        if not isinstance(pm, ParticipantMedia):
            return
        if self.media.get(session.participant_id) is pm:
            del self.media[session.participant_id]
        pm.close()  # its producers close, which unpublishes their tracks everywhere

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
        try:
            offered = parse_media(sdp)
        except SfuError as e:
            raise InvalidMessage(f"sdp: {e}") from None
        sending = {m.mid: m for m in offered if m.sending}
        unknown = sorted(set(sources) - set(sending))
        if unknown:
            raise InvalidMessage(f"sources: {', '.join(unknown)} is not a sending m-line of the offer")
        unlisted = sorted(set(sending) - set(sources))
        if unlisted:
            raise InvalidMessage(f"sources: every sending m-line must be listed; missing mid {', '.join(unlisted)}")
        for mid, source in sources.items():
            if sending[mid].kind != SOURCE_KIND[source]:
                raise InvalidMessage(f"sources: mid {mid} is {sending[mid].kind}, not a {source} track")
            reason = denial(participant.role, participant.registered, SOURCE_ACTION[source],
                            self.live.room.settings.lock)
            if reason:
                raise PermissionDenied(reason)
        transport = pm.publisher_transport()
        try:
            answer = await transport.accept_offer(sdp)
        except SfuError as e:
            raise InvalidMessage(f"sdp: {e}") from None
        await pm.flush_early_candidates()
        produced = {p.mid: p for p in transport.producers}
        for mid, source in sources.items():
            existing = produced.get(mid)
            if existing is not None and existing.source == source:
                continue
            if existing is not None:
                existing.close()
            try:
                producer = transport.produce(mid=mid, source=source)
            except SfuError as e:
                raise InvalidMessage(f"sources: mid {mid}: {e}") from None
            self._add_track(participant, producer)
        tracks = [t.to_json() for t in self.tracks.values() if t.participant_id == participant.participant_id]
        return {"sdp": answer, "tracks": tracks}

    def _add_track(self, participant: Participant, producer: Producer) -> None:
        track = Track(participant.participant_id, producer)
        self.tracks[producer.id] = track
        if participant.muted.get(producer.source):
            producer.pause()  # muted by a host before publishing: stays muted at the server

        def unpublished() -> None:
            if self.tracks.pop(producer.id, None) is not None and not self.live.closed:
                self.live.broadcast({"event": "track_unpublished", **track.to_json()})

        producer.on_close = unpublished
        self.live.broadcast({"event": "track_published", **track.to_json()},
                            exclude=participant.participant_id)
        for other_pid, other in self.media.items():
            if other_pid != participant.participant_id:
                other.consume(producer)

    def _apply_mute(self, track: Track, muted: bool) -> None:
        if muted == track.producer.paused:
            return
        if muted:
            track.producer.pause()
        else:
            track.producer.resume()
        self.live.broadcast({"event": "track_muted", **track.to_json()})

    async def set_muted(self, session: Session, source: str, muted: bool) -> dict[str, Any]:
        p = session.participant
        if not muted and p.muted.get(source):
            self.live.room.require(p, Action.UNMUTE_SELF)  # self_unmute lock: a host must allow it
        await self.live.set_muted(p, source, muted)
        return {"source": source, "muted": muted}

    async def subscribe(self, session: Session, tracks: list[tuple[str, str]]) -> dict[str, Any]:
        pm = self.media_of(session)
        missing = [tid for tid, _ in tracks if tid not in self.tracks]
        if missing:
            raise NotFound(f"no track {missing[0]!r} in this room")
        for tid, quality in tracks:
            pm.unsubscribed.discard(tid)
            pm.quality[tid] = quality
            if self.tracks[tid].participant_id != session.participant_id:
                pm.consume(self.tracks[tid].producer)
        return {"track_ids": [tid for tid, _ in tracks]}

    async def unsubscribe(self, session: Session, track_ids: list[str]) -> dict[str, Any]:
        pm = self.media_of(session)
        for tid in track_ids:
            pm.unsubscribed.add(tid)
            pm.stop_consuming(tid)
        return {"track_ids": track_ids}
