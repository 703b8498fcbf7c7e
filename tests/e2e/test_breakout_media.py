"""Breakout media through the real server with aiortc clients: a participant receives only its own
group's audio and video (counted per track at the client, the track id being the a=msid the server
sends); a move reaches the new group on the existing subscriber connection within a second and
stops the old group's media; a visiting host is heard in that group only (none when listening
only, everywhere while speaking to all); the close brings everyone back with their mute state."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import pytest
from aiortc import AudioStreamTrack, MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import PatternVideoTrack, RtcClient, wait_until

MOVE_BOUND_S = 1.0  # the goal on loopback: from the move to hearing the new group
SMALL = (96, 72)  # a low layer's size: a dozen encoders and decoders share this machine's cores


async def publish_small(c: RtcClient, *, video: bool) -> dict[str, Any]:
    """RtcClient.publish with a small camera (the decode is the clients' cost, not the server's)."""
    c.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: list[tuple[MediaStreamTrack, str]] = [(AudioStreamTrack(), "microphone")]
    if video:
        tracks.append((PatternVideoTrack(*SMALL), "camera"))
    transceivers = [(c.pub.addTransceiver(t, direction="sendonly"), s) for t, s in tracks]
    await c.pub.setLocalDescription(await c.pub.createOffer())
    sources = {str(tr.mid): source for tr, source in transceivers}
    r = await c.ws.request("publish", timeout=15, sdp=c.pub.localDescription.sdp, sources=sources)
    assert r["ok"], r
    await c.pub.setRemoteDescription(RTCSessionDescription(r["sdp"], "answer"))
    return r


async def _groups_of_publishers(server: Server, n_groups: int, size: int, *, video: bool,
                                ) -> tuple[str, RtcClient, list[list[RtcClient]], dict[str, set[str]], list[str]]:
    """Students join, groups open (manual lists), then everyone publishes.  Returns the room, the
    host, the clients per group, each participant's track ids and the group ids."""
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
    groups = [[await RtcClient.join(server, room_id, f"g{g}s{i}") for i in range(size)] for g in range(n_groups)]
    rooms = [{"name": f"Группа {g + 1}", "participant_ids": [c.participant_id for c in members]}
             for g, members in enumerate(groups)]
    r = await host.ws.request("breakouts_start", rooms=rooms)
    assert r["ok"], r
    gids = [g["breakout_id"] for g in r["breakouts"]["rooms"]]
    tracks: dict[str, set[str]] = {}
    for c in [c for members in groups for c in members]:
        pub = await publish_small(c, video=video)
        tracks[c.participant_id] = {t["track_id"] for t in pub["tracks"]}
    return room_id, host, groups, tracks, gids


def _group_tracks(members: list[RtcClient], tracks: dict[str, set[str]], but: RtcClient | None = None) -> set[str]:
    return set().union(*(tracks[c.participant_id] for c in members if c is not but))


def _counts(c: RtcClient) -> dict[str, int]:
    return {tid: r.frames for tid, r in c.received.items()}


def _grew(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {tid for tid, n in after.items() if n > before.get(tid, 0)}


async def _isolation_and_a_move(server: Server, n_groups: int, size: int, *, video: bool) -> None:
    _room_id, host, groups, tracks, gids = await _groups_of_publishers(server, n_groups, size, video=video)
    everyone = [c for members in groups for c in members]
    kinds = {"audio", "video"} if video else {"audio"}

    def own_flowing(c: RtcClient, members: list[RtcClient]) -> bool:
        want = _group_tracks(members, tracks, but=c)
        return all(c.received.get(t) is not None and c.received[t].frames >= 3 for t in want)

    ok = await wait_until(lambda: all(own_flowing(c, m) for m in groups for c in m), 30)
    assert ok, [(c.participant_id, _counts(c)) for c in everyone]
    for members in groups:
        for c in members:
            # never received: no other group's track was ever negotiated to this client
            assert set(c.received) <= _group_tracks(members, tracks, but=c), (c.participant_id, set(c.received))
            assert {r.kind for r in c.received.values()} == kinds
            told = {e["track_id"] for e in c.ws.events if e["event"] == "track_published"}
            assert told <= _group_tracks(members, tracks, but=c)  # nor told of one
    # a subscribe to another group's track is refused as an unknown track
    other = next(iter(tracks[groups[1][0].participant_id]))
    r = await groups[0][0].ws.request("subscribe", tracks=[{"track_id": other}])
    assert r["error"]["code"] == "not_found", r

    # the move: group 0's first student into group 1
    mover, old, new = groups[0][0], groups[0][1:], groups[1]
    old_tracks, new_tracks = _group_tracks(old, tracks), _group_tracks(new, tracks)
    new_audio = {t for t in new_tracks if _kind(server, t) == "audio"}
    sub_before = mover.sub
    before = _counts(mover)
    t0 = time.monotonic()
    r = await host.ws.request("breakouts_move", participant_id=mover.participant_id, breakout_id=gids[1])
    assert r["ok"], r
    heard = await wait_until(lambda: new_audio <= _grew(before, _counts(mover)), 10, step=0.01)
    took = time.monotonic() - t0
    assert heard, (new_audio, before, _counts(mover))
    print(f"move -> hearing the new group: {took * 1000:.0f} ms ({len(everyone)} students)")
    assert took < MOVE_BOUND_S * 3, took  # the goal is 1 s on a quiet loopback; this machine is shared
    if video:
        assert await wait_until(lambda: new_tracks <= _grew(before, _counts(mover)), 10), (
            new_tracks - _grew(before, _counts(mover)), {t: _kind(server, t) for t in new_tracks}, _counts(mover))
    assert mover.sub is sub_before and mover.offers >= 1  # the same peer connection, renegotiated
    await asyncio.sleep(0.5)  # what was in flight has arrived
    settled = _counts(mover)
    await asyncio.sleep(1.0)
    grew = _grew(settled, _counts(mover))
    assert not grew & old_tracks, ("the old group still reaches the moved student", grew & old_tracks)
    assert new_tracks <= grew
    # the old group no longer gets the mover, the new one does
    later = {c.participant_id: _counts(c) for c in [*old, *new]}
    await asyncio.sleep(1.5)
    for c in old:
        assert not _grew(later[c.participant_id], _counts(c)) & tracks[mover.participant_id], c.participant_id
    for c in new:  # (a new video consumer waits for a keyframe: on a loaded machine that takes a while)
        assert await wait_until(partial(_receives, c, tracks[mover.participant_id], later[c.participant_id]), 10), (
            c.participant_id, _counts(c))
    for c in [host, *everyone]:
        await c.close()


def _receives(c: RtcClient, wanted: set[str], since: dict[str, int]) -> bool:
    return wanted <= _grew(since, _counts(c))


def _kind(server: Server, track_id: str) -> str:
    from signaling.app_keys import ROOMS
    from signaling.media.media_feature import media_feature_of

    for live in server.app[ROOMS].live.values():
        media = media_feature_of(live)
        if media is not None and track_id in media.tracks:
            return str(media.tracks[track_id].producer.kind)
    raise AssertionError(f"no track {track_id}")


async def test_each_student_receives_only_its_group_and_a_move_is_heard_within_a_second(server: Server) -> None:
    await _isolation_and_a_move(server, 3, 2, video=True)


@pytest.mark.slow  # a dozen aiortc encoders and decoders: slow, and load-sensitive, on a shared 2-core machine
async def test_twelve_students_in_three_groups_are_isolated_and_a_move_is_heard_within_a_second(
        server: Server) -> None:
    await _isolation_and_a_move(server, 3, 4, video=True)


async def test_a_visiting_host_is_heard_in_that_group_only_and_speaking_to_all_reaches_every_group(
        server: Server) -> None:
    _room_id, host, groups, tracks, gids = await _groups_of_publishers(server, 2, 1, video=False)
    a, b = groups[0][0], groups[1][0]
    voice = {t["track_id"] for t in (await host.publish(video=False, audio=True))["tracks"]}

    async def flows(c: RtcClient, window: float = 1.0) -> bool:
        """Whether the host's voice reaches ``c`` now (after what was in flight arrived)."""
        await asyncio.sleep(0.4)
        before = _counts(c)
        await asyncio.sleep(window)
        return bool(_grew(before, _counts(c)) & voice)

    assert not await flows(a) and not await flows(b)  # the host is in the main room
    assert (await host.ws.request("breakouts_join", breakout_id=gids[0]))["ok"]
    assert await wait_until(lambda: voice <= set(a.received) and a.received[next(iter(voice))].frames > 0, 5)
    assert await flows(a) and not await flows(b)
    hears_a = _counts(host)
    await asyncio.sleep(1.0)
    assert tracks[a.participant_id] <= _grew(hears_a, _counts(host))  # the host hears the group
    assert (await host.ws.request("breakouts_join", breakout_id=gids[1], listen_only=True))["ok"]
    assert not await flows(a) and not await flows(b)  # listening only: heard nowhere
    before = _counts(host)
    await asyncio.sleep(1.0)
    assert tracks[b.participant_id] <= _grew(before, _counts(host))  # but hears group 2
    assert (await host.ws.request("breakouts_speak_all", on=True))["ok"]
    assert await wait_until(lambda: all(voice <= set(c.received) for c in (a, b)), 5)
    assert await flows(a) and await flows(b)
    assert (await host.ws.request("breakouts_speak_all", on=False))["ok"]
    assert not await flows(a) and not await flows(b)
    for c in (host, a, b):
        await c.close()


async def test_the_close_brings_everyone_back_hearing_everyone_with_their_mute_state(server: Server) -> None:
    _room_id, host, groups, tracks, _gids = await _groups_of_publishers(server, 2, 2, video=False)
    everyone = [c for members in groups for c in members]
    muted = groups[0][0]
    assert (await muted.ws.request("set_muted", source="microphone", muted=True))["ok"]
    r = await host.ws.request("breakouts_end", countdown_s=0.5)
    assert r["ok"], r
    for c in everyone:
        e = await c.ws.event("breakouts_ending")
        assert e["countdown_s"] == pytest.approx(0.5, abs=0.1)
    for c in everyone:
        await c.ws.event("breakouts_ended", timeout=5)
    # each one is told of the other group's tracks again, the muted microphone still muted
    for c in everyone:
        others = {pid: t for pid, t in tracks.items() if pid != c.participant_id}
        want = set().union(*others.values())
        ok = await c.ws.wait_for(lambda c=c, want=want: want <= {  # type: ignore[misc]
            e["track_id"] for e in c.ws.events if e["event"] == "track_published"}, timeout=5)
        assert ok
        if c in groups[1]:  # told of the muted microphone on the return: still muted
            last: dict[str, Any] = {e["track_id"]: e for e in c.ws.events if e["event"] == "track_published"}
            assert all(last[tid]["muted"] is True for tid in tracks[muted.participant_id]), c.participant_id
    talking = set().union(*(tracks[c.participant_id] for c in everyone if c is not muted))
    assert await wait_until(lambda: all(
        (talking - tracks[c.participant_id]) <= {t for t, r in c.received.items() if r.frames > 0}
        for c in everyone), 10), [(c.participant_id, _counts(c)) for c in everyone]
    assert (await muted.ws.request("set_muted", source="microphone", muted=False))["ok"]
    for c in (host, *everyone):
        await c.close()


async def test_a_student_who_reconnects_during_the_groups_receives_only_its_group_again(server: Server) -> None:
    room_id, host, groups, tracks, gids = await _groups_of_publishers(server, 2, 2, video=False)
    leaving, mate = groups[0]
    await leaving.close()
    again = await RtcClient.join(server, room_id, "g0s0")  # the same identity: its seat, its group
    state = await again.ws.event("breakouts_state")
    assert state["breakouts"]["breakout_id"] == gids[0]
    assert await wait_until(lambda: tracks[mate.participant_id] <= {t for t, r in again.received.items()
                                                                   if r.frames > 0}, 10), _counts(again)
    await asyncio.sleep(1.0)
    assert set(again.received) <= tracks[mate.participant_id], set(again.received)  # nothing of group 2
    for c in (host, mate, *groups[1], again):
        await c.close()
