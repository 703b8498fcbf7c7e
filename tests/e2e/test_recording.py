"""Recording through the real server: aiortc clients publish, the server writes one file per track
(probed with PyAV), rights, the indicator for late joiners, the chat as WebVTT, REST and downloads."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from recordings.feature import RECORDINGS
from recordings.track_writer import probe
from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until

pytestmark = pytest.mark.timeout(90)
STOP_SLACK_S = 0.5  # `lesson` also counts the stop request's round trip (files finished before the reply)


async def recording_server(server_factory: Callable[..., Any], tmp_path: Path, **kw: Any) -> Server:
    srv: Server = await server_factory(recordings_dir=str(tmp_path / "rec"), **kw)
    return srv


async def wait_recording_media(srv: Server, room_id: str, tracks: int, timeout: float = 10.0) -> None:
    service = srv.app[RECORDINGS]

    def started() -> bool:
        a = service.active.get(room_id)
        return a is not None and sum(1 for t in a.recorder.tracks.values() if t.started) >= tracks

    assert await wait_until(started, timeout), "the tracks' first frames did not reach the files"


async def test_every_published_track_goes_to_its_own_file_with_its_codec_and_duration(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room(name="Физика")
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    student = await RtcClient.join(srv, room_id, "student")
    await host.publish(audio=True, video=True)
    await student.publish(audio=True, video=False)
    r = await host.ws.request("recording_start")
    assert r["ok"], r
    rid = r["recording_id"]
    await student.ws.event("recording_started", recording_id=rid)
    await wait_recording_media(srv, room_id, 3)
    t0 = time.time()
    await asyncio.sleep(3.0)
    r = await host.ws.request("recording_stop")
    lesson = time.time() - t0
    assert r["ok"] and r["state"] == "processing", r
    await student.ws.event("recording_stopped", recording_id=rid)
    directory = tmp_path / "rec" / rid
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["ended_at"] is not None and manifest["room_name"] == "Физика"
    got = {(t["participant_id"], t["source"]): t for t in manifest["tracks"]}
    assert set(got) == {(host.participant_id, "microphone"), (host.participant_id, "camera"),
                        (student.participant_id, "microphone")}
    for t in manifest["tracks"]:
        codec, duration = probe(directory / t["file"])
        assert codec == {"opus": "opus", "vp8": "vp8"}[t["codec"]]
        assert t["file"].endswith(".webm")
        # every track started before the 3 s began and stopped after: its file covers them
        assert abs(duration - (t["end"] - t["start"])) < 0.5, (t, duration)
        assert duration >= lesson - 0.5 - STOP_SLACK_S, (manifest, duration, lesson)
        # and it reaches the recording's end (what it lacks at most: packets in flight at the stop)
        assert abs((t["start"] + duration) - (manifest["ended_at"] - manifest["started_at"])) < 0.5, (t, duration)
    status, body = await srv.rest("GET", f"/v1/recordings/{rid}")
    assert status == 200 and body["state"] in ("processing", "ready") and len(body["tracks"]) == 3
    for c in (host, student):
        await c.close()


async def test_a_students_recording_start_is_refused_and_changes_nothing(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    student = await srv.join(room_id, "student")
    r = await student.request("recording_start")
    assert not r["ok"] and r["error"]["code"] == "forbidden", r
    r = await student.request("recording_stop")
    assert not r["ok"] and r["error"]["code"] == "forbidden", r
    assert srv.app[RECORDINGS].active == {}
    status, body = await srv.rest("GET", f"/v1/rooms/{room_id}/recordings")
    assert status == 200 and body["total"] == 0
    assert not any(e["event"].startswith("recording_") for e in host.events + student.events)


async def test_a_room_that_does_not_allow_recording_refuses_it_with_a_stable_code(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room(recording={"allowed": False})
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    r = await host.request("recording_start")
    assert not r["ok"] and r["error"]["code"] == "recording_not_allowed", r
    r = await host.request("recording_stop")
    assert not r["ok"] and r["error"]["code"] == "not_recording", r
    assert srv.app[RECORDINGS].active == {}


async def test_a_late_joiner_is_told_the_lesson_is_being_recorded(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    r = await host.request("recording_start")
    assert r["ok"], r
    late = await srv.join(room_id, "late")
    e = await late.event("recording_started")
    assert e["recording_id"] == r["recording_id"]
    r2 = await host.request("recording_start")
    assert not r2["ok"] and r2["error"]["code"] == "already_recording"
    await host.request("recording_stop")
    await late.event("recording_stopped")
    later = await srv.join(room_id, "later")
    await asyncio.sleep(0.2)
    assert not any(e["event"] == "recording_started" for e in later.events)


async def test_auto_start_records_from_the_first_join(server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room(recording={"auto_start": True})
    first = await srv.join(room_id, "student")
    e = await first.event("recording_started")
    assert e["by"] is None
    status, body = await srv.rest("GET", f"/v1/rooms/{room_id}/recordings")
    assert status == 200 and body["total"] == 1 and body["recordings"][0]["state"] == "recording"


async def test_the_chat_goes_into_the_record_and_a_deleted_message_leaves_it(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST, name="Анна Петровна")
    student = await srv.join(room_id, "student", name="Вася")
    await host.request("recording_start")
    a = await student.request("chat_send", text="у меня вопрос <b>")
    b = await student.request("chat_send", text="удалите меня")
    deleted_before = await student.request("chat_send", text="секрет")
    await host.request("chat_delete", message_id=deleted_before["message_id"])
    stop = await host.request("recording_stop")
    rid = stop["recording_id"]
    vtt = (tmp_path / "rec" / rid / "chat.vtt").read_text()
    assert vtt.startswith("WEBVTT")
    assert "<v Вася>у меня вопрос &lt;b&gt;" in vtt and "удалите меня" in vtt and "секрет" not in vtt
    assert a["message_id"] in vtt
    await host.request("chat_delete", message_id=b["message_id"])  # after the recording stopped

    def gone() -> bool:
        return "удалите меня" not in (tmp_path / "rec" / rid / "chat.vtt").read_text()

    assert await wait_until(gone, 5)


async def test_rest_lists_filters_downloads_with_range_and_deletes(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room(external_id="journal-7")
    other = await srv.create_room()
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    await host.publish(audio=True, video=False)
    status, body = await srv.rest("POST", f"/v1/rooms/{other}/recordings/start")
    assert status == 409 and body["error"]["code"] == "room_not_live"
    status, rec = await srv.rest("POST", f"/v1/rooms/{room_id}/recordings/start")
    assert status == 201, rec
    await host.ws.event("recording_started")
    await wait_recording_media(srv, room_id, 1)
    await asyncio.sleep(1.0)
    status, rec = await srv.rest("POST", f"/v1/rooms/{room_id}/recordings/stop")
    assert status == 200 and rec["state"] == "processing", rec
    rid = rec["recording_id"]
    status, page = await srv.rest("GET", "/v1/recordings?external_id=journal-7&limit=1")
    assert status == 200 and page["total"] == 1 and page["recordings"][0]["recording_id"] == rid
    status, page = await srv.rest("GET", "/v1/recordings?external_id=nope")
    assert page["total"] == 0
    status, page = await srv.rest("GET", "/v1/recordings?since=2999-01-01T00:00:00Z")
    assert page["total"] == 0
    status, body = await srv.rest("GET", "/v1/recordings?since=yesterday")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    track = rec["tracks"][0]["file"]
    async with srv.http.get(f"{srv.base}/v1/recordings/{rid}/files/{track}") as r:
        assert r.status == 401
    lst = await host.ws.request("recording_list")
    url = next(t["url"] for t in lst["recordings"][0]["tracks"] if t["file"] == track)
    async with srv.http.get(srv.base + url, headers={"Range": "bytes=0-99"}) as r:
        assert r.status == 206 and len(await r.read()) == 100
        assert r.headers["Content-Type"] == "video/webm"
    async with srv.http.get(srv.base + url.replace("token=", "token=1")) as r:
        assert r.status == 401
    async with srv.http.get(f"{srv.base}/v1/recordings/{rid}/files/..%2Fmanifest.json", headers=srv.admin) as r:
        assert r.status == 404
    status, _ = await srv.rest("DELETE", f"/v1/recordings/{rid}")
    assert status == 204
    assert not (tmp_path / "rec" / rid).exists()
    status, body = await srv.rest("GET", f"/v1/recordings/{rid}")
    assert status == 404 and body["error"]["code"] == "recording_not_found"
    await host.close()


async def test_a_full_disk_stops_the_recording_cleanly_and_the_lesson_goes_on(
        server_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = await recording_server(server_factory, tmp_path, recording_min_free_mb=50)
    room_id = await srv.create_room()
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    student = await RtcClient.join(srv, room_id, "student")
    await host.publish(audio=True, video=True)
    r = await host.ws.request("recording_start")
    assert r["ok"], r
    await wait_recording_media(srv, room_id, 2)
    assert await wait_until(lambda: student.frames("video") > 10, 10), "the student gets no video"
    real = shutil.disk_usage

    def nearly_full(path: Any) -> Any:  # the disk, not the recorder, is faked: 10 MB left
        return real(path)._replace(free=10 * 2**20)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    e = await host.ws.event("recording_failed", timeout=10)
    assert e["recording_id"] == r["recording_id"] and e["reason"] == "disk_full", e
    await student.ws.event("recording_failed", reason="disk_full")
    assert room_id not in srv.app[RECORDINGS].active
    before = student.frames("video")
    await asyncio.sleep(1.5)
    assert student.frames("video") > before + 10, "the lesson's media stopped with the recording"
    status, body = await srv.rest("GET", f"/v1/recordings/{r['recording_id']}")
    assert status == 200 and body["state"] == "failed" and body["error"] == "disk_full", body
    assert len(body["tracks"]) == 2
    for t in body["tracks"]:  # what was written before the stop plays
        codec, duration = probe(tmp_path / "rec" / r["recording_id"] / t["file"])
        assert codec in ("opus", "vp8") and duration > 0.3, (t, duration)
    again = await host.ws.request("recording_start")
    assert not again["ok"] and again["error"]["code"] == "disk_full", again
    for c in (host, student):
        await c.close()


async def test_a_participant_who_reconnects_gets_a_new_segment_on_the_same_timeline(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    first = await RtcClient.join(srv, room_id, "anna")
    await first.publish(audio=True, video=True)
    r = await host.request("recording_start")
    assert r["ok"], r
    await wait_recording_media(srv, room_id, 2)
    await asyncio.sleep(1.0)
    pid = first.participant_id
    await first.close()  # the connection drops
    again = await RtcClient.join(srv, room_id, "anna")
    assert again.participant_id == pid  # the same seat
    await again.publish(audio=True, video=True)
    await wait_recording_media(srv, room_id, 2)
    await asyncio.sleep(1.0)
    stop = await host.request("recording_stop")
    assert stop["ok"], stop
    directory = tmp_path / "rec" / stop["recording_id"]
    manifest = json.loads((directory / "manifest.json").read_text())
    segments = sorted((t["source"], t["segment"], t["start"], t["end"]) for t in manifest["tracks"])
    assert [(s[0], s[1]) for s in segments] == [("camera", 0), ("camera", 1), ("microphone", 0), ("microphone", 1)]
    for source in ("camera", "microphone"):
        old, new = (s for s in segments if s[0] == source)
        assert old[3] is not None and new[2] >= old[3] - 0.3, segments  # one after the other, one timeline
    for t in manifest["tracks"]:
        codec, duration = probe(directory / t["file"])
        assert codec in ("opus", "vp8") and duration > 0.5, (t, duration)
    await again.close()


async def test_expired_recordings_are_deleted_with_their_files(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    now = [time.time()]
    srv = await recording_server(server_factory, tmp_path, clock=lambda: now[0], recording_retention_days=7)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    old = (await host.request("recording_start"))["recording_id"]
    await host.request("recording_stop")
    service = srv.app[RECORDINGS]

    async def settled(rid: str) -> None:  # composed (or not: no media) before the retention looks
        for _ in range(200):
            rec = await service.store.get(rid)
            if rec is not None and rec.state.value != "processing":
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the recording stayed processing")

    await settled(old)
    assert await service.expire() == []  # not yet
    now[0] += 6 * 86400
    kept = (await host.request("recording_start"))["recording_id"]
    await host.request("recording_stop")
    await settled(kept)
    now[0] += 1.5 * 86400  # the first ended 7.5 days ago, the second 1.5
    assert await service.expire() == [old]
    assert await service.store.get(old) is None and not (tmp_path / "rec" / old).exists()
    assert await service.store.get(kept) is not None and (tmp_path / "rec" / kept).exists()


async def test_the_lessons_captions_go_into_the_record_as_subtitles(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    from transcription.feature import TRANSCRIPTION
    from transcription.transcript import CaptionLine

    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    r = await host.request("recording_start")
    store = srv.app[TRANSCRIPTION].store  # what the live captions keep (transcription/)
    t0 = r["started_at"]
    await store.add(CaptionLine(room_id, "p1", "Анна Петровна", t0 + 0.1, t0 + 2.0, "Откройте учебник"))
    await store.add(CaptionLine(room_id, "p1", "Анна Петровна", t0 - 60, t0 - 58, "до записи"))
    await asyncio.sleep(0.3)
    stop = await host.request("recording_stop")
    rid = stop["recording_id"]
    vtt = (tmp_path / "rec" / rid / "captions.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "Откройте учебник" in vtt and "до записи" not in vtt, vtt
    assert "00:00:00.100 -->" in vtt, vtt  # in step with the recording's timeline
    manifest = json.loads((tmp_path / "rec" / rid / "manifest.json").read_text())
    assert manifest["captions"] == "captions.vtt"
    listed = await host.request("recording_list")
    rec = next(x for x in listed["recordings"] if x["recording_id"] == rid)
    assert rec["captions"] and rec["captions_url"]
    async with srv.http.get(srv.base + rec["captions_url"]) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/vtt")


def packet_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return sorted(float(p.pts * p.time_base) for p in c.demux(c.streams[0]) if p.pts is not None and p.size)


async def test_a_muted_microphone_leaves_a_gap_in_the_same_file_on_the_same_timeline(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path)
    room_id = await srv.create_room()
    host = await srv.join(room_id, "teacher", role=Role.HOST)
    student = await RtcClient.join(srv, room_id, "anna")
    await student.publish(audio=True, video=False)
    r = await host.request("recording_start")
    assert r["ok"], r
    await wait_recording_media(srv, room_id, 1)
    await asyncio.sleep(1.0)
    status, body = await srv.rest("POST", f"/v1/rooms/{room_id}/participants/anna/mute",
                                  {"source": "microphone", "muted": True})
    assert status == 200 and body["muted"]["microphone"], body
    await asyncio.sleep(2.0)
    status, body = await srv.rest("POST", f"/v1/rooms/{room_id}/participants/anna/mute",
                                  {"source": "microphone", "muted": False})
    assert status == 200 and not body["muted"]["microphone"], body
    await asyncio.sleep(1.5)
    stop = await host.request("recording_stop")
    directory = tmp_path / "rec" / stop["recording_id"]
    manifest = json.loads((directory / "manifest.json").read_text())
    (track,) = manifest["tracks"]  # one file: the mute is a pause, not a new segment
    times = packet_times(directory / track["file"])
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a > 0.5]
    assert len(gaps) == 1 and 1.5 < gaps[0] < 2.8, gaps  # the silence keeps its length on the timeline
    assert times[-1] > 3.5, times[-1]  # and what came after the unmute is there
    await student.close()


async def test_ending_the_room_stops_its_recording_and_composes_it(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path, compose_nice=0)
    room_id = await srv.create_room()
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    await host.publish(audio=True, video=True)
    r = await host.ws.request("recording_start")
    await wait_recording_media(srv, room_id, 2)
    await asyncio.sleep(1.5)
    ended = await host.ws.request("end_room")
    assert ended["ok"], ended
    service = srv.app[RECORDINGS]
    assert room_id not in service.active
    for _ in range(600):
        rec = await service.store.get(r["recording_id"])
        if rec is not None and rec.state.value not in ("recording", "processing"):
            break
        await asyncio.sleep(0.1)
    assert rec is not None and rec.state.value == "ready", rec
    assert rec.ended_at is not None and len(rec.tracks) == 2 and rec.composed == "lesson.mp4"
    await host.close()


async def test_a_host_composes_a_finished_recording_again_over_the_socket(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv = await recording_server(server_factory, tmp_path, compose_nice=0)
    room_id = await srv.create_room()
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    student = await srv.join(room_id, "student")
    await host.publish(audio=True, video=False)
    rid = (await host.ws.request("recording_start"))["recording_id"]
    await wait_recording_media(srv, room_id, 1)
    await asyncio.sleep(1.0)
    await host.ws.request("recording_stop")
    await host.ws.event("recording_ready", timeout=60, recording_id=rid)
    r = await student.request("recording_compose", recording_id=rid)
    assert not r["ok"] and r["error"]["code"] == "forbidden", r
    r = await host.ws.request("recording_compose", recording_id="nope")
    assert not r["ok"] and r["error"]["code"] == "recording_not_found", r
    before = sum(1 for e in host.ws.events if e["event"] == "recording_ready")
    r = await host.ws.request("recording_compose", recording_id=rid)
    assert r["ok"] and r["state"] == "processing", r
    await host.ws.wait_for(lambda: sum(1 for e in host.ws.events if e["event"] == "recording_ready") > before, 60)
    status, body = await srv.rest("GET", f"/v1/recordings/{rid}")
    assert status == 200 and body["state"] == "ready" and body["composed"] == "lesson.mp4", body
    await host.close()
