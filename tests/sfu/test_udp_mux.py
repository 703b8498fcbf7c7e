"""The shared ICE-lite UDP port on real sockets: STUN checks demultiplexed by ufrag, data by address."""

import asyncio

import pytest
from aioice import stun

from sfu.udp_mux import CONSENT_TIMEOUT, LiteConnection, UdpMux


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def peer() -> tuple[asyncio.DatagramTransport, Peer]:
    loop = asyncio.get_running_loop()
    t, p = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    return t, p  # type: ignore[return-value]


def binding_request(conn: LiteConnection, *, password: str | None = None, nominate: bool = True) -> bytes:
    m = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    m.attributes["USERNAME"] = f"{conn.local_username}:client"
    m.attributes["PRIORITY"] = 1000
    m.attributes["ICE-CONTROLLING"] = 1
    if nominate:
        m.attributes["USE-CANDIDATE"] = None
    m.add_message_integrity((password or conn.local_password).encode())
    return bytes(m)


@pytest.fixture
async def mux() -> UdpMux:
    m = UdpMux("127.0.0.1", 0)
    await m.start()
    yield m  # type: ignore[misc]
    m.close()


async def test_a_check_is_answered_and_binds_the_address_then_data_reaches_that_connection(mux: UdpMux) -> None:
    a, b = mux.connection(), mux.connection()
    await a.gather_candidates()
    await b.gather_candidates()
    assert a.local_candidates[0].port == b.local_candidates[0].port == mux.port  # one port for all
    t, p = await peer()
    t.sendto(binding_request(b), ("127.0.0.1", mux.port))
    response = stun.parse_message(await asyncio.wait_for(p.received.get(), 2))
    assert response.message_class == stun.Class.RESPONSE
    assert response.check_message_integrity(b.local_password.encode())
    assert response.attributes["XOR-MAPPED-ADDRESS"] == t.get_extra_info("sockname")[:2]
    await asyncio.wait_for(b.connect(), 2)
    t.sendto(b"\x16\xfe\xfd" + b"dtls-ish", ("127.0.0.1", mux.port))
    assert await asyncio.wait_for(b.recv(), 2) == b"\x16\xfe\xfd" + b"dtls-ish"
    await b.send(b"\x80back")
    assert await asyncio.wait_for(p.received.get(), 2) == b"\x80back"
    assert a._queue.empty()
    t.close()


async def test_many_transports_share_one_port_and_one_socket(mux: UdpMux) -> None:
    conns = [mux.connection() for _ in range(250)]
    peers = [await peer() for _ in range(250)]
    for c in conns:
        await c.gather_candidates()
    for c, (t, _) in zip(conns, peers, strict=True):
        t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.gather(*(asyncio.wait_for(c.connect(), 5) for c in conns))
    for i, (t, _) in enumerate(peers):
        t.sendto(b"\x80" + i.to_bytes(2, "big"), ("127.0.0.1", mux.port))
    got = await asyncio.gather(*(asyncio.wait_for(c.recv(), 5) for c in conns))
    assert [int.from_bytes(g[1:], "big") for g in got] == list(range(250))
    assert mux.connections == 250
    for t, _ in peers:
        t.close()


async def test_malformed_and_unauthenticated_packets_are_dropped_and_counted(mux: UdpMux) -> None:
    c = mux.connection()
    await c.gather_candidates()
    t, p = await peer()
    dest = ("127.0.0.1", mux.port)
    t.sendto(b"\x00\x01\x00\x04" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00", dest)  # length lies
    t.sendto(binding_request(c, password="wrong-password-wrong-pw"), dest)
    other = LiteConnection(mux)  # never registered: unknown ufrag
    t.sendto(binding_request(other), dest)
    t.sendto(b"\x80" * 40, dest)  # RTP from an address no check came from
    t.sendto(b"", dest)
    resp = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE)
    t.sendto(bytes(resp), dest)
    await asyncio.sleep(0.2)
    d = mux.stats.dropped
    assert d.get("bad_stun", 0) >= 1 and d["bad_integrity"] == 1 and d["unknown_ufrag"] == 1
    assert d["unknown_address"] >= 1 and d["not_binding_request"] == 1
    assert p.received.empty()  # nothing answered
    t.sendto(binding_request(c), dest)  # and the port still works
    await asyncio.wait_for(c.connect(), 2)
    t.close()


async def test_the_latest_nominated_address_is_where_we_send(mux: UdpMux) -> None:
    c = mux.connection()
    await c.gather_candidates()
    (t1, p1), (t2, p2) = await peer(), await peer()
    t1.sendto(binding_request(c, nominate=False), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    await p1.received.get()
    t2.sendto(binding_request(c), ("127.0.0.1", mux.port))  # e.g. the network changed
    await p2.received.get()
    await c.send(b"\x80x")
    assert await asyncio.wait_for(p2.received.get(), 2) == b"\x80x"
    t1.close()
    t2.close()


async def test_closed_connection_releases_its_ufrag_and_addresses_and_consent_expiry(mux: UdpMux) -> None:
    c = mux.connection()
    await c.gather_candidates()
    t, _ = await peer()
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 2)
    assert mux.expire(c.last_consent + CONSENT_TIMEOUT + 1) == [c]
    assert c.closed and mux.connections == 0
    with pytest.raises(ConnectionError):
        await c.recv()
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.sleep(0.1)
    assert mux.stats.dropped["unknown_ufrag"] == 1
    t.close()
