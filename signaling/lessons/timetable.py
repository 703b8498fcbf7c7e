"""When a lesson happens: its first start, duration and time zone, a weekly recurrence with
exception dates, the join window around each occurrence, and each occurrence's state.

Plain Python, time passed in.  A weekly lesson keeps its local (wall-clock) time in its IANA time
zone: 09:00 in Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer.  A start that falls
into a spring-forward gap (02:30 on the night clocks jump from 02:00 to 03:00) is read with the
offset before the jump (PEP 495, fold=0), i.e. one hour later on the wall clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.lessons.errors import InvalidLesson

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_OCCURRENCES = 1000  # one lesson's occurrences (a weekly lesson for 19 years; a school year is ~40)
MAX_SPAN_DAYS = 3660  # a recurrence's until is at most this long after the first start
MAX_DURATION_MIN = 12 * 60
_OFFSET = re.compile(r"^[+-](\d\d):(\d\d)$")


def zone(name: str) -> tzinfo:
    """An IANA zone ("Europe/Moscow") or a fixed offset ("+03:00"); InvalidLesson otherwise."""
    m = _OFFSET.match(name)
    if m:
        hours, minutes = int(m[1]), int(m[2])
        if hours > 18 or minutes > 59:
            raise InvalidLesson(f"timezone: {name!r} is not a UTC offset")
        sign = -1 if name.startswith("-") else 1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidLesson(f"timezone: {name!r} is not an IANA time zone (e.g. Europe/Moscow)") from None


def offset_name(dt: datetime) -> str:
    """"+03:00" for a datetime (its UTC offset): a lesson without a time zone keeps its start's."""
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    return f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def iso(ts: float, tz: tzinfo) -> str:
    """An instant as ISO 8601 with the zone's offset at that instant (2026-12-08T09:00:00+03:00)."""
    return datetime.fromtimestamp(ts, tz).isoformat()


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Weekly on ``days`` (0 = Monday) every ``interval`` weeks, up to ``until`` (a local date,
    inclusive) or for ``count`` occurrences; ``exceptions`` are local dates that do not happen
    (they still count toward ``count``, as an iCalendar EXDATE does)."""

    days: tuple[int, ...]
    interval: int = 1
    until: date | None = None
    count: int | None = None
    exceptions: frozenset[date] = frozenset()

    def to_json(self) -> dict[str, object]:
        weekly: dict[str, object] = {"days": [WEEKDAYS[d] for d in self.days], "interval": self.interval}
        if self.until is not None:
            weekly["until"] = self.until.isoformat()
        if self.count is not None:
            weekly["count"] = self.count
        return {"weekly": weekly, "except": sorted(d.isoformat() for d in self.exceptions)}


@dataclass(frozen=True, slots=True)
class Window:
    """How long before its start an occurrence opens and after its end it closes (the settings
    lesson_open_before_min and lesson_close_after_min)."""

    open_before_s: float = 15 * 60.0
    close_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Occurrence:
    starts_at: float
    ends_at: float
    opens_at: float
    closes_at: float

    def is_open(self, now: float) -> bool:
        return self.opens_at <= now < self.closes_at


class OccurrenceState(StrEnum):
    SCHEDULED = "scheduled"  # its window has not opened
    OPEN = "open"  # within the window, nobody has entered yet
    RUNNING = "running"  # its room exists and has not ended
    ENDED = "ended"  # the window closed (or its room ended)
    CANCELLED = "cancelled"  # the lesson was cancelled before this one ended


class RoomStatus(StrEnum):
    """What the lessons service knows of an occurrence's room."""

    NONE = "none"
    LIVE = "live"
    ENDED = "ended"


def occurrence_state(occ: Occurrence, now: float, room: RoomStatus, *, cancelled: bool) -> OccurrenceState:
    if room is RoomStatus.LIVE:
        return OccurrenceState.CANCELLED if cancelled else OccurrenceState.RUNNING
    if room is RoomStatus.ENDED or now >= occ.closes_at:
        return OccurrenceState.ENDED
    if cancelled:
        return OccurrenceState.CANCELLED
    return OccurrenceState.OPEN if now >= occ.opens_at else OccurrenceState.SCHEDULED


@dataclass(frozen=True)
class Timetable:
    """The first start (seconds since the epoch), the duration, the zone and the recurrence.

    Not slotted: the occurrence starts are computed once per object (``starts``)."""

    starts_at: float
    duration_minutes: int
    timezone: str
    recurrence: Recurrence | None = None
    _tz: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tz", zone(self.timezone))
        if not 1 <= self.duration_minutes <= MAX_DURATION_MIN:
            raise InvalidLesson(f"duration_minutes: 1..{MAX_DURATION_MIN}")
        r = self.recurrence
        if r is None:
            return
        if not r.days or any(not 0 <= d <= 6 for d in r.days) or len(set(r.days)) != len(r.days):
            raise InvalidLesson("recurrence.weekly.days: distinct weekdays (mon..sun)")
        if not 1 <= r.interval <= 52:
            raise InvalidLesson("recurrence.weekly.interval: 1..52 weeks")
        if (r.until is None) == (r.count is None):
            raise InvalidLesson("recurrence.weekly: give either until (a date) or count")
        first = self.local_start.date()
        if r.until is not None and not first <= r.until <= first + timedelta(days=MAX_SPAN_DAYS):
            raise InvalidLesson(f"recurrence.weekly.until: a date from the first start to {MAX_SPAN_DAYS} days "
                                "after it")
        if r.count is not None and not 1 <= r.count <= MAX_OCCURRENCES:
            raise InvalidLesson(f"recurrence.weekly.count: 1..{MAX_OCCURRENCES}")
        if len(r.exceptions) > MAX_OCCURRENCES:
            raise InvalidLesson(f"recurrence.except: at most {MAX_OCCURRENCES} dates")
        if len(self.starts) > MAX_OCCURRENCES:
            raise InvalidLesson(f"recurrence: more than {MAX_OCCURRENCES} occurrences; end it sooner")
        if not self.starts:
            raise InvalidLesson("recurrence: every occurrence is an exception; nothing is left")

    @property
    def tz(self) -> tzinfo:
        return self._tz

    @property
    def duration_s(self) -> float:
        return self.duration_minutes * 60.0

    @property
    def local_start(self) -> datetime:
        return datetime.fromtimestamp(self.starts_at, self._tz)

    def iso(self, ts: float) -> str:
        return iso(ts, self._tz)

    def _local_dates(self) -> Iterator[date]:
        r = self.recurrence
        first = self.local_start.date()
        if r is None:
            yield first
            return
        monday = first - timedelta(days=first.weekday())
        made = 0
        days = sorted(r.days)
        while True:
            for d in days:
                day = monday + timedelta(days=d)
                if day < first:
                    continue
                if r.until is not None and day > r.until:
                    return
                made += 1
                if r.count is not None and made > r.count:
                    return
                if made > MAX_OCCURRENCES + len(r.exceptions) + 1:
                    return  # the validation refuses this timetable; enough to say so
                if day not in r.exceptions:
                    yield day
            monday += timedelta(weeks=r.interval)

    @cached_property
    def starts(self) -> tuple[float, ...]:
        """Every occurrence's start, in order: the first start's wall-clock time on each date."""
        wall = self.local_start.timetz().replace(tzinfo=None)
        out: list[float] = []
        for day in self._local_dates():
            out.append(datetime.combine(day, wall, tzinfo=self._tz).timestamp())
        return tuple(out)

    @property
    def last_ends_at(self) -> float:
        return self.starts[-1] + self.duration_s if self.starts else self.starts_at + self.duration_s

    @property
    def first_starts_at(self) -> float:
        return self.starts[0] if self.starts else self.starts_at

    def occurrence(self, starts_at: float, window: Window) -> Occurrence:
        return Occurrence(starts_at=starts_at, ends_at=starts_at + self.duration_s,
                          opens_at=starts_at - window.open_before_s,
                          closes_at=starts_at + self.duration_s + window.close_after_s)

    def find(self, starts_at: float, window: Window) -> Occurrence | None:
        """The occurrence that starts at ``starts_at``, if there is one."""
        return self.occurrence(starts_at, window) if starts_at in self.starts else None

    def between(self, start: float, end: float, window: Window) -> list[Occurrence]:
        """Occurrences that start in [start, end), in order."""
        return [self.occurrence(s, window) for s in self.starts if start <= s < end]

    def upcoming(self, now: float, window: Window, limit: int) -> list[Occurrence]:
        """Occurrences whose window has not closed at ``now`` (the one open now first), at most ``limit``."""
        out: list[Occurrence] = []
        for s in self.starts:
            occ = self.occurrence(s, window)
            if occ.closes_at > now:
                out.append(occ)
                if len(out) >= limit:
                    break
        return out

    def open_at(self, now: float, window: Window) -> Occurrence | None:
        """The occurrence whose window contains ``now``.  Where two windows overlap (the next one
        opens before the last one closes), the one not yet over by the timetable wins."""
        candidates = [o for o in self.upcoming(now, window, 3) if o.is_open(now)]
        if not candidates:
            return None
        running = [o for o in candidates if now < o.ends_at]
        return running[0] if running else candidates[-1]

    def next_opening(self, now: float, window: Window) -> Occurrence | None:
        """The first occurrence whose window opens after ``now``."""
        for s in self.starts:
            occ = self.occurrence(s, window)
            if occ.opens_at > now:
                return occ
        return None

    def last_started(self, now: float, window: Window) -> Occurrence | None:
        """The latest occurrence that has started by ``now`` (the default for an attendance report)."""
        started = [s for s in self.starts if s <= now]
        return self.occurrence(started[-1], window) if started else None


def recurrence_from_json(data: dict[str, object] | None) -> Recurrence | None:
    """Back from ``Recurrence.to_json`` (the stored form)."""
    if data is None:
        return None
    weekly = data["weekly"]
    assert isinstance(weekly, dict)
    until, count = weekly.get("until"), weekly.get("count")
    exceptions = data.get("except") or []
    assert isinstance(exceptions, list)
    return Recurrence(days=tuple(WEEKDAYS.index(d) for d in weekly["days"]), interval=int(weekly["interval"]),
                      until=date.fromisoformat(until) if isinstance(until, str) else None,
                      count=int(count) if isinstance(count, int) else None,
                      exceptions=frozenset(date.fromisoformat(str(d)) for d in exceptions))
