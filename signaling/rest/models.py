"""Typed REST request bodies (validated at the edge) and response shapes (for the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from signaling.rooms import Role

Identity = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
OptName = Annotated[str, msgspec.Meta(max_length=200)]


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    identity: Identity
    name: Name
    role: Role = Role.PARTICIPANT
    registered: bool = False
    family_name: OptName = ""
    given_name: OptName = ""
    ttl_s: Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)] | None = None


class TokenResponse(msgspec.Struct, kw_only=True):
    token: str
    join_url: str
    expires_at: int


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str


class ErrorResponse(msgspec.Struct, kw_only=True):
    error: ErrorBody


class ParticipantOut(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str
    name: str
    family_name: str
    given_name: str
    role: Role
    registered: bool
    state: str
    joined_at: float | None
    waiting_since: float | None
    muted: dict[str, bool]
    hand_raised_at: float | None


class ParticipantPage(msgspec.Struct, kw_only=True):
    participants: list[ParticipantOut]
    total: int
    offset: int
    limit: int


class RoomOut(msgspec.Struct, kw_only=True):
    room_id: str
    name: str
    external_id: str | None
    settings: dict[str, Any]
    created_at: float
    ended_at: float | None
    active: bool
    num_participants: int
    num_waiting: int
    participants: list[ParticipantOut]
    breakouts: list[Any]


class RoomPage(msgspec.Struct, kw_only=True):
    rooms: list[RoomOut]
    total: int
    offset: int
    limit: int


class RemoveResult(msgspec.Struct, kw_only=True):
    removed: bool
    banned: bool


class Health(msgspec.Struct, kw_only=True):
    status: str
    rooms: int
    participants: int
    version: str
