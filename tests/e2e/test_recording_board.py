"""The whiteboard in the recording (issue 17), through the real server: the host records, makes
everyone follow the board's page and draws a stroke (real Yjs updates made with pycrdt); after the
stop the recording directory has board stills from the stored history, the manifest lists them on
the recording's timeline, and the composed video shows the stroke's colour on its stage while the
board was shown (and not before)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recordings.feature import RECORDINGS
from signaling.rooms import Role
from tests.clips import ClipClock, publish_clip
from tests.e2e.board_peer import BoardPeer, b64
from tests.e2e.rtc_client import RtcClient, wait_until

pytestmark = pytest.mark.timeout(150)
STAGE_W = 960  # the large stage of the 1280x720 video: the left three quarters (recordings/layout.py)


def stroke_pixels(mp4: Path, at: float) -> int:
    """Pixels of the stroke's pure blue in the stage area of the frame shown at ``at`` s."""
    with av.open(str(mp4)) as c:
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            if frame.time is not None and frame.time >= at:
                rgb = frame.to_ndarray(format="rgb24")[:, :STAGE_W].astype(np.int16)
                r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
                return int(np.count_nonzero((b > 170) & (r < 90) & (g < 90)))
    raise AssertionError(f"no frame at {at} s in {mp4}")


async def test_the_shown_board_is_in_the_recording_and_on_the_composed_videos_stage(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await server_factory(recordings_dir=str(tmp_path / "rec"), compose_nice=0)
    room_id = await srv.create_room(name="Геометрия")
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST, name="Анна Петровна")
    await host.ws.event("board_state")
    await publish_clip(host, ClipClock(), camera=False)  # a microphone: the lesson has a track to compose
    r = await host.ws.request("recording_start")
    assert r["ok"], r
    rid = r["recording_id"]
    service = srv.app[RECORDINGS]

    def media() -> bool:
        a = service.active.get(room_id)
        return a is not None and any(t.started for t in a.recorder.tracks.values())

    assert await wait_until(media, 15), "the microphone did not start"
    await asyncio.sleep(1.5)  # a stretch without the board
    assert (await host.ws.request("board_follow", page_id="p1"))["ok"]
    await asyncio.sleep(1.0)  # the empty page shown
    peer = BoardPeer("teacher")
    _, upd = peer.stroke("p1", [100, 500, 900, 500], color="#0000ff", width=40.0)
    assert (await host.ws.request("board_update", update=b64(upd)))["ok"]
    await asyncio.sleep(3.0)  # the stroke shown
    stopped = await host.ws.request("recording_stop")
    assert stopped["ok"], stopped
    await host.ws.event("recording_ready", timeout=90, recording_id=rid)

    directory = tmp_path / "rec" / rid
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    board = manifest["board"]
    assert len(board) >= 2, board  # the empty page, then the page with the stroke
    for still in board:
        assert (directory / still["file"]).is_file() and still["file"].startswith("board/"), still
        assert 0 <= still["start_s"] < still["end_s"] <= manifest["ended_at"] - manifest["started_at"] + 0.01
    assert board[0]["start_s"] >= 1.0, board  # nothing while the board was not shown
    assert sorted(p.name for p in (directory / "board").iterdir()) == [Path(s["file"]).name for s in board]
    last = board[-1]
    mp4 = directory / "lesson.mp4"
    shown = stroke_pixels(mp4, (last["start_s"] + last["end_s"]) / 2)
    before = stroke_pixels(mp4, board[0]["start_s"] / 2)
    assert shown > 2000 and before == 0, (shown, before)
    print(f"board stills {board}; stroke pixels on the stage: {shown} shown, {before} before")
    await host.close()
