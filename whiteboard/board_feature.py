"""The whiteboard in one live room: who sees which board (the room's own, or a breakout group's),
the state a joining participant gets at once, relaying accepted updates and cursors, the rights
check before any update touches a board.  Handlers (board_handlers.py) only parse and call here."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from signaling.rooms import Action, Participant
from signaling.rooms.errors import PermissionDenied
from signaling.rooms.permissions import allowed
from whiteboard.board import Board, BoardKey, Page, new_id
from whiteboard.board_service import BoardService
from whiteboard.draw_rights import DrawMode
from whiteboard.errors import BoardMoved, DrawingNotAllowed

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

BOARD_KEY = "board"  # live.extensions[BOARD_KEY]: this room's BoardFeature
CURSORS_PER_S = 15.0  # per participant; more are dropped silently (a cursor is news, not data)
GroupOf = Callable[["LiveRoom", str], "str | None"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def group_of_breakouts(live: LiveRoom, participant_id: str) -> str | None:
    """The breakout group a participant is in now (signaling/rooms/live_breakouts.py), None: the
    main room (also while no groups are open)."""
    from signaling.rooms.live_breakouts import group_of  # the room feature imports much; loaded late

    try:
        return group_of(live, participant_id)
    except Exception:  # no open groups
        return None


class BoardFeature:
    def __init__(self, live: LiveRoom, service: BoardService, *, group_of: GroupOf = group_of_breakouts,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.service = service
        self.group_of = group_of
        self._monotonic = monotonic
        self.views: dict[str, BoardKey] = {}  # participant id -> the board they see (and draw on)
        self._cursor_at: dict[str, float] = {}
        live.extensions[BOARD_KEY] = self

    # --- RoomFeature hooks -------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        key = BoardKey(self.live.room_id, self.group_of(self.live, session.participant_id))
        board = await self.service.board(key)
        self.views[session.participant_id] = key
        session.send_event("board_state", **self.state_json(board, session.participant))

    async def on_left(self, session: Session) -> None:
        pid = session.participant_id
        if self.live.sessions.get(pid) is session:
            return  # replaced by a newer socket of the same participant: it keeps its view
        key = self.views.pop(pid, None)
        self._cursor_at.pop(pid, None)
        if key is not None and (b := self.service.loaded(key)) is not None:
            b.forget(pid)

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        return None

    async def close(self) -> None:
        await self.service.unload_room(self.live.room_id)

    # --- state ----------------------------------------------------------------------------------
    def may_draw(self, board: Board, p: Participant) -> bool:
        """The room's rule (Action.DRAW: role, ``whiteboard`` lock), then the board's (the pen)."""
        if not allowed(p.role, p.registered, Action.DRAW, self.live.room.settings.lock):
            return False
        return board.meta.rights.may_draw(p.participant_id, moderator=p.role.is_moderator)

    def state_json(self, board: Board, p: Participant, state_vector: bytes | None = None) -> dict[str, Any]:
        update = board.state() if state_vector is None else board.diff(state_vector)
        return {"group_id": board.key.group_id, "update": b64(update), "state_vector": b64(board.state_vector()),
                **self.meta_json(board), "may_draw": self.may_draw(board, p)}

    @staticmethod
    def meta_json(board: Board) -> dict[str, Any]:
        return {"pages": [pg.to_json() for pg in board.meta.pages], "rights": board.meta.rights.to_json(),
                "follow": board.meta.follow}

    def _viewers(self, key: BoardKey) -> list[str]:
        return [pid for pid, k in self.views.items() if k == key]

    def broadcast(self, key: BoardKey, message: dict[str, Any], *, exclude: str | None = None) -> None:
        self.live.broadcast(message, to=self._viewers(key), exclude=exclude)

    async def view_of(self, session: Session, *, changing: bool = False) -> Board:
        """The board the participant sees.  ``changing``: a change to it; refused (BoardMoved) if the
        breakout groups moved a student since its last sync (its change was made on the old board)."""
        pid = session.participant_id
        now = BoardKey(self.live.room_id, self.group_of(self.live, pid))
        key = self.views.get(pid)
        if key is None:  # joined before the feature saw it (cannot happen once on_joined ran)
            key = self.views[pid] = now
        elif key != now and changing and not session.participant.role.is_moderator:
            raise BoardMoved("the groups changed: your board is another one now; sync it (board_sync)")
        return await self.service.board(key)

    # --- requests ---------------------------------------------------------------------------------
    async def sync(self, session: Session, state_vector: bytes | None, group_id: str | None,
                   group_given: bool) -> dict[str, Any]:
        """Resume: what the client lacks (a diff against its state vector), and its board's meta.  A
        moderator may name any group's board (the host sees them all); others get their own."""
        p = session.participant
        gid = group_id if group_given and p.role.is_moderator else self.group_of(self.live, p.participant_id)
        key = BoardKey(self.live.room_id, gid)
        board = await self.service.board(key)
        self.views[p.participant_id] = key
        return self.state_json(board, p, state_vector)

    def require_draw(self, board: Board, p: Participant) -> None:
        try:
            self.live.room.require(p, Action.DRAW)
        except PermissionDenied as e:
            raise DrawingNotAllowed(f"you may not draw: {e.message}") from None
        if not board.meta.rights.may_draw(p.participant_id, moderator=p.role.is_moderator):
            raise DrawingNotAllowed("the host has not given you the pen")

    async def update(self, session: Session, update: bytes, cursor: dict[str, Any] | None) -> None:
        board = await self.view_of(session, changing=True)
        p = session.participant
        self.require_draw(board, p)
        board.apply(update, p.participant_id)
        msg: dict[str, Any] = {"event": "board_update", "group_id": board.key.group_id, "update": b64(update),
                               "by": p.participant_id}
        if cursor is not None:
            msg["cursor"] = cursor
        self.broadcast(board.key, msg, exclude=p.participant_id)

    async def cursor(self, session: Session, cursor: dict[str, Any]) -> None:
        board = await self.view_of(session)
        p = session.participant
        if not self.may_draw(board, p):
            return  # the cursors are of those who draw; others' are dropped, not answered
        now = self._monotonic()
        if now - self._cursor_at.get(p.participant_id, -1.0) < 1.0 / CURSORS_PER_S:
            return
        self._cursor_at[p.participant_id] = now
        self.broadcast(board.key, {"event": "board_cursor", "participant_id": p.participant_id, "name": p.name,
                                   **cursor}, exclude=p.participant_id)

    async def clear(self, session: Session, page_id: str | None) -> None:
        board = await self.view_of(session)
        if page_id is not None:
            board.page(page_id)
        update = board.clear(page_id)
        self.broadcast(board.key, {"event": "board_update", "group_id": board.key.group_id, "update": b64(update),
                                   "by": session.participant_id, "cleared": page_id or "all"})

    async def add_page(self, session: Session) -> Page:
        board = await self.view_of(session, changing=True)
        self.require_draw(board, session.participant)
        page = board.add_pages([Page(new_id("p"))])[0]
        self.broadcast(board.key, {"event": "board_pages", "group_id": board.key.group_id,
                                   **self.meta_json(board)})
        return page

    async def show_group(self, session: Session, group_id: str) -> list[Page]:
        """A breakout group's board shown to the whole class: its pages (those with something on
        them) copied as new pages of the room's board, and everyone made to follow the first."""
        src = await self.service.board(BoardKey(self.live.room_id, group_id))
        dst = await self.service.board(BoardKey(self.live.room_id))
        used = [p for p in src.meta.pages if p.background or src.elements_json(p.page_id)] or src.meta.pages[:1]
        pages = [Page(new_id("p"), p.background, p.width, p.height) for p in used]
        if len(dst.meta.pages) + len(pages) > dst.limits.max_pages:
            dst.add_pages(pages)  # raises TooManyPages, changing nothing
        update = dst.import_elements({new.page_id: src.elements_json(old.page_id) for old, new in zip(used, pages,
                                                                                                     strict=True)})
        dst.add_pages(pages)
        dst.set_follow(pages[0].page_id, self.service.clock())
        key = dst.key
        self.broadcast(key, {"event": "board_pages", "group_id": None, **self.meta_json(dst)})
        self.broadcast(key, {"event": "board_update", "group_id": None, "update": b64(update),
                             "by": session.participant_id})
        self.broadcast(key, {"event": "board_follow", "group_id": None, "page_id": pages[0].page_id})
        return pages

    def pages_added(self, board: Board) -> None:
        """Pages came from an upload (REST): everyone on that board learns them."""
        self.broadcast(board.key, {"event": "board_pages", "group_id": board.key.group_id, **self.meta_json(board)})

    async def follow(self, session: Session, page_id: str | None) -> None:
        board = await self.view_of(session)
        board.set_follow(page_id, self.service.clock())
        self.broadcast(board.key, {"event": "board_follow", "group_id": board.key.group_id, "page_id": page_id})

    async def set_rights(self, session: Session, mode: str | None, participant_id: str | None,
                         pen: bool | None) -> dict[str, Any]:
        board = await self.view_of(session)
        rights = board.meta.rights
        if mode is not None:
            rights.mode = DrawMode(mode)
            if rights.mode is not DrawMode.CHOSEN:
                rights.pens.clear()
        if participant_id is not None:
            rights.give_pen(participant_id, True if pen is None else pen)
        board.meta_dirty = True
        self.broadcast(board.key, {"event": "board_rights", "group_id": board.key.group_id, **rights.to_json()})
        return rights.to_json()
