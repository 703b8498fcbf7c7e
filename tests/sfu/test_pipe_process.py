"""A pipe between two OS processes, each with its own Worker (issue 19: workers are processes).

The child (this module run as ``python -m tests.sfu.test_pipe_process``) makes a router and an
SRTP pipe end, and speaks JSON lines on stdin/stdout, as the signalling would between workers:
it prints its address and key, takes the parent's with two producer descriptions (audio, video),
produces them, counts what its direct consumers receive, asks for a video keyframe when told (the
request must reach the parent's video source), and says when the far audio producer closed (by the
BYE that the parent's pipe consumer sends when the parent's producer closes).
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from sfu import Worker, WorkerSettings

from .helpers import wait_for

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent.parent


async def child() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(**message: Any) -> None:
        print(json.dumps(message), flush=True)

    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), tick_interval=0.1))
    router = worker.create_router("room")
    pipe = router.create_pipe_transport("127.0.0.1", 0, srtp=True)
    assert pipe.srtp_parameters is not None
    say(address=list(pipe.local_address), srtp=pipe.srtp_parameters.to_dict())
    peer = json.loads(await reader.readline())
    pipe.connect(peer["address"][0], peer["address"][1], srtp_parameters=peer["srtp"])
    producer = pipe.produce(peer["description"])
    payloads: list[bytes] = []
    enough, closed = asyncio.Event(), asyncio.Event()

    def on_rtp(packet: bytes) -> None:
        payloads.append(packet[12:])
        if len(payloads) >= 20:
            enough.set()

    direct = router.create_direct_transport()
    direct.consume(producer, on_rtp)
    producer.on_close = closed.set
    # the parent's video: a subscriber here asks for a keyframe, which must reach the parent's source
    video = pipe.produce(peer["video"])
    frames = asyncio.Event()
    video_consumer = direct.consume(video, lambda p: frames.set())
    await enough.wait()
    await frames.wait()
    say(received=len(payloads), marked=sum(p.startswith(b"FROM-PARENT") for p in payloads), id=producer.id)
    await reader.readline()  # "ask": the parent counted the keyframe requests so far
    await asyncio.sleep(0.2)  # past the merge window of the first (forced) requests
    say(asked=video_consumer.request_keyframe(force=True))
    await closed.wait()
    say(closed=True, dropped=pipe.stats.dropped)
    await worker.close()


async def test_producers_of_this_process_are_received_by_another_process_over_srtp() -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), tick_interval=0.1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sfu.test_pipe_process", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout

    async def hear() -> dict[str, Any]:
        line = await asyncio.wait_for(stdout.readline(), 20)
        assert line, "the child ended early"
        message: dict[str, Any] = json.loads(line)
        return message

    try:
        router = worker.create_router("room")
        pipe = router.create_pipe_transport(srtp=True)
        hello = await hear()
        pipe.connect(hello["address"][0], hello["address"][1], srtp_parameters=hello["srtp"])
        direct = router.create_direct_transport()
        bot = direct.produce("audio", "audio/opus")
        consumer = pipe.consume(bot)
        camera = direct.produce("video", "video/VP8")
        keyframe_requests: list[float] = []
        camera.on_keyframe_request = lambda: keyframe_requests.append(asyncio.get_running_loop().time())
        camera_pipe = pipe.consume(camera)
        assert pipe.srtp_parameters is not None
        proc.stdin.write(json.dumps({"address": list(pipe.local_address), "srtp": pipe.srtp_parameters.to_dict(),
                                     "description": consumer.description.to_dict(),
                                     "video": camera_pipe.description.to_dict()}).encode() + b"\n")
        await proc.stdin.drain()
        sending = True

        async def send() -> None:
            n = 0
            while sending:
                bot.send_opus(b"FROM-PARENT" + bytes([n & 0xFF]) * 30, 0.02)
                # VP8: a keyframe (payload descriptor with S, key frame header) every 10th packet
                vp8 = b"\x10\x00\x00\x00" if n % 10 == 0 else b"\x10\x01"
                camera.send(struct.pack("!BBHII", 0x80, 96, n & 0xFFFF, n * 3000, 1) + vp8 + b"v" * 100)
                n += 1
                await asyncio.sleep(0.02)

        sender = asyncio.ensure_future(send())
        got = await hear()
        # the child's keyframe request crosses the pipe to this process's video source
        piped, asked = camera_pipe.keyframe_requests, len(keyframe_requests)
        proc.stdin.write(b'{"do": "ask"}\n')
        await proc.stdin.drain()
        assert (await hear())["asked"] is True
        assert await wait_for(lambda: camera_pipe.keyframe_requests > piped and len(keyframe_requests) > asked, 5), \
            (camera_pipe.stats_dict(), keyframe_requests)
        sending = False
        await sender
        assert got["received"] >= 20 and got["marked"] == got["received"] and got["id"] == bot.id
        assert pipe.stats.rtp_out >= 20 and not pipe.stats.dropped
        bot.close()  # the child's producer closes by the BYE its pipe receives
        bye = await hear()
        # what arrived before the child's connect is all it dropped
        assert bye["closed"] is True and set(bye["dropped"]) <= {"not_connected"}
        assert await wait_for(lambda: proc.returncode is not None, 10) or await proc.wait() == 0
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await worker.close()


if __name__ == "__main__":
    asyncio.run(child())
