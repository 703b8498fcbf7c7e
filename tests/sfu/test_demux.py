"""What reaches a peer connection from the wire (issue 10, fuzzing): RFC 7983 demultiplexing at the
shared port, and the direct-receive hook's guards in front of aiortc's DTLS loop and libsrtp.

An empty datagram used to reach aiortc's DTLS receive loop (``data[0]``: IndexError, the transport
ended); a datagram over pylibsrtp's 1500-byte buffer raised ValueError out of the hook.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest

from sfu import aiortc_compat as compat
from sfu.udp_mux import MUX_NOT_DEMUXABLE, LiteConnection, UdpMux

from .offline import DtlsStandIn
from .test_udp_mux import binding_request, lite, peer


@pytest.fixture
async def mux() -> AsyncIterator[UdpMux]:
    m = UdpMux("127.0.0.1", 0)
    await m.start()
    yield m
    m.close()


async def _bound(mux: UdpMux, c: LiteConnection) -> asyncio.DatagramTransport:
    """A peer socket whose address a valid, answered check verified for ``c``."""
    t, _ = await peer(answer_for=c)
    t.sendto(binding_request(c), ("127.0.0.1", mux.port))
    await asyncio.wait_for(c.connect(), 5)
    return t


async def test_only_dtls_and_rtp_first_bytes_reach_the_connection_of_a_bound_address(mux: UdpMux) -> None:
    c = await lite(mux)
    t = await _bound(mux, c)
    dest = ("127.0.0.1", mux.port)
    outside = [b"\x04", b"\x13" + b"x" * 30, b"\x40" + b"x" * 30, b"\x7f" + b"x" * 30,
               b"\xc0" + b"x" * 30, b"\xff" + b"x" * 30]
    for data in outside:
        t.sendto(data, dest)
    raw = socket.socket(fileno=os.dup(t.get_extra_info("socket").fileno()))  # asyncio sends no b""
    raw.sendto(b"", dest)
    raw.close()
    t.sendto(b"\x14dtls", dest)  # 20: the lowest DTLS byte
    t.sendto(b"\x3fdtls", dest)  # 63: the highest
    t.sendto(b"\x80rtp", dest)  # 128
    t.sendto(b"\xbfrtp", dest)  # 191
    got = [await asyncio.wait_for(c.recv(), 2) for _ in range(4)]
    assert got == [b"\x14dtls", b"\x3fdtls", b"\x80rtp", b"\xbfrtp"]
    assert mux.stats.dropped.get(MUX_NOT_DEMUXABLE) == len(outside) + 1, mux.stats.dropped
    assert c._queue.empty()
    t.close()


def test_the_direct_receive_hook_drops_empty_and_overlong_datagrams_and_counts_the_long_ones() -> None:
    dtls = DtlsStandIn(os.urandom(30))
    errors: list[bool] = []
    delivered: list[bytes] = []
    assert compat.install_direct_receive(dtls, delivered.append, delivered.append, errors.append)
    receive = dtls.transport._connection.data_received
    receive(b"", 1)  # aiortc's DTLS loop would read data[0]
    receive(b"\x80\x60" + bytes(1598), 1)  # SRTP-looking, longer than pylibsrtp's buffer
    receive(b"\x80\xc8" + bytes(1598), 1)  # the same as SRTCP (sender report type)
    receive(b"\x16dtls", 1)  # DTLS still goes to aiortc
    assert errors == [False, True] and delivered == []
    assert dtls.transport._connection.fallback == [b"\x16dtls"]
