"""The socket of one pipe end: UDP, RTP and RTCP on it, SRTP when on, counters of what it drops.

The part of :class:`~sfu.pipe_transport.PipeTransport` that touches the network (as a
WebRtcTransport keeps a SendPath and an RtpListener): it binds, checks the peer's address, reads
datagrams from the connected peer only, unprotects them, hands RTP to the producer its SSRC names
(the transport's table, shared) and RTCP to the transport; it protects and sends, RTP queued for
one ``sendmmsg`` per turn of the event loop. Nothing here raises per packet: what is dropped is
counted in :class:`PipeStats` and in the worker's ``rtp_dropped`` / ``rtcp_dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import SfuError
from .stats import (
    RTCP_SRTP_UNPROTECT,
    RTP_BAD_VERSION,
    RTP_SEND_ERROR,
    RTP_SRTP_ERROR,
    RTP_SRTP_UNPROTECT,
    RTP_TRUNCATED,
    RTP_UNKNOWN_SSRC,
    WorkerStats,
)

try:
    from . import _sendmmsg
except ImportError:  # not built (or not Linux): one sendto per packet
    _sendmmsg = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .pipe_srtp import SrtpPair
    from .producer import Producer

__all__ = ["PipeAddressError", "PipeSocket", "PipeStats", "peer_address"]

logger = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")
SEND_BATCH = 64  # queued RTP packets that are sent at once without waiting for the end of the turn
RECV_BATCH = 64  # datagrams read per wake-up of the socket (then the loop runs other work)
SOCKET_BUFFER = 4 * 1024 * 1024  # SO_RCVBUF/SO_SNDBUF asked for: a pipe carries a room's streams

# PipeStats.dropped reasons
GARBAGE = "garbage"  # not RTP/RTCP: too short, version not 2
UNKNOWN_SOURCE = "unknown_source"  # from another address than the connected peer
NOT_CONNECTED = "not_connected"  # received or to send before connect()
UNKNOWN_SSRC = "unknown_ssrc"  # RTP of no producer of this pipe
SRTP = "srtp"  # SRTP/SRTCP unprotect failed (authentication, replay)
SEND_ERROR = "send_error"  # the socket refused (buffer full), or SRTP protect failed
RTCP_ERROR = "rtcp_error"  # an RTCP compound that does not parse
ERROR = "error"  # an exception in the receive path (a bug)


class PipeAddressError(SfuError):
    """An address a pipe cannot use: not a numeric IP address (no host names), a port out of
    range, the other address family, a wildcard or multicast peer, or a listen address that
    cannot be bound (``detail`` has the system's error)."""

    code = "invalid_address"


@dataclass
class PipeStats:
    """Counters of one pipe end (plain ints; ``dropped`` by reason, see the module constants)."""

    rtp_in: int = 0
    rtp_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def peer_address(ip: object, port: object, family: int) -> tuple[str, int]:
    """``(ip, port)`` normalised, or :class:`PipeAddressError`: a numeric address of ``family``,
    neither a wildcard nor multicast, a port 1..65535."""
    try:
        addr = ipaddress.ip_address(ip)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise PipeAddressError(f"{ip!r} is not an IP address") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise PipeAddressError(f"port {port!r} out of range")
    if addr.is_unspecified or addr.is_multicast:
        raise PipeAddressError(f"{ip} cannot be a pipe's peer")
    if (addr.version == 6) != (family == socket.AF_INET6):
        raise PipeAddressError(f"{ip} is not of this pipe's address family")
    return str(addr), port


class PipeSocket:
    """One bound UDP socket. ``producers``: the transport's SSRC -> producer table (read per
    packet, kept by the transport); ``on_rtcp(compound)``: a decrypted RTCP datagram."""

    def __init__(
        self, listen_ip: str, port: int, *, name: str, stats: WorkerStats, producers: dict[int, Producer],
        on_rtcp: Callable[[bytes], None],
    ) -> None:
        try:
            ip = ipaddress.ip_address(listen_ip)
        except ValueError:
            raise PipeAddressError(f"listen_ip {listen_ip!r} is not an IP address") from None
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise PipeAddressError(f"port {port!r} out of range")
        self._loop = asyncio.get_running_loop()  # RuntimeError outside the event loop
        self.family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            sock.bind((str(ip), port))
        except OSError as exc:
            sock.close()
            raise PipeAddressError(f"cannot listen on {listen_ip} port {port}", detail=str(exc)) from None
        self.stats = PipeStats()
        self.remote: tuple[str, int] | None = None
        self._name = name
        self._sock = sock
        self._wstats = stats
        self._producers = producers
        self._on_rtcp = on_rtcp
        self._srtp: SrtpPair | None = None
        self._packed: bytes | None = None  # the peer as a struct sockaddr, for sendmmsg (None: sendto)
        self._pending: list[bytes | bytearray] = []  # RTP queued for this turn's sendmmsg
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def connect(self, remote: tuple[str, int], srtp: SrtpPair | None) -> None:
        """Send to ``remote`` (checked by :func:`peer_address`) and take datagrams from it only."""
        self._srtp = srtp
        self.remote = remote
        if _sendmmsg is not None:
            self._packed = _sendmmsg.sockaddr(remote[0], remote[1])

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        with contextlib.suppress(Exception):  # the loop is closing: nothing left to read anyway
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    # ---- receive ------------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        """The socket is readable: up to RECV_BATCH datagrams now, the rest at the next wake-up."""
        recvfrom = self._sock.recvfrom
        on_datagram = self._on_datagram
        for _ in range(RECV_BATCH):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. an ICMP error queued on the socket: the next read goes on
            try:
                on_datagram(data, addr)
            except Exception:  # a bug: counted (and logged once), never out of the receive path
                self.stats.drop(ERROR)
                if self.stats.dropped[ERROR] == 1:
                    logger.exception("pipe %s: a datagram broke the receive path", self._name)

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        stats = self.stats
        remote = self.remote
        if remote is None:
            stats.drop(NOT_CONNECTED)
            return
        if addr[1] != remote[1] or addr[0] != remote[0]:
            stats.drop(UNKNOWN_SOURCE)
            return
        n = len(data)
        if n < 8 or data[0] >> 6 != 2:
            stats.drop(GARBAGE)
            self._wstats.drop_rtp(RTP_TRUNCATED if n < 8 else RTP_BAD_VERSION)
            return
        srtp = self._srtp
        if 192 <= data[1] <= 223:  # RTCP (RFC 5761 4: payload types 64-95 with the marker bit)
            if srtp is not None:
                try:
                    data = srtp.unprotect_rtcp(data)
                except Exception:
                    stats.drop(SRTP)
                    self._wstats.drop_rtcp(RTCP_SRTP_UNPROTECT)
                    return
            stats.rtcp_in += 1
            self._wstats.rtcp_in += 1
            self._on_rtcp(data)
            return
        if n < 12:
            stats.drop(GARBAGE)
            self._wstats.drop_rtp(RTP_TRUNCATED)
            return
        if srtp is not None:
            try:
                data = srtp.unprotect(data)
            except Exception:
                stats.drop(SRTP)
                self._wstats.drop_rtp(RTP_SRTP_UNPROTECT)
                return
        producer = self._producers.get(_SSRC.unpack_from(data, 8)[0])
        if producer is None:
            stats.drop(UNKNOWN_SSRC)
            self._wstats.drop_rtp(RTP_UNKNOWN_SSRC)
            return
        stats.rtp_in += 1
        stats.bytes_in += n
        w = self._wstats
        w.rtp_in += 1
        w.rtp_in_bytes += n
        producer._receive_rtp(data)

    # ---- send ---------------------------------------------------------------------------------------
    def send_rtp(self, data: bytes | bytearray) -> bool:
        """One RTP packet to the other end (protected with SRTP); False (counted) if it could not
        go. Queued, and sent with the others of this turn of the event loop in one ``sendmmsg``
        (a pipe carries many streams: one system call per packet was most of its cost)."""
        remote = self.remote
        if remote is None or self._closed:
            self.stats.drop(NOT_CONNECTED)
            return False
        srtp = self._srtp
        try:
            out = srtp.protect(data) if srtp is not None else data
        except Exception:
            self.stats.drop(SEND_ERROR)
            self._wstats.drop_rtp(RTP_SRTP_ERROR)
            return False
        if self._packed is None:
            try:
                self._sock.sendto(out, remote)
            except OSError:
                self.stats.drop(SEND_ERROR)
                self._wstats.drop_rtp(RTP_SEND_ERROR)
                return False
        else:
            pending = self._pending
            pending.append(out)
            if len(pending) == 1:
                self._loop.call_soon(self.flush)
            elif len(pending) >= SEND_BATCH:
                self.flush()
        stats = self.stats
        stats.rtp_out += 1
        stats.bytes_out += len(out)
        w = self._wstats
        w.rtp_out += 1
        w.rtp_out_bytes += len(out)
        return True

    def flush(self) -> None:
        """Send the queued packets (``sendmmsg``); what the socket does not take now (full buffer)
        is dropped and counted, as real-time media should be, rather than held."""
        packets = self._pending
        if not packets:
            return
        self._pending = []
        packed = self._packed
        if packed is None or self._closed or _sendmmsg is None:
            return
        n = len(packets)
        addrs = [packed] * n
        fd = self._sock.fileno()
        i = 0
        while i < n:
            try:
                sent = _sendmmsg.send_batch(fd, packets, addrs, i)
            except OSError:  # packets[i] failed on its own: counted, the rest still go
                self.stats.drop(SEND_ERROR)
                self._wstats.drop_rtp(RTP_SEND_ERROR)
                i += 1
                continue
            if sent == i:  # the socket is full: the rest is lost
                for _ in range(n - i):
                    self.stats.drop(SEND_ERROR)
                    self._wstats.drop_rtp(RTP_SEND_ERROR)
                return
            i = sent

    def send_rtcp(self, data: bytes) -> bool:
        """One RTCP compound, after the RTP packets queued before it."""
        remote = self.remote
        if remote is None or self._closed:
            return False
        self.flush()
        srtp = self._srtp
        try:
            self._sock.sendto(srtp.protect_rtcp(data) if srtp is not None else data, remote)
        except Exception:
            self.stats.drop(SEND_ERROR)
            return False
        self.stats.rtcp_out += 1
        self._wstats.rtcp_out += 1
        return True
