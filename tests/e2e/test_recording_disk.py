"""A full disk, for real: `urok serve` runs in a mount namespace of its own where the recordings
folder is a 64 KB tmpfs (`unshare -r -m`, no root needed where user namespaces are allowed).  The
recording fills it, stops with `recording_failed` (`disk_full`) to everyone, the record says so,
and the lesson's media keep flowing to the student."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import aiohttp
import av
import pytest

from signaling.rooms import Role
from tests.conftest import free_port
from tests.e2e import rtc_client
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_store_restart import TOKENS, UROK, connect, token

pytestmark = pytest.mark.timeout(120)
TMPFS = "64k"


def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        r = subprocess.run(["unshare", "-r", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


class NoisyVideoTrack(rtc_client.PatternVideoTrack):
    """A camera whose picture is noise: the encoder sends at its target bitrate (~500 kbit/s), so the
    small disk fills in about a second, not in the ~14 s that the plain pattern (a flat picture
    that compresses to almost nothing) takes."""

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        luma = frame.planes[0]
        luma.update(os.urandom(luma.buffer_size))
        return frame


class SmallDiskServe:
    """`urok serve --dev` whose recordings folder is a small tmpfs in its own mount namespace."""

    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "data"
        self.rec_dir = tmp / "rec"
        self.rec_dir.mkdir(parents=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.log = tmp / "serve.log"

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = {**os.environ, "UROK_RTC_UDP_PORT": "0", "UROK_DEMO_ROOM": "false", "UROK_STORE": "sqlite",
               "UROK_DATA_DIR": str(self.data_dir), "UROK_RECORDINGS_DIR": str(self.rec_dir),
               "UROK_RECORDING_MIN_FREE_MB": "0"}  # the writes themselves meet the full disk
        script = f'mount -t tmpfs -o size={TMPFS} tmpfs "$0" && exec "$@"'
        err = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                "unshare", "-r", "-m", "sh", "-c", script, str(self.rec_dir), str(UROK), "serve", "--dev",
                "--port", str(self.port), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err)
        finally:
            os.close(err)  # the server has its own copy
        for _ in range(300):
            assert self.proc.returncode is None, "the server exited while starting"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.base + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError("the server did not start")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()  # the process this test started (sh exec'd into urok)
            await self.proc.wait()


@pytest.mark.skipif(not namespaces_work(), reason="no mount namespaces here (unshare -r -m) for a small tmpfs")
async def test_a_full_disk_stops_the_recording_and_the_lesson_goes_on(
        tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtc_client, "PatternVideoTrack", NoisyVideoTrack)  # the host's camera
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    srv = SmallDiskServe(tmp_path)
    clients: list[RtcClient] = []
    try:
        await srv.start(http)
        async with http.post(srv.base + "/v1/rooms", json={"name": "Физика"}, headers=admin) as r:
            room_id = (await r.json())["room_id"]
        host = RtcClient(await connect(http, srv, token(room_id, "teacher", Role.HOST)))  # type: ignore[arg-type]
        clients.append(host)
        await host.ws.event("welcome")
        student = RtcClient(await connect(http, srv, token(room_id, "anna")))  # type: ignore[arg-type]
        clients.append(student)
        await student.ws.event("welcome")
        await host.publish(audio=True, video=True)
        assert await wait_until(lambda: student.frames("video") > 10, 20), "the student gets no video"
        started = await host.ws.request("recording_start")
        assert started["ok"], started
        rid = started["recording_id"]
        failed = await host.ws.event("recording_failed", timeout=60)
        assert failed["recording_id"] == rid and failed["reason"] == "disk_full", failed
        await student.ws.event("recording_failed", reason="disk_full")
        before = student.frames("video")
        assert await wait_until(lambda: student.frames("video") > before + 20, 2.0), (
            "the lesson's video stopped with the recording")
        async with http.get(srv.base + f"/v1/recordings/{rid}", headers=admin) as r:
            body = await r.json()
        assert body["state"] == "failed" and body["error"] == "disk_full", body
        assert body["size_bytes"] > 30_000, body  # it recorded until the disk was full
        again = await host.ws.request("recording_start")  # the next one fails at once, cleanly
        assert not again["ok"] or (await host.ws.event("recording_failed", timeout=30,
                                                       recording_id=again["recording_id"]))["reason"] == "disk_full"
    finally:
        for c in clients:
            await c.close()
        await srv.stop()
