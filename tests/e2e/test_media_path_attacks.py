"""Nobody can take over or redirect a participant's media through STUN (issue 10, items 1 and 2).

Against the real server on its shared ICE-lite port, with raw UDP sockets on loopback: a captured
check replayed from another address, and a participant's own valid checks with a forged source
address. The attacker's socket must receive no SRTP; the victim's aiortc client keeps receiving.
Everything is sent to 127.0.0.0/8 only, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import aioice.ice
import pytest
from aioice import stun

from signaling.app_keys import WORKER
from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until

WATCH_S = 4.0  # how long the attacker's socket listens after the attack


class Listener(asyncio.DatagramProtocol):
    """The attacker's (or the bystander's) socket: counts what the server sends it, by kind."""

    def __init__(self) -> None:
        self.stun_requests = 0  # the server's own checks (it asks whether this address consents)
        self.stun_other = 0  # responses to the checks sent from here
        self.media = 0  # DTLS, SRTP, SRTCP: anything but STUN

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 20 and data[0] < 4 and data[4:8] == b"\x21\x12\xa4\x42":
            if data[:2] == b"\x00\x01":
                self.stun_requests += 1
            else:
                self.stun_other += 1
        else:
            self.media += 1


@contextlib.contextmanager
def recorded_checks() -> Iterator[list[tuple[Any, bytes]]]:
    """Every STUN binding request with USE-CANDIDATE that this process's aioice agents send, as it
    goes on the wire: (the sending protocol, the bytes), what a sniffer on the path would see."""
    sent: list[tuple[Any, bytes]] = []
    original = aioice.ice.StunProtocol.send_stun

    def send_stun(self: Any, message: stun.Message, addr: tuple[str, int]) -> None:
        if message.message_class == stun.Class.REQUEST and "USE-CANDIDATE" in message.attributes:
            sent.append((self, bytes(message)))
        original(self, message, addr)

    aioice.ice.StunProtocol.send_stun = send_stun  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        aioice.ice.StunProtocol.send_stun = original  # type: ignore[method-assign]


def ice_connection(client: RtcClient) -> Any:
    return client.sub.getTransceivers()[0].receiver.transport.transport._connection


async def listener(host: str, port: int = 0) -> tuple[asyncio.DatagramTransport, Listener]:
    t, p = await asyncio.get_running_loop().create_datagram_endpoint(Listener, local_addr=(host, port))
    return t, p


async def room_with_victim(server: Server) -> tuple[RtcClient, RtcClient, tuple[str, int]]:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
    victim = await RtcClient.join(server, room_id, "victim")
    await teacher.publish(audio=False)
    assert await wait_until(lambda: victim.frames("video") >= 10, 20), victim.frames("video")
    mux = server.app[WORKER].mux
    assert mux is not None
    return teacher, victim, ("127.0.0.1", mux.port)


async def test_a_replayed_check_from_another_address_does_not_take_the_victims_media(server: Server) -> None:
    with recorded_checks() as sent:
        teacher, victim, media_port = await room_with_victim(server)
    mux = server.app[WORKER].mux
    assert mux is not None
    protocols = set(ice_connection(victim)._protocols)
    captured = [data for protocol, data in sent if protocol in protocols]
    assert captured, "the victim's nominating check was not seen"
    t, attacker = await listener("127.0.0.2")
    replays_before = mux.stats.dropped.get("replayed_request", 0)
    t.sendto(captured[0], media_port)  # the first check, sent once from elsewhere (issue 10, item 1)
    frames = victim.frames("video")
    await asyncio.sleep(WATCH_S)
    assert attacker.media == 0, vars(attacker)  # no SRTP, no DTLS
    assert attacker.stun_requests == attacker.stun_other == 0  # not even answered: a replay
    assert mux.stats.dropped.get("replayed_request", 0) == replays_before + 1
    assert victim.frames("video") >= frames + 10, (frames, victim.frames("video"))  # still receiving
    t.close()
    for c in (teacher, victim):
        await c.close()


def udp_packet(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An IPv4 + UDP datagram with the given source (the kernel fills in the IP checksum and id;
    a UDP checksum of 0 means none, RFC 768)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return ip + udp


def raw_socket() -> socket.socket:
    if os.geteuid() != 0:
        pytest.skip("forging a source address needs a raw socket (root)")
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
    except PermissionError:
        pytest.skip("no CAP_NET_RAW here")


async def test_a_participants_checks_with_a_forged_source_never_send_its_media_there(server: Server) -> None:
    raw = raw_socket()
    teacher, victim, media_port = await room_with_victim(server)
    # a bystander at 127.0.0.3 that never asked for anything: it only listens
    t, bystander = await listener("127.0.0.3")
    forged = t.get_extra_info("sockname")[:2]
    conn = ice_connection(victim)  # the participant's own credentials
    try:
        for _ in range(5):  # each one valid, nominating, with a fresh transaction id
            m = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
            m.attributes["USERNAME"] = f"{conn.remote_username}:{conn.local_username}"
            m.attributes["PRIORITY"] = 0x7EFFFFFF
            m.attributes["ICE-CONTROLLING"] = 1
            m.attributes["USE-CANDIDATE"] = None
            m.add_message_integrity(conn.remote_password.encode())
            m.add_fingerprint()
            raw.sendto(udp_packet(forged, media_port, bytes(m)), (media_port[0], 0))
            await asyncio.sleep(0.2)
        frames = victim.frames("video")
        await asyncio.sleep(WATCH_S)
        assert bystander.media == 0, vars(bystander)  # never consented: no media (issue 10, item 2)
        assert bystander.stun_other >= 1  # the checks did arrive, authenticated, and were answered
        assert bystander.stun_requests >= 1  # and the server asked whether this address consents
        assert victim.frames("video") >= frames + 10, (frames, victim.frames("video"))
    finally:
        raw.close()
        t.close()
    for c in (teacher, victim):
        await c.close()
