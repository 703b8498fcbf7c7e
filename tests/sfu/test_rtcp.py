from __future__ import annotations

import pytest
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket, RtcpSrPacket, unpack_remb_fci
from hypothesis import given
from hypothesis import strategies as st

from sfu import rtcp


def test_pli_nack_sr_parse_with_aiortc() -> None:
    (pli,) = RtcpPacket.parse(rtcp.build_pli(1, 2))
    assert isinstance(pli, RtcpPsfbPacket) and (pli.fmt, pli.ssrc, pli.media_ssrc) == (1, 1, 2)
    (nack,) = RtcpPacket.parse(rtcp.build_nack(1, 2, [65535, 0, 3, 40]))
    assert isinstance(nack, RtcpRtpfbPacket) and sorted(nack.lost) == [0, 3, 40, 65535]
    (sr,) = RtcpPacket.parse(rtcp.build_sr(9, 1 << 40, 1234, 5, 6))
    assert isinstance(sr, RtcpSrPacket) and sr.sender_info.rtp_timestamp == 1234
    assert sr.sender_info.ntp_timestamp == 1 << 40 and sr.sender_info.packet_count == 5


def test_remb_roundtrip_with_aiortc() -> None:
    data = rtcp.build_remb(7, 3_000_000, [11, 12])
    (pkt,) = RtcpPacket.parse(data)
    bitrate, ssrcs = unpack_remb_fci(pkt.fci)
    assert ssrcs == [11, 12] and abs(bitrate - 3_000_000) < 3_000_000 / 1000
    ((_pt, _fmt, start, end),) = rtcp.split_compound(data)
    assert rtcp.parse_remb(data, start, end) == (bitrate, [11, 12])


def test_split_compound_and_parse() -> None:
    data = rtcp.build_sr(9, 10, 11, 1, 2) + rtcp.build_nack(3, 4, [100, 101, 117, 118]) + rtcp.build_pli(3, 4)
    parts = rtcp.split_compound(data)
    assert [(p[0], p[1]) for p in parts] == [(200, 0), (205, 1), (206, 1)]
    assert rtcp.parse_sr(data, parts[0][2], parts[0][3]) == (9, 10, 11)
    media, lost = rtcp.parse_nack(data, parts[1][2], parts[1][3])
    assert media == 4 and sorted(lost) == [100, 101, 117, 118]
    assert rtcp.feedback_ssrcs(data, parts[2][2], parts[2][3]) == (3, 4)


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x80\xc9", b"\x80\xc9\x00\x05\x00\x00\x00\x01", b"\x40\xc9\x00\x00", rtcp.build_pli(1, 2)[:-1]],
)
def test_truncated_compound_raises(bad: bytes) -> None:
    with pytest.raises(ValueError):
        rtcp.split_compound(bad)


@given(st.binary(max_size=80))
def test_split_compound_only_raises_value_error(data: bytes) -> None:
    try:
        for _pt, _fmt, start, end in rtcp.split_compound(data):
            assert 0 <= start < end <= len(data)
    except ValueError:
        pass


def test_rr_parses_with_aiortc() -> None:
    from aiortc.rtp import RtcpRrPacket

    data = rtcp.build_rr(5, [(7, 25, 3, 70000, 0, 0x12345678, 65536), (8, 0, -1, 1, 0, 0, 0)])
    (rr,) = RtcpPacket.parse(data)
    assert isinstance(rr, RtcpRrPacket) and rr.ssrc == 5
    a, b = rr.reports
    assert (a.ssrc, a.fraction_lost, a.packets_lost, a.highest_sequence, a.lsr, a.dlsr) == (
        7,
        25,
        3,
        70000,
        0x12345678,
        65536,
    )
    assert (b.ssrc, b.packets_lost) == (8, -1)
