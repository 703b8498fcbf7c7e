"""Webinar mode: viewers receive but do not publish, get aggregated updates, and can be promoted."""

import asyncio

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until


async def test_viewers_get_aggregated_updates_not_an_event_per_join(server: Server) -> None:
    room_id = await server.create_room(mode="webinar", guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    first = await server.join(room_id, "v0", role=Role.VIEWER)
    update = await first.event("room_update")
    assert update["num_participants"] == 2 and update["num_viewers"] == 1
    assert [p["identity"] for p in update["speakers"]] == ["host"]
    others = [await server.join(room_id, f"v{i}", role=Role.VIEWER) for i in range(1, 6)]
    for i in range(1, 6):
        await host.event("participant_joined", participant_id=(others[i - 1].events[0]["participant_id"]))
    await first.wait_for(lambda: any(e["event"] == "room_update" and e["num_participants"] == 7
                                      for e in first.events), timeout=5)
    assert not [e for e in first.events if e["event"] in ("participant_joined", "participants_joined")]
    r = await others[0].request("raise_hand")
    assert r["ok"], r
    await others[0].event("hand_raised")  # the viewer sees its own hand
    await host.event("hand_raised")
    await first.wait_for(lambda: any(e["event"] == "room_update" and e["hands"] == 1 for e in first.events), 5)
    assert not [e for e in first.events if e["event"] == "hand_raised"]
    for _ in range(3):
        await others[1].request("react", emoji="👏")
    await first.wait_for(lambda: any(e["event"] == "room_update" and e.get("reactions", {}).get("👏")
                                     for e in first.events), 5)
    assert not [e for e in first.events if e["event"] == "reaction"]


async def test_viewer_cannot_publish_until_promoted_and_then_is_heard(server: Server) -> None:
    room_id = await server.create_room(mode="webinar", guest_policy="ALWAYS_ACCEPT")
    host = await RtcClient.join(server, room_id, "host", role=Role.HOST)
    viewer = await RtcClient.join(server, room_id, "viewer", role=Role.VIEWER)
    audience = await RtcClient.join(server, room_id, "audience", role=Role.VIEWER)
    r = await viewer.ws.request("publish", sdp="v=0", sources={})
    assert r["error"]["code"] == "forbidden"
    r = await host.ws.request("set_role", participant_id=viewer.participant_id, role="participant")
    assert r["ok"], r
    await viewer.publish(video=True, audio=False)
    assert await wait_until(lambda: audience.frames("video") >= 5 and host.frames("video") >= 5, 15)
    await audience.ws.wait_for(lambda: any(
        e["event"] == "room_update" and viewer.participant_id in [p["participant_id"] for p in e["speakers"]]
        for e in audience.ws.events), 5)
    r = await host.ws.request("set_role", participant_id=viewer.participant_id, role="viewer")
    assert r["ok"], r
    await asyncio.sleep(0.5)
    n = audience.frames("video")
    await asyncio.sleep(1.0)
    assert audience.frames("video") <= n + 1  # demoted: the server stops forwarding at once
    for c in (host, viewer, audience):
        await c.close()
