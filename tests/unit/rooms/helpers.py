"""Building rooms and participants for domain tests."""

from __future__ import annotations

from signaling.rooms import Identity, Participant, Role, Room, RoomSettings


def make_room(**settings: object) -> Room:
    return Room(room_id="R", settings=RoomSettings.parse(settings), created_at=0.0)


def who(identity: str, *, role: Role = Role.PARTICIPANT, registered: bool = True, family: str = "",
        given: str = "") -> Identity:
    return Identity(identity=identity, name=f"{given} {family}".strip() or identity, role=role,
                    registered=registered, family_name=family, given_name=given)


def join(room: Room, identity: str, now: float = 1.0, **kw: object) -> Participant:
    return room.admit_or_queue(who(identity, **kw), now)  # type: ignore[arg-type]
