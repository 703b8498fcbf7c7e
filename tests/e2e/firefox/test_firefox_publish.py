"""Firefox's captured offers (tests/data/firefox_*.sdp) published through the server's signalling,
no browser: what the issue 21 student got (invalid_message for 80 publishes of 81) and the words of
a refusal (invalid_sdp), which name the SDP line."""

from __future__ import annotations

import pytest

from signaling.rooms import Role
from tests.conftest import Server
from tests.sfu.offline import DATA

OFFER = (DATA / "firefox_offer.sdp").read_text()
SIMULCAST_OFFER = (DATA / "firefox_simulcast_offer.sdp").read_text()
SCREEN_OFFER = (DATA / "firefox_screen_offer.sdp").read_text()


@pytest.mark.parametrize(("sdp", "sources", "simulcast"), [
    (OFFER, {"0": "microphone", "1": "camera"}, False),
    (SIMULCAST_OFFER, {"0": "microphone", "1": "camera"}, True),
    (SCREEN_OFFER, {"0": "microphone", "1": "camera", "2": "screen"}, False),
], ids=["camera", "simulcast", "screen"])
async def test_a_firefox_offer_publishes_every_track(server: Server, sdp: str, sources: dict[str, str],
                                                     simulcast: bool) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.join(room, "student", role=Role.HOST)
    r = await ws.request("publish", sdp=sdp, sources=sources)
    assert r["ok"], r
    assert sorted(t["source"] for t in r["tracks"]) == sorted(sources.values())
    # every m-line of the answer is accepted (port not 0): bundle-only m-lines included
    assert [line.split()[1] != "0" for line in r["sdp"].splitlines() if line.startswith("m=")] == [True] * len(sources)
    assert ("a=simulcast:recv q;h;f" in r["sdp"]) is simulcast


async def test_a_refused_firefox_mline_is_named_with_its_sdp_line(server: Server) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.join(room, "student", role=Role.HOST)
    # port 0 without a=bundle-only is a rejected m-line (RFC 3264): refused, and the message says so
    stopped = OFFER.replace("a=bundle-only\n", "")
    r = await ws.request("publish", sdp=stopped, sources={"0": "microphone", "1": "camera"})
    assert r["error"] == {"code": "invalid_sdp", "message": (
        "sources: 1 is not a sending m-line of the offer (m-line 1 (a=mid:1): m=video 0 (port 0))")}, r
    recvonly = OFFER.replace("a=sendonly\n", "a=recvonly\n")
    r = await ws.request("publish", sdp=recvonly, sources={"0": "microphone"})
    assert r["error"] == {"code": "invalid_sdp", "message": (
        "sources: 0 is not a sending m-line of the offer (m-line 0 (a=mid:0): a=recvonly)")}, r
    ssrc = OFFER.split("a=ssrc:", 1)[1].split()[0]
    r = await ws.request("publish", sdp=OFFER.replace(f"a=ssrc:{ssrc} ", "a=ssrc:4294967296 "),
                         sources={"0": "microphone", "1": "camera"})
    assert r["error"] == {"code": "invalid_sdp", "message": (
        "sdp: m-line 0 (a=mid:0): a=ssrc:4294967296 cname:{ff3ea37d-ba6f-47c5-9acb-eb4916cf0899}: "
        "an SSRC is not a 32-bit number")}, r
