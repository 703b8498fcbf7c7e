"""aiortc peer connections on the shared ICE-lite port, against full-ICE aiortc clients."""

import asyncio
import time

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from sfu import Worker, WorkerSettings, ice_lite
from sfu.udp_mux import UdpMux
from tests.sfu.helpers import connect_publisher, wait_for


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


def freeze(client: RTCPeerConnection) -> None:
    """The client goes silent (network gone, laptop lid closed): nothing it sends arrives, so it
    neither checks nor answers the server's checks; it stays open (no DTLS close_notify)."""
    conn = client.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in conn._protocols:
        protocol.transport.sendto = lambda *args, **kwargs: None


async def test_through_the_worker_a_silent_client_fails_within_the_consent_timeout_and_one_that_answers_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: consent expiry through the worker's ticker, with the worker's own setting."""
    # the aiortc clients check consent every 0.4-0.6 s instead of 4-6 s (the server is lite: it has none)
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.5)
    timeout = 2.0
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, udp_listen_address="127.0.0.1",
                                   ice_consent_timeout=timeout))
    await worker.start()
    assert worker.mux is not None and worker.mux.consent_timeout == timeout
    router = worker.create_router("room")
    pub = router.create_transport("pub")
    pub_pc, mids = await connect_publisher(pub, audio=False)
    producer = pub.produce(mids["video"], "camera")
    subs, clients, counts, states = [], [], [0, 0], [[], []]  # type: ignore[var-annotated]
    try:
        for i in range(2):
            t = router.create_transport(f"sub{i}")
            t.on_state_change = states[i].append
            t.consume(producer)
            client = pc()
            await client.setRemoteDescription(RTCSessionDescription(await t.create_offer(), "offer"))
            await client.setLocalDescription(await client.createAnswer())
            await t.accept_answer(client.localDescription.sdp)

            async def count(data: bytes, arrival_time_ms: int, i: int = i) -> None:
                counts[i] += 1

            client.getTransceivers()[0].receiver.transport._handle_rtp_data = count
            subs.append(t)
            clients.append(client)
        assert await wait_for(lambda: min(counts) > 10, 20), counts
        assert all(t.connected for t in subs)
        freeze(clients[0])
        frozen_at = time.monotonic()
        # documented: failed within consent_timeout + 1 s (the expiry scan) + a tick; 3 s more for a busy machine
        assert await wait_for(lambda: "failed" in states[0], timeout + 1.0 + 0.25 + 3.0), states
        elapsed = time.monotonic() - frozen_at
        # not before consent could have lapsed: its last check was at most one interval before the freeze
        assert elapsed >= timeout - 0.6, elapsed
        # failed first (then aiortc closes the peer connection for the ended DTLS: 'closed')
        assert states[0][:3] == ["connecting", "connected", "failed"], states[0]
        assert not subs[0].connected and not subs[0].closed  # its media path is torn down
        assert worker.mux.connections == 2 and worker.mux.stats.paths_expired >= 1
        before = counts[1]
        # the client that keeps answering keeps its media for more than another consent period
        await asyncio.sleep(timeout * 1.5)
        assert states[1] == ["connecting", "connected"], states[1]
        assert subs[1].connected and counts[1] > before
        assert pub.connected and pub.state == "connected"
    finally:
        for client in clients:
            await client.close()
        await pub_pc.close()
        await worker.close()
