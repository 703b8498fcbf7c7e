"""Header parsing, rewriting, extension remapping and keyframe detection on captured packets."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from sfu import rtp
from sfu.rtp import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    EXT_MID,
    find_extension,
    is_keyframe,
    iter_extensions,
    make_id_map,
    parse_header,
    rewrite_extensions,
    rewrite_header,
    seq_newer,
)

from .offline import load_packets

VP8 = load_packets("rtp_vp8.hex")
OPUS = load_packets("rtp_opus.hex")
H264 = load_packets("rtp_h264.hex")


def aiortc_parse(data: bytes, extensions: dict[str, int]) -> RtpPacket:
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in extensions.items()]
        )
    )
    return RtpPacket.parse(data, m)


def test_parse_header_matches_aiortc_on_captured_packets() -> None:
    for data in VP8 + OPUS + H264:
        h = parse_header(data)
        ref = RtpPacket.parse(data)
        assert (h.payload_type, h.sequence_number, h.timestamp, h.ssrc, h.marker) == (
            ref.payload_type,
            ref.sequence_number,
            ref.timestamp,
            ref.ssrc,
            bool(ref.marker),
        )
        assert data[h.payload_start : h.payload_end] == ref.payload


def test_captured_packets_carry_mid_extension() -> None:
    assert find_extension(VP8[0], 1) == b"0"
    assert find_extension(OPUS[0], 1) == b"1"
    assert find_extension(OPUS[0], 9) is None
    assert find_extension(b"\x80", 1) is None


@pytest.mark.parametrize("bad", [b"", b"\x80" * 11, b"\x40" + b"\x00" * 11, b"\x90\x60" + b"\x00" * 10])
def test_parse_header_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_header(bad)


def test_parse_header_padding() -> None:
    data = bytes([0xA0, 96]) + b"\x00" * 10 + b"pay" + b"\x00\x00\x03"
    h = parse_header(data)
    assert data[h.payload_start : h.payload_end] == b"pay"
    with pytest.raises(ValueError):
        parse_header(bytes([0xA0, 96]) + b"\x00" * 10 + b"\x00")


def test_rewrite_header_in_place_keeps_marker_and_payload() -> None:
    for data in (VP8[1], OPUS[0]):
        buf = bytearray(data)
        rewrite_header(buf, 111, 65535, 0xFFFFFFFF, 0x12345678)
        ref = RtpPacket.parse(bytes(buf))
        orig = RtpPacket.parse(data)
        assert (ref.payload_type, ref.sequence_number, ref.timestamp, ref.ssrc) == (
            111,
            65535,
            0xFFFFFFFF,
            0x12345678,
        )
        assert ref.marker == orig.marker and ref.payload == orig.payload and len(buf) == len(data)


def test_extension_remap_one_byte_drops_mid_and_moves_audio_level() -> None:
    data = OPUS[0]
    src = {EXT_MID: 1, EXT_AUDIO_LEVEL: 2}
    dst = {EXT_MID: 4, EXT_AUDIO_LEVEL: 5}
    id_map = make_id_map(src, dst)
    assert id_map is not None and id_map[1] == 0 and id_map[2] == 5  # MID never forwarded
    h = parse_header(data)
    buf = bytearray(data)
    rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, id_map)
    before = aiortc_parse(data, src)
    after = aiortc_parse(bytes(buf), dst)
    assert before.extensions.mid == "1" and after.extensions.mid is None
    assert after.extensions.audio_level == before.extensions.audio_level
    assert after.payload == before.payload


def test_extension_remap_video_abs_send_time_and_drop_everything() -> None:
    data = VP8[3]
    src = {EXT_MID: 1, EXT_ABS_SEND_TIME: 3}
    h = parse_header(data)
    buf = bytearray(data)
    rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, make_id_map(src, {EXT_ABS_SEND_TIME: 7}) or b"")
    after = aiortc_parse(bytes(buf), {EXT_ABS_SEND_TIME: 7})
    assert after.extensions.abs_send_time == aiortc_parse(data, src).extensions.abs_send_time
    # a subscriber without any extension: every element becomes padding, header stays valid
    buf = bytearray(data)
    rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, make_id_map(src, {}) or b"")
    assert iter_extensions(buf, h.ext_profile, h.ext_start, h.ext_end) == []
    assert aiortc_parse(bytes(buf), src).payload == RtpPacket.parse(data).payload


def two_byte_packet(payload: bytes, elements: list[tuple[int, bytes]]) -> bytes:
    block = b"".join(bytes([i, len(v)]) + v for i, v in elements)
    block += b"\x00" * (-len(block) % 4)
    return (
        bytes([0x90, 97])
        + struct.pack("!HII", 1, 2, 3)
        + struct.pack("!HH", 0x1000, len(block) // 4)
        + block
        + payload
    )


def test_extension_remap_two_byte_form() -> None:
    payload = VP8[2][parse_header(VP8[2]).payload_start :]
    data = two_byte_packet(payload, [(1, b"0"), (3, b"\x01\x02\x03"), (20, b"")])
    h = parse_header(data)
    assert h.ext_profile == 0x1000
    id_map = make_id_map({EXT_MID: 1, EXT_ABS_SEND_TIME: 3, "urn:x": 20}, {EXT_ABS_SEND_TIME: 9, "urn:x": 30})
    assert id_map is not None
    buf = bytearray(data)
    rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, id_map)
    elements = [(i, bytes(buf[s:e])) for i, s, e in iter_extensions(buf, h.ext_profile, h.ext_start, h.ext_end)]
    assert elements == [(9, b"\x01\x02\x03"), (30, b"")]
    assert RtpPacket.parse(bytes(buf)).payload == payload


def test_identity_map_is_none() -> None:
    assert make_id_map({EXT_AUDIO_LEVEL: 2}, {EXT_AUDIO_LEVEL: 2}) is None
    assert make_id_map({EXT_MID: 1}, {EXT_MID: 1}) is not None


@given(st.binary(min_size=0, max_size=64), st.sampled_from([0xBEDE, 0x1000]))
def test_rewrite_extensions_never_overruns(block: bytes, profile: int) -> None:
    buf = bytearray(b"\xaa" * 4 + block + b"\xbb" * 4)
    rewrite_extensions(buf, profile, 4, 4 + len(block), bytes(range(256)))
    assert buf[:4] == b"\xaa" * 4 and buf[-4:] == b"\xbb" * 4 and len(buf) == len(block) + 8


def test_vp8_keyframes_in_capture() -> None:
    flags = []
    for data in VP8:
        h = parse_header(data)
        flags.append(is_keyframe("video/VP8", data, h.payload_start, h.payload_end))
    assert flags[0] is True  # the stream starts with a keyframe
    assert flags.count(True) == 2
    # a keyframe start is always S=1, PID=0 and P=0; continuation packets never count
    for data, flag in zip(VP8, flags, strict=True):
        h = parse_header(data)
        if not data[h.payload_start] & 0x10:
            assert flag is False


def test_h264_keyframes_in_capture() -> None:
    kinds = []
    for data in H264:
        h = parse_header(data)
        kinds.append(is_keyframe("video/H264", data, h.payload_start, h.payload_end))
    assert kinds[0] is True  # STAP-A with SPS/PPS
    assert kinds[1] is True  # FU-A start of the IDR slice
    assert kinds[2] is False  # FU-A continuation
    # non-IDR frames are not keyframes
    p_frames = [k for d, k in zip(H264, kinds, strict=True) if d[parse_header(d).payload_start] & 0x1F == 1]
    assert p_frames and not any(p_frames)


def test_keyframe_detection_edge_cases() -> None:
    assert not rtp.vp8_is_keyframe(b"", 0, 0)
    assert not rtp.vp8_is_keyframe(b"\x90", 0, 1)  # extended bits missing
    assert rtp.vp8_is_keyframe(b"\x10\x00", 0, 2)
    assert not rtp.vp8_is_keyframe(b"\x10\x01", 0, 2)
    assert not rtp.vp8_is_keyframe(b"\x11\x00", 0, 2)  # PID 1
    assert rtp.h264_is_keyframe(b"\x65", 0, 1)
    assert rtp.h264_is_keyframe(b"\x18\x00\x02\x67\x00", 0, 5)
    assert not rtp.h264_is_keyframe(b"\x18\x00\x00", 0, 3)
    assert not rtp.h264_is_keyframe(b"\x7c\x05", 0, 2)  # FU-A IDR, not start
    assert not is_keyframe("audio/opus", OPUS[0], 0, len(OPUS[0]))


def test_seq_newer_wraps() -> None:
    assert seq_newer(1, 0) and seq_newer(0, 65535) and not seq_newer(65535, 0) and not seq_newer(5, 5)
