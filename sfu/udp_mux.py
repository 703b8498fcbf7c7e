"""One UDP port for every WebRTC transport of a worker: ICE-lite (RFC 8445 section 2.5).

``UdpMux`` owns one socket. Each peer connection gets a ``LiteConnection`` (a stand-in for
``aioice.Connection`` that aiortc's ICE and DTLS transports use unchanged) with its own ICE
ufrag/password. The mux answers STUN binding requests itself (it never sends checks: the browser,
the full ICE agent, does), and demultiplexes:

1. a STUN binding request, by the first half of its USERNAME (our ufrag), checked with that
   connection's password (MESSAGE-INTEGRITY); the request's source address is then bound to the
   connection (the latest USE-CANDIDATE request chooses the address we send to);
2. anything else (DTLS, SRTP, SRTCP), by the source address alone: one dict lookup.

2000 participants need one socket and one file descriptor, not 2000 of each. Malformed STUN, an
unknown ufrag, a bad password, data from an unknown address: dropped and counted, never raised.

Sends (``batch_send``): every datagram of the worker, SRTP from the forwarding core, DTLS and
STUN responses alike, is appended to one pending batch, sent by one ``sendmmsg(2)`` call
(``sfu._sendmmsg``, a C extension built with the package) at most one event-loop iteration later
or as soon as ``BATCH_MAX`` datagrams wait. The order of datagrams is kept (one queue). Without the
extension, or with ``batch_send=False``, each datagram is one ``transport.sendto``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import ConnectionClosed

from . import stun

logger = logging.getLogger(__name__)

try:
    from . import _sendmmsg
except ImportError:  # not built (or not Linux): one transport.sendto per datagram
    _sendmmsg = None  # type: ignore[assignment]

BATCH_MAX = 64  # datagrams waiting before a batch is sent without waiting for the loop
_ADDR_CACHE_MAX = 65536  # packed destination addresses kept (cleared, not evicted, past this)


def batch_send_available() -> bool:
    """Whether ``sfu._sendmmsg`` (the compiled sendmmsg path) can be used."""
    return _sendmmsg is not None

STUN_MAGIC = b"\x21\x12\xa4\x42"
CONSENT_TIMEOUT = 30.0  # s without a valid binding request: the peer is gone (RFC 7675)
CONNECT_TIMEOUT = 30.0  # s to wait for the first check after the descriptions are exchanged

# drop reasons counted in WorkerStats.mux_dropped
MUX_BAD_STUN = "bad_stun"
MUX_UNKNOWN_UFRAG = "unknown_ufrag"
MUX_BAD_INTEGRITY = "bad_integrity"
MUX_UNKNOWN_ADDRESS = "unknown_address"
MUX_NOT_BINDING = "not_binding_request"


@dataclass
class MuxStats:
    """Counters of the shared port (plain ints, read by the signalling's metrics)."""

    stun_requests: int = 0
    stun_responses: int = 0
    datagrams_in: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class _SendSide:
    """What ``sfu.aiortc_compat.selected_pair`` reads as ``pair.protocol``: its ``transport`` is what
    the forwarding core calls ``sendto`` on: the datagram transport, or the batch when batching."""

    __slots__ = ("transport",)

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | _Batch | None = None


class _Pair:
    """What ``sfu.aiortc_compat.selected_pair`` reads from ``aioice`` pairs: protocol.transport and
    remote_addr."""

    __slots__ = ("protocol", "remote_addr")

    def __init__(self, protocol: _SendSide, remote_addr: tuple[str, int]) -> None:
        self.protocol = protocol
        self.remote_addr = remote_addr


class _Batch:
    """The pending datagrams of the shared socket, sent with ``sendmmsg``.

    ``sendto`` (the per-packet path) packs nothing: a destination's ``struct sockaddr`` is made
    once and cached. Datagrams the socket did not take (EAGAIN, or one that failed) and every
    datagram while the transport still holds a write buffer go through ``transport.sendto``, which
    buffers them or reports the error as usual, so the order is kept.
    """

    __slots__ = ("_addrs", "_buffered", "_call_soon", "_closed", "_family", "_fd", "_packed", "_packets",
                 "_scheduled", "_transport", "batches", "fallback")

    def __init__(self, transport: asyncio.DatagramTransport, fd: int, family: int) -> None:
        self._transport = transport
        # bytes the transport holds back (after EAGAIN): while any, sends go through it, in order
        self._buffered: Callable[[], int] = getattr(transport, "get_write_buffer_size", lambda: 0)
        self._fd = fd
        self._family = family
        self._call_soon = asyncio.get_running_loop().call_soon
        self._packed: dict[tuple[str, int], bytes] = {}
        self._packets: list[bytes | bytearray] = []
        self._addrs: list[bytes] = []
        self._scheduled = False
        self._closed = False
        self.batches = 0  # sendmmsg batches flushed
        self.fallback = 0  # datagrams that went through transport.sendto instead

    def sendto(self, data: bytes | bytearray, addr: tuple[str, int]) -> None:
        packed = self._packed.get(addr)
        if packed is None:
            packed = self._pack(addr)
            if packed is None:  # not a numeric address: after what is pending, on its own
                self.flush()
                if not self._closed:
                    self.fallback += 1
                    self._transport.sendto(data, addr)
                return
        packets = self._packets
        packets.append(data)
        self._addrs.append(packed)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self._flush_soon)
        elif len(packets) >= BATCH_MAX:
            self.flush()

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def fileno(self) -> int:
        """The shared socket's descriptor (for the compiled fan-out, ``sfu.fast_path``)."""
        return self._fd

    @property
    def family(self) -> int:
        return self._family

    def _pack(self, addr: tuple[str, int]) -> bytes | None:
        if self._closed or _sendmmsg is None:
            return None
        host = addr[0]
        if self._family == socket.AF_INET6 and ":" not in host:
            host = "::ffff:" + host  # an IPv4 peer on a dual-stack socket
        try:
            packed = _sendmmsg.sockaddr(host, addr[1])
        except (ValueError, TypeError, OverflowError, IndexError):
            return None
        if len(self._packed) >= _ADDR_CACHE_MAX:
            self._packed.clear()
        self._packed[addr] = packed
        return packed

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is pending, now."""
        packets = self._packets
        if not packets:
            return
        addrs = self._addrs
        self._packets = []
        self._addrs = []
        if self._closed:
            return
        transport = self._transport
        n = len(packets)
        i = 0
        self.batches += 1
        while i < n:
            if not self._buffered():
                # OSError: packets[i] failed first; the transport sends it again and reports the error
                with contextlib.suppress(OSError):
                    i = _sendmmsg.send_batch(self._fd, packets, addrs, i)
                if i >= n:
                    return
            self.fallback += 1
            try:
                transport.sendto(packets[i], _unpack(addrs[i]))
            except Exception as e:  # the rest of the batch still goes
                logger.debug("udp mux: sendto failed: %r", e)
            i += 1

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True


def _unpack(packed: bytes) -> tuple[str, int]:
    """The (host, port) of a packed ``struct sockaddr_in`` / ``sockaddr_in6`` (the rare fallback)."""
    family = int.from_bytes(packed[0:2], sys.byteorder)
    port = int.from_bytes(packed[2:4], "big")
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, packed[8:24]), port
    return socket.inet_ntop(socket.AF_INET, packed[4:8]), port


class LiteConnection:
    """The ICE-lite side of one peer connection, in ``aioice.Connection``'s shape.

    aiortc calls: ``local_candidates``, ``local_username``, ``local_password``,
    ``gather_candidates()``, ``add_remote_candidate()``, ``remote_candidates``, ``connect()``,
    ``recv()``, ``send()``, ``get_event()``, ``close()``, and sets ``ice_controlling``,
    ``remote_username``, ``remote_password``, ``remote_is_lite``. ``data_received`` is the
    per-datagram entry point (the forwarding core replaces it on the instance to handle SRTP
    synchronously).
    """

    def __init__(self, mux: UdpMux) -> None:
        self._mux = mux
        self.local_username = secrets.token_hex(4)
        self.local_password = secrets.token_urlsafe(18)  # 24 chars >= the 22 RFC 8839 asks for
        self.local_key = self.local_password.encode()  # the MESSAGE-INTEGRITY key
        self.ice_controlling = False  # an ICE-lite agent is always controlled
        self.remote_username: str | None = None
        self.remote_password: str | None = None
        self.remote_is_lite = False
        self.remote_candidates: list[Candidate] = []
        self._nominated: dict[int, _Pair] = {}
        self._addresses: set[tuple[str, int]] = set()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._closed = False
        self._event_waiter: asyncio.Future[None] | None = None
        self.last_consent = time.monotonic()
        self.on_consent_lost: Callable[[], None] | None = None
        self.local_candidates = [
            Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=1,
                transport="udp",
                priority=candidate_priority(1, "host"),
                host=host,
                port=mux.port,
                type="host",
            )
            for host in mux.announced_addresses
        ]

    # --- what aiortc calls -------------------------------------------------------------------
    async def gather_candidates(self) -> None:
        self._mux.register(self)

    def get_default_candidate(self, component: int) -> Candidate | None:
        return self.local_candidates[0] if self.local_candidates else None

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        if remote_candidate is not None:
            self.remote_candidates.append(remote_candidate)  # informational: a lite agent sends no checks

    async def connect(self) -> None:
        """Wait for the peer's first valid check (the lite side has nothing to probe)."""
        self._mux.register(self)
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            raise ConnectionError("ICE failed: no connectivity check arrived") from None
        if self._closed:
            raise ConnectionError("ICE connection closed")

    async def recv(self) -> bytes:
        if not self._nominated:
            raise ConnectionError("Cannot receive data, not connected")
        data = await self._queue.get()
        if data is None:
            raise ConnectionError("Connection lost while receiving data")
        return data

    async def send(self, data: bytes) -> None:
        pair = self._nominated.get(1)
        if pair is None or self._closed:
            raise ConnectionError("Cannot send data, not connected")
        self._mux.sendto(data, pair.remote_addr)

    async def get_event(self) -> ConnectionClosed:
        """The only event: closed (aiortc's ICE transport monitor returns on it)."""
        if not self._closed:
            self._event_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._event_waiter)
        return ConnectionClosed()

    async def close(self) -> None:
        self.close_now()

    # --- the mux's side ----------------------------------------------------------------------
    def close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._mux.unregister(self)
        self._queue.put_nowait(None)
        self._connected.set()
        if self._event_waiter is not None and not self._event_waiter.done():
            self._event_waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def addresses(self) -> set[tuple[str, int]]:
        return self._addresses

    def data_received(self, data: bytes, component: int) -> None:
        self._queue.put_nowait(data)

    def check_received(self, addr: tuple[str, int], nominate: bool) -> None:
        """A valid binding request came from ``addr``."""
        self.last_consent = time.monotonic()
        self._addresses.add(addr)
        if nominate or not self._nominated:
            self._nominated[1] = _Pair(self._mux.send_side, addr)
        self._connected.set()


class UdpMux(asyncio.DatagramProtocol):
    """The shared UDP socket of a worker. ``await mux.start()`` binds it.

    ``batch_send``: send with ``sendmmsg`` in batches (``True``), one ``transport.sendto`` per
    datagram (``False``), or batches when ``sfu._sendmmsg`` is importable (``None``). ``True``
    without the extension falls back to ``sendto`` (logged once). ``mux.batching`` tells which
    path runs once started.
    """

    def __init__(self, listen_address: str, port: int, announced_addresses: tuple[str, ...] = (),
                 *, batch_send: bool | None = None) -> None:
        self.listen_address = listen_address
        self.requested_port = port
        self.port = port
        self.announced_addresses = announced_addresses or (listen_address,)
        self.stats = MuxStats()
        self.transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, LiteConnection] = {}
        self._by_addr: dict[tuple[str, int], LiteConnection] = {}
        self._sendto: Callable[[bytes, tuple[str, int]], None] | None = None
        self.batch_send = batch_send
        self._batch: _Batch | None = None
        self.send_side = _SendSide()

    @property
    def batching(self) -> bool:
        """Whether sends go out in ``sendmmsg`` batches."""
        return self._batch is not None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.listen_address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)  # no SO_REUSEADDR: two servers must not share it
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):  # capped by the kernel: keep what it gives
                sock.setsockopt(socket.SOL_SOCKET, opt, 8 * 1024 * 1024)
        try:
            sock.bind((self.listen_address, self.requested_port))
        except OSError as e:
            sock.close()
            raise OSError(e.errno, f"cannot bind the media UDP port {self.listen_address}:{self.requested_port}: "
                                   f"{e.strerror}") from None
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self.transport = transport
        self._sendto = transport.sendto
        self.send_side.transport = transport
        if self.batch_send is not False:
            if _sendmmsg is not None:
                self._batch = _Batch(transport, sock.fileno(), family)
                self.send_side.transport = self._batch
            elif self.batch_send:
                logger.warning("udp mux: batch_send requested but sfu._sendmmsg is not built; using sendto")
        return self.port

    def connection(self) -> LiteConnection:
        return LiteConnection(self)

    def register(self, conn: LiteConnection) -> None:
        if not conn.closed:
            self._by_ufrag[conn.local_username] = conn

    def unregister(self, conn: LiteConnection) -> None:
        if self._by_ufrag.get(conn.local_username) is conn:
            del self._by_ufrag[conn.local_username]
        for addr in conn.addresses:
            if self._by_addr.get(addr) is conn:
                del self._by_addr[addr]

    @property
    def connections(self) -> int:
        return len(self._by_ufrag)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        batch = self._batch
        if batch is not None:
            batch.sendto(data, addr)
        elif self._sendto is not None:
            self._sendto(data, addr)

    def flush(self) -> None:
        """Send the pending batch now (a no-op without batching)."""
        if self._batch is not None:
            self._batch.flush()

    def close(self) -> None:
        for conn in list(self._by_ufrag.values()):
            conn.close_now()
        if self._batch is not None:
            self._batch.close()  # what is pending goes out first
            self._batch = None
        self.send_side.transport = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self._sendto = None

    # --- asyncio.DatagramProtocol ------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        addr2 = (addr[0], addr[1])
        conn = self._by_addr.get(addr2)
        first = data[0] if data else 255
        if conn is not None and first > 3:  # DTLS (20..63) or SRTP/SRTCP (128..191): the hot path
            conn.data_received(data, 1)
            return
        if first <= 3 and len(data) >= 20 and data[4:8] == STUN_MAGIC:
            try:
                self._stun(data, addr2)
            except Exception:  # a malformed message must never reach the loop
                self.stats.drop(MUX_BAD_STUN)
            return
        self.stats.drop(MUX_UNKNOWN_ADDRESS)

    def error_received(self, exc: Exception) -> None:  # ICMP errors for one peer: not fatal
        logger.debug("udp mux: %s", exc)

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = stun.parse_binding_request(data)
        except stun.NotBindingRequest:
            self.stats.drop(MUX_NOT_BINDING)  # responses to checks we never sent, indications
            return
        except ValueError:
            self.stats.drop(MUX_BAD_STUN)
            return
        conn = self._by_ufrag.get(request.username.split(":", 1)[0])
        if conn is None:
            self.stats.drop(MUX_UNKNOWN_UFRAG)
            return
        key = conn.local_key
        if not request.check(key):
            self.stats.drop(MUX_BAD_INTEGRITY)
            return
        self.stats.stun_requests += 1
        self.sendto(stun.binding_success(request.transaction_id, addr, key), addr)
        self.stats.stun_responses += 1
        previous = self._by_addr.get(addr)
        if previous is not None and previous is not conn:
            previous.addresses.discard(addr)
        self._by_addr[addr] = conn
        conn.check_received(addr, request.use_candidate)

    def expire(self, now: float) -> list[LiteConnection]:
        """Close connections whose peer stopped sending consent checks; returns them."""
        gone = [c for c in self._by_ufrag.values()
                if c.addresses and now - c.last_consent > CONSENT_TIMEOUT]
        for c in gone:
            c.close_now()
        return gone

