"""The compiled fan-out (sfu._fastpath) against the Python reference path, byte for byte.

Real libsrtp sessions and real UDP sockets on 127.0.0.1; the reference is the Python rewrite
(``sfu.rtp.rewrite_header`` / ``rewrite_extensions``). The packet path through producers and
consumers runs on both fan-outs in test_forwarding_unit, test_simulcast_forwarding and
test_lifecycle (their ``worker`` fixtures); this file checks the extension itself and the hand-overs
between the two paths.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from sfu import Worker, rtcp
from sfu import aiortc_compat as compat
from sfu.fast_path import FanOut, Slot, fast_path_available, make_fanout
from sfu.rtp import make_id_map, parse_header, rewrite_extensions, rewrite_header

from .offline import load_packets, offline_publisher, offline_subscriber, offline_worker

VP8 = load_packets("rtp_vp8.hex")
OPUS = load_packets("rtp_opus.hex")


def two_byte_packet(seq: int) -> bytes:
    """An RTP packet with a two-byte-header extension block (ids 1 and 200, one padding byte)."""
    block = bytes([1, 2, 0xAA, 0xBB, 0, 200, 1, 0xCC])
    header = struct.pack("!BBHII", 0x90, 111, seq, 960 * seq, 0x5150) + struct.pack("!HH", 0x1000, len(block) // 4)
    return header + block + bytes(range(40))


@dataclass
class Peer:
    """A receiving socket and the SRTP session pair of one subscriber."""

    rx: socket.socket
    tx_session: Session
    rx_session: Session

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.rx.getsockname()
        return host, port

    def received(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(bytes(self.rx_session.unprotect(self.rx.recv(65536))))
            except BlockingIOError:
                return out


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made = []
    for _ in range(3):
        key = os.urandom(30)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        made.append(Peer(rx, Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
                         Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))))
    yield made
    for p in made:
        p.rx.close()


def sockaddr(host: str, port: int) -> bytes:
    return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_aton(host))


def configure(slot: Slot, sender: socket.socket, peer: Peer, *, pt: int, ssrc: int, seq_off: int = 0,
              ts_off: int = 0, id_map: bytes | None = None, last_seq: int = -1) -> None:
    srtp = compat.srtp_context_address(peer.tx_session)
    assert srtp is not None
    slot.configure(fd=sender.fileno(), addr=sockaddr(*peer.address), srtp=srtp, session=peer.tx_session,
                   payload_type=pt, ssrc=ssrc, seq_offset=seq_off, ts_offset=ts_off, id_map=id_map,
                   last_seq=last_seq, last_ts=0, last_time=0.0)


def reference(data: bytes, pt: int, ssrc: int, seq_off: int, ts_off: int, id_map: bytes | None) -> bytes:
    h = parse_header(data)
    buf = bytearray(data)
    rewrite_header(buf, pt, (h.sequence_number + seq_off) & 0xFFFF, (h.timestamp + ts_off) & 0xFFFFFFFF, ssrc)
    if h.ext_profile and id_map is not None:
        rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, id_map)
    return bytes(buf)


def forward(fan: FanOut, data: bytes) -> int:
    h = parse_header(data)
    return fan.forward(data, h.sequence_number, h.timestamp, h.ext_profile, h.ext_start, h.ext_end)


def test_fast_path_is_built_on_linux() -> None:
    # the package builds it (pyproject ext-modules); a missing compiler would silently cost 2x CPU
    assert fast_path_available() is sys.platform.startswith("linux")


def test_rewrite_and_srtp_match_the_python_path_byte_for_byte(sender: socket.socket, peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    remap = bytearray(256)
    remap[1], remap[3], remap[200] = 5, 0, 14  # move, drop, move (two-byte form keeps 14)
    maps: list[bytes | None] = [None, bytes(remap), make_id_map({"a": 1, "b": 3}, {"a": 1})]
    settings = [dict(pt=100, ssrc=0x01020304, seq_off=0xFFF0, ts_off=0xFFFFFF00),  # both wrap
                dict(pt=96, ssrc=0xDEADBEEF, seq_off=7, ts_off=90000),
                dict(pt=111, ssrc=42, seq_off=0, ts_off=0)]
    slots = []
    for peer, kw, id_map in zip(peers, settings, maps, strict=True):
        slot = Slot()
        configure(slot, sender, peer, id_map=id_map, **kw)  # type: ignore[arg-type]
        fan.add(slot)
        slots.append(slot)
    # one increasing sequence (libsrtp refuses an index far behind the last one it protected)
    packets = [d[:2] + struct.pack("!H", i + 1) + d[4:]
               for i, d in enumerate(VP8 + OPUS + [two_byte_packet(i) for i in range(3)])]
    for data in packets:
        assert forward(fan, data) == 3
    for peer, kw, id_map, slot in zip(peers, settings, maps, slots, strict=True):
        got = peer.received()
        want = [reference(d, kw["pt"], kw["ssrc"], kw["seq_off"], kw["ts_off"], id_map) for d in packets]
        assert got == want
        assert slot.packets == len(packets)
        assert slot.octets == sum(len(d) - parse_header(d).ext_end for d in packets)
    assert fan.take_errors() == (0, 0)


def test_last_sent_state_follows_the_newest_sequence_number(sender: socket.socket, peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    slot = Slot()
    configure(slot, sender, peers[0], pt=96, ssrc=1, seq_off=0xFFFE, ts_off=10)
    fan.add(slot)
    t0 = time.monotonic()
    newest = parse_header(VP8[3])
    for i in (0, 1, 3, 2):  # 2 arrives late: it is sent, but is not the newest
        forward(fan, VP8[i])
    assert slot.last_seq == (newest.sequence_number + 0xFFFE) & 0xFFFF
    assert slot.last_ts == (newest.timestamp + 10) & 0xFFFFFFFF
    assert t0 <= slot.last_time <= time.monotonic()
    assert slot.packets == 4 and len(peers[0].received()) == 4


def test_a_failing_socket_is_counted_and_the_others_still_get_the_packet(peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    good_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good, dead = Slot(), Slot()
    configure(good, good_sock, peers[0], pt=96, ssrc=1)
    configure(dead, dead_sock, peers[1], pt=96, ssrc=2)
    dead_sock.close()  # its descriptor is now invalid: EBADF
    fan.add(dead)
    fan.add(good)
    try:
        assert forward(fan, VP8[0]) == 1
        assert fan.last_bytes > len(VP8[0])  # the SRTP tag is counted
        assert fan.take_errors() == (0, 1)
        assert fan.take_errors() == (0, 0)
        assert len(peers[0].received()) == 1
        assert (good.packets, dead.packets) == (1, 0)
    finally:
        good_sock.close()


def test_bad_arguments_raise_and_send_nothing(sender: socket.socket, peers: list[Peer]) -> None:
    with pytest.raises(ValueError):
        FanOut(0)
    fan = make_fanout()
    assert fan is not None
    slot = Slot()
    with pytest.raises(ValueError):
        fan.add(slot)  # not configured
    with pytest.raises(ValueError):
        slot.configure(fd=sender.fileno(), addr=b"\x00" * 16, srtp=1, session=None, payload_type=96, ssrc=1,
                       seq_offset=0, ts_offset=0, id_map=None, last_seq=-1, last_ts=0, last_time=0.0)
    srtp = compat.srtp_context_address(peers[0].tx_session)
    assert srtp is not None
    with pytest.raises(ValueError):  # nothing would keep the SRTP context alive
        slot.configure(fd=sender.fileno(), addr=sockaddr(*peers[0].address), srtp=srtp, session=None,
                       payload_type=96, ssrc=1, seq_offset=0, ts_offset=0, id_map=None, last_seq=-1, last_ts=0,
                       last_time=0.0)
    with pytest.raises(ValueError):
        configure(slot, sender, peers[0], pt=200, ssrc=1)  # PT out of range
    with pytest.raises(ValueError):
        configure(slot, sender, peers[0], pt=96, ssrc=1, id_map=b"short")
    configure(slot, sender, peers[0], pt=96, ssrc=1)
    fan.add(slot)
    data = VP8[0]
    h = parse_header(data)
    with pytest.raises(TypeError):
        fan.forward(bytearray(data), h.sequence_number, h.timestamp, 0, 12, 12)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fan.forward(data, h.sequence_number, h.timestamp, h.ext_profile, h.ext_start, len(data) + 1)
    with pytest.raises(ValueError):
        fan.forward(data[:8], 0, 0, 0, 12, 12)
    with pytest.raises(TypeError):
        fan.forward(data, 0)  # type: ignore[call-arg]
    assert peers[0].received() == [] and slot.packets == 0
    # longer than any MTU: dropped and counted for every slot, not raised (the Python path refuses it too)
    big = data[:12] + bytes(1600)
    assert fan.forward(big, 1, 1, 0, 12, 12) == 0 and fan.take_errors() == (1, 0)
    assert peers[0].received() == []


def test_add_and_remove_are_idempotent(sender: socket.socket, peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    slot = Slot()
    configure(slot, sender, peers[0], pt=96, ssrc=1)
    fan.add(slot)
    fan.add(slot)
    assert len(fan) == 1 and slot.members == 1
    fan.remove(slot)
    fan.remove(slot)
    assert len(fan) == 0 and slot.members == 0
    assert forward(fan, VP8[0]) == 0 and peers[0].received() == []


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker("fast")
    yield w
    await w.close()


async def test_a_new_path_takes_consumers_back_to_python_and_sequence_numbers_stay_continuous(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    sub, (consumer,), path, _ = await offline_subscriber(router, [audio])
    for data in OPUS[:5]:
        pub._on_rtp(data)
    assert consumer.fast and consumer.packets == 5
    sink = sub._fast_sink
    sub._set_fast_sink(None)  # e.g. an ICE restart chose another pair: no sink until it is known
    assert not consumer.fast and consumer.packets == 5
    for data in OPUS[5:10]:
        pub._on_rtp(data)
    assert not consumer.fast and consumer.packets == 10  # the Python path, on the old socket
    sub._set_fast_sink(sink)
    for data in OPUS[10:]:
        pub._on_rtp(data)
    assert consumer.fast and consumer.packets == len(OPUS)
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert len(out) == len(OPUS)
    seqs = [p.sequence_number for p in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in OPUS]
    assert worker.stats.rtp_out == len(OPUS)
    consumer.close()
    assert not consumer.fast and len(audio.streams[0].fan or ()) == 0


async def test_an_oversized_packet_is_counted_on_both_paths_and_forwarding_goes_on(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    _sub, (consumer,), path, _ = await offline_subscriber(router, [audio])
    for data in OPUS[:3]:
        pub._on_rtp(data)
    assert consumer.fast
    h = parse_header(OPUS[3])
    pub._on_rtp(OPUS[3][: h.payload_start] + bytes(1600))
    assert worker.stats.rtp_dropped.get("srtp_error") == 1 and "error" not in worker.stats.rtp_dropped
    for data in OPUS[4:8]:
        pub._on_rtp(data)
    assert consumer.fast and len(path.rtp()) == 7


async def test_server_side_mute_and_resume_continue_on_the_fan_out(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    _sub, (consumer,), path, _ = await offline_subscriber(router, [audio])
    for data in OPUS[:5]:
        pub._on_rtp(data)
    audio.pause()
    for data in OPUS[5:10]:
        pub._on_rtp(data)
    audio.resume()
    assert not consumer.fast  # a resync runs on the Python path first
    for data in OPUS[10:]:
        pub._on_rtp(data)
    assert consumer.fast
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in OPUS[:5] + OPUS[10:]]
    assert all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in itertools.pairwise(out))


def test_sender_reports_are_translated_per_slot_in_c(sender: socket.socket, peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    sending, fresh = Slot(), Slot()
    # 10 packets / 1000 octets went out on the Python path before the slot was configured
    srtp = compat.srtp_context_address(peers[0].tx_session)
    assert srtp is not None
    sending.configure(fd=sender.fileno(), addr=sockaddr(*peers[0].address), srtp=srtp, session=peers[0].tx_session,
                      payload_type=96, ssrc=0xABCDEF01, seq_offset=0, ts_offset=1000, id_map=None, last_seq=-1,
                      last_ts=0, last_time=0.0, packets=10, octets=1000)
    fan.add(sending)
    forward(fan, VP8[1])
    configure(fresh, sender, peers[1], pt=96, ssrc=7)  # nothing sent yet: no report
    fan.add(fresh)
    assert len(peers[0].received()) == 1
    assert fan.sender_report(0x0102030405060708, 0xFFFFFFFF) == 1
    report = bytes(peers[0].rx_session.unprotect_rtcp(peers[0].rx.recv(2048)))
    payload = len(VP8[1]) - parse_header(VP8[1]).ext_end
    assert report == rtcp.build_sr(0xABCDEF01, 0x0102030405060708, (0xFFFFFFFF + 1000) & 0xFFFFFFFF, 11,
                                   1000 + payload)
    assert peers[1].received() == []
    assert fan.take_errors() == (0, 0)


async def test_the_python_batch_leaves_before_the_compiled_paths_first_packet(worker: Worker) -> None:
    """The hand-over flushes: packets the Python path queued on the shared port's batch go out
    before the first packet the compiled fan-out sends (issue 20). The stand-in socket queues like
    the mux's batch, and the receiving socket records the order they left in."""
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    sub, (consumer,), path, _ = await offline_subscriber(router, [audio])
    sink = sub._fast_sink
    sub._set_fast_sink(None)  # no sink for a while: these stay on the Python path, queued
    for data in OPUS[:4]:
        pub._on_rtp(data)
    assert not consumer.fast and path.flushes == 0
    sub._set_fast_sink(sink)
    pub._on_rtp(OPUS[4])  # Python, then the hand-over: the batch of five must leave now
    assert consumer.fast and path.flushes == 1
    for data in OPUS[5:12]:
        pub._on_rtp(data)  # the compiled path: straight to the socket
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in OPUS[:12]]
    assert all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in itertools.pairwise(out))


def test_more_slots_than_one_sendmmsg_chunk_all_get_every_packet(sender: socket.socket) -> None:
    """1100 slots on one socket: three sendmmsg calls of at most 512 (CHUNK) per packet; every
    slot's packet arrives, rewritten with its own SSRC and offset, and is counted once."""
    fan = make_fanout()
    assert fan is not None
    peers: list[Peer] = []
    for _ in range(16):
        key = os.urandom(30)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        peers.append(Peer(rx, Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
                          Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))))
    try:
        n = 1100
        slots = []
        for i in range(n):
            slot = Slot()
            configure(slot, sender, peers[i % len(peers)], pt=111, ssrc=0x10000 + i, seq_off=i)
            fan.add(slot)
            slots.append(slot)
        assert len(fan) == n
        got: dict[int, list[int]] = {}
        for data in OPUS[:2]:
            assert forward(fan, data) == n
            for peer in peers:  # drained after each packet: 69 datagrams per socket at most
                for packet in peer.received():
                    h = parse_header(packet)
                    got.setdefault(h.ssrc, []).append(h.sequence_number)
        assert fan.take_errors() == (0, 0)
        seqs = [parse_header(d).sequence_number for d in OPUS[:2]]
        assert got == {0x10000 + i: [(s + i) & 0xFFFF for s in seqs] for i in range(n)}
        assert all(slot.packets == 2 for slot in slots)
    finally:
        fan.clear()
        for peer in peers:
            peer.rx.close()


@pytest.fixture
def full_sockets() -> Iterator[list[socket.socket]]:
    """Three sockets that cannot take a byte and will not for seconds: TCP connections to a
    listener on 127.0.0.1 whose accept queue is full, so their SYNs are dropped and they stay in
    SYN-SENT (the next SYN goes after 1 s); a send on them fails with EAGAIN and poll never says
    POLLOUT, as for a UDP socket behind a full NIC queue. (A UDP socket on loopback never fills:
    the kernel hands each datagram to the receiver at once, or drops it.) The fan-out's sendmmsg
    ignores the slot's address on a TCP socket."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # an accept queue of one
    first = socket.create_connection(listener.getsockname())  # fills it (never accepted)
    made = [listener, first]
    for _ in range(3):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setblocking(False)
        made.append(client)
        assert client.connect_ex(listener.getsockname()) == errno.EINPROGRESS
    _, writable, _ = select.select([], made[2:], [], 0.05)
    assert writable == [], "the listener's accept queue did not fill"
    yield made[2:]
    for s in made:
        s.close()


def test_a_full_socket_is_waited_for_within_the_budget_then_its_packets_are_dropped(
        full_sockets: list[socket.socket], peers: list[Peer]) -> None:
    fan = make_fanout()
    assert fan is not None
    for i, sock in enumerate(full_sockets):
        slot = Slot()
        configure(slot, sock, peers[i], pt=111, ssrc=100 + i)
        fan.add(slot)
    time.sleep(0.15)  # a fresh 100 ms window of the process-wide waiting share
    started = time.monotonic()
    assert forward(fan, OPUS[0]) == 0
    took = time.monotonic() - started
    # one wait (poll, 5 ms) for the first full socket; the call's budget is then spent, so the
    # other two are dropped at once; nothing raises, everything is counted
    assert fan.send_waits == 1 and took >= 0.004
    assert fan.take_errors() == (0, 3)
    # many calls in a row: together they wait at most 10 ms per 100 ms (each wait takes >= 1 ms
    # of that share), whatever the number of calls; then packets are dropped without waiting
    calls = 200
    time.sleep(0.15)  # a fresh window again
    started = time.monotonic()
    for i in range(calls):  # increasing sequence numbers: libsrtp protects each (no replay)
        data = OPUS[i % len(OPUS)]
        seq = (parse_header(OPUS[0]).sequence_number + 1 + i) & 0xFFFF
        assert forward(fan, data[:2] + struct.pack("!H", seq) + data[4:]) == 0
    elapsed = time.monotonic() - started
    waits = fan.send_waits - 1
    assert 1 <= waits <= 10 * (elapsed / 0.1 + 2), (waits, elapsed)
    assert fan.take_errors() == (0, 3 * calls)
    fan.clear()
