"""Batched sends on the shared UDP port: the sendmmsg extension (sfu._sendmmsg) on real sockets, and
UdpMux with batch_send on and off delivering the same datagrams in the same order."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aioice import stun

import sfu.udp_mux as udp_mux
import sfu.worker
from sfu import Worker, WorkerSettings
from sfu.udp_mux import UdpMux
from tests.sfu import test_single_port_e2e
from tests.sfu.test_udp_mux import binding_request, lite
from tests.sfu.test_udp_mux import peer as stun_peer

try:
    from sfu import _sendmmsg
except ImportError:  # not built: only the sendto path is tested
    _sendmmsg = None  # type: ignore[assignment]

needs_ext = pytest.mark.skipif(_sendmmsg is None, reason="sfu._sendmmsg is not built (pip install -e .)")
BOTH_MODES = [pytest.param(True, id="batched", marks=needs_ext), pytest.param(False, id="sendto")]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def receivers(n: int, host: str = "127.0.0.1") -> Iterator[list[socket.socket]]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((host, 0))
            s.settimeout(2)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def drain(sock: socket.socket, timeout: float = 0.2) -> list[bytes]:
    out = []
    sock.settimeout(timeout)
    with contextlib.suppress(TimeoutError):
        while True:
            out.append(sock.recv(70000))
    return out


@contextlib.contextmanager
def sender(family: int = socket.AF_INET) -> Iterator[socket.socket]:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        yield s
    finally:
        s.close()


# --- the extension -----------------------------------------------------------------------------
@needs_ext
@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="no IPv6 loopback"))])
def test_send_batch_delivers_every_packet_in_order_to_each_destination(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with receivers(3, host) as rx, sender(family) as tx:
        addrs = [_sendmmsg.sockaddr(host, r.getsockname()[1]) for r in rx]
        # more than one sendmmsg chunk (256), bytes and bytearray, an empty datagram
        packets: list[bytes | bytearray] = []
        dest: list[bytes] = []
        for i in range(600):
            p = i.to_bytes(2, "big") + b"x" * (i % 50)
            packets.append(bytearray(p) if i % 3 == 0 else p)
            dest.append(addrs[i % 3])
        packets.append(b"")
        dest.append(addrs[0])
        assert _sendmmsg.send_batch(tx.fileno(), packets, dest) == len(packets)
        for k, r in enumerate(rx):
            got = drain(r)
            want = [bytes(p) for i, p in enumerate(packets) if dest[i] == addrs[k]]
            assert got == want


@needs_ext
def test_send_batch_start_and_empty() -> None:
    with receivers(1) as rx, sender() as tx:
        a = _sendmmsg.sockaddr("127.0.0.1", rx[0].getsockname()[1])
        assert _sendmmsg.send_batch(tx.fileno(), [b"a", b"b", b"c"], [a, a, a], 1) == 3
        assert _sendmmsg.send_batch(tx.fileno(), [b"a"], [a], 1) == 1  # nothing left to send
        assert _sendmmsg.send_batch(tx.fileno(), [], []) == 0
        assert drain(rx[0]) == [b"b", b"c"]


@needs_ext
def test_sockaddr_packs_numeric_addresses_only() -> None:
    a4 = _sendmmsg.sockaddr("127.0.0.1", 5004)
    assert len(a4) == 16 and a4[2:4] == (5004).to_bytes(2, "big") and a4[4:8] == b"\x7f\x00\x00\x01"
    assert udp_mux._unpack(a4) == ("127.0.0.1", 5004)
    a6 = _sendmmsg.sockaddr("::ffff:10.0.0.1", 1)
    assert len(a6) == 28 and udp_mux._unpack(a6) == ("::ffff:10.0.0.1", 1)
    for host, port in [("localhost", 1), ("1.2.3", 1), ("fe80::1%eth0", 1), ("::1", 70000), ("::1", -1),
                       ("x" * 200, 1), ("::g", 1)]:
        with pytest.raises(ValueError):
            _sendmmsg.sockaddr(host, port)
    with pytest.raises(TypeError):
        _sendmmsg.sockaddr(b"127.0.0.1", 1)  # type: ignore[arg-type]


BAD_INPUT: list[tuple[str, Any, type[Exception]]] = [
    # (name, a -> (packets, addrs) with a good sockaddr a, error); a good datagram comes first
    ("str packet", lambda a: ([b"ok", "x"], [a, a]), TypeError),
    ("int packet", lambda a: ([b"ok", 1], [a, a]), TypeError),
    ("memoryview packet", lambda a: ([b"ok", memoryview(b"x")], [a, a]), TypeError),
    ("short sockaddr", lambda a: ([b"ok", b"x"], [a, a[:8]]), ValueError),
    ("str address", lambda a: ([b"ok", b"x"], [a, "127.0.0.1"]), TypeError),
    ("tuple address", lambda a: ([b"ok", b"x"], [a, ("127.0.0.1", 9)]), TypeError),
    ("wrong family", lambda a: ([b"ok", b"x"], [a, b"\x7f\x7f" + a[2:]]), ValueError),
    ("tuple of packets", lambda a: ((b"ok", b"x"), [a, a]), TypeError),
    ("lengths differ", lambda a: ([b"ok", b"x"], [a]), ValueError),
]


@needs_ext
@pytest.mark.parametrize(("make", "error"), [pytest.param(m, e, id=n) for n, m, e in BAD_INPUT])
def test_send_batch_rejects_bad_input_and_sends_nothing(make: Any, error: type[Exception]) -> None:
    with receivers(1) as rx, sender() as tx:
        packets, addrs = make(_sendmmsg.sockaddr("127.0.0.1", rx[0].getsockname()[1]))
        with pytest.raises(error):
            _sendmmsg.send_batch(tx.fileno(), packets, addrs)
        assert drain(rx[0], 0.05) == []


@needs_ext
def test_send_batch_bad_descriptor_and_arguments() -> None:
    a = _sendmmsg.sockaddr("127.0.0.1", 9)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = s.fileno()
    s.close()
    with pytest.raises(OSError):
        _sendmmsg.send_batch(fd, [b"x"], [a])  # closed (EBADF)
    with pytest.raises(ValueError):
        _sendmmsg.send_batch(-1, [b"x"], [a])
    with pytest.raises(ValueError):
        _sendmmsg.send_batch(0, [b"x"], [a], 2)  # start past the end
    with pytest.raises(TypeError):
        _sendmmsg.send_batch("0", [b"x"], [a])  # type: ignore[arg-type]
    with open("/dev/null", "rb") as f, pytest.raises(OSError):
        _sendmmsg.send_batch(f.fileno(), [b"x"], [a])  # not a socket (ENOTSOCK)


@needs_ext
def test_send_batch_partial_send_stops_at_the_failing_packet() -> None:
    """A datagram too large for UDP (EMSGSIZE) mid-batch: the ones before it go, the index of the
    failing one comes back, sending from there raises, and the rest goes from the next one."""
    with receivers(1) as rx, sender() as tx:
        a = _sendmmsg.sockaddr("127.0.0.1", rx[0].getsockname()[1])
        packets = [b"1", b"2", b"x" * 70000, b"4", b"5"]
        addrs = [a] * 5
        assert _sendmmsg.send_batch(tx.fileno(), packets, addrs) == 2
        with pytest.raises(OSError):
            _sendmmsg.send_batch(tx.fileno(), packets, addrs, 2)
        assert _sendmmsg.send_batch(tx.fileno(), packets, addrs, 3) == 5
        assert drain(rx[0]) == [b"1", b"2", b"4", b"5"]


@needs_ext
def test_an_ipv4_address_on_an_ipv6_socket() -> None:
    """Dual-stack: Linux sends it over IPv4; with IPV6_V6ONLY it is an OSError, not a crash."""
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with receivers(1) as rx, sender(socket.AF_INET6) as tx:
        a = _sendmmsg.sockaddr("127.0.0.1", rx[0].getsockname()[1])
        assert _sendmmsg.send_batch(tx.fileno(), [b"dual"], [a]) == 1
        assert drain(rx[0]) == [b"dual"]
    with receivers(1) as rx, sender(socket.AF_INET6) as tx:
        tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        with pytest.raises(OSError):
            _sendmmsg.send_batch(tx.fileno(), [b"v6only"], [_sendmmsg.sockaddr("127.0.0.1", 9)])


# --- UdpMux ------------------------------------------------------------------------------------
class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        self.event.set()


async def peers(n: int, host: str = "127.0.0.1") -> list[tuple[asyncio.DatagramTransport, Peer]]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        t, p = await loop.create_datagram_endpoint(Peer, local_addr=(host, 0))
        t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        out.append((t, p))
    return out


async def wait_count(ps: list[tuple[Any, Peer]], n: int, timeout: float = 3) -> None:
    """Until every peer got n datagrams (or the timeout: the caller's assertion then tells)."""
    deadline = time.monotonic() + timeout
    for _, p in ps:
        while len(p.received) < n and time.monotonic() < deadline:
            p.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.event.wait(), deadline - time.monotonic())


async def _fan_out(batch_send: bool, host: str = "127.0.0.1", rounds: int = 300) -> list[list[bytes]]:
    """What the forwarding core does: per incoming packet, one datagram to each subscriber, through
    the object ``selected_pair`` hands it; plus the mux's own sends (STUN, DTLS) interleaved."""
    mux = UdpMux(host, 0, batch_send=batch_send)
    await mux.start()
    assert mux.batching is batch_send
    ps = await peers(5, host)
    dests = [t.get_extra_info("sockname")[:2] for t, _ in ps]
    target = mux.send_side.transport
    assert target is not None and not target.is_closing()
    if batch_send:
        assert target is not mux.transport  # the batch, not the datagram transport
    try:
        for i in range(rounds):
            for k, d in enumerate(dests):
                packet = b"\x80" + i.to_bytes(2, "big") + bytes([k]) + b"p" * 100
                if i % 50 == 7:
                    mux.sendto(b"\x16" + packet[1:], d)  # DTLS-ish through the mux's own sendto
                else:
                    target.sendto(packet, d)
            if i % 10 == 0:
                await asyncio.sleep(0)
        await wait_count(ps, rounds)
        return [p.received for _, p in ps]
    finally:
        mux.close()
        for t, _ in ps:
            t.close()


def _expected(rounds: int = 300) -> list[list[bytes]]:
    return [[(b"\x16" if i % 50 == 7 else b"\x80") + i.to_bytes(2, "big") + bytes([k]) + b"p" * 100
             for i in range(rounds)] for k in range(5)]


@pytest.mark.parametrize("batch_send", BOTH_MODES)
async def test_mux_delivers_the_same_datagrams_in_order_batched_or_not(batch_send: bool) -> None:
    assert await _fan_out(batch_send) == _expected()


@needs_ext
@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_mux_batches_on_ipv6() -> None:
    assert await _fan_out(True, "::1", 50) == _expected(50)


@needs_ext
def test_mux_batched_under_uvloop() -> None:
    """The server runs uvloop: same datagrams, same order, there too."""
    import uvloop

    assert uvloop.run(_fan_out(True)) == _expected()
    assert uvloop.run(_fan_out(False)) == _expected()  # and the sendto path under uvloop


@needs_ext
async def test_a_batch_goes_out_within_one_loop_iteration_or_when_full() -> None:
    mux = UdpMux("127.0.0.1", 0, batch_send=True)
    await mux.start()
    [(t, p)] = await peers(1)
    d = t.get_extra_info("sockname")[:2]
    try:
        mux.sendto(b"\x80one", d)
        assert mux._batch is not None and mux._batch.batches == 0
        await asyncio.sleep(0)  # the flush scheduled with call_soon runs
        assert mux._batch.batches == 1
        for i in range(udp_mux.BATCH_MAX + 1):  # reaching BATCH_MAX sends at once
            mux.sendto(b"\x80" + bytes([i]), d)
        assert mux._batch.batches == 2
        await asyncio.sleep(0)
        assert mux._batch.batches == 3 and mux._batch.fallback == 0
        await wait_count([(t, p)], udp_mux.BATCH_MAX + 2)
        assert p.received == [b"\x80one"] + [b"\x80" + bytes([i]) for i in range(udp_mux.BATCH_MAX + 1)]
    finally:
        mux.close()
        t.close()


@needs_ext
async def test_close_sends_what_is_pending_and_later_sends_are_dropped() -> None:
    mux = UdpMux("127.0.0.1", 0, batch_send=True)
    await mux.start()
    [(t, p)] = await peers(1)
    d = t.get_extra_info("sockname")[:2]
    batch = mux.send_side.transport
    assert batch is not None
    mux.sendto(b"\x80last", d)
    mux.close()
    assert mux.send_side.transport is None and batch.is_closing()
    batch.sendto(b"\x80after", d)  # the forwarding core may hold the batch until its next tick
    await asyncio.sleep(0.1)
    assert p.received == [b"\x80last"]
    t.close()


@needs_ext
async def test_an_address_the_extension_cannot_pack_keeps_its_place() -> None:
    """A host name (asyncio's transport resolves it; sockaddr() does not): what is pending goes
    first, then that datagram through the transport, in order."""
    mux = UdpMux("127.0.0.1", 0, batch_send=True)
    await mux.start()
    [(t, p)] = await peers(1)
    port = t.get_extra_info("sockname")[1]
    try:
        mux.sendto(b"\x801", ("127.0.0.1", port))
        mux.sendto(b"\x802", ("localhost", port))
        mux.sendto(b"\x803", ("127.0.0.1", port))
        await wait_count([(t, p)], 3)
        assert p.received == [b"\x801", b"\x802", b"\x803"]
        assert mux._batch is not None and mux._batch.fallback == 1
    finally:
        mux.close()
        t.close()


class FakeSendmmsg:
    """The extension, but the socket "would block" after ``room`` datagrams of each call, or a
    datagram fails (OSError) at ``fail``."""

    def __init__(self, room: int, fail: int | None = None) -> None:
        self.room = room
        self.fail = fail
        self.sockaddr = _sendmmsg.sockaddr
        self.calls = 0

    def send_batch(self, fd: int, packets: list[bytes], addrs: list[bytes], start: int = 0) -> int:
        self.calls += 1
        if self.fail is not None and start == self.fail:
            raise OSError(90, "Message too long")
        end = min(len(packets), start + self.room)
        if self.fail is not None and start < self.fail < end:
            end = self.fail
        return int(_sendmmsg.send_batch(fd, packets[:end], addrs[:end], start))


@needs_ext
@pytest.mark.parametrize(("room", "fail"), [(0, None), (3, None), (1000, 4), (2, 2)])
async def test_what_the_socket_did_not_take_goes_through_the_transport_in_order(
        monkeypatch: pytest.MonkeyPatch, room: int, fail: int | None) -> None:
    fake = FakeSendmmsg(room, fail)
    monkeypatch.setattr(udp_mux, "_sendmmsg", fake)
    mux = UdpMux("127.0.0.1", 0, batch_send=True)
    await mux.start()
    [(t, p)] = await peers(1)
    d = t.get_extra_info("sockname")[:2]
    try:
        for i in range(10):
            mux.sendto(b"\x80" + bytes([i]), d)
        mux.flush()
        await wait_count([(t, p)], 10)
        assert p.received == [b"\x80" + bytes([i]) for i in range(10)]
        assert fake.calls >= 1 and mux._batch is not None and mux._batch.fallback >= 1
    finally:
        mux.close()
        t.close()


async def test_without_the_extension_batch_send_falls_back_to_sendto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udp_mux, "_sendmmsg", None)
    assert not udp_mux.batch_send_available()
    for batch_send in (None, True):
        mux = UdpMux("127.0.0.1", 0, batch_send=batch_send)
        await mux.start()
        assert not mux.batching and mux.send_side.transport is mux.transport
        mux.close()


@pytest.mark.parametrize("batch_send", BOTH_MODES)
async def test_stun_answer_and_data_path_in_both_modes(batch_send: bool) -> None:
    mux = UdpMux("127.0.0.1", 0, batch_send=batch_send)
    await mux.start()
    c = await lite(mux)
    t, p = await stun_peer(answer_for=c)  # answers the mux's own check (issue 10)
    try:
        t.sendto(binding_request(c), ("127.0.0.1", mux.port))
        await asyncio.wait_for(c.connect(), 2)
        response = await p.next_response()
        assert response.message_class == stun.Class.RESPONSE
        assert response.check_message_integrity(c.local_password.encode())
        assert len(p.checks) == 1  # the mux's check went out on this send path too
        await c.send(b"\x16dtls")
        assert await p.next_data() == b"\x16dtls"
    finally:
        mux.close()
        t.close()


@pytest.mark.parametrize("batch_send", [None, True, False])
async def test_worker_settings_select_the_send_path(batch_send: bool | None) -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, udp_listen_address="127.0.0.1",
                                   batch_send=batch_send))
    await worker.start()
    try:
        expected = batch_send is not False and udp_mux.batch_send_available()
        assert worker.mux is not None and worker.mux.batching is expected
    finally:
        await worker.close()


# --- real aiortc peers on the shared port, in both modes ---------------------------------------
@pytest.mark.parametrize("batch_send", BOTH_MODES)
async def test_single_port_e2e_in_both_modes(monkeypatch: pytest.MonkeyPatch, batch_send: bool) -> None:
    """tests/sfu/test_single_port_e2e.py's 20-subscriber run with the send path forced."""
    seen: list[tuple[bool, int, int]] = []

    class Recording(UdpMux):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["batch_send"] = batch_send
            super().__init__(*args, **kwargs)

        def close(self) -> None:
            batch = self._batch
            seen.append((self.batching, batch.batches if batch else 0, batch.fallback if batch else 0))
            super().close()

    monkeypatch.setattr(sfu.worker, "UdpMux", Recording)
    await test_single_port_e2e.test_transports_share_one_udp_port_and_all_receive_media(
        test_single_port_e2e.N_DEFAULT)
    [(batching, batches, fallback)] = seen
    assert batching is batch_send
    if batch_send:
        assert batches > 20 and fallback == 0
