"""The roster report from scripted joins and leaves (time passed in), through the real Attendance."""

from __future__ import annotations

import csv
import io
from datetime import timedelta, timezone
from typing import Any

from signaling.lessons.roster_attendance import RosterPerson, roster_csv, roster_report
from signaling.rooms.attendance import Attendance

START = 1_800_000_000.0  # the lesson starts; 45 minutes
END = START + 45 * 60
MIN = 60.0
MSK = timezone(timedelta(hours=3))

TEACHERS = [RosterPerson("t-1", "Иванова", "Мария")]
STUDENTS = [
    RosterPerson("s-ontime", "Петров", "Пётр"),
    RosterPerson("s-late", "Алексеев", "Алексей"),
    RosterPerson("s-early", "Яковлев", "Яков"),
    RosterPerson("s-both", "Ёлкин", "Егор"),
    RosterPerson("s-absent", "Борисова", "Вера"),
    RosterPerson("s-flaky", "Егорова", "Анна"),
]


def attend(att: Attendance, identity: str, joined: float, left: float | None, *, role: str = "participant",
           name: str = "", family: str = "", registered: bool = True) -> None:
    att.joined(identity=identity, name=name or identity, family_name=family, given_name="", role=role,
               registered=registered, now=joined)
    if left is not None:
        att.left(identity, left)


def lesson_attendance() -> Attendance:
    att = Attendance()  # the real merge gap: 60 s
    attend(att, "t-1", START - 10 * MIN, END, role="host")
    attend(att, "s-ontime", START - 2 * MIN, END)  # waited in the room before the bell
    attend(att, "s-late", START + 12 * MIN, END)
    attend(att, "s-early", START + 1 * MIN, START + 20 * MIN)
    attend(att, "s-both", START + 10 * MIN, START + 30 * MIN)
    # a dropped network: back within the merge gap, one interval, the whole lesson
    attend(att, "s-flaky", START, START + 15 * MIN)
    attend(att, "s-flaky", START + 15 * MIN + 40, END)
    attend(att, "stranger", START + 3 * MIN, START + 13 * MIN, name="Гость", family="Гостев", registered=False)
    return att


def report(att: Attendance, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"starts_at": START, "ends_at": END, "late_after_s": 5 * MIN, "left_early_s": 5 * MIN,
                            "now": END + MIN, "ended_at": END}
    args.update(kw)
    return roster_report(TEACHERS, STUDENTS, att.records(), **args)


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["identity"]: r for r in rows}


def test_each_student_gets_present_late_left_early_or_absent() -> None:
    students = by_id(report(lesson_attendance())["students"])
    assert {i: r["status"] for i, r in students.items()} == {
        "s-ontime": "present", "s-late": "late", "s-early": "left_early", "s-both": "late",
        "s-absent": "absent", "s-flaky": "present"}
    assert (students["s-both"]["late"], students["s-both"]["left_early"]) == (True, True)
    assert (students["s-late"]["late"], students["s-late"]["left_early"]) == (True, False)
    assert (students["s-early"]["late"], students["s-early"]["left_early"]) == (False, True)
    absent = students["s-absent"]
    assert absent["absent"] is True and absent["first_join"] is None and absent["present_minutes"] == 0
    assert not any(r["absent"] for i, r in students.items() if i != "s-absent")


def test_present_minutes_count_only_the_lesson_and_first_join_shows_the_early_arrival() -> None:
    students = by_id(report(lesson_attendance(), tz=MSK)["students"])
    ontime = students["s-ontime"]
    assert ontime["present_s"] == 45 * MIN and ontime["present_minutes"] == 45
    assert ontime["first_join_s"] == START - 2 * MIN
    assert ontime["first_join"] is not None and ontime["first_join"].endswith("+03:00")
    assert ontime["last_leave_s"] == END
    assert students["s-late"]["present_minutes"] == 33
    assert students["s-both"]["present_minutes"] == 20


def test_a_reconnect_within_the_merge_gap_is_one_interval_and_not_left_early() -> None:
    flaky = by_id(report(lesson_attendance())["students"])["s-flaky"]
    assert len(flaky["intervals"]) == 1
    assert flaky["left_early"] is False and flaky["present_minutes"] == 45


def test_a_reconnect_after_the_merge_gap_keeps_both_intervals_and_counts_only_presence() -> None:
    att = Attendance()
    attend(att, "s-flaky", START, START + 10 * MIN)
    attend(att, "s-flaky", START + 20 * MIN, END)
    flaky = by_id(report(att)["students"])["s-flaky"]
    assert len(flaky["intervals"]) == 2 and flaky["present_minutes"] == 35 and flaky["status"] == "present"


def test_late_is_strictly_more_than_the_setting_after_the_start() -> None:
    att = Attendance()
    attend(att, "s-ontime", START + 5 * MIN, END)
    attend(att, "s-late", START + 5 * MIN + 1, END)
    students = by_id(report(att)["students"])
    assert students["s-ontime"]["late"] is False and students["s-late"]["late"] is True


def test_a_student_still_in_the_room_has_not_left_early_and_counts_up_to_now() -> None:
    att = Attendance()
    attend(att, "s-ontime", START, None)
    attend(att, "s-early", START, START + 5 * MIN)
    students = by_id(report(att, now=START + 20 * MIN, ended_at=None)["students"])
    assert students["s-ontime"]["present_now"] is True and students["s-ontime"]["left_early"] is False
    assert students["s-ontime"]["present_minutes"] == 20 and students["s-ontime"]["last_leave"] is None
    assert students["s-early"]["left_early"] is True


def test_a_lesson_the_teacher_ended_early_does_not_make_everyone_leave_early() -> None:
    att = Attendance()
    ended = START + 30 * MIN
    attend(att, "s-ontime", START, ended)
    attend(att, "s-early", START, START + 10 * MIN)
    students = by_id(report(att, ended_at=ended, now=ended)["students"])
    assert students["s-ontime"]["status"] == "present" and students["s-ontime"]["present_minutes"] == 30
    assert students["s-early"]["status"] == "left_early"


def test_an_extended_lesson_counts_the_extra_time() -> None:
    att = Attendance()
    attend(att, "s-ontime", START, END + 10 * MIN)
    row = by_id(report(att, ended_at=END + 10 * MIN, now=END + 10 * MIN)["students"])["s-ontime"]
    assert row["present_minutes"] == 55 and row["status"] == "present"


def test_teachers_and_guests_are_listed_apart_from_the_students() -> None:
    r = report(lesson_attendance())
    assert [t["identity"] for t in r["teachers"]] == ["t-1"] and r["teachers"][0]["status"] == "present"
    assert r["teachers"][0]["name"] == "Иванова Мария"
    (guest,) = r["guests"]
    assert guest["identity"] == "stranger" and guest["registered"] is False and guest["present_minutes"] == 10
    assert "stranger" not in by_id(r["students"])
    assert r["summary"] == {"students": 6, "present": 2, "late": 2, "left_early": 1, "absent": 1,
                            "left_early_total": 2, "teachers_present": 1, "guests": 1}


def test_students_are_in_family_name_order_with_yo_sorted_as_ye() -> None:
    names = [s["family_name"] for s in report(lesson_attendance())["students"]]
    assert names == ["Алексеев", "Борисова", "Егорова", "Ёлкин", "Петров", "Яковлев"]


def test_csv_is_utf8_with_bom_in_family_name_order_with_teachers_and_guests_after() -> None:
    data = roster_csv(report(lesson_attendance(), tz=MSK))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["group", "family_name", "given_name", "identity", "status", "present_minutes",
                       "first_join", "last_leave", "late", "left_early"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("student", "Алексеев"), ("student", "Борисова"), ("student", "Егорова"), ("student", "Ёлкин"),
        ("student", "Петров"), ("student", "Яковлев"), ("teacher", "Иванова"), ("guest", "Гостев")]
    both = rows[4]
    assert both[3:6] == ["s-both", "late", "20"] and both[8:] == ["yes", "yes"]
    absent = rows[2]
    assert absent[4] == "absent" and absent[6] == "" and absent[7] == ""
    assert rows[5][6].endswith("+03:00")


def test_csv_neutralises_a_name_that_a_spreadsheet_would_run_as_a_formula() -> None:
    att = Attendance()
    r = roster_report([], [RosterPerson("s-1", "=HYPERLINK(\"http://x\")", "Пётр")], att.records(),
                      starts_at=START, ends_at=END, late_after_s=300, left_early_s=300, now=END)
    rows = list(csv.reader(io.StringIO(roster_csv(r).decode("utf-8-sig"))))
    assert rows[1][1].startswith("'=")


def test_an_empty_roster_and_no_attendance_is_an_empty_report() -> None:
    r = roster_report([], [], [], starts_at=START, ends_at=END, late_after_s=300, left_early_s=300, now=START)
    assert r["students"] == r["teachers"] == r["guests"] == []
    assert r["summary"]["students"] == 0
    assert roster_csv(r).decode("utf-8-sig").splitlines() == [",".join(
        ("group", "family_name", "given_name", "identity", "status", "present_minutes", "first_join",
         "last_leave", "late", "left_early"))]
