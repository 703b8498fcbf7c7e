"""WebSocket requests of recording: recording_start, recording_stop, recording_list, recording_compose
(hosts and co-hosts: Action.RECORDING, checked before parsing; a student gets ``forbidden`` and
nothing changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from recordings.errors import RecordingNotFound
from recordings.feature import recording_feature_of
from recordings.recording_store import RecordingQuery
from signaling.dispatcher import Reply, Route
from signaling.messages import Request
from signaling.rooms import Action

if TYPE_CHECKING:
    from signaling.ws.session import Session

LIST_LIMIT = 50  # the host's page shows the room's latest recordings


class RecordingStart(Request):
    pass


class RecordingStop(Request):
    pass


class RecordingList(Request):
    pass


class RecordingCompose(Request):
    recording_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


async def recording_start(session: Session, _: RecordingStart) -> Reply:
    feature = recording_feature_of(session.room)
    rec = await feature.service.start(session.room, by=session.participant_id)
    return {"recording_id": rec.recording_id, "started_at": rec.started_at}


async def recording_stop(session: Session, _: RecordingStop) -> Reply:
    feature = recording_feature_of(session.room)
    rec = await feature.service.stop(session.room.room_id, by=session.participant_id)
    return {"recording_id": rec.recording_id, "state": rec.state.value, "duration_s": rec.duration_s}


async def recording_list(session: Session, _: RecordingList) -> Reply:
    """The room's recordings with signed links the page may play (docs/recording.md)."""
    service = recording_feature_of(session.room).service
    found, total = await service.store.find(RecordingQuery(room_id=session.room.room_id), offset=0, limit=LIST_LIMIT)
    return {"recordings": [service.links(r) for r in found], "total": total,
            "recording": service.state_event(session.room.room_id)}


async def recording_compose(session: Session, req: RecordingCompose) -> Reply:
    """Compose one of this room's finished recordings (again): a recovered one, a failed composition."""
    service = recording_feature_of(session.room).service
    rec = await service.get(req.recording_id)
    if rec.room_id != session.room.room_id:
        raise RecordingNotFound(f"no recording {req.recording_id!r} in this room")
    rec = await service.compose_again(rec.recording_id)
    return {"recording_id": rec.recording_id, "state": rec.state.value}


ROUTES: dict[str, Route[Any]] = {
    "recording_start": Route(RecordingStart, recording_start, action=Action.RECORDING),
    "recording_stop": Route(RecordingStop, recording_stop, action=Action.RECORDING),
    "recording_list": Route(RecordingList, recording_list, action=Action.RECORDING),
    "recording_compose": Route(RecordingCompose, recording_compose, action=Action.RECORDING),
}
