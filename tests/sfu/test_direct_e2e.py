"""The feature API end to end: real aiortc clients on 127.0.0.1 decode what direct producers send,
a consumer switched with replace_producer keeps decoding without renegotiation, and the two
examples of docs/sfu_features.md (record a producer to a file, play a file into a room) run."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from benchmarks.examples.clients import Subscriber, ToneTrack, opus_tone, publish
from sfu import DirectProducer, Worker, WorkerSettings

from .helpers import wait_for

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    # the shared port: network consumers use the compiled fan-out when it is built
    w = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, udp_listen_address="127.0.0.1"))
    await w.start()
    yield w
    await w.close()


async def send_paced(producer: DirectProducer, frames: list[bytes]) -> None:
    """Opus packets at 20 ms intervals, as a live source would send them."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(frames):
        delay = start + i * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        producer.send_opus(frame, 0.02)


def spy_on_receiver(subscriber: Subscriber) -> list[tuple[int, int]]:
    """(SSRC, sequence number) of every RTP packet the subscriber's audio receiver gets."""
    seen: list[tuple[int, int]] = []
    receiver = subscriber.pc.getReceivers()[0]
    original = receiver._handle_rtp_packet

    async def spy(packet: Any, arrival_time_ms: int) -> None:
        seen.append((packet.ssrc, packet.sequence_number))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = spy  # type: ignore[method-assign]
    return seen


async def test_opus_from_a_direct_producer_is_decoded_by_an_aiortc_subscriber(worker: Worker) -> None:
    router = worker.create_router("room")
    bot = router.create_direct_transport().produce("audio", "audio/opus", source="bot")
    viewer = router.create_transport("bob:subscriber")
    consumer = viewer.consume(bot)
    subscriber = Subscriber()
    try:
        await subscriber.negotiate(viewer)
        assert await wait_for(lambda: viewer.connected, 10)
        await send_paced(bot, opus_tone(75, 440.0, 0.3))  # 1.5 s
        assert await wait_for(lambda: subscriber.frames("audio") >= 50, 5), subscriber.frames("audio")
        (track,) = subscriber.tracks
        # a 0.3 sine has an RMS of 0.21, 0.15 once the encoder's resampler made it stereo (-3 dB):
        # the decoded audio is the tone, not silence or noise
        assert 0.12 < median(track.rms[10:]) < 0.2, median(track.rms[10:])
        assert consumer.packets == 75 and bot.packets == 75
        assert worker.stats.sr_sent >= 1  # the direct producer's sender reports reach the subscriber
    finally:
        await subscriber.close()


async def test_replace_producer_switches_what_a_subscriber_hears_without_renegotiation(worker: Worker) -> None:
    router = worker.create_router("room")
    publisher = router.create_transport("alice:publisher")
    pc, (mid,) = await publish(publisher, [ToneTrack(440.0, 0.05)])  # the raw microphone: quiet
    raw = publisher.produce(mid, "microphone")
    clean = router.create_direct_transport().produce("audio", "audio/opus", source="microphone-clean")
    viewer = router.create_transport("bob:subscriber")
    consumer = viewer.consume(raw)
    subscriber = Subscriber()
    renegotiations: list[int] = []
    try:
        await subscriber.negotiate(viewer)
        viewer.on_negotiation_needed = lambda: renegotiations.append(1)
        seen = spy_on_receiver(subscriber)
        assert await wait_for(lambda: subscriber.frames("audio") >= 40, 10)
        (track,) = subscriber.tracks
        assert median(track.rms[-20:]) < 0.06
        before = subscriber.frames("audio")
        consumer.replace_producer(clean)
        await send_paced(clean, opus_tone(75, 440.0, 0.4))  # the processed one: loud
        assert await wait_for(lambda: subscriber.frames("audio") >= before + 60, 5)
        assert median(track.rms[-20:]) > 0.15  # the subscriber now hears the new source (0.4 sine: 0.2)
        # one m-line, one SSRC, one numbering: nothing to renegotiate, nothing for the receiver to notice
        assert renegotiations == [] and not viewer.negotiation_needed and subscriber.offers == 1
        assert {ssrc for ssrc, _ in seen} == {consumer.ssrc}
        seqs = [seq for _, seq in seen]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
        assert len(subscriber.tracks) == 1
    finally:
        await subscriber.close()
        await pc.close()


def run_example(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=45)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_examples_record_a_producer_and_play_the_files_into_a_room(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    recorded = run_example("benchmarks.examples.record_producer", "--seconds", "2", "--out", str(out))
    counts = {kind: int(n) for kind, n in re.findall(r"^(audio|video): (\d+) packets", recorded, re.M)}
    assert counts["audio"] >= 60 and counts["video"] >= 20, recorded
    assert re.search(r"^video: .* [1-9]\d* keyframes", recorded, re.M), recorded
    played = run_example("benchmarks.examples.play_file", f"{out}-audio.rtpdump", f"{out}-video.rtpdump")
    decoded = {kind: int(n) for n, kind in re.findall(r"decoded (\d+) (audio|video) frames", played)}
    assert decoded["audio"] >= counts["audio"] // 2 and decoded["video"] >= counts["video"] // 2, played
    level = float(re.findall(r"mean level ([\d.]+)", played)[0])
    assert level > 0.1, played  # the recorded 440 Hz tone (0.3 sine), decoded again
