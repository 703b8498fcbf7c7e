"""ICE consent through the real server (issue 20, item 2): a client whose network goes silent loses
its media within the consent timeout, its tracks leave the room and it is told (`media_failed`);
a client that keeps answering keeps its media."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from signaling.app_keys import WORKER
from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until

TIMEOUT = 2.0  # rtc_ice_consent_timeout_s for the test (30 s by default, RFC 7675)


def freeze(pc: RTCPeerConnection) -> None:
    """The client's network goes silent: nothing it sends arrives (no checks, no answers to the
    server's checks, no media), and it does not close anything."""
    conn = pc.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in conn._protocols:
        protocol.transport.sendto = lambda *args, **kwargs: None


async def test_a_silent_client_loses_its_media_and_is_told_and_one_that_answers_keeps_it(
        server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # the aiortc clients check consent every 0.4-0.6 s instead of 4-6 s, so a 2 s timeout is fair
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.5)
    server = await server_factory(rtc_ice_consent_timeout_s=TIMEOUT)
    worker = server.app[WORKER]
    assert worker.mux is not None and worker.mux.consent_timeout == TIMEOUT
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
    silent = await RtcClient.join(server, room_id, "silent")
    steady = await RtcClient.join(server, room_id, "steady")
    r = await silent.publish(audio=False)
    silent_track = r["tracks"][0]["track_id"]
    await teacher.publish(audio=False)
    assert await wait_until(lambda: steady.frames("video") >= 10 and teacher.frames("video") >= 5, 20)
    assert silent.pub is not None

    freeze(silent.sub)
    freeze(silent.pub)
    frozen_at = time.monotonic()
    # documented: within the consent timeout + the expiry scan (<= 1 s) + a tick; 3 s more for a busy machine
    failed = await silent.ws.event("media_failed", timeout=TIMEOUT + 1.0 + 0.25 + 3.0)
    elapsed = time.monotonic() - frozen_at
    assert elapsed >= TIMEOUT - 0.6, elapsed  # not before consent could have lapsed
    assert failed["target"] in ("publisher", "subscriber") and failed["reason"] == "ice_failed"
    # its track left the room: the others are told and stop waiting for it
    await teacher.ws.event("track_unpublished", track_id=silent_track, timeout=5)
    await steady.ws.event("track_unpublished", track_id=silent_track, timeout=5)
    # a media request on the torn-down media is refused with a stable code until it reconnects
    r = await silent.ws.request("ice_candidate", target="subscriber", candidate=None)
    assert r["ok"] is False and r["error"]["code"] == "invalid_state", r

    # the client that keeps answering keeps receiving the teacher for more than another consent period
    before = steady.frames("video")
    await asyncio.sleep(TIMEOUT * 1.5)
    assert steady.frames("video") > before
    assert not any(e["event"] == "media_failed" for e in steady.ws.events + teacher.ws.events)
    async with server.http.get(server.base + "/metrics") as resp:
        metrics = await resp.text()
    series = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("urok_media_udp_"))
    # every client address was verified by the port's own check before it got media; one path expired
    assert float(series["urok_media_udp_paths_verified_total"]) >= 5, series
    assert float(series["urok_media_udp_checks_sent_total"]) >= float(series["urok_media_udp_paths_verified_total"])
    assert float(series["urok_media_udp_paths_expired_total"]) >= 1, series
    for c in (teacher, steady):
        await c.close()
    await silent.ws.close()
