"""WebSocket requests of captions.

- ``transcription_start {language?}`` (hosts and co-hosts): captions on for the room; reply and
  event ``transcription_started {enabled, language, started_at, started_by}``.  Without a speech
  model: ``transcription_unavailable`` (503), and nothing else in the room changes.
- ``transcription_stop`` (hosts and co-hosts): event ``transcription_stopped {stopped_by}``.
- ``captions_set {enabled}`` (anyone): whether this participant receives ``caption`` events (on by
  default); the reply carries the room's caption state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from signaling.dispatcher import Reply, Route
from signaling.messages import Request
from signaling.rooms import Action
from transcription.errors import TranscriptionUnavailable
from transcription.room_captions import RoomCaptions, room_captions_of

if TYPE_CHECKING:
    from signaling.ws.session import Session


class TranscriptionStart(Request):
    language: Annotated[str, msgspec.Meta(min_length=2, max_length=16, pattern=r"^[a-zA-Z-]+$")] | None = None


class TranscriptionStop(Request):
    pass


class CaptionsSet(Request):
    enabled: bool


def _captions(session: Session) -> RoomCaptions:
    feature = room_captions_of(session.room)
    if feature is None:
        raise TranscriptionUnavailable("captions are not set up on this server")
    return feature


async def transcription_start(session: Session, req: TranscriptionStart) -> Reply:
    return await _captions(session).start(session.participant, req.language)


async def transcription_stop(session: Session, req: TranscriptionStop) -> Reply:
    return await _captions(session).stop(session.participant)


async def captions_set(session: Session, req: CaptionsSet) -> Reply:
    return _captions(session).set_receiving(session.participant_id, req.enabled)


ROUTES: dict[str, Route[Any]] = {
    "transcription_start": Route(TranscriptionStart, transcription_start, action=Action.TRANSCRIPTION),
    "transcription_stop": Route(TranscriptionStop, transcription_stop, action=Action.TRANSCRIPTION),
    "captions_set": Route(CaptionsSet, captions_set),
}
