"""Lesson bodies: defaults, validation with invalid_lesson naming the field, patches."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.lessons.errors import InvalidLesson
from signaling.lessons.lesson import Person
from signaling.lessons.spec import apply_patch, parse_roster
from signaling.rooms import Role
from tests.unit.lessons.factory import NOW, body, lesson


def test_defaults_name_timezone_and_recurrence_day_come_from_the_body() -> None:
    x = lesson(timezone=None, recurrence={"weekly": {"count": 2}})
    assert x.name == "Алгебра, 7Б"
    assert x.timetable.timezone == "+03:00"
    assert x.to_json()["recurrence"]["weekly"]["days"] == ["tue"]  # Dec 8, 2026 is a Tuesday
    assert x.roster.students[0].registered and not x.roster.students[1].registered
    assert x.roster.teachers[0].display_name == "Мария Иванова"


def test_roster_roles_teachers_host_students_participate() -> None:
    x = lesson()
    assert x.roster.find("t-1") == (x.roster.teachers[0], Role.HOST)
    assert x.roster.find("s-2") == (x.roster.students[1], Role.PARTICIPANT)
    assert x.roster.find("stranger") is None
    assert x.roster.identities == {"t-1", "s-1", "s-2"}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"subject": ""}, "subject"),
    ({"class": {"id": "7b"}}, "name"),
    ({"teachers": []}, "teachers"),
    ({"students": [{"id": "t-1"}]}, "listed twice"),
    ({"starts_at": "2026-12-08T09:00:00"}, "timezone"),  # no offset: whose 09:00?
    ({"starts_at": "not a time"}, "starts_at"),
    ({"timezone": "Europe/Berlin"}, "offset"),  # +03:00 is not Berlin's
    ({"timezone": "Nowhere/City"}, "IANA"),
    ({"duration_minutes": 0}, "duration_minutes"),
    ({"starts_at": "2026-11-01T09:00:00+03:00"}, "over already"),
    ({"recurrence": {"weekly": {"days": ["mon", "mon"], "count": 2}}}, "twice"),
    ({"recurrence": {"weekly": {"days": ["sunday"], "count": 2}}}, "days"),
    ({"recurrence": {"weekly": {}}}, "until"),
    ({"recurrence": {"weekly": {"count": 2}, "except": ["not-a-date"]}}, "except"),
    ({"room": {"name": "x"}}, "set by the lesson"),
    ({"room": {"mode": "lecture"}}, "room"),
    ({"unknown": 1}, "unknown"),
])
def test_a_bad_body_is_invalid_lesson_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidLesson, match=message) as e:
        lesson(**overrides)
    assert e.value.code == "invalid_lesson" and e.value.status == 400


def test_a_utc_start_is_accepted_for_any_zone() -> None:
    x = lesson(starts_at="2026-12-08T06:00:00Z")
    assert x.timetable.iso(x.timetable.starts_at) == "2026-12-08T09:00:00+03:00"


def test_a_patch_changes_only_what_it_names_and_rebuilds_the_timetable() -> None:
    x = lesson(recurrence={"weekly": {"count": 3}})
    y = apply_patch(x, {"starts_at": "2026-12-09T10:00:00+03:00", "recurrence": {"weekly": {"count": 2},
                                                                                 "except": ["2026-12-16"]}},
                    now=NOW + 1)
    assert [y.timetable.iso(s) for s in y.timetable.starts] == ["2026-12-09T10:00:00+03:00"]
    assert y.name == x.name and y.roster == x.roster and y.updated_at == NOW + 1
    z = apply_patch(x, {"timezone": "Asia/Yekaterinburg"}, now=NOW)  # the wall-clock time stays 09:00
    assert z.timetable.iso(z.timetable.starts[0]) == "2026-12-08T09:00:00+05:00"
    assert apply_patch(x, {"recurrence": None}, now=NOW).timetable.recurrence is None
    with pytest.raises(InvalidLesson, match="duration_minutes"):
        apply_patch(x, {"duration_minutes": 10_000}, now=NOW)
    with pytest.raises(InvalidLesson, match="lesson_id"):
        apply_patch(x, {"lesson_id": "LS_other"}, now=NOW)


def test_a_roster_replaces_teachers_and_students() -> None:
    r = parse_roster({"teachers": [{"id": "t-2", "family_name": "Смирнов"}], "students": [{"id": "s-3"}]})
    assert r.teachers == (Person("t-2", "Смирнов"),) and r.students == (Person("s-3"),)
    with pytest.raises(InvalidLesson, match="teachers"):
        parse_roster({"students": [{"id": "s-3"}]})


def test_the_body_factory_is_valid_as_it_is() -> None:
    assert body()["external_id"] == lesson().external_id
