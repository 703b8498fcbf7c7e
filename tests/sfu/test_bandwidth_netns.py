"""A publisher on a really limited uplink (tests/netns.py: tc tbf at 800 kbit/s, 20 ms each way):
an aiortc publisher, whose VP8 encoder follows the REMB it gets, sends into an in-process Worker on
the shared port in the server's namespace. With the receive-side estimate (sfu.bandwidth_estimator)
the REMB falls below the link's rate within seconds and the publisher stops losing packets; with
the fixed 3 Mbit/s REMB it kept sending ~1.4 Mbit/s into the 800 kbit/s link, losing ~70 packets a
second for as long as it ran (measured: see docs/sfu.md, "Bandwidth")."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiortc import RTCSessionDescription

from sfu import Worker, WorkerSettings, aiortc_compat
from tests import netns

from .helpers import NoisyVideoTrack, client_pc

pytestmark = pytest.mark.skipif(netns.missing() is not None, reason=f"impaired links: {netns.missing()}")


async def test_a_publisher_on_an_800_kbits_uplink_settles_below_it_and_stops_losing_packets() -> None:
    try:
        net = netns.Network()
    except netns.NetnsUnavailable as e:
        pytest.skip(str(e))
    # aioice's host addresses are process-wide: an earlier test's Worker(host_addresses=("127.0.0.1",))
    # would leave the client nothing to gather in its namespace
    with net, contextlib.ExitStack() as stack:
        stack.enter_context(aiortc_compat.host_addresses(None))
        link = net.add_client("pub")
        link.uplink.apply(netns.Impairment(rate_kbit=800, delay_ms=20))
        link.downlink.apply(netns.Impairment(delay_ms=20))
        with net.server.entered():  # the shared port's socket in the server's namespace
            worker = Worker(
                WorkerSettings(
                    udp_port=0, udp_listen_address=netns.SERVER_ADDRESS, announced_addresses=(netns.SERVER_ADDRESS,)
                )
            )
            await worker.start()
        pc = None
        try:
            transport = worker.create_router("r").create_transport("pub")
            with link.namespace.entered():  # the client's sockets in its own namespace
                pc = client_pc()
                pc.addTrack(NoisyVideoTrack(noisy_rows=8))  # an encoder that can meet its target
                await pc.setLocalDescription(await pc.createOffer())
            answer = await transport.accept_offer(pc.localDescription.sdp)
            producer = transport.produce("0", "camera")
            with link.namespace.entered():
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            start = time.monotonic()
            samples: list[tuple[float, int, int]] = []  # (s since start, bytes sent, numbers missing)
            while time.monotonic() - start < 12:
                await asyncio.sleep(1.0)
                report = await pc.getStats()
                sent = sum(getattr(r, "bytesSent", 0) for r in report.values() if r.type == "outbound-rtp")
                stats = producer.nack_stats
                samples.append((time.monotonic() - start, sent, stats.missing if stats else 0))
            congestion = transport._congestion
            assert congestion is not None and congestion.estimator is not None
            estimate = congestion.estimator.estimate
            assert estimate is not None and estimate < 800_000, samples
            # the last 5 s: the publisher sends below the link's rate and (nearly) nothing is lost
            (t0, bytes0, missing0), (t1, bytes1, missing1) = samples[-6], samples[-1]
            rate = (bytes1 - bytes0) * 8 / (t1 - t0)
            assert rate < 800_000, samples
            assert missing1 - missing0 <= 10, samples
        finally:
            if pc is not None:
                await pc.close()
            await worker.close()
