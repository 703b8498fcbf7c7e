"""Generated UDP datagrams at the running server's shared media port while a real aiortc publisher
and subscriber are connected (issue 10: fuzzing, the running server).

The datagrams (``benchmarks/fuzz_inputs.py``: RTP, RTCP, STUN with the connections' real ufrags,
DTLS-looking records, random bytes) come from several sockets on 127.0.0.1; half of them first send
valid signed checks, as the peer's own stack (or anyone spoofing its address) would, so that their
DTLS- and SRTP-looking datagrams reach the peer connections themselves, not only the port's
demultiplexer. The server must keep forwarding to the subscriber, no exception may reach the event
loop's handler, nothing may be logged as an error, and the per-connection tables must stay bounded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.fuzz import Credentials, UdpStorm, signed_check, structures
from sfu.udp_mux import PATHS_MAX, TXIDS_MAX, UdpMux
from signaling.app_keys import WORKER
from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until

DATAGRAMS = 6000
SOCKETS = 6


@pytest.fixture
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler during the test."""
    loop = asyncio.get_event_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    loop.set_exception_handler(previous)




async def _media(server: Server) -> tuple[RtcClient, RtcClient, UdpMux, list[Credentials]]:
    room_id = await server.create_room()
    teacher = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
    student = await RtcClient.join(server, room_id, "student")
    await teacher.publish()
    assert await wait_until(lambda: student.frames("video") >= 5, 30), student.frames("video")
    mux = server.app[WORKER].mux
    assert mux is not None and mux.connections == 2
    creds = [Credentials(c.local_username, c.remote_username or "x", c.local_key) for c in mux._by_ufrag.values()]
    return teacher, student, mux, creds


async def test_generated_datagrams_at_the_media_port_never_stop_forwarding(
    server: Server, caplog: pytest.LogCaptureFixture, loop_errors: list[dict[str, Any]]
) -> None:
    caplog.set_level(logging.ERROR)
    teacher, student, mux, creds = await _media(server)
    port = server.app[WORKER].udp_port
    assert port is not None
    storm = UdpStorm(port, creds, DATAGRAMS, rate=4000.0, sockets=SOCKETS, seed=7)
    frames_before = student.frames("video")
    try:
        await asyncio.to_thread(storm.run)
        during = structures(server)
    finally:
        storm.close()
    frames_after_storm = student.frames("video")
    assert await wait_until(lambda: student.frames("video") >= frames_after_storm + 20, 20), \
        (frames_before, frames_after_storm, student.frames("video"))
    print(f"fuzz media port: sent {dict(storm.sent)}; dropped {dict(mux.stats.dropped)}; "
          f"media dropped {server.app[WORKER].stats.rtp_dropped} {server.app[WORKER].stats.rtcp_dropped}; "
          f"structures {during}; video frames {frames_before} -> {frames_after_storm} -> {student.frames('video')}")

    sent = sum(v for k, v in storm.sent.items() if not k.endswith(("_left_out", "not_sendable")))
    assert sent >= DATAGRAMS * 9 // 10
    worker = server.app[WORKER]
    # most were judged by the port's checks or by SRTP authentication on a connection; the rest were
    # DTLS-looking records and bytes outside every range, which aiortc's DTLS transport took
    judged = (sum(mux.stats.dropped.values()) + mux.stats.stun_requests
              + worker.stats.rtp_dropped.get("srtp_unprotect", 0) + worker.stats.rtcp_dropped.get("srtp_unprotect", 0))
    assert judged >= sent * 6 // 10, (judged, sent)
    assert mux.connections == 2  # both peer connections are still there
    assert loop_errors == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "error" not in worker.stats.rtp_dropped and "error" not in worker.stats.rtcp_dropped
    assert during["conn.paths(max)"] <= PATHS_MAX and during["conn.txids(max)"] <= TXIDS_MAX
    assert during["mux.by_addr"] <= 2 + SOCKETS and during["conn.queue(max)"] < 100
    r = await student.ws.request("ping")
    assert r["ok"] is True
    for c in (teacher, student):
        await c.close()


async def _bound_socket(port: int, creds: Credentials, mux: UdpMux) -> socket.socket:
    """A socket whose address a valid signed check bound to the connection of ``creds``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.sendto(signed_check(creds, random.Random(1)), ("127.0.0.1", port))
    addr = s.getsockname()
    assert await wait_until(lambda: (addr[0], addr[1]) in mux._by_addr, 5)
    return s


async def test_an_empty_datagram_from_a_bound_address_leaves_the_connection_up(server: Server) -> None:
    teacher, student, mux, creds = await _media(server)
    port = server.app[WORKER].udp_port
    assert port is not None
    socks = [await _bound_socket(port, c, mux) for c in creds]
    for s in socks:
        s.sendto(b"", ("127.0.0.1", port))
    n = student.frames("video")
    try:
        assert await wait_until(lambda: student.frames("video") >= n + 20, 5)
        assert mux.connections == 2
    finally:
        for s in socks:
            s.close()
        for c in (teacher, student):
            await c.close()


async def test_a_long_srtp_looking_datagram_reaches_no_exception_handler(
    server: Server, loop_errors: list[dict[str, Any]]
) -> None:
    teacher, student, mux, creds = await _media(server)
    port = server.app[WORKER].udp_port
    assert port is not None
    s = await _bound_socket(port, creds[0], mux)
    try:
        s.sendto(b"\x80\x60" + bytes(1598), ("127.0.0.1", port))
        await asyncio.sleep(0.5)
        assert loop_errors == []
    finally:
        s.close()
        for c in (teacher, student):
            await c.close()
