"""AudioTap on a real router: a direct producer's Opus (libopus-encoded tone) tapped and decoded,
on the loop and through the worker threads; the producer closing; a non-Opus producer refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest

from media.audio_tap import AudioTap
from media.audio_workers import AudioWorkers
from media.opus_codec import OpusEncoder
from sfu import DirectProducer, Worker


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = Worker()
    yield w
    await w.close()


def tone(seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * 48000)) / 48000
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def send_tone(producer: DirectProducer, seconds: float) -> None:
    enc = OpusEncoder()
    pcm = tone(seconds)
    for i in range(0, len(pcm) - 959, 960):
        producer.send_opus(enc.encode(np.ascontiguousarray(pcm[i:i + 960])))


async def wait_for(cond: object, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("threads", [0, 2])
async def test_a_tap_decodes_a_producers_opus_to_16khz_pcm_on_the_loop(worker: Worker, threads: int) -> None:
    router = worker.create_router("r")
    bot = router.create_direct_transport().produce("audio", "audio/opus", source="microphone")
    got: list[tuple[npt.NDArray[np.int16], float]] = []
    workers = AudioWorkers(threads) if threads else None
    loop_thread = asyncio.get_running_loop()

    def on_pcm(pcm: npt.NDArray[np.int16], t: float) -> None:
        assert asyncio.get_running_loop() is loop_thread  # called on the event loop
        got.append((pcm, t))

    tap = AudioTap(router, bot, on_pcm, sample_rate=16000, workers=workers)
    send_tone(bot, 1.0)
    await wait_for(lambda: len(got) >= 50)
    assert [round(t, 3) for _, t in got] == [round(i * 0.02, 3) for i in range(50)]
    pcm = np.concatenate([p for p, _ in got[5:]]).astype(np.float64)
    assert np.sqrt(np.mean(pcm ** 2)) > 3000
    # the tone's frequency survived the decoding at 16 kHz
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * 16000 / len(pcm) - 440) < 3
    assert tap.stats_dict()["garbage"] == 0
    tap.close()
    if workers:
        workers.close()


async def test_a_tap_closes_when_its_producer_closes_and_garbage_never_raises(worker: Worker) -> None:
    router = worker.create_router("r")
    bot = router.create_direct_transport().produce("audio", "audio/opus")
    got: list[float] = []
    closed: list[bool] = []
    tap = AudioTap(router, bot, lambda pcm, t: got.append(t))
    tap.on_close = lambda: closed.append(True)
    for i in range(10):
        bot.send_opus(bytes([0xFF, 0xFF]) + bytes(range(i, i + 30)))  # no Opus packet
    await wait_for(lambda: len(got) >= 10)  # concealed: time goes on
    assert tap.stats_dict()["garbage"] == 10
    bot.close()
    assert tap.closed and closed == [True]


async def test_a_tap_refuses_a_video_producer(worker: Worker) -> None:
    router = worker.create_router("r")
    cam = router.create_direct_transport().produce("video", "video/VP8")
    with pytest.raises(ValueError, match="Opus"):
        AudioTap(router, cam, lambda pcm, t: None)
