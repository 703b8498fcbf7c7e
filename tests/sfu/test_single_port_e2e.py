"""Many WebRTC transports on one UDP port (ICE-lite) with real aiortc clients and real DTLS/SRTP."""

import os

import pytest
from aiortc import RTCSessionDescription

from sfu import Worker, WorkerSettings, ice_lite
from tests.sfu.helpers import client_pc, connect_publisher, wait_for

N_DEFAULT = 20
N_SLOW = 210


@pytest.mark.parametrize("n", [pytest.param(N_DEFAULT, id="20"),
                               pytest.param(N_SLOW, id="210", marks=pytest.mark.slow)])
async def test_transports_share_one_udp_port_and_all_receive_media(n: int) -> None:
    if n == N_SLOW and not os.environ.get("UROK_SLOW"):
        pytest.skip("set UROK_SLOW=1 for the 210-transport run")
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, udp_listen_address="127.0.0.1"))
    await worker.start()
    assert worker.mux is not None and worker.udp_port
    router = worker.create_router("room")
    pub = router.create_transport("pub")
    pub_pc, mids = await connect_publisher(pub, audio=False)
    producer = pub.produce(mids["video"], "camera")
    counts = [0] * n
    clients = []
    try:
        for i in range(n):
            t = router.create_transport(f"sub{i}")
            t.consume(producer)
            offer = await t.create_offer()
            assert "a=ice-lite" in offer and f" {worker.udp_port} typ host" in offer
            pc = client_pc()
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await t.accept_answer(pc.localDescription.sdp)
            dtls = pc.getTransceivers()[0].receiver.transport

            async def count(data: bytes, arrival_time_ms: int, i: int = i) -> None:
                counts[i] += 1

            dtls._handle_rtp_data = count  # count packets, no decoding (a light client)
            clients.append(pc)
        assert all(ice_lite.is_lite(t.peer_connection) for t in router.transports)
        assert worker.mux.connections == n + 1  # every transport, publisher included, on the one port
        assert await wait_for(lambda: min(counts) > 10, 30 + n * 0.1), sorted(counts)[:5]
        # on the shared port (sendmmsg batches) every steady consumer is on the compiled fan-out
        assert [c.fast for c in producer.consumers] == [worker.fast_path and worker.mux.batching] * n
    finally:
        for pc in clients:
            await pc.close()
        await pub_pc.close()
        await worker.close()
