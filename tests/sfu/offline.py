"""Negotiated but not networked transports, for unit tests of the packet path.

The SDP negotiation is real (aiortc client peer connections), the SRTP sessions are real
(pylibsrtp); only the socket is replaced by a list that records what the core sends, so tests can
feed captured packets in and read rewritten packets out.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription
from pylibsrtp import Policy, Session

from sfu import Consumer, Producer, Router, WebRtcTransport, Worker, WorkerSettings
from sfu import aiortc_compat as compat

from .helpers import client_pc

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def load_packets(name: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in (DATA / name).read_text().split()]


def offline_worker() -> Worker:
    # no periodic work: the tests drive everything (and no real path may replace the capture)
    return Worker(WorkerSettings(host_addresses=("127.0.0.1",), tick_interval=3600))


class CapturePath:
    """Stands in for the selected ICE pair's datagram transport; decrypts what was sent."""

    def __init__(self) -> None:
        self.key = os.urandom(30)
        policy = Policy(key=self.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        policy.allow_repeat_tx = True  # as aiortc's own session: retransmissions repeat an index
        self.tx = Session(policy)
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def _unprotect(self, data: bytes, rtcp: bool) -> bytes:
        rx = Session(Policy(key=self.key, ssrc_type=Policy.SSRC_ANY_INBOUND))  # fresh: no replay window
        return bytes(rx.unprotect_rtcp(data) if rtcp else rx.unprotect(data))

    def rtp(self) -> list[bytes]:
        return [self._unprotect(d, False) for d in self.sent if not 192 <= d[1] <= 223]

    def rtcp(self) -> list[bytes]:
        return [self._unprotect(d, True) for d in self.sent if 192 <= d[1] <= 223]

    def clear(self) -> None:
        self.sent.clear()


def attach(transport: WebRtcTransport) -> CapturePath:
    path = CapturePath()
    transport._tx = path.tx
    transport._protect = compat.fast_protect(path.tx)
    transport._sock = path
    transport._addr = ("127.0.0.1", 9)
    transport._connected = True
    return path


async def offline_publisher(
    router: Router, video_mime: str = "video/VP8", name: str = "pub"
) -> tuple[WebRtcTransport, dict[str, Producer], CapturePath]:
    """A publisher transport whose m-lines match the captured fixtures (video mid 0, audio mid 1)."""
    transport = router.create_transport(name)
    pc = client_pc()
    vt = pc.addTransceiver("video", direction="sendonly")
    vt.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == video_mime]
    )
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await pc.close()
    producers = {
        "video": transport.produce("0", "camera"),
        "audio": transport.produce("1", "microphone"),
    }
    return transport, producers, attach(transport)


async def offline_subscriber(
    router: Router, producers: list[Producer], name: str = "sub"
) -> tuple[WebRtcTransport, list[Consumer], CapturePath, str]:
    transport = router.create_transport(name)
    consumers = [transport.consume(p) for p in producers]
    offer = await transport.create_offer()
    pc = client_pc()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    await pc.close()
    path = attach(transport)
    await transport.accept_answer(answer)
    return transport, consumers, path, answer
