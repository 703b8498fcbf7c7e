"""The shared ICE-lite UDP port on real sockets: STUN checks demultiplexed by ufrag, data by address,
and media only to addresses that answered the port's own check (issue 10)."""

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest
from aioice import stun

from sfu import udp_mux
from sfu.udp_mux import LiteConnection, UdpMux

CLIENT_UFRAG = "client"
CLIENT_PASSWORD = "client-password-of-24-ch"


class Peer(asyncio.DatagramProtocol):
    """A client socket: keeps what arrives, and answers the mux's checks for the ufrags in
    ``answer_for`` (signed with ``password``), as a full ICE agent does (RFC 8445 section 7.3)."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.checks: list[stun.Message] = []  # the mux's binding requests to us
        self.data: list[bytes] = []  # everything but STUN
        self.answer_for: set[str] = set()
        self.password = CLIENT_PASSWORD
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == b"\x00\x01":
            m = stun.parse_message(data)
            self.checks.append(m)
            if m.attributes["USERNAME"].split(":")[1] in self.answer_for:
                assert self.transport is not None
                self.transport.sendto(answer(m, addr, self.password), addr)
        elif data[:2] != b"\x01\x01":  # not a response to the peer's own check
            self.data.append(data)
        self.received.put_nowait(data)

    async def next_data(self) -> bytes:
        """The next datagram that is not STUN."""
        while True:
            data = await asyncio.wait_for(self.received.get(), 5)
            if data[:2] not in (b"\x00\x01", b"\x01\x01"):
                return data

    async def next_response(self) -> stun.Message:
        """The next STUN response that arrives (the mux's own checks are skipped)."""
        while True:
            data = await asyncio.wait_for(self.received.get(), 5)
            if data[:2] != b"\x00\x01":
                return stun.parse_message(data)


def answer(check: stun.Message, addr: tuple[str, int], password: str = CLIENT_PASSWORD,
           transaction_id: bytes | None = None) -> bytes:
    r = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE,
                     transaction_id=transaction_id or check.transaction_id)
    r.attributes["XOR-MAPPED-ADDRESS"] = addr
    r.add_message_integrity(password.encode())
    return bytes(r)


async def peer(answer_for: LiteConnection | None = None,
               host: str = "127.0.0.1") -> tuple[asyncio.DatagramTransport, Peer]:
    loop = asyncio.get_running_loop()
    t, p = await loop.create_datagram_endpoint(Peer, local_addr=(host, 0))
    if answer_for is not None:
        p.answer_for.add(answer_for.local_username)
    return t, p


def binding_request(conn: LiteConnection, *, password: str | None = None, nominate: bool = True,
                    transaction_id: bytes | None = None) -> bytes:
    m = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST,
                     transaction_id=transaction_id or os.urandom(12))
    m.attributes["USERNAME"] = f"{conn.local_username}:{CLIENT_UFRAG}"
    m.attributes["PRIORITY"] = 1000
    m.attributes["ICE-CONTROLLING"] = 1
    if nominate:
        m.attributes["USE-CANDIDATE"] = None
    m.add_message_integrity((password or conn.local_password).encode())
    return bytes(m)


async def lite(mux: UdpMux, *, remote: bool = True) -> LiteConnection:
    """A connection as aiortc sets it up: gathered, and (``remote``) the client's credentials known."""
    c = mux.connection()
    await c.gather_candidates()
    if remote:
        c.remote_username, c.remote_password = CLIENT_UFRAG, CLIENT_PASSWORD
    return c


def addr_of(t: asyncio.DatagramTransport) -> tuple[str, int]:
    host, port = t.get_extra_info("sockname")[:2]
    return str(host), int(port)


@pytest.fixture
async def mux() -> AsyncIterator[UdpMux]:
    m = UdpMux("127.0.0.1", 0)
    await m.start()
    yield m
    m.close()


async def test_a_check_is_answered_after_our_own_check_and_data_then_flows_both_ways(mux: UdpMux) -> None:
    a, b = await lite(mux), await lite(mux)
    assert a.local_candidates[0].port == b.local_candidates[0].port == mux.port  # one port for all
    t, p = await peer(answer_for=b)
    t.sendto(binding_request(b), ("127.0.0.1", mux.port))
    first = stun.parse_message(await asyncio.wait_for(p.received.get(), 2))
    assert first.message_class == stun.Class.REQUEST  # our check goes out before the response
    response = stun.parse_message(await asyncio.wait_for(p.received.get(), 2))
    assert response.message_class == stun.Class.RESPONSE
    assert response.check_message_integrity(b.local_password.encode())
    assert response.attributes["XOR-MAPPED-ADDRESS"] == addr_of(t)
    await asyncio.wait_for(b.connect(), 2)
    assert b.selected_address == addr_of(t) and mux.stats.paths_verified == 1
    t.sendto(b"\x16\xfe\xfd" + b"dtls-ish", ("127.0.0.1", mux.port))
    assert await asyncio.wait_for(b.recv(), 2) == b"\x16\xfe\xfd" + b"dtls-ish"
    await b.send(b"\x80back")
    assert await asyncio.wait_for(p.received.get(), 2) == b"\x80back"
    assert a._queue.empty()
    t.close()


async def test_the_ports_own_check_names_both_ufrags_and_is_signed_with_the_peers_password(mux: UdpMux) -> None:
    c = await lite(mux)
    t, p = await peer()  # does not answer
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await p.next_response()
    [check] = p.checks
    assert check.message_method == stun.Method.BINDING
    assert check.attributes["USERNAME"] == f"{CLIENT_UFRAG}:{c.local_username}"  # RFC 8445 7.2.2
    assert check.attributes["ICE-CONTROLLED"] == c.tie_breaker and check.attributes["PRIORITY"] > 0
    assert "USE-CANDIDATE" not in check.attributes and "FINGERPRINT" in check.attributes
    assert check.check_message_integrity(CLIENT_PASSWORD.encode())
    t.close()


async def test_many_transports_share_one_port_and_one_socket(mux: UdpMux) -> None:
    conns = [await lite(mux) for _ in range(250)]
    peers = [await peer(answer_for=c) for c in conns]
    for c, (t, _) in zip(conns, peers, strict=True):
        t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.gather(*(asyncio.wait_for(c.connect(), 10) for c in conns))
    for i, (t, _) in enumerate(peers):
        t.sendto(b"\x80" + i.to_bytes(2, "big"), ("127.0.0.1", mux.port))
    got = await asyncio.gather(*(asyncio.wait_for(c.recv(), 5) for c in conns))
    assert [int.from_bytes(g[1:], "big") for g in got] == list(range(250))
    assert mux.connections == 250
    for t, _ in peers:
        t.close()


async def test_malformed_and_unauthenticated_packets_are_dropped_and_counted(mux: UdpMux) -> None:
    c = await lite(mux)
    t, p = await peer(answer_for=c)
    dest = ("127.0.0.1", mux.port)
    t.sendto(b"\x00\x01\x00\x04" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00", dest)  # length lies
    t.sendto(binding_request(c, password="wrong-password-wrong-pw"), dest)
    other = LiteConnection(mux)  # never registered: unknown ufrag
    t.sendto(binding_request(other), dest)
    t.sendto(b"\x80" * 40, dest)  # RTP from an address no check came from
    t.sendto(b"", dest)
    t.sendto(bytes(stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE)), dest)
    t.sendto(bytes(stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION)), dest)
    await asyncio.sleep(0.2)
    d = mux.stats.dropped
    assert d["bad_stun"] == 2 and d["bad_integrity"] == 1 and d["unknown_ufrag"] == 1  # bare response: no MI
    assert d["unknown_address"] >= 1 and d["not_binding_request"] == 1
    assert p.received.empty()  # nothing answered
    t.sendto(binding_request(c), dest)  # and the port still works
    await asyncio.wait_for(c.connect(), 2)
    t.close()


async def test_an_address_that_does_not_answer_gets_no_media_until_it_does(mux: UdpMux) -> None:
    c = await lite(mux)
    t, p = await peer()  # answers nothing yet
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await p.next_response()  # the check was answered, and ours to it sent before that
    assert len(p.checks) == 1 and c.selected_address is None and not c._connected.is_set()
    with pytest.raises(ConnectionError):
        await c.send(b"\x80media")
    t.sendto(answer(p.checks[0], addr_of(t)), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    await c.send(b"\x80media")
    assert await p.next_data() == b"\x80media"
    t.close()


async def test_a_replayed_check_from_another_address_is_dropped_and_a_retransmission_is_answered(
        mux: UdpMux) -> None:
    c = await lite(mux)
    (t1, p1), (t2, p2) = await peer(answer_for=c), await peer(answer_for=c)
    captured = binding_request(c)  # the client's first check, seen on the network
    t1.sendto(captured, ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    await p1.next_response()
    t2.sendto(captured, ("127.0.0.1", mux.port))  # the replay, from elsewhere
    t2.sendto(binding_request(c, nominate=False), ("127.0.0.1", mux.port))  # in order after it
    await p2.next_response()
    assert mux.stats.dropped["replayed_request"] == 1
    assert len(p2.checks) == 1  # the second request's (the replay started nothing)
    assert c.selected_address == addr_of(t1)
    t1.sendto(captured, ("127.0.0.1", mux.port))  # a retransmission: answered again
    assert (await p1.next_response()).transaction_id == stun.parse_message(captured).transaction_id
    t1.close()
    t2.close()


async def test_a_nominating_address_that_never_answers_never_gets_media(
        mux: UdpMux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udp_mux, "VERIFY_RTO", 0.01)
    c = await lite(mux)
    (t1, p1), (t2, p2) = await peer(answer_for=c), await peer()  # the second never answers
    t1.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    for _ in range(3):  # e.g. the peer's own credentials with a forged source
        t2.sendto(binding_request(c), ("127.0.0.1", mux.port))
        await p2.next_response()
    await c.send(b"\x80media")
    assert await p1.next_data() == b"\x80media"
    assert c.selected_address == addr_of(t1) and addr_of(t2) not in c.verified_addresses
    for _ in range(100):  # our retransmissions end (0.01 * (1 + 2 + 4 + 8) s)
        if c.path(addr_of(t2)).verify is None:
            break
        await asyncio.sleep(0.05)
    assert c.path(addr_of(t2)).verify is None
    assert p2.data == []  # STUN only: responses and our checks
    assert len(p2.checks) == udp_mux.VERIFY_TRIES  # one check (same id), retransmitted, bounded
    assert len({m.transaction_id for m in p2.checks}) == 1
    t1.close()
    t2.close()


async def test_answers_from_elsewhere_with_another_id_or_password_verify_nothing(mux: UdpMux) -> None:
    c = await lite(mux)
    (t1, p1), (t2, _) = await peer(), await peer()
    dest = ("127.0.0.1", mux.port)
    t1.sendto(binding_request(c), dest)
    await p1.next_response()
    [check] = p1.checks
    t2.sendto(answer(check, addr_of(t1)), dest)  # the right answer, from another address
    t1.sendto(answer(check, addr_of(t1), password="not-the-client-password!"), dest)
    t1.sendto(answer(check, addr_of(t1), transaction_id=os.urandom(12)), dest)
    t1.sendto(binding_request(c, nominate=False), dest)  # in order after the three
    await p1.next_response()
    d = mux.stats.dropped
    assert d["unknown_transaction"] == 2 and d["bad_integrity"] == 1
    assert c.selected_address is None and mux.stats.paths_verified == 0
    t1.sendto(answer(check, addr_of(t1)), dest)
    await asyncio.wait_for(c.connect(), 2)
    assert c.selected_address == addr_of(t1)
    t1.close()
    t2.close()


async def test_the_latest_nominated_verified_address_is_where_we_send(mux: UdpMux) -> None:
    c = await lite(mux)
    (t1, p1), (t2, p2) = await peer(answer_for=c), await peer(answer_for=c)
    t1.sendto(binding_request(c, nominate=False), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)  # the first verified address, even without USE-CANDIDATE
    assert c.selected_address == addr_of(t1)
    t2.sendto(binding_request(c), ("127.0.0.1", mux.port))  # e.g. the network changed
    await p2.next_response()
    for _ in range(100):
        if c.selected_address == addr_of(t2):
            break
        await asyncio.sleep(0.02)
    await c.send(b"\x80x")
    assert await p2.next_data() == b"\x80x"
    t1.sendto(binding_request(c, nominate=False), ("127.0.0.1", mux.port))  # no nomination: no move
    await p1.next_response()
    assert c.selected_address == addr_of(t2)
    t1.close()
    t2.close()


async def test_a_check_takes_another_connections_address_only_once_verified(mux: UdpMux) -> None:
    a, b = await lite(mux), await lite(mux)
    t, p = await peer(answer_for=a)
    dest = ("127.0.0.1", mux.port)
    t.sendto(binding_request(a), dest)
    await asyncio.wait_for(a.connect(), 2)
    t.sendto(binding_request(b), dest)  # b's credentials from a's address: not verified for b
    await p.next_response()
    await p.next_response()
    t.sendto(b"\x17data", dest)
    assert await asyncio.wait_for(a.recv(), 2) == b"\x17data"  # still a's
    assert b.selected_address is None
    p.answer_for.add(b.local_username)  # now the peer at that address answers b's check
    t.sendto(binding_request(b), dest)
    await asyncio.wait_for(b.connect(), 2)
    t.sendto(b"\x17more", dest)
    assert await asyncio.wait_for(b.recv(), 2) == b"\x17more"
    assert addr_of(t) not in a.addresses and a.selected_address is None
    assert mux.expire(time.monotonic()) == [a]  # a has no address left: failed; b keeps its own
    t.close()


async def test_the_peers_password_unknown_the_check_waits_for_connect(mux: UdpMux) -> None:
    c = await lite(mux, remote=False)
    t, p = await peer(answer_for=c)
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await p.next_response()
    assert mux.stats.checks_sent == 0 and p.checks == []  # no password to sign ours with
    c.remote_username, c.remote_password = CLIENT_UFRAG, CLIENT_PASSWORD  # what aiortc does, then connect()
    await asyncio.wait_for(c.connect(), 2)
    assert mux.stats.checks_sent == 1 and c.selected_address == addr_of(t)
    t.close()


async def verified(mux: UdpMux, c: LiteConnection, nominate: bool = True) -> tuple[str, int]:
    t, _ = await peer(answer_for=c)
    t.sendto(binding_request(c, nominate=nominate), ("127.0.0.1", mux.port))
    for _ in range(100):
        if addr_of(t) in c.verified_addresses:
            break
        await asyncio.sleep(0.02)
    assert addr_of(t) in c.verified_addresses
    t.close()
    return addr_of(t)


def consent(c: LiteConnection, addr: tuple[str, int]) -> float:
    """Since when ``addr`` has shown consent (both its last check and its last answer)."""
    path = c.path(addr)
    return min(path.last_check, path.answered)


async def test_consent_is_per_address_and_the_send_path_moves_to_a_fresh_one() -> None:
    mux = UdpMux("127.0.0.1", 0, consent_timeout=10.0)
    await mux.start()
    c = await lite(mux)
    first = await verified(mux, c)
    await asyncio.sleep(0.01)
    second = await verified(mux, c, nominate=False)
    assert c.selected_address == first
    t1, t2 = consent(c, first), consent(c, second)
    assert t2 > t1
    assert mux.expire(t1 + 10.0 + (t2 - t1) / 2) == []  # only the first lost consent
    assert c.addresses == {second} and c.selected_address == second and mux.stats.paths_expired == 1
    assert mux.expire(t2 + 10.0 + 2) == [c]  # none left: the connection fails
    assert c.closed and mux.connections == 0 and c.selected_address is None
    with pytest.raises(ConnectionError):
        await c.recv()
    mux.close()


async def test_consent_timeout_is_the_mux_setting() -> None:
    mux = UdpMux("127.0.0.1", 0, consent_timeout=5.0)
    await mux.start()
    c = await lite(mux)
    addr = await verified(mux, c)
    since = consent(c, addr)
    assert mux.expire(since + 4.0) == [] and not c.closed
    assert mux.expire(since + 6.0) == [c] and c.closed
    mux.close()


@pytest.mark.parametrize("keeps_answering", [True, False])
async def test_a_peer_that_keeps_checking_but_stops_answering_loses_consent(keeps_answering: bool) -> None:
    timeout = 0.5
    mux = UdpMux("127.0.0.1", 0, consent_timeout=timeout)
    await mux.start()
    c = await lite(mux)
    t, p = await peer(answer_for=c)
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    answered = c.path(addr_of(t)).answered
    if not keeps_answering:
        p.answer_for.clear()
    await asyncio.sleep(timeout / 3 * 1.2)  # past the point where a check brings a new check of ours
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await p.next_response()
    assert len(p.checks) == 2  # consent asked again (RFC 7675 5.1)
    await asyncio.sleep(0.05)  # the answer, if any, arrives
    gone = mux.expire(answered + timeout + 0.01)  # the latest check is still fresh
    assert (gone == []) is keeps_answering
    t.close()
    mux.close()


async def test_the_pending_checks_and_addresses_of_a_connection_are_bounded(
        mux: UdpMux, monkeypatch: pytest.MonkeyPatch) -> None:
    c = await lite(mux)
    first = await verified(mux, c)
    monkeypatch.setattr(udp_mux, "PENDING_MAX", 3)
    peers = [await peer() for _ in range(udp_mux.PATHS_MAX + 2)]
    for t, p in peers:
        t.sendto(binding_request(c), ("127.0.0.1", mux.port))
        await p.next_response()
    assert len(c.addresses) == udp_mux.PATHS_MAX and first in c.addresses  # the send path is kept
    assert len(mux._pending) <= 3 and mux.stats.dropped["checks_busy"] >= 1
    assert c.selected_address == first
    for t, _ in peers:
        t.close()
