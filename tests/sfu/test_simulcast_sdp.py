"""Simulcast SDP: a real Chromium 156 offer (3 rids) answered with a=rid recv / a=simulcast:recv."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCSessionDescription

from sfu import Worker
from sfu.rtp import EXT_MID, EXT_RID, EXT_RRID
from sfu.sdp import parse_media
from sfu.simulcast import layer_index, munge_answer, offered_rids

from .helpers import client_pc
from .offline import DATA, offline_worker, section_lines

# captured from Chromium 156 (addTransceiver with sendEncodings q/h/f), see test_simulcast_browser.py
CHROMIUM_OFFER = (DATA / "chromium_simulcast_offer.sdp").read_text()


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker()
    yield w
    await w.close()


def test_offered_rids_of_the_chromium_offer() -> None:
    assert offered_rids(CHROMIUM_OFFER) == [("q", "h", "f")]
    (section,) = parse_media(CHROMIUM_OFFER)
    assert section.rids == ("q", "h", "f") and section.simulcast and section.ssrcs == ()


def test_offered_rids_order_paused_alternatives_and_single_rid() -> None:
    base = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    video = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n"
    offer = (
        base
        + video.format(mid="0")
        + "a=rid:2 send\r\na=rid:0 send\r\na=rid:1 send\r\na=simulcast:send 0;~1,x;2\r\n"
        + video.format(mid="1")
        + "a=rid:only send\r\n"
        + video.format(mid="2")
        + "a=rid:a send\r\na=rid:b send\r\n"
    )
    # a=simulcast order wins over a=rid order; "~" (paused) and alternatives are handled
    assert offered_rids(offer) == [("0", "1", "2"), (), ("a", "b")]


def test_munge_answer_adds_rids_simulcast_and_extmaps() -> None:
    answer = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"
    )
    out = munge_answer(answer, CHROMIUM_OFFER)
    lines = section_lines(out, 0)
    assert lines[lines.index("a=mid:0") + 1 :][:6] == [
        f"a=extmap:10 {EXT_RID}",
        f"a=extmap:11 {EXT_RRID}",
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
    ]
    assert out.endswith("\r\n") and "a=rtpmap:96 VP8/90000" in lines
    # idempotent on its own output, no change without simulcast in the offer
    assert munge_answer(out, CHROMIUM_OFFER).count("a=simulcast:recv") == 1
    assert munge_answer(answer, answer) == answer
    # a rejected m-line stays rejected and untouched
    rejected = answer.replace("m=video 9", "m=video 0")
    assert "a=rid" not in munge_answer(rejected, CHROMIUM_OFFER)


async def test_transport_answers_chromium_simulcast_offer(worker: Worker) -> None:
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(CHROMIUM_OFFER)
    lines = section_lines(answer, 0)
    assert "a=recvonly" in lines and "a=mid:0" in lines
    assert [x for x in lines if x.startswith(("a=rid:", "a=simulcast:"))] == [
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
    ]
    (local,) = parse_media(answer)
    assert local.extensions[EXT_MID] == 9 and local.extensions[EXT_RID] == 10 and local.extensions[EXT_RRID] == 11
    assert local.main_codec is not None and local.main_codec.mime_type == "video/VP8"
    producer = t.produce("0", "camera")
    assert producer.simulcast and producer.layers == 3 and producer.rids == ("q", "h", "f")
    assert producer.ssrc is None and [la["ssrc"] for la in producer.layer_stats()] == [None, None, None]
    # the munged answer is a valid description for a WebRTC peer (aiortc parses and applies it)
    pc = client_pc()
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        t2 = worker.routers[0].create_transport("pub2")
        plain = await t2.accept_offer(offer)
        assert "a=simulcast" not in plain and not t2.produce(t2.offered_media()[0].mid, "camera").simulcast
        await pc.setRemoteDescription(RTCSessionDescription(sdp=plain, type="answer"))
    finally:
        await pc.close()


def test_layer_index() -> None:
    assert [layer_index(q) for q in ("low", "medium", "high", "HIGH")] == [0, 1, 2, 2]
    assert layer_index(5) == 5
    for bad in ("ultra", -1, True, 1.5):
        with pytest.raises(ValueError):
            layer_index(bad)  # type: ignore[arg-type]
