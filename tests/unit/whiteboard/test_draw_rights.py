"""Who may draw: the host's modes and pens (whiteboard/draw_rights.py)."""

from __future__ import annotations

from whiteboard.draw_rights import DrawMode, DrawRights


def test_everyone_draws_by_default_and_moderators_always() -> None:
    r = DrawRights()
    assert r.may_draw("s1", moderator=False)
    r.mode = DrawMode.NOBODY
    assert not r.may_draw("s1", moderator=False)
    assert r.may_draw("teacher", moderator=True)


def test_giving_a_pen_switches_to_chosen_and_only_the_chosen_draw() -> None:
    r = DrawRights()
    r.give_pen("s1", True)
    assert r.mode is DrawMode.CHOSEN
    assert r.may_draw("s1", moderator=False)
    assert not r.may_draw("s2", moderator=False)
    r.give_pen("s2", True)
    r.give_pen("s1", False)
    assert r.pens == {"s2"}
    assert not r.may_draw("s1", moderator=False)


def test_pens_of_an_earlier_chosen_round_do_not_survive_another_mode() -> None:
    r = DrawRights(DrawMode.CHOSEN, {"old"})
    r.mode = DrawMode.NOBODY
    r.give_pen("new", True)  # back to CHOSEN: starts from no pens
    assert r.pens == {"new"}


def test_json_round_trip_and_garbage_gives_the_default() -> None:
    r = DrawRights(DrawMode.CHOSEN, {"b", "a"})
    assert r.to_json() == {"mode": "chosen", "pens": ["a", "b"]}
    back = DrawRights.from_json(r.to_json())
    assert back.mode is DrawMode.CHOSEN and back.pens == {"a", "b"}
    for bad in (None, "x", {"mode": "sometimes"}, {"mode": "nobody", "pens": "s1"}):
        d = DrawRights.from_json(bad)
        assert d.mode in (DrawMode.EVERYONE, DrawMode.NOBODY) and d.pens == set()
