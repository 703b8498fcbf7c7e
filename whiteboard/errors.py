"""Named errors of the whiteboard; each has a stable wire code (docs/protocol.md, "Whiteboard", lists them).

They are RoomErrors, so the WebSocket dispatcher answers them as ``{"ok": false, "error": {code,
message}}`` like the room's own; the REST layer maps them to HTTP statuses (board_api.py)."""

from __future__ import annotations

from signaling.rooms.errors import RoomError


class BoardError(RoomError):
    code = "board_error"
    status = 400


class DrawingNotAllowed(BoardError):
    code = "board_forbidden"
    status = 403


class UpdateTooLarge(BoardError):
    code = "board_update_too_large"
    status = 413


class BoardFull(BoardError):
    code = "board_full"
    status = 413


class BoardRateLimited(BoardError):
    code = "board_rate_limited"
    status = 429


class InvalidUpdate(BoardError):
    code = "board_invalid_update"
    status = 400


class TooManyPages(BoardError):
    code = "board_too_many_pages"
    status = 409


class PageNotFound(BoardError):
    code = "board_page_not_found"
    status = 404


class BoardMoved(BoardError):
    """The breakout groups moved the participant to another board since it last synced: its
    update is not applied anywhere (it was made on the old board); board_sync gives the new one."""

    code = "board_moved"
    status = 409


class BadMaterial(BoardError):
    """An upload that is not a readable PDF or picture."""

    code = "board_bad_file"
    status = 415


class MaterialTooLarge(BoardError):
    code = "board_file_too_large"
    status = 413
