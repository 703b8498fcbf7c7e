"""A client that stops reading its events is closed with 4408 (docs/protocol.md, close codes) and the
others in the room are not slowed: broadcasts queue per socket and never wait on the slow one.

The slow client is a raw TCP socket that does the WebSocket handshake and then does not read: its
small receive buffer fills, then the server's send buffer, then its outbound queue."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import statistics
import struct
import time
from typing import Any

import pytest

from signaling.app_keys import ROOMS
from signaling.rooms import Role
from signaling.ws.close_codes import CloseCode
from signaling.ws.session import OUTBOUND_LIMIT, TOO_SLOW_GRACE_S, Session
from tests.conftest import Server, WsClient


async def stalled_client(server: Server, room_id: str, identity: str) -> socket.socket:
    """Join over a raw socket (a 4 KiB receive buffer) and stop reading once the handshake is sent."""
    port = int(server.base.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /v1/rtc?token={server.token(room_id, identity)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


async def read_until_close_frame(sock: socket.socket, timeout: float) -> tuple[int, int]:
    """Resume reading: parse the server's (unmasked) frames up to its close frame.
    Returns (close code, text frames read before it)."""
    loop = asyncio.get_running_loop()
    # a reader that wakes up has room again: with the stall's 4 KiB buffer, below one loopback MSS
    # (64 KiB), Linux's receiver never announces the opened window (silly-window avoidance, RFC 1122
    # 4.2.3.3) and the server's kernel only finds out by its zero-window probes, backing off for
    # seconds: the 4408 grace would run out on the test's own TCP, not on the server
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    buf = b""
    deadline = time.monotonic() + timeout

    async def need(n: int) -> None:
        nonlocal buf
        while len(buf) < n:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), max(0.1, deadline - time.monotonic()))
            assert chunk, "the server hung up without a close frame"
            buf += chunk

    await need(4)
    while b"\r\n\r\n" not in buf:
        await need(len(buf) + 1)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    texts = 0
    while True:
        await need(2)
        opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
        at = 2
        if n == 126:
            await need(4)
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            await need(10)
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        await need(at + n)
        payload, buf = buf[at:at + n], buf[at + n:]
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0], texts
        texts += opcode == 0x1


def slow_session(server: Server, room_id: str, identity: str) -> Session | None:
    live = server.app[ROOMS].live.get(room_id)
    return next((s for s in live.sessions.values() if s.participant.identity == identity), None) if live else None


async def probe(sender: WsClient, receiver: WsClient, sender_pid: str) -> float:
    """Seconds from a hand raised by `sender` to its `hand_raised` at `receiver` (the test's own clock)."""
    seen = sum(1 for e in receiver.events if e["event"] == "hand_raised" and e["participant_id"] == sender_pid)
    t0 = time.monotonic()
    await sender.send_raw(json.dumps({"type": "raise_hand"}))
    await receiver.wait_for(lambda: sum(1 for e in receiver.events if e["event"] == "hand_raised"
                                        and e["participant_id"] == sender_pid) > seen, timeout=30)
    elapsed = time.monotonic() - t0
    await sender.send_raw(json.dumps({"type": "lower_hand"}))
    return elapsed


async def busy_room_with_a_stalled_client(server: Server, room_id: str) -> tuple[WsClient, list[WsClient],
                                                                                   socket.socket, Session]:
    host = await server.join(room_id, "host", role=Role.HOST)
    students = [await server.join(room_id, f"s{i}") for i in range(2)]
    sock = await stalled_client(server, room_id, "slow")
    await host.wait_for(lambda: any(e["event"] == "participant_joined" and e["participant"]["identity"] == "slow"
                                    for e in host.events), timeout=10)
    session = slow_session(server, room_id, "slow")
    assert session is not None
    return host, students, sock, session


async def flood_until_too_slow(host: WsClient, session: Session, timeout: float = 60) -> int:
    """The host raises and lowers its hand (an event to everyone each time) until the server gives up
    on the stalled client; requests go without id (no responses), paced by a ping now and then."""
    deadline = time.monotonic() + timeout
    sent = 0
    while not session.closing:
        assert time.monotonic() < deadline, "the stalled client was never found too slow"
        for _ in range(100):
            await host.send_raw('{"type":"raise_hand"}')
            await host.send_raw('{"type":"lower_hand"}')
        sent += 200
        assert (await host.request("ping", timeout=30))["ok"]
    return sent


def hand_events(c: WsClient, pid: str) -> int:
    return sum(1 for e in c.events if e["event"] in ("hand_raised", "hand_lowered") and e["participant_id"] == pid)


@pytest.mark.timeout(120)
async def test_a_client_that_stops_reading_is_closed_with_4408_and_the_others_keep_up(
        server_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="urok.session")
    server: Server = await server_factory(ws_rate_per_s=100_000.0, ws_rate_burst=100_000)
    room_id = await server.create_room()
    host, (s0, s1), sock, session = await busy_room_with_a_stalled_client(server, room_id)
    p0 = str(s0.events[0]["participant_id"])
    host_pid = str(host.events[0]["participant_id"])
    baseline = [await probe(s0, s1, p0) for _ in range(3)]

    try:
        sent = await flood_until_too_slow(host, session)
        assert sent > OUTBOUND_LIMIT
        # the server says why, in its own words and with the code
        assert any(f"closing with {int(CloseCode.TOO_SLOW)}" in r.getMessage() for r in caplog.records), \
            [r.getMessage() for r in caplog.records]
        # meanwhile, and after: the others get every event, promptly (they are measured against
        # themselves: a broadcast waiting on the stalled socket would stop them altogether)
        during = [await probe(s0, s1, p0) for _ in range(3)]
        for c in (s0, s1):
            await c.wait_for(lambda c=c: hand_events(c, host_pid) == sent, timeout=30)
        bound = 2.0 + 20 * statistics.median(baseline)
        assert max(during) < bound, (baseline, during)

        # it never reads again: the server drops it (the seat is not held until the heartbeat)
        left = await s0.event("participant_left", timeout=TOO_SLOW_GRACE_S + 20,
                              participant_id=session.participant_id)
        assert left["reason"] == "left"
        assert slow_session(server, room_id, "slow") is None
        assert (await s1.request("list_participants"))["total"] == 3
    finally:
        sock.close()


@pytest.mark.timeout(120)
async def test_a_stalled_client_that_reads_again_gets_the_4408_close_frame(server_factory: Any) -> None:
    server: Server = await server_factory(ws_rate_per_s=100_000.0, ws_rate_burst=100_000)
    room_id = await server.create_room()
    host, (s0, _s1), sock, session = await busy_room_with_a_stalled_client(server, room_id)
    try:
        sent = await flood_until_too_slow(host, session)
        code, texts = await read_until_close_frame(sock, timeout=TOO_SLOW_GRACE_S)
        assert code == CloseCode.TOO_SLOW
        assert texts < sent  # what it missed was dropped, not delivered late: a reconnect's welcome resyncs
        await s0.event("participant_left", timeout=30, participant_id=session.participant_id)
    finally:
        sock.close()
