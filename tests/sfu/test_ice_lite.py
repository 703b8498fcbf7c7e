"""aiortc peer connections on the shared ICE-lite port, against full-ICE aiortc clients."""

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from sfu import ice_lite
from sfu.udp_mux import UdpMux


@pytest.fixture
async def mux() -> UdpMux:
    ice_lite.install()
    m = UdpMux("127.0.0.1", 0)
    await m.start()
    yield m  # type: ignore[misc]
    m.close()


def pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def test_server_answer_is_ice_lite_on_the_shared_port_and_dtls_connects(mux: UdpMux) -> None:
    client, server = pc(), pc()
    client.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await client.setLocalDescription(await client.createOffer())
    with ice_lite.using_mux(mux):
        await server.setRemoteDescription(client.localDescription)
        await server.setLocalDescription(await server.createAnswer())
    answer = server.localDescription.sdp
    assert "a=ice-lite" in answer
    cands = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
    assert cands and all(f" {mux.port} typ host" in c for c in cands)
    assert ice_lite.is_lite(server) and not ice_lite.is_lite(client)
    await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for _ in range(100):
        if server.connectionState == "connected" and client.connectionState == "connected":
            break
        await asyncio.sleep(0.05)
    assert (server.connectionState, client.connectionState) == ("connected", "connected")
    assert mux.stats.stun_requests >= 1
    await client.close()
    await server.close()
    assert mux.connections == 0


async def test_server_offer_is_ice_lite_and_the_client_controls(mux: UdpMux) -> None:
    client, server = pc(), pc()
    with ice_lite.using_mux(mux):
        server.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await server.setLocalDescription(await server.createOffer())
    assert "a=ice-lite" in server.localDescription.sdp
    await client.setRemoteDescription(server.localDescription)
    await client.setLocalDescription(await client.createAnswer())
    await server.setRemoteDescription(client.localDescription)
    for _ in range(100):
        if server.connectionState == "connected" and client.connectionState == "connected":
            break
        await asyncio.sleep(0.05)
    assert (server.connectionState, client.connectionState) == ("connected", "connected")
    await client.close()
    await server.close()


async def test_gatherers_outside_the_block_are_aiortcs_own(mux: UdpMux) -> None:
    p = pc()
    p.addTransceiver("audio")
    await p.setLocalDescription(await p.createOffer())
    assert "a=ice-lite" not in p.localDescription.sdp and not ice_lite.is_lite(p)
    await p.close()
