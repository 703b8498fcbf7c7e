"""The board as the class saw it over a lesson, for the recording's composer: the stored history
read once, then frames at increasing times, each the page the host made everyone follow at that time
(``BoardMeta.follow_log``) as it looked then; None while no page was shown.  Updates are applied
incrementally and an unchanged frame is not drawn again, so an hour at a few frames a second costs
about one pass over the history plus a render per change.  Elements are converted to Python once per
change to them (a deep observer names the ones an update touched), not all of them at every frame:
with every element converted at each change, an hour of steady drawing cost time growing with the
square of the strokes (docs/recording.md, "The whiteboard in the recording").  Likewise a frame that
only adds elements after the ones the last frame of that page drew (a stroke drawn, the common case)
draws just those over the last canvas; anything else (an edit, a deletion, another page) redraws.

    timeline = await service.timeline(BoardKey(room_id))
    for t in frame_times:            # increasing (a time going back starts over)
        image = await timeline.frame(t)   # PIL RGB image, or None: no board shown
"""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
from PIL import Image

from whiteboard.board import BoardMeta, Page, element_order
from whiteboard.board_render import draw_onto, page_canvas
from whiteboard.board_store import BoardUpdate


class BoardTimeline:
    def __init__(self, meta: BoardMeta, history: list[BoardUpdate], backgrounds: dict[str, Image.Image],
                 *, scale: float = 1.0) -> None:
        self.meta = meta
        self.history = history  # by seq (= by time)
        self.backgrounds = backgrounds
        self.scale = scale
        self._reset()

    def _reset(self) -> None:
        self._doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self._elements = self._doc.get("elements", type=pycrdt.Map)
        self._elements.observe_deep(self._on_change)
        self._converted: dict[str, dict[str, Any] | None] = {}  # element id -> its plain form (None: not an element)
        self._touched: set[str] = set()  # element ids changed since they were last converted
        self._changed: set[str] = set()  # element ids converted again since the last drawing
        self._canvas: Image.Image | None = None  # the last drawing (RGBA) of page _drawn[0], elements _drawn[1]
        self._drawn: tuple[str, list[str]] | None = None
        self._applied = 0
        self._at = float("-inf")
        self._last: tuple[int, str] | None = None
        self._image: Image.Image | None = None

    def _on_change(self, events: list[Any]) -> None:
        for e in events:
            path = e.path
            if path:
                self._touched.add(str(path[0]))  # inside an element
            else:
                self._touched.update(str(k) for k in getattr(e, "keys", {}) or {})  # elements added or deleted

    def _page_elements(self, page_id: str) -> list[dict[str, Any]]:
        """``elements_of(elements, page_id)``, from the converted elements (only the touched ones again)."""
        self._changed |= self._touched
        for eid in self._touched:
            v = self._elements.get(eid)
            if isinstance(v, pycrdt.Map):
                d = v.to_py()
                if isinstance(d, dict):
                    d["id"] = eid
                self._converted[eid] = d if isinstance(d, dict) else None
            else:
                self._converted.pop(eid, None)  # deleted, or not an element (ignored as elements_of does)
        self._touched.clear()
        els = [d for d in self._converted.values() if d is not None and d.get("page") == page_id]
        els.sort(key=lambda d: (element_order(d.get("z")), d["id"]))
        return els

    def page_at(self, at: float) -> Page | None:
        page_id = self.meta.shown_at(at)
        return next((p for p in self.meta.pages if p.page_id == page_id), None)

    async def frame(self, at: float) -> Image.Image | None:
        if at < self._at:
            self._reset()
        self._at = at
        while self._applied < len(self.history) and self.history[self._applied].at <= at:
            self._doc.apply_update(self.history[self._applied].data)
            self._applied += 1
        page = self.page_at(at)
        if page is None:
            return None
        key = (self._applied, page.page_id)
        if key != self._last or self._image is None:
            els = self._page_elements(page.page_id)
            ids = [d["id"] for d in els]
            drawn, canvas = self._drawn, self._canvas
            if (drawn is not None and canvas is not None and drawn[0] == page.page_id
                    and ids[:len(drawn[1])] == drawn[1] and not self._changed.intersection(drawn[1])):
                canvas = await asyncio.to_thread(draw_onto, canvas, els[len(drawn[1]):], scale=self.scale)
            else:
                bg = self.backgrounds.get(page.background) if page.background else None
                canvas = await asyncio.to_thread(page_canvas, page, els, bg, scale=self.scale)
            self._canvas, self._drawn = canvas, (page.page_id, ids)
            self._changed.clear()
            self._image = await asyncio.to_thread(canvas.convert, "RGB")
            self._last = key
        return self._image
