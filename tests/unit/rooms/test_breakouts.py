"""Breakout rules (signaling/rooms/breakouts.py), with the time passed in."""

from __future__ import annotations

import pytest

from signaling.rooms.breakouts import Assignment, Breakouts, BreakoutState, even_split
from signaling.rooms.errors import InvalidInput, InvalidState, ParticipantNotFound

STUDENTS = [f"P{i}" for i in range(10)]


def groups(k: int = 3, **kw: object) -> Breakouts:
    return Breakouts([f"G{i}" for i in range(1, k + 1)], max_groups=50, now=0.0, session_id="BS", **kw)  # type: ignore[arg-type]


def sizes(b: Breakouts) -> list[int]:
    return [len(g.members) for g in b.groups.values()]


def test_between_two_and_max_groups_are_made() -> None:
    with pytest.raises(InvalidInput):
        groups(1)
    with pytest.raises(InvalidInput):
        Breakouts(["a"] * 6, max_groups=5, now=0.0)
    assert len(groups(50).groups) == 50


def test_an_even_split_differs_by_at_most_one_and_keeps_the_class_order() -> None:
    assert even_split(STUDENTS, 3) == [["P0", "P3", "P6", "P9"], ["P1", "P4", "P7"], ["P2", "P5", "P8"]]
    b = groups(3)
    b.split(STUDENTS, 0.0)
    assert sizes(b) == [4, 3, 3]
    assert set(b.where) == set(STUDENTS)


def test_a_random_split_is_even_and_the_same_seed_gives_the_same_groups() -> None:
    a, b, c = groups(4), groups(4), groups(4)
    a.split(STUDENTS, 0.0, seed=7)
    b.split(STUDENTS, 0.0, seed=7)
    c.split(STUDENTS, 0.0, seed=8)
    assert a.where == b.where and a.where != c.where
    assert sorted(sizes(a)) == [2, 2, 3, 3]


def test_self_select_respects_the_cap_and_a_change_of_mind() -> None:
    b = groups(2, cap=2, assignment=Assignment.SELF)
    g1, g2 = list(b.groups)
    b.open(10.0)
    b.choose("P0", g1, 11.0)
    b.choose("P1", g1, 11.0)
    with pytest.raises(InvalidState):
        b.choose("P2", g1, 12.0)  # full
    b.choose("P0", g2, 13.0)  # changes its mind: a seat frees in g1
    b.choose("P2", g1, 14.0)
    assert b.groups[g1].members == ["P1", "P2"] and b.groups[g2].members == ["P0"]


def test_choosing_is_refused_when_the_host_assigns() -> None:
    b = groups(2)
    with pytest.raises(InvalidState):
        b.choose("P0", next(iter(b.groups)), 0.0)


def test_prepared_groups_put_nobody_in_a_group_until_they_open() -> None:
    b = groups(2)
    b.split(STUDENTS[:4], 0.0)
    assert b.state is BreakoutState.PREPARED and b.group_of("P0") is None
    assert b.hears("P0", "P1", audio=True)  # the whole class hears each other still
    b.open(5.0)
    assert b.group_of("P0") == "BS_G1" and not b.hears("P0", "P1", audio=True) and b.hears("P0", "P2", audio=False)


def test_the_timer_runs_out_then_the_countdown_then_everyone_is_back() -> None:
    b = groups(2)
    b.split(STUDENTS[:4], 0.0)
    b.open(100.0, duration_s=600)
    assert b.ends_at == 700.0 and b.remaining_s(400.0) == 300.0
    assert b.due(699.0) is None and b.next_due_at() == 700.0
    assert b.due(700.0) == "close"
    assert b.begin_close(700.0, 60) == 760.0
    assert b.remaining_s(730.0) == 30.0 and b.due(759.0) is None and b.due(760.0) == "finish"
    back = b.finish(760.0)
    assert back == sorted(STUDENTS[:4]) and b.group_of("P0") is None and b.state is BreakoutState.CLOSED
    assert all(s.left_at == 760.0 for s in b.stints)


def test_an_extension_adds_to_the_timer_and_calls_off_a_countdown() -> None:
    b = groups(2)
    b.open(0.0, duration_s=300)
    assert b.extend(120, 100.0) == 420.0
    b.begin_close(400.0, 60)
    assert b.extend(60, 410.0) == 480.0  # the timer had time left: added to it
    assert b.state is BreakoutState.OPEN and b.due(460.0) is None
    assert b.extend(60, 600.0) == 660.0  # over: from now
    with pytest.raises(InvalidInput):
        b.extend(0, 600.0)


def test_a_second_end_only_hurries_the_countdown() -> None:
    b = groups(2)
    b.open(0.0)
    assert b.begin_close(10.0, 60) == 70.0
    assert b.begin_close(20.0, 120) == 70.0
    assert b.begin_close(20.0, 5) == 25.0


def test_a_move_while_open_changes_the_group_and_the_attendance() -> None:
    b = groups(3)
    g1, g2, _ = list(b.groups)
    b.assign(g1, ["P0", "P1"], 0.0)
    b.open(10.0)
    assert b.move("P0", g2, 20.0) == g1
    assert b.group_of("P0") == g2 and b.groups[g1].members == ["P1"]
    assert b.move("P0", None, 30.0) == g2 and b.group_of("P0") is None
    stays = [(s.group_id, s.joined_at, s.left_at) for s in b.stints if s.participant_id == "P0"]
    assert stays == [(g1, 10.0, 20.0), (g2, 20.0, 30.0)]
    with pytest.raises(ParticipantNotFound):
        b.move("P1", "BS_G9", 40.0)
    assert b.group_of("P1") == g1  # nothing changed


def test_help_requests_keep_their_order_and_a_visit_answers_its_group() -> None:
    b = groups(2)
    g1, g2 = list(b.groups)
    b.assign(g1, ["P0"], 0.0)
    b.assign(g2, ["P1", "P2"], 0.0)
    with pytest.raises(InvalidState):
        b.ask_help("P0", 1.0)  # not open yet
    b.open(1.0)
    b.ask_help("P1", 2.0)
    b.ask_help("P0", 3.0)
    b.ask_help("P1", 4.0)  # again: keeps its place
    assert [(h.participant_id, h.asked_at) for h in b.help] == [("P1", 2.0), ("P0", 3.0)]
    b.visit("H", g2, 5.0)
    assert [h.participant_id for h in b.help] == ["P0"]
    with pytest.raises(InvalidState):
        b.ask_help("P9", 6.0)  # in no group


def test_a_visiting_host_is_heard_in_the_group_only_and_listen_only_is_heard_nowhere() -> None:
    b = groups(2)
    g1, g2 = list(b.groups)
    b.assign(g1, ["P0"], 0.0)
    b.assign(g2, ["P1"], 0.0)
    b.open(0.0)
    assert b.hears("H", "X", audio=True)  # the host and a student in the main room
    b.visit("H", g1, 1.0)
    assert b.hears("P0", "H", audio=True) and not b.hears("P1", "H", audio=True) and b.hears("H", "P0", audio=True)
    b.visit("H", g2, 2.0, listen_only=True)
    assert b.hears("H", "P1", audio=True) and not b.hears("P1", "H", audio=True)
    b.speak_to_all("H", True)
    assert b.hears("P0", "H", audio=True) and b.hears("P1", "H", audio=True)
    assert not b.hears("P0", "H", audio=False)  # speaking to all is the voice only
    b.visit("H", None, 3.0)
    assert [(s.group_id, s.visitor) for s in b.stints if s.participant_id == "H"] == [(g1, True), (g2, True)]


def test_a_group_closed_alone_returns_its_members_and_visitors_and_others_go_on() -> None:
    b = groups(2)
    g1, g2 = list(b.groups)
    b.assign(g1, ["P0", "P1"], 0.0)
    b.assign(g2, ["P2"], 0.0)
    b.open(0.0)
    b.visit("H", g1, 1.0)
    assert sorted(b.close_group(g1, 2.0)) == ["H", "P0", "P1"]
    assert b.group_of("P0") is None and b.group_of("H") is None and b.group_of("P2") == g2
    with pytest.raises(InvalidState):
        b.move("P0", g1, 3.0)  # closed
    with pytest.raises(InvalidState):
        b.close_group(g1, 3.0)


def test_broadcasts_need_text_and_open_groups() -> None:
    b = groups(2)
    with pytest.raises(InvalidState):
        b.broadcast("H", "hi", 0.0)
    b.open(0.0)
    with pytest.raises(InvalidInput):
        b.broadcast("H", "   ", 1.0)
    with pytest.raises(InvalidInput):
        b.broadcast("H", "x" * 501, 1.0)
    assert b.broadcast("H", " две минуты ", 2.0).text == "две минуты"
