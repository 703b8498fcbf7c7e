"""The lesson aggregate: a class's lesson from the e-journal's timetable, its roster (teachers and
students) and its timetable.  Immutable: a change makes a new Lesson (``replace``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signaling.lessons.timetable import Timetable
from signaling.rooms.role import Role


class LessonState(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class PersonKind(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"


@dataclass(frozen=True, slots=True)
class Person:
    """One person on the roster, with the e-journal's id as the identity in the room."""

    identity: str
    family_name: str = ""
    given_name: str = ""
    name: str = ""  # shown in the room; "given family" when the journal gives none
    registered: bool = True  # a school user (the journal's people are)

    @property
    def display_name(self) -> str:
        return self.name or " ".join(x for x in (self.given_name, self.family_name) if x) or self.identity

    def to_json(self) -> dict[str, Any]:
        return {"id": self.identity, "family_name": self.family_name, "given_name": self.given_name,
                "name": self.display_name, "registered": self.registered}

    def to_record(self) -> dict[str, Any]:
        """As stored (``name`` as given, possibly empty)."""
        return {"id": self.identity, "family_name": self.family_name, "given_name": self.given_name,
                "name": self.name, "registered": self.registered}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Person:
        return cls(str(d["id"]), str(d.get("family_name", "")), str(d.get("given_name", "")), str(d.get("name", "")),
                   bool(d.get("registered", True)))

    def sort_key(self) -> tuple[str, str, str]:
        return ((self.family_name or self.display_name).casefold(), self.given_name.casefold(), self.identity)


@dataclass(frozen=True, slots=True)
class ClassRef:
    class_id: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.class_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Roster:
    teachers: tuple[Person, ...]
    students: tuple[Person, ...]

    @property
    def identities(self) -> frozenset[str]:
        return frozenset(p.identity for p in (*self.teachers, *self.students))

    def find(self, identity: str) -> tuple[Person, Role] | None:
        """The person and their role in the room: teachers are hosts, students participants."""
        for p in self.teachers:
            if p.identity == identity:
                return p, Role.HOST
        for p in self.students:
            if p.identity == identity:
                return p, Role.PARTICIPANT
        return None

    def to_json(self) -> dict[str, Any]:
        return {"teachers": [p.to_json() for p in self.teachers], "students": [p.to_json() for p in self.students]}

    def to_record(self) -> dict[str, Any]:
        return {"teachers": [p.to_record() for p in self.teachers],
                "students": [p.to_record() for p in self.students]}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Roster:
        return cls(tuple(Person.from_record(p) for p in d.get("teachers", ())),
                   tuple(Person.from_record(p) for p in d.get("students", ())))


@dataclass(frozen=True, slots=True)
class Lesson:
    lesson_id: str
    external_id: str | None
    name: str
    subject: str
    class_ref: ClassRef
    roster: Roster
    timetable: Timetable
    wait_for_teacher: bool = False
    # room settings for each occurrence's room (mode, lock, guest_policy...; RoomSettings keys)
    room: Mapping[str, Any] = field(default_factory=dict, hash=False)
    state: LessonState = LessonState.SCHEDULED
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def cancelled(self) -> bool:
        return self.state is LessonState.CANCELLED

    def taught_by(self, teacher_id: str) -> bool:
        return any(p.identity == teacher_id for p in self.roster.teachers)

    def replace(self, **changes: Any) -> Lesson:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        tt = self.timetable
        out: dict[str, Any] = {
            "lesson_id": self.lesson_id, "external_id": self.external_id, "name": self.name,
            "subject": self.subject, "class": self.class_ref.to_json(), **self.roster.to_json(),
            "starts_at": tt.iso(tt.starts_at), "starts_at_s": tt.starts_at, "duration_minutes": tt.duration_minutes,
            "timezone": tt.timezone, "recurrence": tt.recurrence.to_json() if tt.recurrence else None,
            "wait_for_teacher": self.wait_for_teacher, "room": dict(self.room), "state": self.state.value,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
        return out
