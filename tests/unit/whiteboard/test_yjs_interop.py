"""The browser's CRDT and the server's interoperate: updates made by the real yjs package under Node
(web/vendor, the copy web/board.js loads), applied by the server's board as the relay receives them
(each client's in its order, after what they depend on: one socket each, and a client only builds on
what the server relayed to it), converge to what the browsers see, also when some arrive twice; the
server's state read back by Yjs gives the same elements.

Not tested, because it does not hold: pycrdt 0.14 (yrs) loses structs when several updates that
depend on each other arrive out of causal order (a shuffled list gives shorter strokes).  The relay
never does that; web/board.js resends refused updates merged, in order, never skipping one."""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from whiteboard.board import Board, BoardKey, BoardLimits

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("yjs_script.cjs")
NODE_PATH = ROOT / "web" / "vendor" / "node_modules"


def node(*args: str) -> dict[str, Any]:
    if not (NODE_PATH / "yjs").is_dir():
        pytest.fail("web/vendor/node_modules/yjs is missing: run `npm ci --prefix web/vendor`", pytrace=False)
    out = subprocess.run(["node", str(SCRIPT), *args], capture_output=True, check=True, timeout=60,
                         env={"NODE_PATH": str(NODE_PATH), "PATH": "/usr/bin:/bin"})
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def comparable(elements: dict[str, Any]) -> dict[str, Any]:
    """Numbers as floats (Yjs keeps integers, pycrdt reads floats)."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float, list, dict)):
            return v
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return float(v)
    return {k: norm(v) for k, v in elements.items()}


def test_yjs_updates_in_any_order_converge_on_the_server_and_back() -> None:
    made = node()
    assert made["a"] == made["b"]  # the two browsers converged
    expected = comparable(made["a"])
    assert set(expected) == {"a-1", "b-1", "a-2"}
    updates = [base64.b64decode(u["update"]) for u in made["updates"]]
    t = [0.0]
    board = Board(BoardKey("r"), BoardLimits(), clock=lambda: t[0])
    for u, who in zip(updates, made["updates"], strict=True):
        t[0] += 0.1
        board.apply(u, who["by"])
    got = {e.pop("id"): e for e in board.elements_json()}
    assert comparable(got) == expected
    # duplicates (a resend after a lost answer) change nothing
    rng = random.Random(1)
    again = Board(BoardKey("r"), BoardLimits(), clock=lambda: 0.0)
    for u in updates:
        again.doc.apply_update(u)
        if rng.random() < 0.5:
            again.doc.apply_update(rng.choice(updates[: updates.index(u) + 1]))
    assert comparable({e.pop("id"): e for e in again.elements_json()}) == expected
    assert board.elements_json("p2")[0]["t"] == [1, 1, 50, -20]
    back = node(base64.b64encode(board.state()).decode())
    assert comparable(back["elements"]) == expected
