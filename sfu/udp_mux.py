"""One UDP port for every WebRTC transport of a worker: ICE-lite (RFC 8445 section 2.5).

``UdpMux`` owns one socket. Each peer connection gets a ``LiteConnection`` (a stand-in for
``aioice.Connection`` that aiortc's ICE and DTLS transports use unchanged) with its own ICE
ufrag/password. The mux answers STUN binding requests itself and demultiplexes:

1. a STUN binding request, by the first half of its USERNAME (our ufrag), checked with that
   connection's password (MESSAGE-INTEGRITY); a binding success response, by its transaction id
   (an answer to one of our own checks, below);
2. DTLS and SRTP/SRTCP (first byte 20..63 or 128..191, RFC 7983), by the source address alone: one
   dict lookup. Anything else (an empty datagram, TURN channel data, other first bytes) is dropped
   and counted (``not_demuxable``); a STUN-range byte without STUN's magic cookie is ``bad_stun``.

Where media goes (issue 10: a replayed or source-forged check must never redirect a stream). A
valid check proves its sender knows the ICE password, not that the source address is the peer's:
the request can be replayed from elsewhere, and the peer itself can forge its source. So every
address a connection sees is a *path* of its own (``_Path``), and media goes only to a *verified*
one: on the first valid check from a new address the mux sends its own binding request there
(USERNAME ``remote:local``, signed with the peer's password, RFC 8445 section 7.2.2), and the
address is verified when a success response with that transaction id and valid MESSAGE-INTEGRITY
comes back from it (consent, RFC 7675 section 5.1: only the real peer at that address can answer).
Full agents (browsers, aioice) answer checks from a lite peer (RFC 8445 section 7.3). The verified
path with the most recent USE-CANDIDATE (or the first one verified) is where we send; ``connect()``
returns on the first. A transaction id is remembered with the address it came from: the same id
from another address is a replay and is dropped. A check never moves another connection's receive
address (``_by_addr``) unless this connection verified it.

Consent is per path: a path lives while valid checks keep arriving from it and it answered one of
our checks within ``consent_timeout`` (30 s, RFC 7675 section 5.1; re-checked on the peer's own
checks once a third of that passed). ``expire()`` (the worker's ticker) drops paths without
consent, moves the send path to another verified one, and closes a connection that has none left
(aiortc reports a failed ICE transport).

2000 participants need one socket and one file descriptor, not 2000 of each. Malformed STUN, an
unknown ufrag, a bad password, data from an unknown address: dropped and counted, never raised.

Sends (``batch_send``): every datagram of the worker, SRTP from the forwarding core, DTLS and
STUN alike, is appended to one pending batch, sent by one ``sendmmsg(2)`` call
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
CONSENT_TIMEOUT = 30.0  # s a path keeps consent without a valid check and an answered one (RFC 7675 5.1)
CONNECT_TIMEOUT = 30.0  # s to wait for the first verified path after the descriptions are exchanged
PATHS_MAX = 8  # addresses tracked per connection (a browser checks from a few candidates)
TXIDS_MAX = 32  # transaction ids remembered per connection (replay detection)
PENDING_MAX = 16384  # our own checks awaiting an answer, whole mux
VERIFY_RTO = 0.25  # s before our first retransmission; doubled each time (RFC 8489 6.2.1)
VERIFY_TRIES = 5  # sends of one check: 0.25 + 0.5 + 1 + 2 + 4 = 7.75 s to answer
# PRIORITY of our checks: a peer-reflexive candidate of ours (RFC 8445 section 7.1.1)
_CHECK_PRIORITY = candidate_priority(1, "prflx")

# drop reasons counted in WorkerStats.mux_dropped
MUX_BAD_STUN = "bad_stun"
MUX_UNKNOWN_UFRAG = "unknown_ufrag"
MUX_BAD_INTEGRITY = "bad_integrity"
MUX_UNKNOWN_ADDRESS = "unknown_address"
MUX_NOT_BINDING = "not_binding_request"
MUX_REPLAYED = "replayed_request"  # a seen transaction id from another address
MUX_UNKNOWN_TRANSACTION = "unknown_transaction"  # a response to no check of ours (or from elsewhere)
MUX_CHECKS_BUSY = "checks_busy"  # PENDING_MAX checks of ours outstanding: this one waits for the next
MUX_NOT_DEMUXABLE = "not_demuxable"  # empty, or a first byte outside STUN, DTLS and RTP (RFC 7983)


@dataclass
class MuxStats:
    """Counters of the shared port (plain ints, read by the signalling's metrics)."""

    stun_requests: int = 0
    stun_responses: int = 0
    checks_sent: int = 0  # our own binding requests (path verification), retransmissions included
    paths_verified: int = 0  # answers to them: an address proved it is the peer's
    paths_expired: int = 0  # paths dropped for lost consent
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


class _Path:
    """One remote address of a connection: consent state and our outstanding check to it."""

    __slots__ = ("addr", "answered", "last_check", "nominated", "verified", "verify")

    def __init__(self, addr: tuple[str, int], now: float) -> None:
        self.addr = addr
        self.verified = False  # answered one of our checks: media may go here
        self.last_check = now  # last valid check from it (or answer to ours)
        self.answered = 0.0  # last answer to one of our checks
        self.nominated = 0  # sequence number of its latest USE-CANDIDATE check (0: never)
        self.verify: _Verify | None = None  # our outstanding check (at most one per address)


class _Verify:
    """Our binding request to a path, until answered or given up."""

    __slots__ = ("conn", "data", "key", "path", "timer", "tries", "txid")

    def __init__(self, conn: LiteConnection, path: _Path, txid: bytes, data: bytes, key: bytes) -> None:
        self.conn = conn
        self.path = path
        self.txid = txid
        self.data = data
        self.key = key  # the peer's password: its answer is signed with it
        self.tries = 1
        self.timer: asyncio.TimerHandle | None = None


class LiteConnection:
    """The ICE-lite side of one peer connection, in ``aioice.Connection``'s shape.

    aiortc calls: ``local_candidates``, ``local_username``, ``local_password``,
    ``gather_candidates()``, ``add_remote_candidate()``, ``remote_candidates``, ``connect()``,
    ``recv()``, ``send()``, ``get_event()``, ``close()``, and sets ``ice_controlling``,
    ``remote_username``, ``remote_password``, ``remote_is_lite``. ``data_received`` is the
    per-datagram entry point (the forwarding core replaces it on the instance to handle SRTP
    synchronously). ``_nominated[1]`` is the selected (send) path, read by
    ``sfu.aiortc_compat.selected_pair``; it only ever holds a verified address.
    """

    def __init__(self, mux: UdpMux) -> None:
        self._mux = mux
        self.local_username = secrets.token_hex(4)
        self.local_password = secrets.token_urlsafe(18)  # 24 chars >= the 22 RFC 8839 asks for
        self.local_key = self.local_password.encode()  # the MESSAGE-INTEGRITY key
        self.ice_controlling = False  # an ICE-lite agent is always controlled
        self.tie_breaker = secrets.randbits(64)  # ICE-CONTROLLED of our checks
        self.remote_username: str | None = None
        self.remote_password: str | None = None
        self.remote_is_lite = False
        self.remote_candidates: list[Candidate] = []
        self._nominated: dict[int, _Pair] = {}
        self._paths: dict[tuple[str, int], _Path] = {}
        self._selected: _Path | None = None
        self._nominations = 0
        self._txids: dict[bytes, tuple[str, int]] = {}  # recent check transaction ids -> first source
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._closed = False
        self._event_waiter: asyncio.Future[None] | None = None
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
        """Wait for the first verified path: the peer's check, and its answer to ours."""
        self._mux.register(self)
        # aiortc set remote_password just before: check the addresses whose checks came earlier
        for path in list(self._paths.values()):
            if not path.verified:
                self._mux.verify(self, path)
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            raise ConnectionError("ICE failed: no verified connectivity check") from None
        if self._closed:
            raise ConnectionError("ICE connection closed")

    async def recv(self) -> bytes:
        if not self._connected.is_set():
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
            loop = asyncio.get_running_loop()
            self._event_waiter = loop.create_future()
            try:
                await asyncio.shield(self._event_waiter)
            finally:
                if self._closed:
                    # aiortc's monitor marks the ICE transport failed as soon as this returns; the
                    # DTLS receive ends one loop iteration later, so a lost path (consent, issue 20)
                    # is reported as 'failed' before aiortc closes the peer connection for the
                    # ended DTLS (which it reports as 'closed')
                    loop.call_soon(self._queue.put_nowait, None)
        return ConnectionClosed()

    async def close(self) -> None:
        self.close_now()

    # --- the mux's side ----------------------------------------------------------------------
    def close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._mux.unregister(self)
        self._nominated.clear()  # nothing more is sent (the forwarding core reads this)
        self._selected = None
        self._connected.set()
        waiter = self._event_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # get_event ends the receive queue after the monitor saw it
        else:
            self._queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def addresses(self) -> set[tuple[str, int]]:
        """Every address a valid check came from (verified or not)."""
        return set(self._paths)

    @property
    def verified_addresses(self) -> set[tuple[str, int]]:
        return {a for a, p in self._paths.items() if p.verified}

    @property
    def selected_address(self) -> tuple[str, int] | None:
        """Where media goes (a verified path), or None."""
        return self._selected.addr if self._selected is not None else None

    @property
    def last_consent(self) -> float:
        """When the selected path last showed consent (0.0 without one)."""
        p = self._selected
        return min(p.last_check, p.answered) if p is not None else 0.0

    def data_received(self, data: bytes, component: int) -> None:
        self._queue.put_nowait(data)

    def _select(self, path: _Path | None) -> None:
        if path is self._selected:
            return
        self._selected = path
        if path is None:
            self._nominated.clear()
            return
        self._nominated[1] = _Pair(self._mux.send_side, path.addr)
        self._connected.set()

    def consider(self, path: _Path) -> None:
        """A verified path checked or was verified: the first one, or a later nomination, is selected."""
        selected = self._selected
        if selected is None or (path is not selected and path.nominated > selected.nominated):
            self._select(path)

    def drop_path(self, addr: tuple[str, int]) -> None:
        """Forget ``addr`` (consent lost, or another connection verified it); pick another send path."""
        path = self._paths.pop(addr, None)
        if path is None:
            return
        self._mux.forget(self, path)
        if path is self._selected:
            fresh = [p for p in self._paths.values() if p.verified]
            self._select(max(fresh, key=lambda p: (p.nominated, p.last_check)) if fresh else None)

    def _new_path(self, addr: tuple[str, int], now: float) -> _Path:
        paths = self._paths
        if len(paths) >= PATHS_MAX:  # the least recently checked one that is not the send path goes
            old = min((p for p in paths.values() if p is not self._selected), key=lambda p: p.last_check)
            self.drop_path(old.addr)
        path = paths[addr] = _Path(addr, now)
        return path

    # --- what the mux calls (the connection's consent state stays behind these) -------------
    @property
    def paths(self) -> list[_Path]:
        return list(self._paths.values())

    def path(self, addr: tuple[str, int]) -> _Path | None:
        return self._paths.get(addr)

    def check_received(self, txid: bytes, addr: tuple[str, int], use_candidate: bool, now: float) -> _Path | None:
        """An authenticated check from ``addr``: its path (new or known), or None for a replay.

        A retransmission comes from the same address; the same transaction id from another one is
        a replay (issue 10: a captured check sent from elsewhere must not even look like a new path)."""
        txids = self._txids
        first = txids.get(txid)
        if first is None:
            if len(txids) >= TXIDS_MAX:
                del txids[next(iter(txids))]
            txids[txid] = addr
        elif first != addr:
            return None
        path = self._paths.get(addr)
        if path is None:
            path = self._new_path(addr, now)
        path.last_check = now
        if use_candidate:
            self._nominations += 1
            path.nominated = self._nominations
        if path.verified:
            self.consider(path)
        return path

    def path_answered(self, path: _Path, now: float) -> bool | None:
        """The peer answered our check of ``path``: it is verified (and may be selected). Returns
        whether it was verified just now, or None when the path is no longer this connection's."""
        if self._closed or self._paths.get(path.addr) is not path:
            return None
        path.answered = path.last_check = now
        newly = not path.verified
        path.verified = True
        self.consider(path)
        return newly

    def expire_paths(self, now: float, timeout: float) -> int:
        """Drop the paths without consent (no check from it, or no answer to ours, for ``timeout``);
        returns how many went."""
        gone = [a for a, p in self._paths.items()
                if now - p.last_check > timeout or (p.verified and now - p.answered > timeout)]
        for addr in gone:
            self.drop_path(addr)
        return len(gone)

    @property
    def lost(self) -> bool:
        """It was connected and has no verified path left: media can go nowhere."""
        return self._connected.is_set() and self._selected is None


class UdpMux(asyncio.DatagramProtocol):
    """The shared UDP socket of a worker. ``await mux.start()`` binds it.

    ``batch_send``: send with ``sendmmsg`` in batches (``True``), one ``transport.sendto`` per
    datagram (``False``), or batches when ``sfu._sendmmsg`` is importable (``None``). ``True``
    without the extension falls back to ``sendto`` (logged once). ``mux.batching`` tells which
    path runs once started.
    """

    def __init__(self, listen_address: str, port: int, announced_addresses: tuple[str, ...] = (),
                 *, batch_send: bool | None = None, consent_timeout: float = CONSENT_TIMEOUT) -> None:
        if not consent_timeout > 0:
            raise ValueError("consent_timeout must be > 0")
        self.listen_address = listen_address
        self.consent_timeout = consent_timeout
        # a path's answer is renewed on its own checks once this old (RFC 7675 5.1 checks every ~5 s)
        self._reverify_after = consent_timeout / 3
        self.requested_port = port
        self.port = port
        self.announced_addresses = announced_addresses or (listen_address,)
        self.stats = MuxStats()
        self.transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, LiteConnection] = {}
        self._by_addr: dict[tuple[str, int], LiteConnection] = {}
        self._pending: dict[bytes, _Verify] = {}  # our checks awaiting an answer, by transaction id
        self._next_expiry = 0.0
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
        for path in conn.paths:
            self.forget(conn, path)

    def forget(self, conn: LiteConnection, path: _Path) -> None:
        """``conn`` no longer uses ``path``: release its receive address and our check to it."""
        if self._by_addr.get(path.addr) is conn:
            del self._by_addr[path.addr]
        v = path.verify
        if v is not None:
            path.verify = None
            self._pending.pop(v.txid, None)
            if v.timer is not None:
                v.timer.cancel()

    def verify(self, conn: LiteConnection, path: _Path) -> None:
        """Send our check to ``path`` (RFC 7675 5.1) unless one is outstanding or the peer's password
        is not known yet (then ``connect()`` or the peer's next check does it)."""
        if path.verify is not None or conn.remote_password is None or conn.remote_username is None:
            return
        if len(self._pending) >= PENDING_MAX:
            self.stats.drop(MUX_CHECKS_BUSY)
            return
        txid = secrets.token_bytes(12)
        key = conn.remote_password.encode()
        data = stun.binding_request(txid, f"{conn.remote_username}:{conn.local_username}", key,
                                    _CHECK_PRIORITY, conn.tie_breaker)
        v = path.verify = _Verify(conn, path, txid, data, key)
        self._pending[txid] = v
        self.sendto(data, path.addr)
        self.stats.checks_sent += 1
        with contextlib.suppress(RuntimeError):  # no running loop: no retransmissions
            v.timer = asyncio.get_running_loop().call_later(VERIFY_RTO, self._retransmit, v)

    def _retransmit(self, v: _Verify) -> None:
        if self._pending.get(v.txid) is not v:
            return
        if v.tries >= VERIFY_TRIES:  # unanswered: the path stays as it is; its next check asks again
            del self._pending[v.txid]
            v.path.verify = None
            v.timer = None
            return
        self.sendto(v.data, v.path.addr)
        self.stats.checks_sent += 1
        v.timer = asyncio.get_running_loop().call_later(VERIFY_RTO * (1 << v.tries), self._retransmit, v)
        v.tries += 1

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
        for v in self._pending.values():
            if v.timer is not None:
                v.timer.cancel()
        self._pending.clear()
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
        first = data[0] if data else 255
        # RFC 7983 section 7: the first byte says what a datagram is. Only SRTP/SRTCP (128..191,
        # tested first: the hot path) and DTLS (20..63) go to a connection; anything else there
        # would reach aiortc's DTLS loop, where an empty datagram raised IndexError and ended the
        # peer connection (issue 10)
        if 127 < first < 192 or 19 < first < 64:
            conn = self._by_addr.get(addr2)
            if conn is not None:
                conn.data_received(data, 1)
                return
            self.stats.drop(MUX_UNKNOWN_ADDRESS)
            return
        if first <= 3:
            if len(data) >= 20 and data[4:8] == STUN_MAGIC:
                try:
                    self._stun(data, addr2)
                except Exception:  # a malformed message must never reach the loop
                    self.stats.drop(MUX_BAD_STUN)
                return
            self.stats.drop(MUX_BAD_STUN)
            return
        self.stats.drop(MUX_NOT_DEMUXABLE)

    def error_received(self, exc: Exception) -> None:  # ICMP errors for one peer: not fatal
        logger.debug("udp mux: %s", exc)

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[0] == 1 and data[1] == 1:  # 0x0101: a binding success response, to one of our checks
            self._answer(data, addr)
            return
        try:
            request = stun.parse_binding_request(data)
        except stun.NotBindingRequest:
            self.stats.drop(MUX_NOT_BINDING)  # error responses, indications
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
        now = time.monotonic()
        txid = request.transaction_id
        path = conn.check_received(txid, addr, request.use_candidate, now)
        if path is None:
            self.stats.drop(MUX_REPLAYED)
            return
        self.stats.stun_requests += 1
        if not path.verified or now - path.answered > self._reverify_after:
            self.verify(conn, path)  # before the response: its answer comes back before DTLS starts
        self.sendto(stun.binding_success(txid, addr, key), addr)
        self.stats.stun_responses += 1
        if self._by_addr.get(addr) is None:
            self._by_addr[addr] = conn  # receive only: another connection's address needs verifying

    def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        """A binding success response: the answer to our check of a path verifies that path."""
        try:
            response = stun.parse_binding_success(data)
        except ValueError:
            self.stats.drop(MUX_BAD_STUN)
            return
        v = self._pending.get(response.transaction_id)
        if v is None or v.path.addr != addr:
            self.stats.drop(MUX_UNKNOWN_TRANSACTION)
            return
        if not response.check(v.key):
            self.stats.drop(MUX_BAD_INTEGRITY)
            return
        del self._pending[response.transaction_id]
        if v.timer is not None:
            v.timer.cancel()
        path, conn = v.path, v.conn
        path.verify = None
        newly = conn.path_answered(path, time.monotonic())
        if newly is None:
            return
        if newly:
            self.stats.paths_verified += 1
        owner = self._by_addr.get(addr)
        if owner is not conn:  # the peer at this address is now conn's: receive follows
            if owner is not None:
                owner.drop_path(addr)
            self._by_addr[addr] = conn

    def expire(self, now: float) -> list[LiteConnection]:
        """Drop paths without consent; close connections left without a verified path (returned).

        Called by the worker's ticker; scans every connection at most every ``consent_timeout / 8``
        (at most once a second)."""
        if now < self._next_expiry:
            return []
        timeout = self.consent_timeout
        self._next_expiry = now + min(1.0, timeout / 8)
        gone: list[LiteConnection] = []
        for conn in list(self._by_ufrag.values()):
            self.stats.paths_expired += conn.expire_paths(now, timeout)
            if conn.lost:
                gone.append(conn)
        for conn in gone:
            conn.close_now()
        return gone
