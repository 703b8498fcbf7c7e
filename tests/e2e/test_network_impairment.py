"""Media through a really impaired link (issue 12, part 1): the network benchmark's loss scenario,
short (tests/netns.py: the server in its own namespace, the publisher and a subscriber each in
theirs, 5% random loss on the publisher's uplink and 20 ms each way on its link).

Asserted here: what today's server must already do (media flows through the lossy link and is
decoded), that the harness leaves nothing behind, and the issue's goal on the repaired stream: with
5% loss on the publisher's uplink the subscribers get >= 99.5% of the video packets (the NACK
generator towards publishers, sfu/nack_generator.py) and see no freeze over 500 ms.  The 30-s
figures come from ``python -m benchmarks.network``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from benchmarks.media_prep import MediaSpec
from benchmarks.network import NetConfig, ScenarioResult, run_scenario
from tests import netns

pytestmark = pytest.mark.skipif(netns.missing() is not None, reason=f"impaired links: {netns.missing()}")

# the small layer the webinar benchmark uses (cached by benchmarks.media_prep): little CPU to decode
SMALL = MediaSpec(width=320, height=180, fps=15, video_bitrate=300_000, gop=30)


@dataclass
class LossRun:
    result: ScenarioResult
    networks: list[netns.Network]


@pytest.fixture(scope="module")
def loss_run() -> Iterator[LossRun]:
    networks: list[netns.Network] = []
    try:
        result = asyncio.run(run_scenario("loss", NetConfig(duration=5, subscribers=1, media=SMALL),
                                          on_ready=networks.append))
    except netns.NetnsUnavailable as e:
        pytest.skip(str(e))
    assert result.error is None, result.error
    yield LossRun(result, networks)


def test_media_crosses_a_lossy_uplink_and_is_decoded(loss_run: LossRun) -> None:
    phase = loss_run.result.phases[0]
    sub = phase.subscribers[0]
    assert phase.video_sent > 50 and phase.audio_sent > 200, phase  # 5 s of 15 fps video and 20 ms audio
    # 5% lost on the way in: far more than half arrives, and the video is decoded, with or without repair
    assert sub.media_pct > 80, sub
    assert sub.fps > 5, sub
    assert sub.heights.get(180, 0) > 0, sub


def test_the_harness_leaves_no_namespace_and_no_process(loss_run: LossRun) -> None:
    assert loss_run.networks, "the run made no network"
    for net in loss_run.networks:
        assert all(p.poll() is not None for ns in (net.server, *(c.namespace for c in net.clients.values()))
                   for p in ns.procs), "a process the harness started is still running"
    assert netns.leftovers() == []


def test_subscribers_receive_nearly_every_packet_and_see_no_freeze_under_uplink_loss(loss_run: LossRun) -> None:
    sub = loss_run.result.phases[0].subscribers[0]
    # the video: what NACKs repair (Opus is not NACKed by browsers; its loss stays the link's)
    # >= 99.5%; in a 5-s window of ~170 packets that is "none lost" but for the window's two edges
    # (a packet sent just before the mark and repaired after it counts as missing): at most 2
    missing = sub.video_span - sub.video_received
    assert missing <= max(2, 0.005 * sub.video_span), sub
    assert sub.freeze_s <= 0.5, sub


def test_a_failing_run_leaves_no_namespace_and_no_process() -> None:
    try:
        net = netns.Network()
    except netns.NetnsUnavailable as e:
        pytest.skip(str(e))
    with pytest.raises(RuntimeError, match="the test failed here"), net:
        link = net.add_client("cli")
        link.uplink.apply(netns.Impairment(loss_pct=5, delay_ms=20))  # starts a delay line (userspace)
        sleeper = net.server.popen([sys.executable, "-c", "import time; time.sleep(60)"])
        raise RuntimeError("the test failed here")
    assert sleeper.poll() is not None
    assert all(p.poll() is not None for p in link.namespace.procs)
    assert netns.leftovers() == []
    assert subprocess.run(["ip", "link", "show", "uk1c"], capture_output=True).returncode != 0  # not outside
