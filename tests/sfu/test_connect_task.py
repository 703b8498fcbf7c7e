"""A transport closed while aiortc still connects it leaves no failed task behind (issue 10).

aiortc starts ICE and DTLS in ``RTCPeerConnection.__connect``, a task it never awaits. Closing the
transport under it (a client that publishes and leaves at once) made that task fail ("RTCIceTransport
is closed"), and asyncio reported "Task exception was never retrieved" when it was collected: the
fuzzing run saw 252 of them. ``sfu.aiortc_compat.guard_connect_task`` ends it quietly after close.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from sfu import Worker, WorkerSettings

from .helpers import client_pc


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    """On the shared port (ICE-lite), where the connect task reaches ICE at once and the close
    lands inside it (with sockets of its own, aioice's gathering comes first)."""
    w = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0))
    await w.start()
    yield w
    await w.close()


def test_aiortc_still_has_the_connect_task_that_the_guard_wraps() -> None:
    assert callable(getattr(RTCPeerConnection, "_RTCPeerConnection__connect", None))


async def test_closing_a_transport_while_it_connects_leaves_no_failed_task(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        router = worker.create_router("r")
        clients = []
        for i in range(5):
            pc = client_pc()
            pc.addTransceiver("video", direction="sendonly")
            pc.addTransceiver("audio", direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            transport = router.create_transport(f"t{i}")
            await transport.accept_offer(pc.localDescription.sdp)
            for _ in range(i):  # close at different points of the connect task
                await asyncio.sleep(0)
            transport.close()
            clients.append(pc)
        await worker.close()
        for pc in clients:
            await pc.close()
        for _ in range(5):
            await asyncio.sleep(0.05)
        gc.collect()  # "never retrieved" is reported when the failed task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [str(c.get("message")) + " " + repr(c.get("exception")) for c in seen] == []
