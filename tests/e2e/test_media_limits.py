"""The media requests' limits (issue 10): a publisher's offer is bounded before anything parses it,
per-session state stays within the room's real tracks and candidates, and an SDP that fails is
answered with the server's own words, never aiortc's."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from signaling.app_keys import ROOMS
from signaling.media.media_feature import MEDIA_KEY
from signaling.media.participant_media import ParticipantMedia
from signaling.rooms import Role
from signaling.ws.session import Session
from tests.conftest import Server, WsClient
from tests.e2e.loop_blocks import LoopBlocks
from tests.sfu.helpers import sendonly_offer

SOURCES = ("microphone", "camera", "screen", "screen_audio")
SOURCE_KIND = {"microphone": "audio", "camera": "video", "screen": "video", "screen_audio": "audio"}




def sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    lines = [x for x in sdp.replace("\r\n", "\n").split("\n") if x]
    head: list[str] = []
    out: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            out.append([line])
        elif out:
            out[-1].append(line)
        else:
            head.append(line)
    return head, out


def join(head: list[str], secs: list[list[str]]) -> str:
    return "\r\n".join([*head, *(x for s in secs for x in s)]) + "\r\n"


def only_sending(offer: str, mids: set[str]) -> str:
    """The offer with every m-line outside ``mids`` made inactive (a stopped track)."""
    head, secs = sections(offer)
    for sec in secs:
        mid = next(x[6:] for x in sec if x.startswith("a=mid:"))
        if mid not in mids:
            sec[:] = ["a=inactive" if x == "a=sendonly" else x for x in sec
                      if not x.startswith(("a=ssrc", "a=msid"))]
    return join(head, secs)


def many_mlines(offer: str, n: int) -> str:
    """The offer's first m-line repeated ``n`` times with its own mid each, cut to the lines an
    m-line needs, so that 150 fit in a frame (the issue's flood)."""
    head, secs = sections(offer)
    session = ("a=ice-ufrag", "a=ice-pwd", "a=fingerprint:sha-256", "a=setup")  # once, for every m-line
    head = [x for x in head if not x.startswith("a=group:BUNDLE")] + \
        [x for x in secs[0] if x.startswith(session)] + ["a=group:BUNDLE " + " ".join(map(str, range(n)))]
    pt = secs[0][0].split()[3]
    keep = (f"a=rtpmap:{pt} ", f"a=fmtp:{pt} ", "c=", "a=sendonly", "a=recvonly", "a=inactive", "a=rtcp-mux")
    m_line = " ".join([*secs[0][0].split()[:3], pt])
    copies = [[m_line, f"a=mid:{i}", *(x for x in secs[0][1:] if x.startswith(keep))] for i in range(n)]
    return join(head, copies)


def text_answer(offer: str) -> str:
    """A subscriber's answer built from the server's offer text: what a browser answers (recvonly
    m-lines with the offered codecs), without a peer connection of its own, so that twenty
    listeners cost the test's loop nothing beside the server they load."""
    head, secs = sections(offer)
    bundle = next(x for x in head if x.startswith("a=group:BUNDLE"))
    out = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", bundle]
    for sec in secs:
        direction = "a=recvonly" if "a=sendonly" in sec else "a=inactive"
        out.append(sec[0])
        out.extend(x for x in sec[1:] if x.startswith(("c=", "a=mid:", "a=rtpmap:", "a=fmtp:", "a=rtcp-fb:",
                                                        "a=extmap:", "a=rtcp-mux", "a=rtcp:")))
        out += [direction, "a=ice-ufrag:urok", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
                "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:active"]
    return "\r\n".join(out) + "\r\n"


class Listener:
    """A participant that answers every subscriber offer (from the text) and counts what it got."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self.answered = 0
        self.largest_offer = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        self.seen = 0
        try:
            while True:
                await self.ws.wait_for(lambda: len(self.ws.events) > self.seen, timeout=3600)
                while self.seen < len(self.ws.events):
                    e = self.ws.events[self.seen]
                    self.seen += 1
                    if e["event"] == "subscriber_offer":
                        self.largest_offer = max(self.largest_offer, len(e["sdp"]))
                        r = await self.ws.request("subscriber_answer", timeout=30, sdp=text_answer(e["sdp"]))
                        assert r["ok"], r
                        self.answered += 1
        except (AssertionError, TimeoutError):
            return

    def stop(self) -> None:
        self._task.cancel()


def session_of(server: Server, ws: WsClient) -> Session:
    pid = ws.events[0]["participant_id"]
    for live in server.app[ROOMS].live.values():
        session = live.sessions.get(pid)
        if session is not None:
            return session
    raise AssertionError("no session")


def media_of(ws_session: Session) -> ParticipantMedia:
    pm = ws_session.extensions[MEDIA_KEY]
    assert isinstance(pm, ParticipantMedia)
    return pm


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ping_rtts(ws: WsClient, until: asyncio.Event) -> list[float]:
    rtts: list[float] = []
    while not until.is_set():
        t0 = time.perf_counter()
        r = await ws.request("ping", timeout=30)
        assert r["ok"], r
        rtts.append(time.perf_counter() - t0)
        await asyncio.sleep(0.06)  # within the socket's rate limit (20/s)
    return rtts


# ---- the limits on a publisher's offer --------------------------------------------------------------
async def test_an_offer_over_the_mline_limit_is_too_many_tracks_before_it_is_parsed(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    flood = many_mlines(await sendonly_offer(["audio"]), 150)
    with LoopBlocks() as blocks:
        r = await host.request("publish", sdp=flood, sources={str(i): "microphone" for i in range(1)})
    assert r["error"]["code"] == "too_many_tracks", r
    assert "150 m-lines" in r["error"]["message"] and "16" in r["error"]["message"]
    assert blocks.longest < 0.010, blocks.top()  # refused on a count of the text, not after a parse
    # one m-line over the default limit of 16 is refused as well; 16 is accepted
    offer = await sendonly_offer(["audio"])
    r = await host.request("publish", sdp=many_mlines(offer, 17), sources={"0": "microphone"})
    assert r["error"]["code"] == "too_many_tracks", r
    r = await host.request("publish", sdp=only_sending(many_mlines(offer, 16), {"0"}), sources={"0": "microphone"})
    assert r["ok"], r


async def test_the_mline_limit_is_a_setting(server_factory: Any) -> None:
    server = await server_factory(rtc_max_mlines=4)
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = only_sending(await sendonly_offer(["audio", "video", "video", "audio", "video"]), {"0", "1", "2", "3"})
    r = await host.request("publish", sdp=offer, sources={"0": "microphone", "1": "camera", "2": "screen",
                                                          "3": "screen_audio"})
    assert r["error"]["code"] == "too_many_tracks" and "at most 4" in r["error"]["message"], r


async def test_two_tracks_of_one_source_are_too_many_tracks(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = await sendonly_offer(["video", "video"])
    r = await host.request("publish", sdp=offer, sources={"0": "camera", "1": "camera"})
    assert r["error"]["code"] == "too_many_tracks" and "camera" in r["error"]["message"], r
    assert not [e for e in host.events if e["event"] == "track_published"]
    # one per source, all four at once, is what a client does
    offer = await sendonly_offer([SOURCE_KIND[s] for s in SOURCES])
    r = await host.request("publish", sdp=offer, sources={str(i): s for i, s in enumerate(SOURCES)})
    assert r["ok"], r
    assert sorted(t["source"] for t in r["tracks"]) == sorted(SOURCES)


async def test_publishes_come_in_a_burst_of_eight_then_one_a_second(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    two = await sendonly_offer(["video", "video"])
    # refused at once after the rate check (two cameras): nine take a few ms, the refill nothing
    replies = [await host.request("publish", sdp=two, sources={"0": "camera", "1": "camera"}) for _ in range(9)]
    assert [r["error"]["code"] for r in replies] == ["too_many_tracks"] * 8 + ["rate_limited"], replies
    await asyncio.sleep(1.1)
    assert (await host.request("publish", sdp=await sendonly_offer(["audio"]), sources={"0": "microphone"}))["ok"]


async def test_an_mline_too_long_to_parse_cheaply_is_invalid_sdp(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    head, secs = sections(await sendonly_offer(["audio"]))
    secs[0] += [f"a=ssrc:{1000 + i} cname:x" for i in range(2000)]  # aiortc's lookup is quadratic
    with LoopBlocks() as blocks:
        r = await host.request("publish", sdp=join(head, secs), sources={"0": "microphone"})
    assert r["error"]["code"] == "invalid_sdp" and "too long" in r["error"]["message"], r
    assert blocks.longest < 0.010, blocks.top()


# ---- the flood: other rooms stay responsive ---------------------------------------------------------
async def test_publish_flood_with_the_largest_offers_keeps_other_rooms_responsive(server: Server) -> None:
    """The issue's scenario: in a room of 21, a publisher sends the largest offer allowed (16
    m-lines, one track per source) over and over, turning its four tracks over each time (every
    listener renegotiates), and another sends the issue's offer (150 audio tracks), while a
    participant of another room pings.  Its p99 stays under 50 ms above the same ping's p99
    without the flood (on an idle machine; see the bound)."""
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    other_room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    pinger = await server.join(other_room, "pinger")
    publisher = await server.join(room_id, "publisher", role=Role.HOST)
    flooder = await server.join(room_id, "flooder", role=Role.HOST)
    listeners = [Listener(await server.join(room_id, f"l{i}")) for i in range(19)]
    kinds = ["audio", "video", "video", "audio"] * 4  # 16 m-lines: mids 0..15, kind by source order
    full = await sendonly_offer(kinds)
    rounds = [only_sending(full, {str(4 * k + j) for j in range(4)}) for k in range(4)]
    flood = many_mlines(await sendonly_offer(["audio"]), 150)
    flood_sources = {str(i): "microphone" for i in range(150)}  # the offer: 150 tracks

    done = asyncio.Event()
    baseline_task = asyncio.create_task(ping_rtts(pinger, done))
    await asyncio.sleep(2.0)
    done.set()
    baseline = await baseline_task

    published = refused = 0
    done = asyncio.Event()
    pings = asyncio.create_task(ping_rtts(pinger, done))
    # Not measured here: the garbage collector.  A full collection walks every object of the
    # process (pytest's and twenty clients' too) whenever allocations add up, 40-100 ms on this
    # machine, whatever the requests do; it is the process's pause, not a request's block.
    gc.collect()
    gc.disable()
    cpu0, wall0 = time.process_time(), time.monotonic()
    with LoopBlocks() as blocks:
        # Ten seconds: ~140 pings, so that the p99 is a percentile and not the single worst sample
        # (with 68 pings in 5 s, one ping queued behind a burst of renegotiations in this one
        # process, the test's own clients included, decided the result: stop 23's CI run, 56 ms).
        t_end = time.monotonic() + 10.0
        k = 0
        while time.monotonic() < t_end:
            sources = {str(4 * (k % 4) + j): SOURCES[j] for j in range(4)}
            r = await publisher.request("publish", timeout=30, sdp=rounds[k % 4], sources=sources)
            if r["ok"]:
                published += 1
            else:
                assert r["error"]["code"] == "rate_limited", r
            r = await flooder.request("publish", timeout=30, sdp=flood, sources=flood_sources)
            assert r["error"]["code"] in ("too_many_tracks", "rate_limited"), r
            refused += 1
            k += 1
        done.set()
        rtts = await pings
    gc.enable()
    busy = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    for listener in listeners:
        listener.stop()
    p99, base99 = percentile(rtts, 0.99), percentile(baseline, 0.99)
    logging.getLogger("test").warning(
        "flood: cpu %.0f%%, %d publishes, %d refused, %d pings p50 %.1f p99 %.1f ms (baseline p99 %.1f ms); "
        "answers %d, largest listener offer %d bytes; longest callback %.1f ms CPU: %s",
        100 * busy, published, refused, len(rtts), 1000 * percentile(rtts, 0.5), 1000 * p99, 1000 * base99,
        sum(x.answered for x in listeners), max(x.largest_offer for x in listeners), 1000 * blocks.longest,
        blocks.top(3))
    assert published >= 3 and len(rtts) >= 20
    # No callback holds the loop long (CPU time: what it would be on an idle machine; ~4-11 ms
    # here, 100+ ms before the limits).  The pings' wall time also waits for a core: on a machine
    # loaded beyond its cores (this one runs several test suites at once) the bound grows with it.
    assert blocks.longest < 0.040, blocks.top()
    overload = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    assert p99 < 0.050 * overload + base99, (p99, base99, overload)
    # each listener got one track per source, not 150: its offers stay small
    assert max(x.largest_offer for x in listeners) < 20_000


# ---- per-session state stays bounded ------------------------------------------------------------------
async def test_unsubscribe_of_unknown_ids_is_not_found_and_stores_nothing(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    ws = await server.join(room_id, "student")
    r = await host.request("publish", sdp=await sendonly_offer(["audio"]), sources={"0": "microphone"})
    assert r["ok"], r
    track_id = r["tracks"][0]["track_id"]
    pm = media_of(session_of(server, ws))
    ids = [f"TR_{i:06d}_" + "x" * 80 for i in range(500)]
    r = await ws.request("unsubscribe", track_ids=ids)
    assert r["error"]["code"] == "not_found" and ids[0] in r["error"]["message"], r
    r = await ws.request("unsubscribe", track_ids=[track_id, "nope"])
    assert r["error"]["code"] == "not_found", r
    assert pm.unsubscribed == set() and track_id in pm.consumers  # all or nothing
    r = await ws.request("subscribe", tracks=[{"track_id": "nope", "quality": "low"}])
    assert r["error"]["code"] == "not_found", r
    r = await ws.request("unsubscribe", track_ids=[track_id])
    assert r["ok"] and pm.unsubscribed == {track_id}, r
    r = await ws.request("subscribe", tracks=[{"track_id": track_id, "quality": "low"}])
    assert r["ok"] and pm.quality == {track_id: "low"}, r
    r = await ws.request("unsubscribe", track_ids=[track_id])
    assert r["ok"]
    # the track goes: nothing of it stays in the listener's state
    r = await host.request("publish", sdp=only_sending(await sendonly_offer(["audio"]), set()), sources={})
    assert r["ok"], r
    await ws.event("track_unpublished", track_id=track_id)
    assert pm.unsubscribed == set() and pm.quality == {}


async def test_memory_stays_bounded_under_an_unsubscribe_flood(server_factory: Any) -> None:
    """The issue's flood: unknown track ids as fast as the rate limit lets them through.  Before,
    each id was stored (~1.5 MiB/s); now the per-session sets hold only the room's tracks and
    what the process allocates does not grow with the number of requests."""
    server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.join(room_id, "student")
    pm = media_of(session_of(server, ws))

    async def burst(n: int, start: int) -> None:
        for j in range(n):
            ids = [f"TR_{start + j:06d}_{i:03d}_" + "x" * 80 for i in range(500)]
            r = await ws.request("unsubscribe", timeout=30, track_ids=ids)
            assert r["error"]["code"] == "not_found"

    await burst(20, 0)  # warm up (caches, the metrics' label sets)
    tracemalloc.start()
    try:
        await burst(50, 100)
        first, _ = tracemalloc.get_traced_memory()
        await burst(200, 1000)  # 100 000 more unknown ids, ~9 MB of them
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pm.unsubscribed) == 0 and len(pm.quality) == 0
    assert second - first < 1_000_000, (first, second)  # before the fix: 31.6 MB more


async def test_candidates_before_the_first_offer_are_bounded(server_factory: Any) -> None:
    server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.join(room_id, "student")
    pm = media_of(session_of(server, ws))
    cand = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "sdpMid": "0",
            "sdpMLineIndex": 0}
    for _ in range(50):
        r = await ws.request("ice_candidate", target="publisher", candidate=cand)
        assert r["ok"], r
    r = await ws.request("ice_candidate", target="publisher", candidate=cand)
    assert r["error"]["code"] == "invalid_message" and "at most 50" in r["error"]["message"], r
    assert len(pm._early_candidates) == 50
    # the subscriber's transport (no answer yet): the same bound
    for _ in range(50):
        assert (await ws.request("ice_candidate", target="subscriber", candidate=cand))["ok"]
    r = await ws.request("ice_candidate", target="subscriber", candidate=cand)
    assert r["error"]["code"] == "invalid_message" and "at most 50" in r["error"]["message"], r


# ---- SDP errors: the server's words, not aiortc's -------------------------------------------------------
AIORTC_WORDS = re.compile(r"assert|Error|Traceback|NoneType|not in list|object|rtcpeerconnection|aiortc|"
                          r"invalid literal|list index|unpack", re.IGNORECASE)


@pytest.fixture
def media_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="urok.session"):
        yield caplog


def assert_own_words(reply: dict[str, Any], code: str, message: str) -> None:
    assert reply["ok"] is False, reply
    assert reply["error"] == {"code": code, "message": message}, reply
    assert not AIORTC_WORDS.search(message), message


# (pattern, replacement, message) on aiortc's one-m-line audio offer (its port made 9): each malformed
# line is refused by the server's own parser (sfu.sdp.check_lines), by name, before aiortc sees it
MALFORMED_OFFERS = [
    (r"m=audio 9 UDP/TLS/RTP/SAVPF 96", "m=audio 9 UDP/TLS/RTP/SAVPF 300 96",
     "sdp: m-line 0 (a=mid:0): m=audio 9 UDP/TLS/RTP/SAVPF 300 96 9 0 8: "
     "payload type 300 is not 0..127 (72..76 excluded, RFC 5761)"),
    (r"m=audio 9 UDP/TLS/RTP/SAVPF", "m=audio 9 udp",
     "sdp: m-line 0 (a=mid:0): m=audio 9 udp 96 9 0 8: not m=<media> <port> <proto> <fmt> ..."),
    (r"a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus/48000/two",
     "sdp: m-line 0 (a=mid:0): a=rtpmap:96 opus/48000/two: the channel count is not a number 1..255"),
    (r"a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=ten",
     "sdp: m-line 0 (a=mid:0): a=fmtp:96 minptime=ten: minptime is not a number"),
    (r"a=extmap:1 ", "a=extmap:0 ",
     "sdp: m-line 0 (a=mid:0): a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid: a header extension id is not 1..255"),
    (r"a=ssrc:\d+ cname:\S+", "a=ssrc:-1 cname:x",
     "sdp: m-line 0 (a=mid:0): a=ssrc:-1 cname:x: an SSRC is not a 32-bit number"),
    (r"a=end-of-candidates", "a=candidate:1 1 udp 1 192.0.2.2 99999 typ host\r\na=end-of-candidates",
     "sdp: m-line 0 (a=mid:0): a=candidate:1 1 udp 1 192.0.2.2 99999 typ host: the port is not a number 0..65535"),
    (r"c=IN IP4 \S+", "c=IN IP4", "sdp: m-line 0 (a=mid:0): c=IN IP4: not c=IN IP4|IP6 <address>"),
    (r"a=setup:actpass", "a=setup:client", "sdp: m-line 0 (a=mid:0): a=setup:client: not actpass, active or passive"),
    (r"a=mid:0\r\n", "", "sdp: m-line 0: m=audio: the m-line has no a=mid"),
    (r"a=group:BUNDLE 0", "a=group", "sdp: session level: a=group: a=group has no value"),
    (r"\Av=0", "v=0 garbage", "sdp: session level: v=0 garbage: not v=<version>"),
]


@pytest.mark.parametrize(("pattern", "replacement", "message"), MALFORMED_OFFERS,
                         ids=[m.split(": ", 2)[-1][:40] for _, _, m in MALFORMED_OFFERS])
async def test_a_malformed_offer_is_invalid_sdp_naming_its_line_and_changes_nothing(
        server: Server, pattern: str, replacement: str, message: str) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = re.sub(r"m=audio \d+ ", "m=audio 9 ", await sendonly_offer(["audio"]), count=1)
    bad = re.sub(pattern, replacement, offer, count=1)
    assert bad != offer
    r = await host.request("publish", sdp=bad, sources={"0": "microphone"})
    assert_own_words(r, "invalid_sdp", message)
    assert media_of(session_of(server, host)).publisher is None  # refused before any transport
    r = await host.request("publish", sdp=offer, sources={"0": "microphone"})
    assert r["ok"] and [t["source"] for t in r["tracks"]] == ["microphone"], r


async def test_an_offer_aiortc_cannot_apply_gets_a_fixed_message(server: Server,
                                                                  media_log: pytest.LogCaptureFixture) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = await sendonly_offer(["audio"])
    bad = "\r\n".join(x for x in offer.split("\r\n") if not x.startswith(("a=ice-ufrag", "a=ice-pwd")))
    r = await host.request("publish", sdp=bad, sources={"0": "microphone"})
    assert_own_words(r, "invalid_sdp", "sdp: cannot apply offer")  # our parser had nothing to say
    assert "ICE username fragment or password is missing" in media_log.text
    r = await host.request("publish", sdp=offer, sources={"0": "microphone"})
    assert r["ok"], r  # nothing was left half-applied


async def test_an_offer_without_a_forwardable_codec_gets_a_fixed_message(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = await sendonly_offer(["audio"])
    pcmu = re.sub(r"(m=audio \d+ UDP/TLS/RTP/SAVPF) [\d ]+", r"\1 0", offer, count=1)  # PCMU only
    pcmu = "\r\n".join(x for x in pcmu.split("\r\n") if not re.match(r"a=(rtpmap|fmtp|rtcp-fb):(96|9|8) ", x))
    r = await host.request("publish", sdp=pcmu, sources={"0": "microphone"})
    assert_own_words(r, "invalid_sdp", "sources: mid 0: no forwardable codec on m-line '0'")


async def test_an_offer_whose_mlines_do_not_fit_sources_is_invalid_sdp_naming_the_mline(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    offer = await sendonly_offer(["audio", "video"])
    r = await host.request("publish", sdp=offer, sources={"0": "camera", "1": "camera"})
    assert r["error"]["code"] == "too_many_tracks", r  # a limit, not the SDP
    r = await host.request("publish", sdp=offer, sources={"0": "camera", "1": "microphone"})
    assert_own_words(r, "invalid_sdp", "sources: mid 0 is audio, not a camera track (m-line 0 (a=mid:0): m=audio)")
    r = await host.request("publish", sdp=offer, sources={"0": "microphone"})
    assert_own_words(r, "invalid_sdp", "sources: every sending m-line must be listed; missing mid 1 "
                                       "(m-line 1 (a=mid:1): a=sendonly)")
    r = await host.request("publish", sdp=offer, sources={"0": "microphone", "1": "camera", "7": "screen"})
    assert_own_words(r, "invalid_sdp", "sources: 7 is not a sending m-line of the offer (no m-line has a=mid:7)")
    assert media_of(session_of(server, host)).publisher is None


async def test_a_malformed_or_unappliable_subscriber_answer_is_invalid_sdp(
        server: Server, media_log: pytest.LogCaptureFixture) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room_id, "host", role=Role.HOST)
    assert (await host.request("publish", sdp=await sendonly_offer(["audio"]), sources={"0": "microphone"}))["ok"]
    ws = await server.join(room_id, "student")
    offer = (await ws.event("subscriber_offer", timeout=10))["sdp"]
    good = text_answer(offer)
    r = await ws.request("subscriber_answer", sdp=re.sub(r"m=audio (\d+) \S+ \d+", r"m=audio 9 x y", good))
    assert_own_words(r, "invalid_sdp", "sdp: m-line 0 (a=mid:0): m=audio 9 x y: not m=<media> <port> <proto> <fmt> ...")
    r = await ws.request("subscriber_answer", sdp=re.sub(r"a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 opus", good))
    assert r["error"]["code"] == "invalid_sdp", r
    assert r["error"]["message"].startswith("sdp: m-line 0 (a=mid:0): a=rtpmap:"), r
    r = await ws.request("subscriber_answer", sdp=offer)  # the offer sent back: aiortc refuses the setup role
    assert_own_words(r, "invalid_sdp", "sdp: cannot apply answer")
    r = await ws.request("subscriber_answer", sdp=good.replace("a=mid:0", "a=mid:9"))
    assert_own_words(r, "invalid_sdp", "sdp: cannot apply answer")
    r = await ws.request("subscriber_answer", sdp=many_mlines(good, 2))  # more m-lines than offered
    assert_own_words(r, "invalid_sdp", "sdp: the description has 2 m-lines; at most 1 are accepted")
    assert "Error" in media_log.text
    r = await ws.request("subscriber_answer", sdp=good)
    assert r["ok"], r


async def test_a_malformed_candidate_is_invalid_sdp_naming_what_is_wrong(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.join(room_id, "student")
    pm = media_of(session_of(server, ws))
    for target in ("publisher", "subscriber"):
        r = await ws.request("ice_candidate", target=target, candidate={"candidate": "candidate:1 1 udp"})
        assert_own_words(r, "invalid_sdp", "candidate: candidate:1 1 udp: "
                                           "not <foundation> <component> <transport> <priority> <address> <port> "
                                           "typ <type>")
        r = await ws.request("ice_candidate", target=target,
                             candidate={"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host"})
        assert_own_words(r, "invalid_sdp", "candidate: candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host: "
                                           "the port is not a number 0..65535")
    assert len(pm._early_candidates) == 0  # nothing was kept
