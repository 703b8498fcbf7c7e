"""The whiteboard in the recording (recordings/board_frames.py): stills only where the shown board
changes and none while it is not shown; the composer puts them on the stage like a screen share,
and a real screen share wins while both are on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from recordings.board_frames import BoardStage, read_board, write_board_stills
from recordings.composer import compose
from tests.clips import lesson, write_recording

pytestmark = pytest.mark.timeout(240)  # the first run encodes the clips (cached afterwards)
STAGE_W = 960


def page(color: str | None) -> Image.Image:
    img = Image.new("RGB", (400, 300), "white")
    if color is not None:
        ImageDraw.Draw(img).line([(20, 150), (380, 150)], fill=color, width=30)
    return img


class Scripted:
    """A board timeline from a script: (from time on the recording's timeline, picture or None)."""

    def __init__(self, started_at: float, script: list[tuple[float, Image.Image | None]]) -> None:
        self.started_at = started_at
        self.script = script

    async def frame(self, at: float) -> Image.Image | None:
        shown: Image.Image | None = None
        for t, img in self.script:
            if at - self.started_at >= t:
                shown = img
        return shown


def test_stills_are_written_only_where_the_shown_board_changes(tmp_path: Path) -> None:
    blank, blue = page(None), page("#0000ff")
    same_again = page("#0000ff")  # a new picture with the same pixels: no new still
    frames = Scripted(1000.0, [(1.0, blank), (2.0, blue), (3.0, same_again), (4.0, None), (5.0, blue)])
    stills = asyncio.run(write_board_stills(tmp_path, frames, 1000.0, 1006.2))
    assert [(s.start_s, s.end_s) for s in stills] == [(1.0, 2.0), (2.0, 4.0), (5.0, 6.2)]
    assert [s.file for s in stills] == ["board/000001.png", "board/000002.png", "board/000003.png"]
    assert sorted(p.name for p in (tmp_path / "board").iterdir()) == ["000001.png", "000002.png", "000003.png"]


def test_a_bad_board_entry_is_left_out_never_read_outside_the_board_folder(tmp_path: Path) -> None:
    (tmp_path / "board").mkdir()
    page("#0000ff").save(tmp_path / "board" / "000001.png")
    (tmp_path / "secret.png").write_bytes(b"x")
    board = [{"file": "board/000001.png", "start_s": 1.0, "end_s": 2.0},
             {"file": "secret.png", "start_s": 2.0, "end_s": 3.0},
             {"file": "board/../secret.png", "start_s": 3.0, "end_s": 4.0},
             {"file": "board/missing.png", "start_s": 4.0, "end_s": 5.0}, {"start_s": "x"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"board": board}), encoding="utf-8")
    assert [s.file for s in read_board(tmp_path)] == ["board/000001.png"]
    stage = BoardStage.open(tmp_path)
    assert stage.at(0.5) is None and stage.at(1.5) is not None and stage.at(2.5) is None


def blue_on_stage(mp4: Path, times: list[float]) -> list[int]:
    out = []
    with av.open(str(mp4)) as c:
        todo = list(times)
        for frame in c.decode(c.streams.video[0]):
            if todo and frame.time is not None and frame.time >= todo[0]:
                rgb = frame.to_ndarray(format="rgb24")[:, :STAGE_W].astype(np.int16)
                out.append(int(np.count_nonzero((rgb[..., 2] > 170) & (rgb[..., 0] < 90) & (rgb[..., 1] < 90))))
                todo.pop(0)
    assert not todo, todo
    return out


def test_the_composer_shows_the_board_on_the_stage_and_a_screen_share_wins(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "r", lesson(6.0, screen=(3.0, 4.5), width=320, height=240,
                                                       screen_size=(640, 360)), duration=6.0)
    stills = asyncio.run(write_board_stills(directory, Scripted(0.0, [(1.0, page("#0000ff"))]), 0.0, 6.0))
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["board"] = [s.to_json() for s in stills]
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = compose(directory, directory / "lesson.mp4")
    before, board, screen, after = blue_on_stage(directory / "lesson.mp4", [0.5, 2.0, 3.8, 5.5])
    assert before == 0 and screen == 0, (before, screen)  # no board yet; the screen share on the stage
    assert board > 2000 and after > 2000, (board, after)
    assert result.layout_changes >= 3  # board, screen, board again
