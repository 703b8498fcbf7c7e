"""Roles of a participant in a room."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    PARTICIPANT = "participant"
    VIEWER = "viewer"

    @classmethod
    def values(cls) -> list[str]:
        return [r.value for r in cls]

    @property
    def is_moderator(self) -> bool:
        return self in (Role.HOST, Role.COHOST)
