"""Where each picture goes in a composed frame (issue 13): plain geometry, no media.

Modes (the `compose_layout` setting):
- ``auto``: someone shares their screen -> the screen large on the left, the active speaker beside it
  (right column, then the others below while they fit); nobody shares -> the active speaker large.
- ``grid``: as ``auto`` while a screen is shared; otherwise everyone in an equal grid.
- ``speaker``: the active speaker large always; a shared screen goes beside them (right column).
Coordinates are even (yuv420p halves them for the chroma planes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LAYOUTS = ("auto", "grid", "speaker")


class LayoutError(ValueError):
    """An unknown layout name or an impossible canvas."""


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    def fit(self, src_w: int, src_h: int) -> Rect:
        """The largest even-sized rectangle of aspect src_w:src_h centred in this one."""
        if src_w <= 0 or src_h <= 0:
            return self
        scale = min(self.w / src_w, self.h / src_h)
        w = max(2, min(self.w, int(src_w * scale) // 2 * 2))
        h = max(2, min(self.h, int(src_h * scale) // 2 * 2))
        return Rect(_even(self.x + (self.w - w) // 2), _even(self.y + (self.h - h) // 2), w, h)


@dataclass(frozen=True, slots=True)
class Person:
    participant_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Tile:
    """One picture: a participant's camera (or their avatar) or a screen share (`screen` True)."""

    rect: Rect
    participant_id: str
    name: str
    screen: bool = False
    main: bool = False


def _even(v: int) -> int:
    return v // 2 * 2


def arrange(mode: str, width: int, height: int, people: Sequence[Person], speaker: str | None,
            screen: Person | None) -> list[Tile]:
    """The tiles of one frame. `people` in a stable order (join order); `speaker` one of them or None
    (then the first); `screen` the participant whose screen share is shown, if any."""
    if mode not in LAYOUTS:
        raise LayoutError(f"unknown layout {mode!r} (one of {', '.join(LAYOUTS)})")
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise LayoutError(f"bad canvas {width}x{height} (even, at least 64x64)")
    ordered = _speaker_first(people, speaker)
    if screen is not None:
        main_w = _even(width * 3 // 4)
        column = Rect(main_w, 0, width - main_w, height)
        if mode == "speaker" and ordered:
            big = Tile(Rect(0, 0, main_w, height), ordered[0].participant_id, ordered[0].name, main=True)
            side = [Tile(Rect(0, 0, 0, 0), screen.participant_id, screen.name, screen=True)]
            return [big, *_column(column, side)]
        big = Tile(Rect(0, 0, main_w, height), screen.participant_id, screen.name, screen=True, main=True)
        return [big, *_column(column, [Tile(Rect(0, 0, 0, 0), p.participant_id, p.name) for p in ordered])]
    if not ordered:
        return []
    if mode == "grid":
        return _grid(width, height, ordered)
    return [Tile(Rect(0, 0, width, height), ordered[0].participant_id, ordered[0].name, main=True)]


def _speaker_first(people: Sequence[Person], speaker: str | None) -> list[Person]:
    out = list(people)
    for i, p in enumerate(out):
        if p.participant_id == speaker:
            out.insert(0, out.pop(i))
            break
    return out


def _column(area: Rect, tiles: Sequence[Tile]) -> list[Tile]:
    """Stack 4:3 cells from the top of `area` while they fit."""
    cell_h = _even(area.w * 3 // 4)
    count = max(1, area.h // max(2, cell_h))
    out = []
    for i, t in enumerate(tiles[:count]):
        out.append(Tile(Rect(area.x, area.y + i * cell_h, area.w, cell_h), t.participant_id, t.name,
                        screen=t.screen, main=False))
    return out


def _grid(width: int, height: int, people: Sequence[Person]) -> list[Tile]:
    n = len(people)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = _even(width // cols), _even(height // rows)
    out = []
    for i, p in enumerate(people):
        r, c = divmod(i, cols)
        in_row = min(cols, n - r * cols)
        x0 = (width - in_row * cw) // 2  # centre a short last row
        out.append(Tile(Rect(_even(x0 + c * cw), r * ch + (height - rows * ch) // 2 // 2 * 2, cw, ch),
                        p.participant_id, p.name))
    return out
