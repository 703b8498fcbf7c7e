"""Capture real RTP packets (decrypted, as the SFU's hook sees them) into tests/data/.

Run: .venv/bin/python -m tests.sfu.capture_fixtures
It starts an aiortc publisher (VP8 + Opus, then H.264 + Opus) against a real sfu.Worker on
127.0.0.1 and writes the first packets of each stream, one hex packet per line.
"""

from __future__ import annotations

import asyncio
import pathlib

from aiortc import AudioStreamTrack, RTCRtpSender, RTCSessionDescription

from sfu import Worker, WorkerSettings

from .helpers import NoisyVideoTrack, client_pc

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


async def capture(video_mime: str, count: int = 30) -> dict[str, list[bytes]]:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    transport = worker.create_router("capture").create_transport("capture")
    pc = client_pc()
    vt = pc.addTransceiver(NoisyVideoTrack(noisy_rows=2), direction="sendonly")
    vt.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == video_mime]
    )
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    mids = {t.kind: t.mid for t in pc.getTransceivers()}
    video = transport.produce(mids["video"], "camera")
    audio = transport.produce(mids["audio"], "microphone")
    packets: dict[str, list[bytes]] = {"video": [], "audio": []}
    pts = {video.codec_info.payload_type: "video", audio.codec_info.payload_type: "audio"}
    dtls = transport.peer_connection.getTransceivers()[0].receiver.transport
    original = dtls._handle_rtp_data  # the SFU's hook, installed by accept_offer

    async def grab(data: bytes, arrival_time_ms: int) -> None:
        kind = pts.get(data[1] & 0x7F)
        if kind is not None and len(packets[kind]) < count:
            packets[kind].append(bytes(data))
        await original(data, arrival_time_ms)

    dtls._handle_rtp_data = grab
    for _ in range(200):
        if all(len(v) >= count for v in packets.values()):
            break
        await asyncio.sleep(0.05)
    await pc.close()
    await worker.close()
    return packets


def write(name: str, packets: list[bytes]) -> None:
    (DATA / name).write_text("".join(p.hex() + "\n" for p in packets))


async def main() -> None:
    DATA.mkdir(exist_ok=True)
    vp8 = await capture("video/VP8")
    write("rtp_vp8.hex", vp8["video"])
    write("rtp_opus.hex", vp8["audio"])
    h264 = await capture("video/H264", count=30)
    write("rtp_h264.hex", h264["video"])


if __name__ == "__main__":
    asyncio.run(main())
