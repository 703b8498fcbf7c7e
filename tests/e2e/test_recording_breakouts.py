"""Recording during breakout groups, through the real server with aiortc clients: the room's
recording keeps the main room (a student's track pauses while the student is in a group: a gap on
the same timeline, as a mute leaves); a host's visit takes the host's track with them; with
``record_groups`` each open group has its own recording (its own directory, manifest and record,
``group_id`` and ``group_name`` listed with it), stopped when the group closes."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from recordings.feature import RECORDINGS
from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until

pytestmark = pytest.mark.timeout(90)
GROUP_S = 2.0  # how long the students stay in their groups


def packet_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return sorted(float(p.pts * p.time_base) for p in c.demux(c.streams[0]) if p.pts is not None and p.size)


def gaps(path: Path) -> list[float]:
    return [b - a for a, b in itertools.pairwise(packet_times(path)) if b - a > 0.5]


async def lesson(server_factory: Callable[..., Any], tmp_path: Path,
                 ) -> tuple[Server, str, RtcClient, RtcClient, RtcClient]:
    """A host and two students, each publishing audio, the lesson being recorded (every track in its file)."""
    srv: Server = await server_factory(recordings_dir=str(tmp_path / "rec"))
    room_id = await srv.create_room()
    host = await RtcClient.join(srv, room_id, "teacher", role=Role.HOST)
    anna = await RtcClient.join(srv, room_id, "anna")
    boris = await RtcClient.join(srv, room_id, "boris")
    for c in (host, anna, boris):
        await c.publish(audio=True, video=False)
    r = await host.ws.request("recording_start")
    assert r["ok"], r
    service = srv.app[RECORDINGS]

    def started() -> bool:
        a = service.active.get(room_id)
        return a is not None and sum(1 for t in a.recorder.tracks.values() if t.started) >= 3

    assert await wait_until(started, 10.0), "the tracks' first frames did not reach the files"
    return srv, room_id, host, anna, boris


def files_of(directory: Path) -> dict[str, Path]:
    """participant id -> its microphone's file (one segment each here)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    return {t["participant_id"]: directory / t["file"] for t in manifest["tracks"]}


async def test_the_rooms_recording_keeps_the_main_room_while_the_students_are_in_groups(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    _, _, host, anna, boris = await lesson(server_factory, tmp_path)
    await asyncio.sleep(1.0)
    r = await host.ws.request("breakouts_start", rooms=[{"name": "A", "participant_ids": [anna.participant_id]},
                                                        {"name": "B", "participant_ids": [boris.participant_id]}])
    assert r["ok"], r
    await asyncio.sleep(GROUP_S)
    r = await host.ws.request("breakouts_end", countdown_s=0)
    assert r["ok"], r
    await asyncio.sleep(1.5)
    stop = await host.ws.request("recording_stop")
    assert stop["ok"], stop
    directory = tmp_path / "rec" / stop["recording_id"]
    files = files_of(directory)
    assert set(files) == {host.participant_id, anna.participant_id, boris.participant_id}
    for student in (anna, boris):
        g = gaps(files[student.participant_id])
        # one pause, as long as the group work, on the same file's timeline; and back after it
        assert len(g) == 1 and GROUP_S - 0.6 < g[0] < GROUP_S + 1.0, (student.participant_id, g)
        assert packet_times(files[student.participant_id])[-1] > GROUP_S + 1.8
    assert gaps(files[host.participant_id]) == []  # the host stayed in the main room: recorded throughout
    listed = await host.ws.request("recording_list")
    assert [x["group_id"] for x in listed["recordings"]] == [None]  # no group recordings unless asked
    for c in (host, anna, boris):
        await c.close()


async def test_record_groups_gives_each_group_its_own_recording_and_the_visiting_host_follows(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    srv, room_id, host, anna, boris = await lesson(server_factory, tmp_path)
    service = srv.app[RECORDINGS]
    await asyncio.sleep(0.5)
    r = await host.ws.request("breakouts_start", record_groups=True,
                              rooms=[{"name": "Alpha", "participant_ids": [anna.participant_id]},
                                     {"name": "Beta", "participant_ids": [boris.participant_id]}])
    assert r["ok"], r
    gids = [g["breakout_id"] for g in r["breakouts"]["rooms"]]

    def group_tracks_started() -> bool:
        a = service.active.get(room_id)
        return a is not None and len(a.groups) == 2 and all(
            any(t.started for t in g.recorder.tracks.values()) for g in a.groups.values())

    assert await wait_until(group_tracks_started, 10.0), "the groups' recordings did not start"
    r = await host.ws.request("breakouts_join", breakout_id=gids[0])  # the host visits Alpha
    assert r["ok"], r
    await asyncio.sleep(GROUP_S)
    r = await host.ws.request("breakouts_join", breakout_id=None)
    assert r["ok"], r
    await asyncio.sleep(0.5)
    r = await host.ws.request("breakouts_end", countdown_s=0)
    assert r["ok"], r
    # the groups' recordings stop with the groups (the room's goes on)
    assert await wait_until(lambda: not service.active[room_id].groups, 10.0)
    await asyncio.sleep(1.0)
    stop = await host.ws.request("recording_stop")
    assert stop["ok"], stop

    status, body = await srv.rest("GET", f"/v1/rooms/{room_id}/recordings")
    assert status == 200, body
    recs = body["recordings"]
    by_group = {x["group_id"]: x for x in recs}
    assert set(by_group) == {None, *gids}, recs
    assert by_group[gids[0]]["group_name"] == "Alpha" and by_group[gids[1]]["group_name"] == "Beta"
    assert by_group[None]["group_name"] is None
    assert len({x["recording_id"] for x in recs}) == 3

    main = files_of(tmp_path / "rec" / stop["recording_id"])
    host_gaps = gaps(main[host.participant_id])
    assert len(host_gaps) == 1 and GROUP_S - 0.6 < host_gaps[0] < GROUP_S + 1.2, host_gaps  # away visiting

    alpha_dir = tmp_path / "rec" / by_group[gids[0]]["recording_id"]
    alpha = files_of(alpha_dir)
    assert set(alpha) == {anna.participant_id, host.participant_id}  # its student and the visiting host
    manifest = json.loads((alpha_dir / "manifest.json").read_text())
    assert manifest["group_id"] == gids[0] and manifest["group_name"] == "Alpha"
    host_times = packet_times(alpha[host.participant_id])
    assert GROUP_S - 0.6 < host_times[-1] - host_times[0] < GROUP_S + 0.8, host_times[-1] - host_times[0]
    beta = files_of(tmp_path / "rec" / by_group[gids[1]]["recording_id"])
    assert set(beta) == {boris.participant_id}  # nobody else's track
    assert gaps(beta[boris.participant_id]) == []
    duration = by_group[gids[1]]["duration_s"]
    assert GROUP_S < duration < GROUP_S + 4.0, duration
    for c in (host, anna, boris):
        await c.close()
