"""WebSocket requests of the whiteboard (on the signalling socket; updates are base64 Yjs updates).
Parse, call the room's BoardFeature, let the dispatcher map its named errors."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from signaling.dispatcher import Reply, Route
from signaling.errors import Forbidden, InvalidMessage
from signaling.messages import Request
from signaling.rooms import Action
from whiteboard.board_feature import BOARD_KEY, BoardFeature

if TYPE_CHECKING:
    from signaling.ws.session import Session

Coord = Annotated[float, msgspec.Meta(ge=-100_000, le=100_000)]
PageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
B64 = Annotated[str, msgspec.Meta(max_length=1_000_000)]  # the socket's frame limit binds first


class Cursor(msgspec.Struct, kw_only=True):
    x: Coord
    y: Coord
    page_id: PageId
    laser: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"x": round(self.x, 1), "y": round(self.y, 1), "page_id": self.page_id, "laser": self.laser}


class BoardUpdate(Request):
    update: B64
    cursor: Cursor | None = None


class BoardCursor(Request):
    cursor: Cursor


class BoardSync(Request):
    state_vector: B64 | None = None
    group_id: Annotated[str, msgspec.Meta(max_length=64)] | msgspec.UnsetType | None = msgspec.UNSET


class BoardClear(Request):
    page_id: PageId | None = None  # None: every page


class BoardAddPage(Request):
    pass


class BoardFollow(Request):
    page_id: PageId | None = None  # None: everyone picks their own page again


class BoardShowGroup(Request):
    group_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class BoardRights(Request):
    mode: Literal["everyone", "nobody", "chosen"] | None = None
    participant_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    pen: bool | None = None  # give (true, the default) or take back (false) the participant's pen


def _feature(session: Session) -> BoardFeature:
    f = session.room.extensions.get(BOARD_KEY)
    if not isinstance(f, BoardFeature):
        raise InvalidMessage("this room has no whiteboard")
    return f


def _bytes(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage(f"field {what!r} must be base64") from None


async def _moderators_only(session: Session) -> None:
    if not session.participant.role.is_moderator:
        raise Forbidden("only a host or co-host may do this on the board")


async def board_update(session: Session, req: BoardUpdate) -> Reply:
    await _feature(session).update(session, _bytes(req.update, "update"),
                                   req.cursor.to_json() if req.cursor is not None else None)
    return {}


async def board_cursor(session: Session, req: BoardCursor) -> Reply:
    await _feature(session).cursor(session, req.cursor.to_json())
    return {}


async def board_sync(session: Session, req: BoardSync) -> Reply:
    sv = _bytes(req.state_vector, "state_vector") if req.state_vector is not None else None
    given = not isinstance(req.group_id, msgspec.UnsetType)
    gid = None if isinstance(req.group_id, msgspec.UnsetType) else (req.group_id or None)
    return await _feature(session).sync(session, sv, gid, given)


async def board_clear(session: Session, req: BoardClear) -> Reply:
    await _feature(session).clear(session, req.page_id)
    return {}


async def board_add_page(session: Session, _: BoardAddPage) -> Reply:
    page = await _feature(session).add_page(session)
    return {"page": page.to_json()}


async def board_follow(session: Session, req: BoardFollow) -> Reply:
    await _feature(session).follow(session, req.page_id)
    return {}


async def board_rights(session: Session, req: BoardRights) -> Reply:
    return await _feature(session).set_rights(session, req.mode, req.participant_id, req.pen)


async def board_show_group(session: Session, req: BoardShowGroup) -> Reply:
    pages = await _feature(session).show_group(session, req.group_id)
    return {"pages": [p.to_json() for p in pages]}


ROUTES: dict[str, Route[Any]] = {
    # drawing: the room's rule (Action.DRAW) first, the board's pen in the feature
    "board_update": Route(BoardUpdate, board_update, action=Action.DRAW),
    "board_cursor": Route(BoardCursor, board_cursor),
    "board_sync": Route(BoardSync, board_sync),
    "board_add_page": Route(BoardAddPage, board_add_page, action=Action.DRAW),
    "board_clear": Route(BoardClear, board_clear, precheck=_moderators_only),
    "board_follow": Route(BoardFollow, board_follow, precheck=_moderators_only),
    "board_rights": Route(BoardRights, board_rights, precheck=_moderators_only),
    "board_show_group": Route(BoardShowGroup, board_show_group, precheck=_moderators_only),
}


