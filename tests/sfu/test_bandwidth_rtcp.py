"""The RTCP the bandwidth estimators read and write: receiver report blocks (loss for the
downlink estimate) against aiortc's own receiver and sender reports, and REMB values as Chromium
encodes them (18-bit mantissa, 6-bit exponent)."""

from __future__ import annotations

from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket
from hypothesis import given
from hypothesis import strategies as st

from sfu import rtcp


def _info(ssrc: int, fraction: int, lost: int) -> RtcpReceiverInfo:
    return RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=fraction,
        packets_lost=lost,
        highest_sequence=70000 + ssrc,
        jitter=12,
        lsr=0x12345678,
        dlsr=65536,
    )


def test_report_blocks_of_aiortcs_receiver_and_sender_reports() -> None:
    rr = bytes(RtcpRrPacket(ssrc=1, reports=[_info(10, 64, 5), _info(11, 255, -3)]))
    sr = bytes(
        RtcpSrPacket(
            ssrc=2,
            sender_info=RtcpSenderInfo(ntp_timestamp=1 << 40, rtp_timestamp=5, packet_count=1, octet_count=2),
            reports=[_info(12, 0, 0)],
        )
    )
    data = rr + sr
    (pt1, rc1, s1, e1), (pt2, rc2, s2, e2) = rtcp.split_compound(data)
    assert (pt1, rc1, pt2, rc2) == (rtcp.RTCP_RR, 2, rtcp.RTCP_SR, 1)
    assert rtcp.parse_report_blocks(data, s1, e1, rc1) == [
        (10, 64, 5, 70010, 12, 0x12345678, 65536),
        (11, 255, -3, 70011, 12, 0x12345678, 65536),
    ]
    assert rtcp.parse_report_blocks(data, s2, e2, rc2) == [(12, 0, 0, 70012, 12, 0x12345678, 65536)]


def test_a_report_count_larger_than_the_packet_reads_what_fits() -> None:
    data = rtcp.build_rr(1, [(10, 1, 2, 3, 4, 5, 6)])
    assert rtcp.parse_report_blocks(data, 0, len(data), 5) == [(10, 1, 2, 3, 4, 5, 6)]
    assert rtcp.parse_report_blocks(data, 0, len(data) - 1, 1) == []


@given(st.integers(0, 10**10))
def test_remb_keeps_three_significant_figures_and_never_overstates(bitrate: int) -> None:
    data = rtcp.build_remb(1, bitrate, [5])
    value, ssrcs = rtcp.parse_remb(data, 0, len(data))
    assert ssrcs == [5]
    assert value <= bitrate and bitrate - value <= max(1, bitrate >> 17)
