"""The composed video through the real server: aiortc clients publish the test clip (a beep and a
white flash at the same instants), the host records and stops; the recording goes processing ->
ready in a niced composer process; the MP4 is H.264 1280x720 + AAC, as long as the lesson, and its
sound and picture are in sync within 80 ms (beep vs flash, measured in the output)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from recordings.feature import RECORDINGS
from signaling.rooms import Role
from tests.clips import ClipClock, av_offsets, publish_clip
from tests.e2e.rtc_client import RtcClient, wait_until

pytestmark = pytest.mark.timeout(150)
SYNC_S = 0.08  # the issue: audio and video in sync within 80 ms


async def test_a_recorded_lesson_is_composed_into_one_synced_mp4(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await server_factory(recordings_dir=str(tmp_path / "rec"))
    room_id = await srv.create_room(name="Физика")
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST, name="Анна Петровна")
    student = await RtcClient.join(srv, room_id, "student", name="Ваня")
    clock = ClipClock()
    await publish_clip(host, clock)
    await publish_clip(student, clock, camera=False)
    r = await host.ws.request("recording_start")
    assert r["ok"], r
    rid = r["recording_id"]
    service = srv.app[RECORDINGS]

    def media() -> bool:
        a = service.active.get(room_id)
        return a is not None and sum(1 for t in a.recorder.tracks.values() if t.started) >= 3

    assert await wait_until(media, 15), "the tracks did not start"
    await asyncio.sleep(6.0)
    stopped = await host.ws.request("recording_stop")
    assert stopped["ok"] and stopped["state"] == "processing", stopped
    t0 = time.monotonic()
    ready = await host.ws.event("recording_ready", timeout=90, recording_id=rid)
    composing = time.monotonic() - t0
    assert not any(e["event"] == "recording_ready" for e in student.ws.events)  # the hosts' news
    assert any(e["event"] == "recording_progress" for e in host.ws.events)
    status, body = await srv.rest("GET", f"/v1/recordings/{rid}")
    assert status == 200 and body["state"] == "ready" and body["composed"] == "lesson.mp4", body
    assert body["progress"] == 1.0
    mp4 = tmp_path / "rec" / rid / "lesson.mp4"
    with av.open(str(mp4)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.width, video.codec_context.height) == ("h264", 1280, 720)
        assert audio.codec_context.name == "aac"
        duration = float(c.duration or 0) / 1e6
    assert abs(duration - body["duration_s"]) < 0.5, (duration, body["duration_s"])
    offsets = av_offsets(mp4)
    assert len(offsets) >= 2, offsets
    assert max(abs(o) for o in offsets) < SYNC_S, offsets
    print(f"composed {duration:.1f} s in {composing:.1f} s; A/V offsets {[round(o, 3) for o in offsets]}")
    async with srv.http.get(srv.base + ready["video_url"], headers={"Range": "bytes=0-1023"}) as resp:
        assert resp.status == 206 and resp.headers["Content-Type"] == "video/mp4"
        assert len(await resp.read()) == 1024
    for c2 in (host, student):
        await c2.close()
