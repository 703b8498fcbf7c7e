"""A whiteboard client in Python for tests and benchmarks/whiteboard.py: a pycrdt document laid out
as web/board.js lays out its Y.Doc, making the real Yjs updates a browser would send."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pycrdt

_ids = itertools.count(1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class BoardPeer:
    def __init__(self, name: str = "py") -> None:
        self.name = name
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.elements = self.doc.get("elements", type=pycrdt.Map)

    def _change(self, fn: Any) -> bytes:
        sv = self.doc.get_state()
        with self.doc.transaction(origin=self.name):
            fn()
        return self.doc.get_update(sv)

    def apply(self, update_b64: str) -> None:
        self.doc.apply_update(base64.b64decode(update_b64))

    def stroke(self, page: str, points: list[float], *, kind: str = "pen", color: str = "#d32f2f",
               width: float = 4.0, eid: str | None = None) -> tuple[str, bytes]:
        eid = eid or f"{self.name}-{next(_ids)}"

        def make() -> None:
            self.elements[eid] = pycrdt.Map({"type": kind, "page": page, "color": color, "width": width,
                                             "z": float(next(_ids)), "by": self.name,
                                             "pts": pycrdt.Array(points)})
        return eid, self._change(make)

    def extend(self, eid: str, points: list[float]) -> bytes:
        def push() -> None:
            self.elements[eid]["pts"].extend(points)
        return self._change(push)

    def delete(self, eid: str) -> bytes:
        def rm() -> None:
            del self.elements[eid]
        return self._change(rm)

    def ids(self, page: str | None = None) -> set[str]:
        return {k for k, v in self.elements.items() if page is None or v.get("page") == page}

    def points(self, eid: str) -> list[float]:
        return list(self.elements[eid]["pts"].to_py())
