"""Fails loudly when an aiortc/aioice upgrade moves a private name sfu/aiortc_compat.py relies on."""

from __future__ import annotations

import inspect

import aioice.ice
import aiortc
import pylibsrtp
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport

from sfu import aiortc_compat as compat


def test_aiortc_version_is_tested() -> None:
    assert compat.aiortc_version() in compat.TESTED_AIORTC_VERSIONS, (
        f"aiortc {compat.aiortc_version()} is not a version sfu/aiortc_compat.py was tested with: "
        "run tests/sfu, then add it to TESTED_AIORTC_VERSIONS"
    )


def test_dtls_transport_receive_path_calls_the_hooked_names() -> None:
    src = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "await self._handle_rtcp_data(data)" in src
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in src
    assert "self._rx_srtp.unprotect" in src
    assert list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters) == [
        "self",
        "data",
        "arrival_time_ms",
    ]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtcp_data).parameters) == ["self", "data"]
    setup = inspect.getsource(RTCDtlsTransport._setup_srtp)
    assert "self._tx_srtp = Session(tx_policy)" in setup
    assert "tx_policy.allow_repeat_tx = True" in setup  # retransmissions repeat an SRTP index


def test_aioice_data_path_names() -> None:
    src = inspect.getsource(aioice.ice.Connection.sendto)
    assert "self._nominated.get(component)" in src
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in src
    assert "self.transport.sendto(data, addr)" in inspect.getsource(aioice.ice.StunProtocol.send_data)
    assert callable(aioice.ice.get_host_addresses)
    assert "remote_addr" in dir(aioice.ice.CandidatePair)
    assert "self.receiver.data_received(data" in inspect.getsource(aioice.ice.StunProtocol.datagram_received)


def test_sender_and_receiver_names() -> None:
    assert "self.__transport._register_rtp_sender" in inspect.getsource(RTCRtpSender.send)
    assert "self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())" in inspect.getsource(RTCRtpSender.send)
    assert "decoder_thread" in inspect.getsource(RTCRtpReceiver.receive)
    assert "if self.__started:" in inspect.getsource(RTCRtpSender.stop)
    assert "if self.__started:" in inspect.getsource(RTCRtpReceiver.stop)
    src = inspect.getsource(aiortc.rtcpeerconnection.create_media_description_for_transceiver)
    assert "transceiver.sender._stream_id" in src and "transceiver.sender._track_id" in src
    assert "transceiver.sender._ssrc" in src
    assert "transceiver.sender._rtx_ssrc" in src  # compat.set_sender_rtx_ssrc (a=ssrc-group:FID)


async def test_names_exist_on_live_objects() -> None:
    pc = RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    try:
        t = pc.addTransceiver("video", direction="sendonly")
        dtls = t.receiver.transport
        for name in ("_handle_rtp_data", "_handle_rtcp_data", "_tx_srtp", "_rx_srtp", "transport", "state"):
            assert hasattr(dtls, name), name
        assert compat.tx_srtp(dtls) is None  # not connected yet
        conn = compat.ice_connection(dtls)
        assert isinstance(conn, aioice.ice.Connection) and conn._nominated == {}
        assert compat.selected_pair(dtls) is None
        assert isinstance(compat.sender_ssrc(t.sender), int)
        compat.set_sender_msid(t.sender, "stream", "track")
        assert compat.sender_msid(t.sender) == ("stream", "track")
        assert compat.install_packet_hooks(dtls, lambda d: None, lambda d: None) is True
        assert compat.install_packet_hooks(dtls, lambda d: None, lambda d: None) is False
        compat.disable_receiver(t.receiver)
        compat.disable_sender(t.sender)
        await pc.setLocalDescription(await pc.createOffer())
        assert "a=msid:stream track" in pc.localDescription.sdp
    finally:
        await pc.close()
    assert isinstance(pylibsrtp.Session, type)


def test_host_address_override() -> None:
    compat.set_host_addresses(("127.0.0.1", "::1"))
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        compat.set_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_parked_track_never_yields(kind: str) -> None:
    import asyncio

    track = compat.ParkedTrack(kind)
    assert track.kind == kind
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(track.recv(), 0.05)


def test_fast_protect_matches_pylibsrtp_wrapper() -> None:
    import os

    from pylibsrtp import Policy, Session

    from .offline import load_packets

    key = os.urandom(30)

    def session() -> Session:
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        policy.allow_repeat_tx = True
        return Session(policy)

    a, b = session(), session()
    fast = compat.fast_protect(b)
    for data in load_packets("rtp_vp8.hex")[:10] + load_packets("rtp_opus.hex")[:5]:
        assert fast(bytearray(data)) == a.protect(data)
    with pytest.raises(ValueError):
        fast(bytes(1500))
    with pytest.raises(pylibsrtp.Error):
        fast(b"\x80" * 4)


async def test_parked_receivers_get_no_bitrate_estimator_and_others_keep_theirs() -> None:
    src = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__remote_bitrate_estimator = RemoteBitrateEstimator()" in src
    compat.install_parked_receivers()
    compat.install_parked_receivers()  # idempotent
    pc = RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    try:
        with compat.parked_receivers():
            parked = pc.addTransceiver("video", direction="sendonly")
        normal = pc.addTransceiver("video", direction="recvonly")
        assert parked.receiver._RTCRtpReceiver__remote_bitrate_estimator is None
        assert normal.receiver._RTCRtpReceiver__remote_bitrate_estimator is not None
    finally:
        await pc.close()
