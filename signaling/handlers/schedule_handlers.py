"""The lesson's time: a host extends it (`room_extend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from signaling.dispatcher import Reply, Route
from signaling.messages import Request
from signaling.rooms.room import MAX_EXTEND_MINUTES

if TYPE_CHECKING:
    from signaling.ws.session import Session


class RoomExtend(Request):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_EXTEND_MINUTES)]


async def _check_extend(session: Session) -> None:
    """Hosts and co-hosts only, checked before the parameters (a participant gets `forbidden`)."""
    session.room.room.check_extend(session.participant)


async def room_extend(session: Session, req: RoomExtend) -> Reply:
    live = session.room
    ends_at = await live.extend(session.participant, req.minutes)
    return {"ends_at": ends_at, "minutes": req.minutes}


ROUTES: dict[str, Route[Any]] = {
    "room_extend": Route(RoomExtend, room_extend, precheck=_check_extend),
}
