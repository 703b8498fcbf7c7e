"""Attendance: every join and leave per identity, with reconnects merged into one presence interval.

A participant who leaves and comes back within ``merge_gap_s`` (a dropped network, a page reload)
counts as present the whole time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MERGE_GAP_S = 60.0
# a cell a spreadsheet would read as a formula (=HYPERLINK(...), +cmd, -1+1, @SUM) or that starts with
# a tab or carriage return gets a leading apostrophe: OWASP "CSV Injection" (names come from tokens)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("identity", "name", "family_name", "given_name", "role", "registered", "first_joined",
               "last_left", "total_seconds", "sessions")


@dataclass(slots=True)
class AttendanceRecord:
    identity: str
    name: str
    family_name: str
    given_name: str
    role: str
    registered: bool
    intervals: list[list[float | None]] = field(default_factory=list)  # [joined, left or None]

    @property
    def present(self) -> bool:
        return bool(self.intervals) and self.intervals[-1][1] is None

    def total_seconds(self, now: float) -> float:
        total = 0.0
        for start, end in self.intervals:
            assert start is not None
            total += (now if end is None else end) - start
        return total

    def sort_key(self) -> tuple[str, str, str, str]:
        return ((self.family_name or self.name).casefold(), self.given_name.casefold(), self.name.casefold(),
                self.identity)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "identity": self.identity, "name": self.name, "family_name": self.family_name,
            "given_name": self.given_name, "role": self.role, "registered": self.registered,
            "first_joined": self.intervals[0][0] if self.intervals else None,
            "last_left": None if not self.intervals else self.intervals[-1][1],
            "total_seconds": round(self.total_seconds(now), 3),
            "sessions": len(self.intervals),
            "intervals": [{"joined": a, "left": b} for a, b in self.intervals],
        }


class Attendance:
    def __init__(self, *, merge_gap_s: float = MERGE_GAP_S) -> None:
        self._records: dict[str, AttendanceRecord] = {}
        self._merge_gap_s = merge_gap_s

    def __len__(self) -> int:
        return len(self._records)

    def get(self, identity: str) -> AttendanceRecord | None:
        return self._records.get(identity)

    def joined(self, *, identity: str, name: str, family_name: str, given_name: str, role: str,
               registered: bool, now: float) -> None:
        r = self._records.get(identity)
        if r is None:
            r = self._records[identity] = AttendanceRecord(identity, name, family_name, given_name, role, registered)
        r.name, r.family_name, r.given_name, r.role, r.registered = name, family_name, given_name, role, registered
        if r.present:
            return
        last = r.intervals[-1] if r.intervals else None
        if last is not None and last[1] is not None and now - last[1] <= self._merge_gap_s:
            last[1] = None  # a reconnect: one presence interval
        else:
            r.intervals.append([now, None])

    def left(self, identity: str, now: float) -> None:
        r = self._records.get(identity)
        if r is not None and r.present:
            r.intervals[-1][1] = now

    def role_changed(self, identity: str, role: str) -> None:
        r = self._records.get(identity)
        if r is not None:
            r.role = role

    def records(self) -> list[AttendanceRecord]:
        return sorted(self._records.values(), key=AttendanceRecord.sort_key)

    def rows(self, now: float) -> list[list[Any]]:
        """One row per identity in CSV_COLUMNS order, for the CSV download: text is neutralised
        (``csv_safe``), numbers and booleans are left as they are."""
        out: list[list[Any]] = []
        for r in self.records():
            j = r.to_json(now)
            out.append([csv_safe(j[c]) for c in CSV_COLUMNS])
        return out


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, quoted with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
