"""The whiteboard in the recording (issue 17): when the recording stops, the board the host showed
to everyone (whiteboard follow mode) is rendered from its stored history at the recording's times
and written into the recording directory as stills, ``board/000001.png`` ..., one per change, with
a ``board`` entry in manifest.json: ``[{file, start_s, end_s}]`` on the recording's timeline.  The
composer (its own process, the directory only) shows them on the large stage as it shows a screen
share (``BoardStage``); a real screen share wins while both are on.

Recordings does not know the whiteboard's internals: it is given ``BoardTimelines``, a callback
(room id, until) -> something with ``async frame(at) -> PIL image | None`` (the whiteboard's
BoardTimeline has that shape), or None when the server has no boards.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import av
    from aiohttp import web
    from PIL import Image

BOARD_DIR = "board"
STEP_S = 0.5  # sampling period: the board's stored history has this resolution anyway (FLUSH_S)
SCALE = 0.75  # a 1000-high page -> 750 px: the 720-high stage of the default 1280x720 video
MAX_STILLS = 5000  # a bound on files per recording (an hour of a change every ~0.7 s)


class BoardFrames(Protocol):
    """The board over a lesson: the shown page as it looked at ``at`` (epoch s), None when not shown.
    Asked at increasing times."""

    async def frame(self, at: float) -> Image.Image | None: ...


BoardTimelines = Callable[[str, float], Awaitable[BoardFrames | None]]


@dataclass(frozen=True, slots=True)
class BoardStill:
    file: str  # relative to the recording directory: board/000001.png
    start_s: float  # on the recording's timeline (0 = started_at)
    end_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a is b or (a.size == b.size and a.tobytes() == b.tobytes())


def _save(image: Image.Image, path: Path) -> None:
    image.save(path, format="PNG", compress_level=1)  # fast: written at stop, read once by the composer


async def write_board_stills(directory: Path, frames: BoardFrames, started_at: float, ended_at: float,
                             *, step: float = STEP_S, cancel: threading.Event | None = None) -> list[BoardStill]:
    """Walk [started_at, ended_at] every ``step`` s; a still where the shown picture changes.
    ``cancel`` set: stop early (the stills so far are returned)."""
    out: list[BoardStill] = []
    current: Image.Image | None = None
    duration = max(0.0, ended_at - started_at)

    def close(until: float) -> None:
        if current is not None and out and out[-1].end_s < 0:
            out[-1] = BoardStill(out[-1].file, out[-1].start_s, round(max(until, out[-1].start_s), 3))

    n = 0
    while cancel is None or not cancel.is_set():
        t = min(n * step, duration)
        image = await frames.frame(started_at + t)
        if image is None:
            close(t)
            current = None
        elif current is None or not _same(image, current):
            close(t)
            if len(out) >= MAX_STILLS:
                break
            name = f"{BOARD_DIR}/{len(out) + 1:06d}.png"
            (directory / BOARD_DIR).mkdir(exist_ok=True)
            await asyncio.to_thread(_save, image.copy(), directory / name)
            out.append(BoardStill(name, round(t, 3), -1.0))
            current = image
        if t >= duration:
            break
        n += 1
    close(duration)
    return [s for s in out if s.end_s > s.start_s]


async def write_board_stills_apart(directory: Path, frames: BoardFrames, started_at: float, ended_at: float,
                                   ) -> list[BoardStill]:
    """``write_board_stills`` on a thread with its own event loop: the board's timeline converts the
    page's elements on the calling loop for each change (milliseconds per hundred strokes), which
    must not hold up a running lesson's loop for the length of an hour's board."""
    cancel = threading.Event()
    walk = write_board_stills(directory, frames, started_at, ended_at, cancel=cancel)
    try:
        return await asyncio.to_thread(asyncio.run, walk)
    except asyncio.CancelledError:
        cancel.set()  # the thread ends at its next step (the server's shutdown waits for it)
        raise


def board_timelines_of(app: web.Application) -> BoardTimelines:
    """The room's own board from the whiteboard service, when the server has one (looked up when
    asked: the features are set up in any order)."""

    async def timelines(room_id: str, until: float) -> BoardFrames | None:
        try:
            from whiteboard.board import BoardKey
            from whiteboard.feature import BOARDS
        except ImportError:
            return None
        service = app.get(BOARDS)
        if service is None:
            return None
        return await service.timeline(BoardKey(room_id), until=until, scale=SCALE)

    return timelines


# --- the composer's side (its own process: the recording directory only) ----------------------
def read_board(directory: Path) -> list[BoardStill]:
    """The manifest's board stills (a bad entry is left out: the board is an extra, not the lesson)."""
    try:
        raw = json.loads((directory / "manifest.json").read_text(encoding="utf-8")).get("board") or []
    except (OSError, ValueError, AttributeError):
        return []
    out = []
    for e in raw if isinstance(raw, list) else []:
        try:
            name, start, end = str(e["file"]), float(e["start_s"]), float(e["end_s"])
        except (KeyError, TypeError, ValueError):
            continue
        parts = name.split("/")
        if len(parts) != 2 or parts[0] != BOARD_DIR or parts[1].startswith(".") or "\\" in name:
            continue  # never outside the recording's board folder
        if end > start and (directory / name).is_file():
            out.append(BoardStill(name, start, end))
    return sorted(out, key=lambda s: s.start_s)


class BoardStage:
    """The board still to show at t (decoded once per still), for the composer's stage."""

    KEY = "~board"  # the painter's cache key (never a track id)

    def __init__(self, directory: Path, stills: list[BoardStill]) -> None:
        self.directory = directory
        self.stills = stills
        self._i = 0
        self._loaded: tuple[int, av.VideoFrame] | None = None

    @classmethod
    def open(cls, directory: Path) -> BoardStage:
        return cls(directory, read_board(directory))

    def at(self, t: float) -> tuple[int, av.VideoFrame] | None:
        """(serial, picture) of the still shown at t, or None.  t increases from call to call."""
        while self._i < len(self.stills) and self.stills[self._i].end_s <= t:
            self._i += 1
        if self._i >= len(self.stills) or self.stills[self._i].start_s > t:
            return None
        if self._loaded is None or self._loaded[0] != self._i + 1:
            import av
            import numpy as np
            from PIL import Image

            try:
                with Image.open(self.directory / self.stills[self._i].file) as img:
                    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
                picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            except OSError:  # a damaged still: that stretch without the board, not a failed video
                self._i += 1
                return None
            self._loaded = (self._i + 1, picture)
        return self._loaded
