"""Attendance against a lesson's roster: who of the class was there, late, left early or absent.

Pure functions, no I/O, time passed in.  ``roster_report`` takes the roster (teachers and students,
as the e-journal named them), the room's attendance records (signaling/rooms/attendance.py: joins and
leaves per identity, reconnects within its merge gap already one interval) and the lesson's times,
and returns a JSON-ready report; ``roster_csv`` turns that report into the CSV download.

The rules (times in seconds since the epoch):
- present time counts only inside the lesson, from ``starts_at`` to its end (``ended_at`` when the
  room ran past ``ends_at``); an interval still open counts up to ``now``.  Waiting in the room before
  the start is not lesson time (the first join still shows it).
- ``late``: the first join is more than ``late_after_s`` after ``starts_at``.
- ``left_early``: the last leave is more than ``left_early_s`` before the end (the earlier of
  ``ends_at`` and ``ended_at``: when a teacher ends the lesson early, whoever stayed to that moment did
  not leave early), and the student is not in the room now.
- ``absent``: never joined.  ``status``: ``absent`` | ``late`` | ``left_early`` | ``present`` (late and
  left early: ``late``, with both flags true).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from signaling.rooms.attendance import AttendanceRecord, csv_safe

ABSENT, LATE, LEFT_EARLY, PRESENT = "absent", "late", "left_early", "present"
CSV_COLUMNS = ("group", "family_name", "given_name", "identity", "status", "present_minutes", "first_join",
               "last_leave", "late", "left_early")


class RosterEntry(Protocol):
    """One person on the roster (signaling/lessons' Person fits, as does RosterPerson)."""

    @property
    def identity(self) -> str: ...

    @property
    def family_name(self) -> str: ...

    @property
    def given_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RosterPerson:
    identity: str
    family_name: str = ""
    given_name: str = ""


def collate(text: str) -> str:
    """A sort key for names: case-insensitive, and Ё with Е as Russian dictionaries do (by code point
    Ё would come after Я)."""
    return text.casefold().replace("ё", "е")


def _name_key(family: str, given: str, identity: str) -> tuple[str, str, str]:
    return (collate(family), collate(given), identity)


def _roster_key(p: RosterEntry) -> tuple[str, str, str]:
    return _name_key(p.family_name, p.given_name, p.identity)


def _iso(t: float | None, tz: tzinfo) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class _Window:
    starts_at: float
    counts_until: float  # presence after this is not lesson time
    stay_until: float  # who left more than left_early_s before this left early
    now: float
    late_after_s: float
    left_early_s: float
    tz: tzinfo


def _presence(record: AttendanceRecord | None, w: _Window) -> dict[str, Any]:
    """Times, flags and status of one person from their record (None: never joined)."""
    intervals = record.intervals if record is not None else []
    if not intervals:
        return {"status": ABSENT, "present_s": 0.0, "present_minutes": 0, "first_join": None, "first_join_s": None,
                "last_leave": None, "last_leave_s": None, "present_now": False, "late": False,
                "left_early": False, "absent": True, "intervals": []}
    present_s = 0.0
    for joined, left in intervals:
        assert joined is not None
        end = min(w.now if left is None else left, w.counts_until)
        present_s += max(0.0, end - max(joined, w.starts_at))
    first_join = intervals[0][0]
    assert first_join is not None
    last_leave = intervals[-1][1]  # None: in the room now
    late = first_join > w.starts_at + w.late_after_s
    left_early = last_leave is not None and last_leave < w.stay_until - w.left_early_s
    status = LATE if late else LEFT_EARLY if left_early else PRESENT
    return {
        "status": status, "present_s": round(present_s, 3), "present_minutes": int(present_s / 60 + 0.5),
        "first_join": _iso(first_join, w.tz), "first_join_s": first_join,
        "last_leave": _iso(last_leave, w.tz), "last_leave_s": last_leave, "present_now": last_leave is None,
        "late": late, "left_early": left_early, "absent": False,
        "intervals": [{"joined": _iso(a, w.tz), "joined_s": a, "left": _iso(b, w.tz), "left_s": b}
                      for a, b in intervals],
    }


def _person(p: RosterEntry, records: dict[str, AttendanceRecord], w: _Window) -> dict[str, Any]:
    record = records.get(p.identity)
    name = " ".join(x for x in (p.family_name, p.given_name) if x) or (record.name if record else p.identity)
    return {"identity": p.identity, "family_name": p.family_name, "given_name": p.given_name, "name": name,
            **_presence(record, w)}


def roster_report(
    teachers: Sequence[RosterEntry],
    students: Sequence[RosterEntry],
    records: Iterable[AttendanceRecord],
    *,
    starts_at: float,
    ends_at: float,
    late_after_s: float,
    left_early_s: float,
    now: float,
    ended_at: float | None = None,
    tz: tzinfo = UTC,
) -> dict[str, Any]:
    """The roster report of one lesson occurrence (JSON-ready).

    ``teachers``, ``students``: the roster (anything with identity, family_name, given_name);
    ``records``: the room's ``Attendance.records()``; ``starts_at``, ``ends_at``: the occurrence by the
    timetable (``ends_at`` may include extensions: ``Room.ends_at()``); ``ended_at``: when the room
    ended, if it has; ``now``: the time of the report; ``tz``: the lesson's time zone, for the ISO
    times (each also given in epoch seconds, ``*_s``).  Students, teachers and guests (attendees on
    neither list) each sorted by family name, then given name."""
    by_identity = {r.identity: r for r in records}
    stay_until = ends_at if ended_at is None else min(ends_at, ended_at)
    counts_until = ends_at if ended_at is None else max(ends_at, ended_at)
    w = _Window(starts_at=starts_at, counts_until=counts_until, stay_until=stay_until, now=now,
                late_after_s=late_after_s, left_early_s=left_early_s, tz=tz)
    student_rows = [_person(p, by_identity, w) for p in sorted(students, key=_roster_key)]
    teacher_rows = [_person(p, by_identity, w) for p in sorted(teachers, key=_roster_key)]
    on_roster = {p.identity for p in (*teachers, *students)}
    guests = sorted((r for r in by_identity.values() if r.identity not in on_roster),
                    key=lambda r: _name_key(r.family_name or r.name, r.given_name, r.identity))
    guest_rows = [{"identity": r.identity, "family_name": r.family_name, "given_name": r.given_name,
                   "name": r.name, "role": r.role, "registered": r.registered, **_presence(r, w)} for r in guests]
    for g in guest_rows:  # a guest is neither late nor absent: there was nothing to be on time for
        g.update(status=PRESENT, late=False, left_early=False)
    counts = {s: sum(1 for row in student_rows if row["status"] == s) for s in (PRESENT, LATE, LEFT_EARLY, ABSENT)}
    return {
        "starts_at": _iso(starts_at, tz), "starts_at_s": starts_at, "ends_at": _iso(ends_at, tz), "ends_at_s": ends_at,
        "ended_at": _iso(ended_at, tz), "ended_at_s": ended_at, "generated_at": _iso(now, tz), "generated_at_s": now,
        "late_after_s": late_after_s, "left_early_s": left_early_s,
        "summary": {"students": len(student_rows), **counts,
                    "left_early_total": sum(1 for row in student_rows if row["left_early"]),
                    "teachers_present": sum(1 for row in teacher_rows if not row["absent"]),
                    "guests": len(guest_rows)},
        "students": student_rows, "teachers": teacher_rows, "guests": guest_rows,
    }


def roster_csv(report: dict[str, Any]) -> bytes:
    """The report as CSV for spreadsheets: UTF-8 with a BOM (Excel then reads Cyrillic names), comma
    separated, CRLF lines; students, then teachers, then guests, each in family-name order (as the
    report lists them); text cells that a spreadsheet would run as a formula are neutralised."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for group, rows in (("student", report["students"]), ("teacher", report["teachers"]),
                        ("guest", report["guests"])):
        for row in rows:
            cells = {**row, "group": group, "late": _yes(row["late"]), "left_early": _yes(row["left_early"])}
            w.writerow(["" if cells[c] is None else csv_safe(cells[c]) for c in CSV_COLUMNS])
    return buf.getvalue().encode("utf-8")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
