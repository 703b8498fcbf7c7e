"""The SDP size checks made before any parse, the remote-candidate bound, and errors that keep
aiortc's own words out of ``str(error)`` (issue 10, items 3, 4, 11)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from sfu import InvalidCandidateError, InvalidSdpError, Worker
from sfu.errors import SdpTooLargeError, TooManyCandidatesError, TooManySectionsError
from sfu.sdp import (
    MAX_SSRC_LINES_PER_SECTION,
    check_candidate,
    check_limits,
    check_lines,
    count_media_sections,
    parse_media,
)
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


# (what to replace in the Chromium offer, with what, the message): each malformed line aiortc would
# refuse with its own words (an assert, int(), an unpack) or misread is refused by check_lines by name
MALFORMED_LINES = [
    ("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 9 UDP/TLS/RTP/SAVPF 300 96",
     "m-line 0 (a=mid:0): m=video 9 UDP/TLS/RTP/SAVPF 300 96 97 102 103 104 107 108 109 11...: "
     "payload type 300 is not 0..127 (72..76 excluded, RFC 5761)"),
    ("m=video 9 UDP/TLS/RTP/SAVPF", "m=video nine UDP/TLS/RTP/SAVPF",
     "m-line 0 (a=mid:0): m=video nine UDP/TLS/RTP/SAVPF 96 97 102 103 104 107 108 109 114...: "
     "not m=<media> <port> <proto> <fmt> ..."),
    ("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8",
     "m-line 0 (a=mid:0): a=rtpmap:96 VP8: not <encoding>/<clock rate>: the clock rate is not a number"),
    ("a=rtpmap:96 VP8/90000", "a=rtpmap:300 VP8/90000",
     "m-line 0 (a=mid:0): a=rtpmap:300 VP8/90000: a payload type is not 0..127"),
    ("a=fmtp:97 apt=96", "a=fmtp:97 apt=x", "m-line 0 (a=mid:0): a=fmtp:97 apt=x: apt is not a number"),
    ("a=fmtp:97 apt=96", "a=fmtp:55 apt=96",
     "m-line 0 (a=mid:0): a=fmtp:55 apt=96: no a=rtpmap in this m-line has this payload type"),
    ("a=extmap:1 urn:ietf:params:rtp-hdrext:toffset", "a=extmap:99999 urn:ietf:params:rtp-hdrext:toffset",
     "m-line 0 (a=mid:0): a=extmap:99999 urn:ietf:params:rtp-hdrext:toffset: "
     "a header extension id is not 1..255"),
    ("a=extmap:1 urn:ietf:params:rtp-hdrext:toffset", "a=extmap:1",
     "m-line 0 (a=mid:0): a=extmap:1: "
     "not a=extmap:<id>[/<direction>] <uri> (extension attributes are not supported)"),
    ("a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:x", "m-line 0 (a=mid:0): a=rtcp:x: the port is not a number 0..65535"),
    ("c=IN IP4 0.0.0.0", "c=IN IP4", "m-line 0 (a=mid:0): c=IN IP4: not c=IN IP4|IP6 <address>"),
    ("a=setup:actpass", "a=setup:maybe", "m-line 0 (a=mid:0): a=setup:maybe: not actpass, active or passive"),
    ("a=rtcp-fb:96 nack pli", "a=rtcp-fb:96",
     "m-line 0 (a=mid:0): a=rtcp-fb:96: not a=rtcp-fb:<payload type> <feedback>"),
    ("a=mid:0", "a=mid:0\r\na=ssrc:4294967296 cname:x",
     "m-line 0 (a=mid:0): a=ssrc:4294967296 cname:x: an SSRC is not a 32-bit number"),
    ("a=mid:0", "a=mid:0\r\na=ssrc:1 cname",
     "m-line 0 (a=mid:0): a=ssrc:1 cname: not a=ssrc:<ssrc> <attribute>:<value>"),
    ("a=mid:0", "a=mid:0\r\na=ssrc-group:FID 1 -2",
     "m-line 0 (a=mid:0): a=ssrc-group:FID 1 -2: an SSRC is not a 32-bit number"),
    ("a=mid:0", "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 port typ host",
     "m-line 0 (a=mid:0): a=candidate:1 1 udp 2130706431 127.0.0.1 port typ host: "
     "the port is not a number 0..65535"),
    ("a=mid:0", "a=mid:0\r\na=candidate:1 1 udp",
     "m-line 0 (a=mid:0): a=candidate:1 1 udp: "
     "not <foundation> <component> <transport> <priority> <address> <port> typ <type>"),
    ("t=0 0", "t=0 0\r\na=group", "session level: a=group: a=group has no value"),
    ("t=0 0", "t=0 0\r\na=fingerprint:sha-256",
     "session level: a=fingerprint:sha-256: not a=fingerprint:<hash> <value>"),
    ("a=mid:0", "a=mid:0\r\na=ssrc:1\x00\x1b[2J cname:x",
     "m-line 0 (a=mid:0): a=ssrc:1??[2J cname:x: an SSRC is not a 32-bit number"),  # quoted printable
]


@pytest.mark.parametrize(("old", "new", "message"), MALFORMED_LINES)
def test_a_malformed_line_is_refused_by_name_before_aiortc_parses(old: str, new: str, message: str) -> None:
    bad = CHROMIUM_OFFER.replace(old, new, 1)
    assert bad != CHROMIUM_OFFER
    with pytest.raises(InvalidSdpError) as e:
        parse_media(bad)
    assert str(e.value) == message
    assert not e.value.detail  # refused before aiortc: nothing of aiortc's to log


def test_every_line_of_real_descriptions_passes_the_line_checks() -> None:
    paths = sorted((pathlib.Path(__file__).parent.parent / "data").glob("*.sdp"))
    assert len(paths) >= 5  # Chromium, Firefox (offers, screen, simulcast, an answer), aiortc
    for path in paths:
        check_lines(path.read_text())


def test_a_trickled_candidate_is_refused_by_name() -> None:
    check_candidate(CANDIDATE["candidate"])
    check_candidate("candidate:1 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active")
    with pytest.raises(InvalidCandidateError) as e:
        check_candidate("candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host rport x")
    assert str(e.value) == ("candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host rport x: "
                            "rport is not a number 0..65535")
    with pytest.raises(InvalidCandidateError) as e:
        check_candidate("candidate:1 one udp 2130706431 127.0.0.1 40000 typ host")
    assert str(e.value).endswith(": the component is not a number 1..256")


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
    assert t._negotiation.pending_candidates == MAX_REMOTE_CANDIDATES
