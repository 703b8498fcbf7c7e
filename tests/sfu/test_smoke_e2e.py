"""Both receive paths (direct from aioice, and aiortc's DTLS receive loop) forward end to end."""

from __future__ import annotations

import asyncio

import pytest

from sfu import Worker, WorkerSettings
from sfu import aiortc_compat as compat

from .helpers import HEIGHT, WIDTH, SubscriberClient, connect_publisher, wait_for


@pytest.mark.timeout(30)
@pytest.mark.parametrize("direct_receive", [True, False])
async def test_smoke(direct_receive: bool) -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), direct_receive=direct_receive))
    router = worker.create_router("room")
    pub_t = router.create_transport("alice:publisher")
    pub_pc, mids = await connect_publisher(pub_t)
    video = pub_t.produce(mids["video"], "camera")
    audio = pub_t.produce(mids["audio"], "microphone")
    sub_t = router.create_transport("bob:subscriber")
    sub_t.consume(video)
    sub_t.consume(audio)
    sub = SubscriberClient()
    await sub.negotiate(sub_t)
    ok = await wait_for(lambda: sub.frames("video") > 10 and sub.frames("audio") > 10, 10)
    assert ok, (sub.frames("video"), sub.frames("audio"))
    assert {s for t in sub.tracks for s in t.sizes} == {(WIDTH, HEIGHT)}
    dtls = pub_t.peer_connection.getTransceivers()[0].receiver.transport
    assert getattr(compat.ice_connection(dtls), compat.DIRECT_MARK, False) is direct_receive
    await sub.close()
    await pub_pc.close()
    await worker.close()
    await asyncio.sleep(0)
