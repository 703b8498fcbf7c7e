"""RTX (RFC 4588): unwrapping a publisher's retransmission into its original packet and wrapping
one (sfu.rtx), checked against aiortc's own implementation on captured packets; and what the SDP
says about RTX (sfu.sdp: the apt map, FID pairs, whether an answer negotiates it), on the
captured Chromium, Firefox and aiortc offers and the server's real answers to them."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtpPacket, unwrap_rtx, wrap_rtx
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import Worker
from sfu import rtx as rtx_mod
from sfu.rtx import RtxUnwrapper, original_sequence, unwrap, wrap
from sfu.sdp import parse_media, rtx_negotiated, rtx_payload_types

from .offline import DATA, load_packets, offline_worker, section_lines

VP8 = load_packets("rtp_vp8.hex")
H264 = load_packets("rtp_h264.hex")
OPUS = load_packets("rtp_opus.hex")
OFFERS = {
    "chromium": (DATA / "chromium_simulcast_offer.sdp").read_text(),
    "firefox": (DATA / "firefox_offer.sdp").read_text(),
    "aiortc": (DATA / "aiortc_offer.sdp").read_text(),
}


def _fields(p: RtpPacket) -> tuple[object, ...]:
    return (p.version, p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc, p.csrc,
            p.extensions.mid, p.extensions.abs_send_time, p.extensions.audio_level, p.payload)


@pytest.mark.parametrize("packets", [VP8, H264, OPUS], ids=["vp8", "h264", "opus"])
def test_wrap_and_unwrap_agree_with_aiortc_and_round_trip_byte_for_byte(packets: list[bytes]) -> None:
    for i, data in enumerate(packets[:50]):
        original = RtpPacket.parse(data)
        rtx = wrap(data, 97, 0xABCDEF01, 65530 + i)
        assert rtx is not None
        ref = wrap_rtx(original, payload_type=97, sequence_number=(65530 + i) & 0xFFFF, ssrc=0xABCDEF01)
        assert _fields(RtpPacket.parse(rtx)) == _fields(ref)
        assert original_sequence(rtx) == original.sequence_number
        back = unwrap(rtx, original.payload_type, original.ssrc)
        assert back == data  # byte for byte: header extensions, marker, timestamp untouched
        # and aiortc's unwrap of our RTX packet gives the original too
        assert _fields(unwrap_rtx(RtpPacket.parse(rtx), original.payload_type, original.ssrc)) == _fields(original)


def test_unwrap_works_on_bytearray_and_memoryview_and_returns_bytes() -> None:
    rtx = wrap(VP8[3], 97, 5, 9)
    assert rtx is not None
    for form in (bytearray(rtx), memoryview(rtx)):
        out = unwrap(form, VP8[3][1] & 0x7F, struct.unpack_from("!I", VP8[3], 8)[0])
        assert isinstance(out, bytes) and out == VP8[3]


def test_padding_is_kept_at_the_end_and_a_padding_only_probe_has_nothing_to_unwrap() -> None:
    base = bytearray(VP8[5])
    base[0] |= 0x20
    padded = bytes(base) + b"\x00\x00\x03"  # 3 bytes of padding, the count last
    rtx = wrap(padded, 97, 5, 1)
    assert rtx is not None and rtx.endswith(b"\x00\x00\x03")
    assert unwrap(rtx, padded[1] & 0x7F, struct.unpack_from("!I", padded, 8)[0]) == padded
    # Chromium's bandwidth probes on the RTX SSRC: a header and padding, no OSN
    probe = struct.pack("!BBHII", 0xA0, 97, 7, 1000, 5) + bytes(254) + b"\xff"  # 255 bytes of padding
    assert original_sequence(probe) is None and unwrap(probe, 96, 1) is None
    unwrapper = RtxUnwrapper({97: 96}, 1)
    assert unwrapper.unwrap(probe) is None and unwrapper.padding == 1 and unwrapper.packets == 0


def test_malformed_packets_are_refused_without_raising() -> None:
    good = wrap(VP8[0], 97, 5, 1)
    assert good is not None
    cases = [
        b"",
        good[:11],  # shorter than the fixed header
        bytes([0x40]) + good[1:],  # version 1
        bytes([good[0] | 0x0F]) + good[1:20],  # 15 CSRCs that are not there
        bytes([good[0] | 0x20]) + good[1:-1] + b"\x00",  # padding count 0
        struct.pack("!BBHII", 0xA0, 97, 1, 2, 3) + b"\x00\x01\x00\x09",  # padding longer than the payload
        struct.pack("!BBHII", 0x90, 97, 1, 2, 3) + b"\xbe\xde\x00\x09",  # extension past the end
        struct.pack("!BBHII", 0x80, 97, 1, 2, 3) + b"\x01",  # one byte: no whole OSN
    ]
    for data in cases:
        assert unwrap(data, 96, 1) is None
        assert original_sequence(data) is None
    assert wrap(b"\x80\x60", 97, 1, 1) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_unwrap_to_none_or_a_packet_two_bytes_shorter(data: bytes) -> None:
    out = unwrap(data, 96, 7)
    assert out is None or len(out) == len(data) - 2
    wrapped = wrap(data, 97, 7, 1)
    assert wrapped is None or (len(wrapped) == len(data) + 2 and unwrap(wrapped, data[1] & 0x7F,
                                                                       struct.unpack_from("!I", data, 8)[0]) == data)


def test_the_unwrapper_maps_the_rtx_payload_type_to_its_apt_and_counts() -> None:
    media_ssrc = struct.unpack_from("!I", VP8[0], 8)[0]
    vp8_pt = VP8[0][1] & 0x7F
    u = RtxUnwrapper({97: vp8_pt, 99: 100}, media_ssrc)
    rtx = wrap(VP8[0], 97, 0x1234, 77)
    assert rtx is not None and u.unwrap(rtx) == VP8[0] and u.packets == 1
    other = wrap(VP8[0], 98, 0x1234, 78)  # not an RTX payload type of this stream
    assert other is not None and u.unwrap(other) is None and u.packets == 1
    assert u.unwrap(b"\x80") is None
    assert rtx_mod.original_sequence(rtx) == struct.unpack_from("!H", VP8[0], 2)[0]


# ---- SDP ------------------------------------------------------------------------------------------
def test_offers_give_their_rtx_payload_types_and_fid_pairs() -> None:
    chromium = parse_media(OFFERS["chromium"])[0]
    codecs = rtx_payload_types(chromium.codecs)
    vp8 = chromium.main_codec
    assert vp8 is not None and vp8.nack and chromium.rtx_payload_type(vp8.payload_type) in codecs
    assert all(apt in {c.payload_type for c in chromium.codecs} for apt in codecs.values())
    assert chromium.rtx_pairs == ()  # rid simulcast: no SSRCs announced, the repaired-rid names them
    _audio, video = parse_media(OFFERS["firefox"])
    assert video.rtx_pairs == ((1897110127, 3297868789),)
    assert video.rtx_ssrc(1897110127) == 3297868789 and video.rtx_ssrc(1) is None
    assert rtx_payload_types(video.codecs)[124] == 120
    aiortc_video = next(m for m in parse_media(OFFERS["aiortc"]) if m.kind == "video")
    assert aiortc_video.rtx_pairs == ((2008862822, 774195598),)
    assert aiortc_video.ssrcs == (2008862822,) and aiortc_video.rtx_ssrcs == (774195598,)


def test_an_apt_naming_no_codec_is_not_an_rtx_mapping() -> None:
    from sfu.sdp import CodecInfo

    codecs = (CodecInfo("video/VP8", 96, 90000), CodecInfo("video/rtx", 97, 90000, parameters={"apt": 96}),
              CodecInfo("video/rtx", 98, 90000, parameters={"apt": 50}),
              CodecInfo("video/rtx", 99, 90000, parameters={"apt": "96"}),
              CodecInfo("video/rtx", 100, 90000))
    assert rtx_payload_types(codecs) == {97: 96, 99: 96}


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker()
    yield w
    await w.close()


@pytest.mark.parametrize("name", sorted(OFFERS))
async def test_the_answer_to_each_captured_offer_negotiates_rtx_and_nack_for_video(worker: Worker,
                                                                                    name: str) -> None:
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(OFFERS[name])
    for index, section in enumerate(parse_media(answer)):
        if section.kind == "audio":
            assert not rtx_negotiated(section)  # browsers offer no NACK for Opus
            continue
        codec = section.main_codec
        assert codec is not None and rtx_negotiated(section)
        rtx_pt = section.rtx_payload_type(codec.payload_type)
        assert rtx_pt is not None
        lines = section_lines(answer, index)
        assert f"a=rtpmap:{rtx_pt} rtx/90000" in lines and f"a=fmtp:{rtx_pt} apt={codec.payload_type}" in lines
        assert f"a=rtcp-fb:{codec.payload_type} nack" in lines
        # the payload types the publisher will use are those of its offer (the answer echoes them)
        offered = next(m for m in parse_media(OFFERS[name]) if m.mid == section.mid)
        assert rtx_payload_types(offered.codecs)[rtx_pt] == codec.payload_type
