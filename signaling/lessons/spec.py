"""Lesson bodies as the e-journal sends them (POST, PATCH, PUT roster), validated into the domain.

Every refusal is InvalidLesson (``invalid_lesson``) naming the field.  The msgspec models double as
the request schemas of the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from signaling.lessons.errors import InvalidLesson
from signaling.lessons.lesson import ClassRef, Lesson, Person, Roster
from signaling.lessons.timetable import WEEKDAYS, Recurrence, Timetable, offset_name, zone
from signaling.rooms.errors import InvalidSettings
from signaling.rooms.room_settings import MAX_PARTICIPANTS_CEILING, RoomSettings

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=150)]  # + "@<ISO start>" fits the room's 200
Start = Annotated[datetime, msgspec.Meta(tz=True)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_TEACHERS = 50
# the room's settings that the lesson sets itself (a lesson body's "room" may not)
LESSON_OWNED = frozenset({"name", "external_id", "duration_minutes", "lesson", "ends_at", "wait_for_host"})


class PersonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    family_name: Text = ""
    given_name: Text = ""
    name: Text = ""
    registered: bool = True


class ClassIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    name: Name


class WeeklyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days: list[Weekday] | None = None  # default: the first start's weekday
    interval: Annotated[int, msgspec.Meta(ge=1, le=52)] = 1
    until: date | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class RecurrenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    weekly: WeeklyIn
    except_: list[date] = msgspec.field(name="except", default_factory=list)


class LessonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    external_id: ExternalId | None = None
    name: Text = ""  # default "{subject}, {class.name}"
    subject: Name
    class_: ClassIn = msgspec.field(name="class")
    teachers: Annotated[list[PersonIn], msgspec.Meta(min_length=1, max_length=MAX_TEACHERS)]
    students: Annotated[list[PersonIn], msgspec.Meta(max_length=MAX_PARTICIPANTS_CEILING)] = msgspec.field(
        default_factory=list)
    starts_at: Start
    duration_minutes: int
    timezone: Text | None = None  # IANA; default: the fixed offset of starts_at
    recurrence: RecurrenceIn | None = None
    wait_for_teacher: bool = False
    room: dict[str, Any] = msgspec.field(default_factory=dict)


class LessonPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Text | UnsetType = UNSET
    subject: Name | UnsetType = UNSET
    starts_at: Start | UnsetType = UNSET
    duration_minutes: int | UnsetType = UNSET
    timezone: Text | UnsetType = UNSET
    recurrence: RecurrenceIn | UnsetType | None = UNSET
    wait_for_teacher: bool | UnsetType = UNSET
    room: dict[str, Any] | UnsetType = UNSET


class RosterIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    teachers: Annotated[list[PersonIn], msgspec.Meta(min_length=1, max_length=MAX_TEACHERS)]
    students: Annotated[list[PersonIn], msgspec.Meta(max_length=MAX_PARTICIPANTS_CEILING)] = msgspec.field(
        default_factory=list)


def _convert(data: Any, model: type[Any]) -> Any:
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as e:
        raise InvalidLesson(str(e)) from None


def _roster(teachers: list[PersonIn], students: list[PersonIn]) -> Roster:
    seen: set[str] = set()
    for p in (*teachers, *students):
        if p.id in seen:
            raise InvalidLesson(f"roster: {p.id!r} is listed twice (ids are unique among teachers and students)")
        seen.add(p.id)

    def person(p: PersonIn) -> Person:
        return Person(p.id, p.family_name, p.given_name, p.name, p.registered)

    return Roster(tuple(person(p) for p in teachers), tuple(person(p) for p in students))


def parse_roster(data: Any) -> Roster:
    spec: RosterIn = _convert(data, RosterIn)
    return _roster(spec.teachers, spec.students)


def _room(data: dict[str, Any]) -> dict[str, Any]:
    owned = sorted(LESSON_OWNED & data.keys())
    if owned:
        raise InvalidLesson(f"room: {', '.join(owned)} {'is' if len(owned) == 1 else 'are'} set by the lesson")
    try:
        RoomSettings.parse(data)
    except InvalidSettings as e:
        raise InvalidLesson(f"room: {e.message}") from None
    return data


def _recurrence(spec: RecurrenceIn | None, start: datetime) -> Recurrence | None:
    if spec is None:
        return None
    w = spec.weekly
    days = tuple(sorted({WEEKDAYS.index(d) for d in w.days})) if w.days else (start.weekday(),)
    if w.days and len(set(w.days)) != len(w.days):
        raise InvalidLesson("recurrence.weekly.days: a weekday is listed twice")
    return Recurrence(days=days, interval=w.interval, until=w.until, count=w.count,
                      exceptions=frozenset(spec.except_))


def _timetable(starts_at: datetime, duration_minutes: int, tz_name: str | None,
               recurrence: RecurrenceIn | None) -> Timetable:
    name = tz_name or offset_name(starts_at)
    tz = zone(name)
    given = starts_at.utcoffset() or timedelta(0)
    local = starts_at.astimezone(tz)
    if given and local.utcoffset() != given:  # "...+03:00" for Europe/Berlin: one of the two is a mistake
        raise InvalidLesson(f"starts_at: its offset {offset_name(starts_at)} is not {name}'s on that date "
                            f"({offset_name(local)}); give the local time with the zone's offset, or UTC")
    return Timetable(starts_at=starts_at.timestamp(), duration_minutes=duration_minutes, timezone=name,
                     recurrence=_recurrence(recurrence, local))


def _check_not_over(tt: Timetable, now: float) -> None:
    if tt.last_ends_at <= now:
        raise InvalidLesson("starts_at: the lesson (its last occurrence) is over already")


def parse_lesson(data: Any, *, lesson_id: str, now: float) -> Lesson:
    """A new lesson from a POST body (decoded JSON)."""
    spec: LessonIn = _convert(data, LessonIn)
    tt = _timetable(spec.starts_at, spec.duration_minutes, spec.timezone, spec.recurrence)
    _check_not_over(tt, now)
    return Lesson(
        lesson_id=lesson_id, external_id=spec.external_id,
        name=spec.name.strip() or f"{spec.subject}, {spec.class_.name}", subject=spec.subject,
        class_ref=ClassRef(spec.class_.id, spec.class_.name), roster=_roster(spec.teachers, spec.students),
        timetable=tt, wait_for_teacher=spec.wait_for_teacher, room=_room(spec.room), created_at=now, updated_at=now,
    )


def apply_patch(lesson: Lesson, data: Any, *, now: float) -> Lesson:
    """The lesson with a PATCH body's fields changed (the timetable rebuilt and checked again)."""
    spec: LessonPatch = _convert(data, LessonPatch)
    changes: dict[str, Any] = {"updated_at": now}
    if not isinstance(spec.name, UnsetType):
        changes["name"] = spec.name.strip() or f"{lesson.subject}, {lesson.class_ref.name}"
    if not isinstance(spec.subject, UnsetType):
        changes["subject"] = spec.subject
    if not isinstance(spec.wait_for_teacher, UnsetType):
        changes["wait_for_teacher"] = spec.wait_for_teacher
    if not isinstance(spec.room, UnsetType):
        changes["room"] = _room(spec.room)
    time_fields = (spec.starts_at, spec.duration_minutes, spec.timezone, spec.recurrence)
    if any(not isinstance(f, UnsetType) for f in time_fields):
        old = lesson.timetable
        tz_name = old.timezone if isinstance(spec.timezone, UnsetType) else spec.timezone
        start = (datetime.fromtimestamp(old.starts_at, zone(tz_name)) if isinstance(spec.starts_at, UnsetType)
                 else spec.starts_at)
        if isinstance(spec.starts_at, UnsetType) and not isinstance(spec.timezone, UnsetType):
            # a new zone keeps the lesson's wall-clock time (09:00 stays 09:00 there)
            start = old.local_start.replace(tzinfo=zone(tz_name))
        duration = old.duration_minutes if isinstance(spec.duration_minutes, UnsetType) else spec.duration_minutes
        rec = _recurrence_in(old.recurrence) if isinstance(spec.recurrence, UnsetType) else spec.recurrence
        tt = _timetable(start, duration, tz_name, rec)
        _check_not_over(tt, now)
        changes["timetable"] = tt
    return lesson.replace(**changes)


def _recurrence_in(r: Recurrence | None) -> RecurrenceIn | None:
    if r is None:
        return None
    return RecurrenceIn(weekly=WeeklyIn(days=[WEEKDAYS[d] for d in r.days],  # type: ignore[misc]
                                        interval=r.interval, until=r.until, count=r.count),
                        except_=sorted(r.exceptions))
