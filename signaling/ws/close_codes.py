"""WebSocket close codes of the signalling (documented in docs/protocol.md)."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000  # the client sent `leave`
    GOING_AWAY = 1001  # the server is shutting down
    MESSAGE_TOO_BIG = 1009  # a frame over ws_max_message_bytes (closed by aiohttp)
    UNAUTHORIZED = 4401  # bad, expired, wrongly signed or wrong-room token
    ENTRY_REFUSED = 4403  # guest policy, ban, or denied by a host
    ROOM_NOT_FOUND = 4404
    TOO_SLOW = 4408  # the client did not read its events fast enough
    REPLACED = 4409  # the same identity connected again; this older socket is closed
    ROOM_ENDED = 4410
    REMOVED = 4411  # removed by a host
    ROOM_FULL = 4413
    ALREADY_CONNECTED = 4423  # the identity is connected and the room forbids taking its seat
    RATE_LIMITED = 4429  # kept flooding after many `rate_limited` errors
    INTERNAL = 4500
