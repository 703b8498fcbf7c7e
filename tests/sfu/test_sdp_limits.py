"""The SDP size checks made before any parse, the remote-candidate bound, and errors that keep
aiortc's own words out of ``str(error)`` (issue 10, items 3, 4, 11)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from sfu import InvalidCandidateError, InvalidSdpError, Worker
from sfu.errors import SdpTooLargeError, TooManyCandidatesError, TooManySectionsError
from sfu.sdp import MAX_SSRC_LINES_PER_SECTION, check_limits, count_media_sections, parse_media
from sfu.webrtc_transport import MAX_REMOTE_CANDIDATES

from .helpers import sendonly_offer
from .offline import offline_worker

CHROMIUM_OFFER = (pathlib.Path(__file__).parent.parent / "data" / "chromium_simulcast_offer.sdp").read_text()
CANDIDATE = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", "sdpMid": "0"}


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker()
    yield w
    await w.close()




def test_a_real_offer_is_within_the_limits() -> None:
    assert check_limits(CHROMIUM_OFFER, 1) == count_media_sections(CHROMIUM_OFFER) == 1


async def test_more_mlines_than_allowed_are_refused_on_a_count() -> None:
    offer = await sendonly_offer(["audio", "video", "audio"])
    assert check_limits(offer, 3) == 3
    with pytest.raises(TooManySectionsError) as e:
        check_limits(offer, 2)
    assert str(e.value) == "the description has 3 m-lines; at most 2 are accepted"
    assert isinstance(e.value, SdpTooLargeError) and isinstance(e.value, InvalidSdpError)


def test_an_mline_with_too_many_ssrc_lines_is_refused() -> None:
    ok = CHROMIUM_OFFER.rstrip("\r\n") + "\r\n" + "".join(
        f"a=ssrc:{1000 + i} cname:x\r\n" for i in range(MAX_SSRC_LINES_PER_SECTION))
    check_limits(ok, 1)
    with pytest.raises(SdpTooLargeError, match="m-line 0 is too long"):
        check_limits(ok + "a=ssrc:1 cname:x\r\n", 1)


def test_a_parse_error_keeps_aiortcs_words_in_the_detail() -> None:
    bad = CHROMIUM_OFFER.replace("m=video 9 UDP/TLS/RTP/SAVPF", "m=video 9 UDP/TLS/RTP/SAVPF 300", 1)
    assert bad != CHROMIUM_OFFER
    with pytest.raises(InvalidSdpError) as e:
        parse_media(bad)
    assert str(e.value) == "cannot parse SDP" and e.value.detail.startswith("AssertionError")


async def test_a_negotiation_error_keeps_aiortcs_words_in_the_detail(worker: Worker) -> None:
    offer = await sendonly_offer(["audio"])
    bad = "\r\n".join(x for x in offer.split("\r\n") if not x.startswith(("a=ice-ufrag", "a=ice-pwd")))
    t = worker.create_router("r").create_transport("t")
    with pytest.raises(InvalidSdpError) as e:
        await t.accept_offer(bad)
    assert str(e.value) == "cannot apply offer"
    assert "ICE username fragment or password is missing" in e.value.detail
    with pytest.raises(InvalidCandidateError) as c:
        await t.add_remote_candidate({"candidate": "candidate:1 1 udp", "sdpMid": "0"})
    assert str(c.value) == "cannot parse candidate" and c.value.detail


async def test_a_transport_takes_a_bounded_number_of_remote_candidates(worker: Worker) -> None:
    t = worker.create_router("r").create_transport("t")
    for _ in range(MAX_REMOTE_CANDIDATES - 1):
        await t.add_remote_candidate(CANDIDATE)  # before a description: buffered
    await t.add_remote_candidate(None)  # end-of-candidates counts too
    with pytest.raises(TooManyCandidatesError):
        await t.add_remote_candidate(CANDIDATE)
    with pytest.raises(TooManyCandidatesError):
        await t.add_remote_candidate(None)
    assert len(t._pending_candidates) == MAX_REMOTE_CANDIDATES
