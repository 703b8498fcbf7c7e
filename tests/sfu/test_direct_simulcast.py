"""A direct consumer of a simulcast producer gets the layer it asks for, and switches layers with
continuous numbering (the same layer choice and SeqManager as a subscriber's consumer)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from sfu import Worker, parse_header

from .offline import FAN_OUTS, offline_worker
from .test_simulcast_forwarding import SSRCS, Layers, payload_of, pids_continue, plis, simulcast_publisher, vp8_body


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


async def test_a_direct_consumer_takes_the_layer_it_asks_for_and_switches_seamlessly(worker: Worker) -> None:
    pub, producer, pub_path = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([1])  # learn the three layers
    got: list[bytes] = []
    consumer = worker.routers[0].create_direct_transport().consume(producer, got.append, layer="low")
    assert consumer.preferred_layer == 0 and consumer.target_layer == 0
    assert plis(pub_path) == [SSRCS["q"]]  # a keyframe of the low layer only
    layers.send("f", range(2, 10))  # the high layer: delta frames only, so far
    layers.send("q", range(2, 15))  # the low layer's keyframe at 10
    assert consumer.current_layer == 0
    assert [p[parse_header(p).payload_start :] for p in got] == [payload_of(i) for i in range(10, 15)]
    consumer.set_preferred_layer("high")
    assert plis(pub_path)[-1] == SSRCS["f"]
    layers.send("f", range(10, 15))  # the high layer's keyframe: switched there
    layers.send("q", range(15, 20))  # no longer forwarded
    assert consumer.current_layer == 2 and consumer.keyframes == 2
    bodies = [p[parse_header(p).payload_start :] for p in got]
    assert [vp8_body(b) for b in bodies] == [vp8_body(payload_of(i)) for i in [*range(10, 15)] * 2]
    assert pids_continue(bodies)  # f's keyframe renumbered after q's last frame (sfu.vp8_munger)
    seqs = [parse_header(p).sequence_number for p in got]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert {parse_header(p).ssrc for p in got} == {consumer.ssrc}
