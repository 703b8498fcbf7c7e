"""Requests every participant may send about the session itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.dispatcher import Reply, Route
from signaling.messages import Leave, ListParticipants, Ping
from signaling.ws.close_codes import CloseCode

if TYPE_CHECKING:
    from signaling.ws.session import Session


async def ping(session: Session, _: Ping) -> Reply:
    return {"time": session.room.clock()}


async def leave(session: Session, _: Leave) -> Reply:
    session.close_after_reply(CloseCode.NORMAL, "left")
    return None


async def list_participants(session: Session, req: ListParticipants) -> Reply:
    listed, total = session.room.room.page(req.offset, req.limit)
    return {"participants": [p.to_json() for p in listed], "total": total, "offset": req.offset,
            "limit": req.limit}


ROUTES: dict[str, Route[Any]] = {
    "ping": Route(Ping, ping, joined_only=False),
    "leave": Route(Leave, leave, joined_only=False),
    "list_participants": Route(ListParticipants, list_participants),
}
