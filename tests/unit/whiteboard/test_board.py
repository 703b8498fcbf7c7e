"""One board without sockets: limits with their codes (nothing changes when refused), the rate per
participant, clear, pages, the write-behind's pending updates, meta JSON."""

from __future__ import annotations

import pycrdt
import pytest

from tests.e2e.board_peer import BoardPeer
from whiteboard.board import Board, BoardKey, BoardLimits, BoardMeta, Page
from whiteboard.errors import (
    BoardFull,
    BoardRateLimited,
    InvalidUpdate,
    PageNotFound,
    TooManyPages,
    UpdateTooLarge,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(**limits: int) -> tuple[Board, Clock]:
    clock = Clock()
    return Board(BoardKey("r1"), BoardLimits(**limits), clock=clock), clock


def test_updates_apply_and_converge_with_a_peer() -> None:
    b, _ = make()
    peer = BoardPeer("a")
    eid, u1 = peer.stroke("p1", [1, 2, 3, 4])
    b.apply(u1, "a")
    b.apply(peer.extend(eid, [5, 6]), "a")
    assert b.elements_json("p1")[0]["pts"] == [1, 2, 3, 4, 5, 6]
    other = BoardPeer("b")
    other.doc.apply_update(b.state())
    assert other.points(eid) == [1, 2, 3, 4, 5, 6]
    assert b.elements_json("p2") == []


def test_an_oversized_update_is_refused_and_changes_nothing() -> None:
    b, _ = make(max_update_bytes=300)
    _, big = BoardPeer("a").stroke("p1", [float(i) + 0.5 for i in range(200)])
    before = b.state()
    with pytest.raises(UpdateTooLarge) as e:
        b.apply(big, "a")
    assert e.value.code == "board_update_too_large" and e.value.status == 413
    assert b.state() == before and not b.dirty


def test_garbage_and_empty_updates_are_invalid() -> None:
    b, _ = make()
    for bad in (b"", b"\x01", b"\xff\xff\xff\xff garbage"):
        with pytest.raises(InvalidUpdate) as e:
            b.apply(bad, "a")
        assert e.value.code == "board_invalid_update"
    assert b.elements_json() == []


def test_a_full_board_refuses_more_and_its_size_is_bounded() -> None:
    b, clock = make(max_update_bytes=4000, max_bytes=10_000)
    peer = BoardPeer("a")
    refused = 0
    for _ in range(40):
        clock.t += 1.0
        _, u = peer.stroke("p1", [float(i) + 0.25 for i in range(100)])
        try:
            b.apply(u, "a")
        except BoardFull as e:
            assert e.code == "board_full"
            refused += 1
    assert refused > 0
    assert b.recount() <= 10_000


def test_the_rate_per_participant_refuses_a_flood_then_refills() -> None:
    b, clock = make()
    peer = BoardPeer("a")
    eid, u = peer.stroke("p1", [0, 0])
    b.apply(u, "a")
    codes = []
    for i in range(300):
        try:
            b.apply(peer.extend(eid, [float(i), float(i)]), "a")
            codes.append("ok")
        except BoardRateLimited as e:
            codes.append(e.code)
    assert "board_rate_limited" in codes and codes.index("board_rate_limited") >= 100
    # another participant is not slowed by the first one's flood
    _, u2 = BoardPeer("b").stroke("p1", [1, 1])
    b.apply(u2, "b")
    clock.t += 5.0  # refilled
    b.apply(peer.extend(eid, [9, 9]), "a")
    b.forget("a")
    assert "a" not in b._updates and "a" not in b._bytes


def test_clear_one_page_or_all_and_the_update_clears_peers_too() -> None:
    b, _ = make()
    peer = BoardPeer("a")
    for page in ("p1", "p1", "p2"):
        b.apply(peer.stroke(page, [1, 1])[1], "a")
    peer.doc.apply_update(b.state())
    peer.doc.apply_update(b.clear("p1"))
    assert {e["page"] for e in b.elements_json()} == {"p2"}
    assert len(peer.ids()) == 1
    peer.doc.apply_update(b.clear(None))
    assert b.elements_json() == [] and peer.ids() == set()


def test_pages_limit_follow_and_meta_round_trip() -> None:
    b, _ = make(max_pages=3)
    b.add_pages([Page("p2"), Page("p3", "a1", 1600, 2263)])
    with pytest.raises(TooManyPages) as e:
        b.add_pages([Page("p4")])
    assert e.value.code == "board_too_many_pages"
    assert [p.page_id for p in b.meta.pages] == ["p1", "p2", "p3"]
    b.set_follow("p3")
    with pytest.raises(PageNotFound):
        b.set_follow("nope")
    assert b.meta.follow == "p3"
    back = BoardMeta.from_json(b.meta.to_json())
    assert back.to_json() == b.meta.to_json()
    assert back.pages[2].background == "a1" and back.pages[2].height == 2263
    assert BoardMeta.from_json(None).to_json()["pages"][0]["page_id"] == "p1"


def test_take_pending_gives_each_change_once_and_loading_is_not_pending() -> None:
    b, _ = make()
    assert b.take_pending() is None
    peer = BoardPeer("a")
    eid, u = peer.stroke("p1", [1, 1])
    b.apply(u, "a")
    first = b.take_pending()
    assert first is not None and b.take_pending() is None
    b.apply(peer.extend(eid, [2, 2]), "a")
    second = b.take_pending()
    assert second is not None
    again, _ = make()
    again.load([first, second])
    assert again.take_pending() is None and again.elements_json()[0]["pts"] == [1, 1, 2, 2]


def test_elements_draw_in_creation_order_and_non_maps_are_ignored() -> None:
    b, _ = make()
    doc: pycrdt.Doc[pycrdt.Map[object]] = pycrdt.Doc()
    el = doc.get("elements", type=pycrdt.Map)
    with doc.transaction():
        el["zz"] = pycrdt.Map({"type": "pen", "page": "p1", "z": 1.0, "pts": pycrdt.Array([0.0, 0.0])})
        el["aa"] = pycrdt.Map({"type": "pen", "page": "p1", "z": 2.0, "pts": pycrdt.Array([1.0, 1.0])})
        el["junk"] = "not an element"
    b.apply(doc.get_update(), "a")
    assert [e["id"] for e in b.elements_json("p1")] == ["zz", "aa"]


def test_imported_copies_get_new_ids_and_a_full_board_refuses_them_unchanged() -> None:
    b, _ = make(max_bytes=3000)
    src, _ = make()
    peer = BoardPeer("a")
    src.apply(peer.stroke("p1", [1, 2, 3, 4], color="#2e7d32")[1], "a")
    upd = b.import_elements({"p9": src.elements_json("p1")})
    (copy,) = b.elements_json("p9")
    assert copy["id"] not in peer.ids() and copy["pts"] == [1, 2, 3, 4] and copy["color"] == "#2e7d32"
    other = BoardPeer("b")
    other.doc.apply_update(upd)
    assert other.ids("p9") == {copy["id"]}
    big = [{"type": "pen", "pts": [i + 0.1 for i in range(600)]}]  # float64s: > 4 KB
    before = b.state()
    with pytest.raises(BoardFull):
        b.import_elements({"p9": big})
    assert b.state() == before
