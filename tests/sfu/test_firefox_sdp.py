"""Firefox's SDP, as Firefox ESR 153 wrote it (captured from the browser into tests/data/):

- every m-line after the first is offered ``a=bundle-only`` with port 0 (RFC 8843 section 7.5.3):
  it shares the BUNDLE transport and is not rejected;
- ``a=extmap:<id>/<direction>``, ``a=extmap-allow-mixed``, ``{uuid}`` msids, G722/PCMU/PCMA and
  telephone-event next to Opus, transport-cc feedback, rtcp component 2 candidates;
- simulcast: ``a=rid:<id> send`` + ``a=simulcast:send q;h;f`` like Chromium, but also an
  ``a=ssrc`` for each layer (and its RTX) with FID groups and no SIM group.

Captured with ``python -m tests.e2e.firefox.capture_sdp`` (Debian's firefox-esr adds the tracks
like web/session.js: addTransceiver sendonly, camera sendEncodings q/h/f):
firefox_offer.sdp (microphone + camera), firefox_simulcast_offer.sdp (camera with sendEncodings
q/h/f), firefox_screen_offer.sdp (microphone + camera + a third video track, the screen share),
firefox_answer.sdp (Firefox's answer to the server's offer of a microphone and a simulcast camera).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sfu import Worker
from sfu.rtp import EXT_MID, EXT_RID, EXT_RRID
from sfu.sdp import parse_media

from .offline import DATA, offline_worker, section_lines

OFFER = (DATA / "firefox_offer.sdp").read_text()
SIMULCAST_OFFER = (DATA / "firefox_simulcast_offer.sdp").read_text()
SCREEN_OFFER = (DATA / "firefox_screen_offer.sdp").read_text()
ANSWER = (DATA / "firefox_answer.sdp").read_text()


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker()
    yield w
    await w.close()


def test_the_captures_are_firefox_offers_with_bundle_only_mlines() -> None:
    for offer in (OFFER, SIMULCAST_OFFER, SCREEN_OFFER):
        assert offer.startswith("v=0\no=mozilla...THIS_IS_SDPARTA")
        assert "a=extmap-allow-mixed" in offer and "/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level" in offer
        assert "a=rtpmap:9 G722/8000/1" in offer and "a=rtpmap:101 telephone-event/8000" in offer
        video = section_lines(offer, 1)
        assert video[0].startswith("m=video 0 ") and "a=bundle-only" in video


def test_a_bundle_only_mline_with_port_0_is_sending_not_rejected() -> None:
    audio, video = parse_media(OFFER)
    assert (audio.kind, audio.direction, audio.sending) == ("audio", "sendonly", True)
    assert (video.kind, video.direction, video.sending) == ("video", "sendonly", True)
    assert audio.main_codec is not None and audio.main_codec.mime_type == "audio/opus"
    assert video.main_codec is not None and video.main_codec.mime_type == "video/VP8"
    # Firefox's braces in the msid and the direction suffix of an extmap id are read as written
    assert video.msid is not None and video.msid.startswith("{") and video.msid.endswith("}")
    assert audio.extensions["urn:ietf:params:rtp-hdrext:csrc-audio-level"] == 2
    assert len(video.ssrcs) == 1 and len(video.rtx_ssrcs) == 1
    screen = parse_media(SCREEN_OFFER)
    assert [(m.mid, m.kind, m.sending) for m in screen] == [("0", "audio", True), ("1", "video", True),
                                                            ("2", "video", True)]


def test_port_0_without_bundle_only_or_outside_the_bundle_group_is_still_rejected() -> None:
    plain_zero = OFFER.replace("a=bundle-only\n", "")
    assert [m.direction for m in parse_media(plain_zero)] == ["sendonly", "inactive"]
    unbundled = OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0")
    assert [m.direction for m in parse_media(unbundled)] == ["sendonly", "inactive"]


def test_firefox_simulcast_offer_reads_rids_in_send_order_and_layer_ssrcs() -> None:
    _audio, video = parse_media(SIMULCAST_OFFER)
    assert video.sending and video.rids == ("q", "h", "f") and video.simulcast
    # Firefox announces each layer's SSRC and RTX SSRC (FID groups, no SIM group): the layers are
    # bound by the rid header extension of their packets, the RTX SSRCs are known from the start
    assert len(video.ssrcs) == 3 and len(video.rtx_ssrcs) == 3 and video.simulcast_ssrcs == ()
    assert video.extensions[EXT_RID] == 9 and video.extensions[EXT_RRID] == 10


async def test_transport_answers_firefox_offer_and_produces_both_tracks(worker: Worker) -> None:
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(OFFER)
    audio, video = parse_media(answer)
    assert (audio.direction, video.direction) == ("recvonly", "recvonly")  # the video m-line is accepted
    assert section_lines(answer, 1)[0].split()[1] != "0"
    mic = t.produce("0", "microphone")
    cam = t.produce("1", "camera")
    assert mic.codec == "audio/opus" and cam.codec == "video/VP8" and not cam.simulcast
    assert cam.ssrc == parse_media(OFFER)[1].ssrcs[0]


async def test_transport_answers_firefox_screen_share_offer(worker: Worker) -> None:
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(SCREEN_OFFER)
    assert [m.direction for m in parse_media(answer)] == ["recvonly"] * 3
    assert t.produce("2", "screen").kind == "video"


async def test_transport_answers_firefox_simulcast_with_rids(worker: Worker) -> None:
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(SIMULCAST_OFFER)
    lines = section_lines(answer, 1)
    assert [x for x in lines if x.startswith(("a=rid:", "a=simulcast:"))] == [
        "a=rid:q recv", "a=rid:h recv", "a=rid:f recv", "a=simulcast:recv q;h;f"]
    (_, local) = parse_media(answer)
    assert local.extensions[EXT_MID] == 3 and local.extensions[EXT_RID] == 9 and local.extensions[EXT_RRID] == 10
    producer = t.produce("1", "camera")
    assert producer.simulcast and producer.rids == ("q", "h", "f") and producer.ssrc is None
    assert set(producer.rtx_ssrcs) == set(parse_media(SIMULCAST_OFFER)[1].rtx_ssrcs)


async def test_firefox_answer_to_the_servers_offer_is_applied(worker: Worker) -> None:
    router = worker.create_router("r")
    pub = router.create_transport("pub")
    await pub.accept_offer(SIMULCAST_OFFER)
    producers = [pub.produce("0", "microphone"), pub.produce("1", "camera")]
    sub = router.create_transport("sub")
    consumers = [sub.consume(p) for p in producers]
    offer = await sub.create_offer()
    assert [m.mid for m in parse_media(offer)] == ["0", "1"]  # the m-lines the capture answered
    assert ANSWER.startswith("v=0\no=mozilla...THIS_IS_SDPARTA") and "a=setup:active" in ANSWER
    await sub.accept_answer(ANSWER)
    assert not sub.negotiation_needed
    assert [c.kind for c in consumers] == ["audio", "video"]
    assert [m.direction for m in parse_media(ANSWER)] == ["recvonly", "recvonly"]
