"""benchmarks/whiteboard.py in small against a real server subprocess: every relayed update reaches every
other client, nothing is refused at the client's pace (web/board.js's), the big board and the memory
figures come out.  The real figures come from the full run (docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from benchmarks.whiteboard import big_board, fanout, memory_per_board, stroke_bytes


@pytest.mark.timeout(120)
async def test_the_board_benchmark_runs_in_small() -> None:
    b = stroke_bytes()
    assert b["updates_per_stroke"] == 12 and 500 < b["yjs_bytes_per_stroke"] < 5000
    f = await fanout(5, 1, 1.5, 80.0)
    assert f["joined"] == 6 and f["refused"] == 0 and f["updates_sent"] >= 10
    assert f["deliveries"] == f["expected"] == f["updates_sent"] * 5
    d = await fanout(0, 3, 1.5, 80.0)
    assert d["refused"] == 0 and d["deliveries"] == d["expected"] == d["updates_sent"] * 2
    big = await big_board(300)
    assert big["strokes"] == 300 and big["state_bytes"] > 300 * 100
    m = await memory_per_board(2, 50)
    assert m["boards"] == 2 and m["rss_after_mb"] > 0
