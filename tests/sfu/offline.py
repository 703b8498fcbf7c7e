"""Negotiated but not networked transports, for unit tests of the packet path.

The SDP negotiation is real (aiortc client peer connections), the SRTP sessions are real
(pylibsrtp); only the socket is replaced by a list that records what the core sends, so tests can
feed captured packets in and read rewritten packets out.
"""

from __future__ import annotations

import os
import pathlib
import socket
import weakref
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription
from pylibsrtp import Policy, Session

from sfu import Consumer, Producer, Router, WebRtcTransport, Worker, WorkerSettings
from sfu import rtx as sfu_rtx

from .helpers import client_pc

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def section_lines(sdp: str, index: int) -> list[str]:
    """The lines of the ``index``-th m-section of ``sdp`` (its m= line first)."""
    lines = sdp.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    end = starts[index + 1] if index + 1 < len(starts) else len(lines)
    return lines[starts[index] : end]


def load_packets(name: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in (DATA / name).read_text().split()]


FAN_OUTS = ["python", "fast"]  # params of the offline tests' worker fixtures


def offline_worker(fan_out: str = "python", **settings: Any) -> Worker:
    """``fan_out``: "python" (the reference path) or "fast" (the compiled fan-out, sfu.fast_path);
    ``settings``: more WorkerSettings fields. No periodic work: the tests drive everything (and no
    real path may replace the capture)."""
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), tick_interval=3600,
                                   fast_path=fan_out == "fast", **settings))
    assert worker.fast_path is (fan_out == "fast"), "sfu._fastpath is not built"
    return worker


class CapturePath:
    """Stands in for the selected ICE pair's datagram transport; decrypts what was sent.

    With ``real_socket`` (for the compiled fan-out, which sends on a file descriptor itself) both
    paths send on one real UDP socket to a receiving socket on 127.0.0.1, read back in the order
    they left. Like the shared port's batch (``UdpMux.send_side``), ``sendto`` only queues a
    datagram: it leaves at ``flush()`` (which the core calls before a consumer joins the compiled
    fan-out) or when the test reads :attr:`sent` (the mux's next loop iteration), so a hand-over
    that forgot the flush shows as Python-path packets arriving after the compiled path's."""

    def __init__(self, real_socket: bool = False) -> None:
        self.key = os.urandom(30)
        policy = Policy(key=self.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        policy.allow_repeat_tx = True  # as aiortc's own session: retransmissions repeat an index
        self.tx = Session(policy)
        self._sent: list[bytes] = []
        self._pending: list[bytes] = []  # queued by sendto, not yet on the socket
        self.flushes = 0  # flush() calls that sent something
        self._socks: tuple[socket.socket, socket.socket] | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 9)
        self.transport: WebRtcTransport | None = None  # set by attach(): whose RTX to unwrap
        if real_socket:
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            rx.bind(("127.0.0.1", 0))
            rx.setblocking(False)
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.setblocking(False)
            self._socks = (rx, out)
            self.address = rx.getsockname()
            weakref.finalize(self, rx.close)
            weakref.finalize(self, out.close)

    @property
    def sent(self) -> list[bytes]:
        """Everything sent so far, in the order it left (what was still queued leaves first)."""
        if self._socks is not None:
            self.flush()
            rx = self._socks[0]
            while True:
                try:
                    self._sent.append(rx.recv(65536))
                except BlockingIOError:
                    break
        return self._sent

    # what the compiled fan-out reads of the shared port's batch (sfu.fast_path.make_sink)
    def fileno(self) -> int:
        assert self._socks is not None
        return self._socks[1].fileno()

    @property
    def family(self) -> int:
        return socket.AF_INET

    def flush(self) -> None:
        if self._socks is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        for data in pending:
            self._socks[1].sendto(data, self.address)
        self.flushes += 1

    def sendto(self, data: bytes, addr: Any) -> None:
        if self._socks is not None:
            self._pending.append(bytes(data))
        else:
            self._sent.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def _unprotect(self, data: bytes, rtcp: bool) -> bytes:
        rx = Session(Policy(key=self.key, ssrc_type=Policy.SSRC_ANY_INBOUND))  # fresh: no replay window
        return bytes(rx.unprotect_rtcp(data) if rtcp else rx.unprotect(data))

    def raw_rtp(self) -> list[bytes]:
        """The RTP packets sent, decrypted, as they left (RTX retransmissions and padding too)."""
        return [self._unprotect(d, False) for d in self.sent if not 192 <= d[1] <= 223]

    def rtp(self) -> list[bytes]:
        """The media packets sent, decrypted: a retransmission on a consumer's RTX SSRC unwrapped
        into the packet it repeats (as the subscriber's receiver does), padding-only RTX left out."""
        rtx_map = {}
        if self.transport is not None:
            rtx_map = {c.rtx_ssrc: (c._pt, c.ssrc) for c in self.transport.consumers if c.rtx}
        out = []
        for packet in self.raw_rtp():
            media = rtx_map.get(int.from_bytes(packet[8:12], "big")) if rtx_map else None
            if media is not None:
                unwrapped = sfu_rtx.unwrap(packet, *media)
                if unwrapped is None:
                    continue  # padding-only (a bandwidth probe)
                packet = unwrapped
            out.append(packet)
        return out

    def rtcp(self) -> list[bytes]:
        return [self._unprotect(d, True) for d in self.sent if 192 <= d[1] <= 223]

    def clear(self) -> None:
        self.sent.clear()


def attach(transport: WebRtcTransport) -> CapturePath:
    fast = transport._context.fast_path
    path = CapturePath(real_socket=fast)
    path.transport = transport
    transport._send_path.use(path, path.address, path.tx)  # the compiled fan-out's sink with it
    transport._connected = True
    assert (transport._fast_sink is not None) == fast
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


class ConnectionStandIn:
    """Stands in for the aioice connection under the DTLS transport: what the direct-receive hook
    replaces (``data_received``) and what it falls back to for non-SRTP datagrams."""

    def __init__(self) -> None:
        self.fallback: list[bytes] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.fallback.append(data)


class IceStandIn:
    def __init__(self) -> None:
        self._connection = ConnectionStandIn()


class DtlsStandIn:
    """The two things ``install_direct_receive`` reads of an RTCDtlsTransport: the receive SRTP
    session and the ICE transport's connection."""

    def __init__(self, key: bytes) -> None:
        self._rx_srtp = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.transport = IceStandIn()
