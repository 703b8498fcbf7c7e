"""The timetable: weekly recurrence with exceptions, local time across DST, join windows, states."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from signaling.lessons.errors import InvalidLesson
from signaling.lessons.timetable import (
    OccurrenceState,
    Recurrence,
    RoomStatus,
    Timetable,
    Window,
    occurrence_state,
)

BERLIN = ZoneInfo("Europe/Berlin")
W = Window(open_before_s=15 * 60, close_after_s=5 * 60)


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def local(tt: Timetable) -> list[str]:
    return [tt.iso(s) for s in tt.starts]


def test_a_single_lesson_has_one_occurrence() -> None:
    tt = Timetable(starts_at=at("2026-12-08T09:00:00+03:00"), duration_minutes=45, timezone="Europe/Moscow")
    assert local(tt) == ["2026-12-08T09:00:00+03:00"]
    assert tt.last_ends_at == at("2026-12-08T09:45:00+03:00")


def test_weekly_until_a_date_skips_the_exception_dates() -> None:
    rec = Recurrence(days=(1,), until=date(2027, 1, 12), exceptions=frozenset({date(2026, 12, 29)}))
    tt = Timetable(starts_at=at("2026-12-08T09:00:00+03:00"), duration_minutes=45, timezone="Europe/Moscow",
                   recurrence=rec)
    assert local(tt) == ["2026-12-08T09:00:00+03:00", "2026-12-15T09:00:00+03:00", "2026-12-22T09:00:00+03:00",
                         "2027-01-05T09:00:00+03:00", "2027-01-12T09:00:00+03:00"]


def test_several_days_every_other_week_by_count_and_exceptions_count_like_exdates() -> None:
    rec = Recurrence(days=(0, 3), interval=2, count=5, exceptions=frozenset({date(2026, 12, 10)}))
    tt = Timetable(starts_at=at("2026-12-08T10:00:00+03:00"), duration_minutes=40, timezone="Europe/Moscow",
                   recurrence=rec)
    # Tue Dec 8 starts it: Thu 10 (an exception, still counted), Mon 21, Thu 24, Mon Jan 4, Thu Jan 7
    assert local(tt) == ["2026-12-21T10:00:00+03:00", "2026-12-24T10:00:00+03:00", "2027-01-04T10:00:00+03:00",
                         "2027-01-07T10:00:00+03:00"]


def test_a_weekly_lesson_keeps_its_local_time_across_daylight_saving_time() -> None:
    rec = Recurrence(days=(0,), count=3)
    tt = Timetable(starts_at=at("2027-03-22T09:00:00+01:00"), duration_minutes=45, timezone="Europe/Berlin",
                   recurrence=rec)
    assert local(tt) == ["2027-03-22T09:00:00+01:00", "2027-03-29T09:00:00+02:00", "2027-04-05T09:00:00+02:00"]
    assert [datetime.fromtimestamp(s, BERLIN).hour for s in tt.starts] == [9, 9, 9]
    assert tt.starts[1] - tt.starts[0] == 7 * 86_400 - 3600  # one hour less in UTC


def test_the_window_opens_before_the_start_and_closes_after_the_end() -> None:
    start = at("2026-12-08T09:00:00+03:00")
    tt = Timetable(starts_at=start, duration_minutes=45, timezone="Europe/Moscow")
    assert tt.open_at(start - 15 * 60 - 1, W) is None
    occ = tt.open_at(start - 15 * 60, W)
    assert occ is not None and occ.starts_at == start and occ.opens_at == start - 900
    assert tt.open_at(start + 45 * 60 + 5 * 60 - 1, W) == occ
    assert tt.open_at(start + 50 * 60, W) is None
    assert tt.next_opening(start - 3600, W) == occ
    assert tt.next_opening(start, W) is None


def test_overlapping_windows_prefer_the_occurrence_not_yet_over() -> None:
    wide = Window(open_before_s=24 * 3600, close_after_s=10 * 60)  # the next day's opens at this one's start
    tt = Timetable(starts_at=at("2026-12-08T09:00:00+03:00"), duration_minutes=45, timezone="Europe/Moscow",
                   recurrence=Recurrence(days=(0, 1, 2, 3, 4, 5, 6), count=2))
    first, second = (tt.occurrence(s, wide) for s in tt.starts)
    at_0930, at_0950 = first.starts_at + 30 * 60, first.starts_at + 50 * 60
    assert first.is_open(at_0930) and second.is_open(at_0930) and first.is_open(at_0950)
    assert tt.open_at(at_0930, wide) == first
    assert tt.open_at(at_0950, wide) == second  # the first is over by the timetable (09:45)


def test_occurrences_between_and_upcoming() -> None:
    rec = Recurrence(days=(1,), count=4)
    tt = Timetable(starts_at=at("2026-12-08T09:00:00+03:00"), duration_minutes=45, timezone="Europe/Moscow",
                   recurrence=rec)
    s = tt.starts
    assert [o.starts_at for o in tt.between(s[1], s[3], W)] == [s[1], s[2]]
    assert [o.starts_at for o in tt.upcoming(s[1] + 60, W, 2)] == [s[1], s[2]]
    assert tt.last_started(s[2] + 1, W) == tt.occurrence(s[2], W)
    assert tt.last_started(s[0] - 1, W) is None
    assert tt.find(s[3], W) is not None and tt.find(s[3] + 1, W) is None


@pytest.mark.parametrize(("offset", "room", "cancelled", "state"), [
    (-3600, RoomStatus.NONE, False, OccurrenceState.SCHEDULED),
    (-60, RoomStatus.NONE, False, OccurrenceState.OPEN),
    (60, RoomStatus.LIVE, False, OccurrenceState.RUNNING),
    (60, RoomStatus.ENDED, False, OccurrenceState.ENDED),
    (3600, RoomStatus.NONE, False, OccurrenceState.ENDED),
    (3600, RoomStatus.NONE, True, OccurrenceState.ENDED),
    (-3600, RoomStatus.NONE, True, OccurrenceState.CANCELLED),
])
def test_occurrence_states(offset: float, room: RoomStatus, cancelled: bool, state: OccurrenceState) -> None:
    start = at("2026-12-08T09:00:00+03:00")
    occ = Timetable(starts_at=start, duration_minutes=45, timezone="Europe/Moscow").occurrence(start, W)
    assert occurrence_state(occ, start + offset, room, cancelled=cancelled) is state


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"duration_minutes": 0}, "duration_minutes"),
    ({"timezone": "Mars/Olympus"}, "IANA"),
    ({"timezone": "+25:00"}, "offset"),
    ({"recurrence": Recurrence(days=(1,))}, "until"),
    ({"recurrence": Recurrence(days=(1,), until=date(2026, 12, 15), count=2)}, "until"),
    ({"recurrence": Recurrence(days=(1,), until=date(2026, 12, 1))}, "until"),
    ({"recurrence": Recurrence(days=(1,), count=1, exceptions=frozenset({date(2026, 12, 8)}))}, "nothing"),
    ({"recurrence": Recurrence(days=(0, 1, 2, 3, 4, 5, 6), until=date(2036, 1, 1))}, "more than"),
    ({"recurrence": Recurrence(days=(1,), count=2, interval=53)}, "interval"),
])
def test_a_bad_timetable_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"starts_at": at("2026-12-08T09:00:00+03:00"), "duration_minutes": 45,
                               "timezone": "Europe/Moscow"}
    args.update(kwargs)
    with pytest.raises(InvalidLesson, match=message) as e:
        Timetable(**args)  # type: ignore[arg-type]
    assert e.value.code == "invalid_lesson"
