"""Garbage that survives SRTP: mutated RTP and RTCP, protected with the transport's real session
keys, through the direct-receive entry (what aioice's datagram callback calls) of negotiated
offline transports, on both fan-outs (issue 10: fuzzing, the forwarding code's own parsing).

A peer that holds the SRTP keys (the publisher or the subscriber itself, or a broken client) can
send anything; the hooks must count and drop, never raise into the loop, never log a hook error,
keep their per-transport tables bounded, and forward the next valid packets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

from benchmarks import fuzz_inputs as fi
from sfu import Worker
from sfu import aiortc_compat as compat
from sfu.rtp import find_extension, parse_header
from sfu.stats import RTCP_ERROR, RTP_ERROR
from sfu.webrtc_transport import WebRtcTransport

from .offline import (
    FAN_OUTS,
    CapturePath,
    DtlsStandIn,
    load_packets,
    offline_publisher,
    offline_subscriber,
    offline_worker,
)

VP8 = load_packets("rtp_vp8.hex")
OPUS = load_packets("rtp_opus.hex")
PACKETS = 3000  # per direction; ~1 s of CPU


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


class SecuredEntry:
    """The client's side of one transport's SRTP: protects clear packets with the session keys and
    hands them to the transport's real receive entry."""

    def __init__(self, transport: WebRtcTransport) -> None:
        self.dtls = DtlsStandIn(b"\0" * 30)
        self.rekey()
        assert compat.install_direct_receive(self.dtls, transport._on_rtp, transport._on_rtcp,
                                             transport._on_srtp_error)
        self.receive: Callable[[bytes, int], None] = self.dtls.transport._connection.data_received
        self.outcomes: Counter[str] = Counter()

    def rekey(self) -> None:
        """Fresh SRTP sessions on both sides (as after a DTLS renegotiation). Random sequence
        numbers on one SSRC make the two sides' rollover counters (RFC 3711 3.3.1) disagree, so
        after a storm valid packets need new sessions to pass authentication."""
        key = os.urandom(30)
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        policy.allow_repeat_tx = True
        self.tx = Session(policy)
        self.dtls._rx_srtp = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))

    def send(self, clear: bytes, is_rtcp: bool) -> None:
        try:
            data = self.tx.protect_rtcp(clear) if is_rtcp else self.tx.protect(clear)
        except (SrtpError, ValueError):  # ValueError: longer than pylibsrtp's buffer
            self.outcomes["unprotectable"] += 1  # libsrtp needs a parseable header to protect
            return
        self.outcomes["sent"] += 1
        self.receive(data, 1)


class OutReader:
    """Decrypts what the core sent to the subscriber with one receiving session, in order (the
    capture's own reader starts a fresh session per packet, which assumes a rollover counter of 0:
    random sequence numbers in the storm make the subscriber's stream roll over)."""

    def __init__(self, path: CapturePath) -> None:
        self.path = path
        self.rx = Session(Policy(key=path.key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.seen = 0

    def read(self) -> list[bytes]:
        sent = self.path.sent
        new, self.seen = sent[self.seen :], len(sent)
        out = []
        for data in new:
            if len(data) > 1 and 192 <= data[1] <= 223:
                continue
            with contextlib.suppress(SrtpError):  # a retransmission repeats an index: refused as a replay
                out.append(bytes(self.rx.unprotect(data)))
        return out


def _with_ssrc(r: random.Random, data: bytes, ssrcs: list[int]) -> bytes:
    """Most generated packets get an SSRC the transport knows, so they reach the producer."""
    if len(data) >= 12 and r.random() < 0.7:
        return data[:8] + struct.pack("!I", r.choice(ssrcs)) + data[12:]
    return data


def _renumber(packets: list[bytes], seq: int, ts_step: int, ts: int) -> list[bytes]:
    out = []
    for i, p in enumerate(packets):
        b = bytearray(p)
        struct.pack_into("!HI", b, 2, (seq + i) & 0xFFFF, (ts + ts_step * (i // 3)) & 0xFFFFFFFF)
        out.append(bytes(b))
    return out


async def test_mutated_rtp_and_rtcp_after_srtp_are_dropped_and_forwarding_goes_on(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    sub, consumers, path, _ = await offline_subscriber(router, list(producers.values()))
    into_pub, into_sub = SecuredEntry(pub), SecuredEntry(sub)
    for data in VP8[:20] + OPUS[:20]:  # the producers learn their SSRCs (MID extension)
        into_pub.send(data, False)
    forwarded_before = len(path.rtp())
    assert forwarded_before > 0
    ssrcs = [p.ssrc for p in producers.values() if p.ssrc is not None]
    consumer_ssrcs = [c.ssrc for c in consumers]
    mid_id = pub._listener.mid_ext_id
    assert len(ssrcs) == 2 and mid_id

    r = random.Random(1)
    captured = VP8 + OPUS
    for _ in range(PACKETS):
        roll = r.random()
        if roll < 0.4:
            clear = fi.mutate(r, r.choice(captured))
        elif roll < 0.8:
            clear = _with_ssrc(r, fi.rtp_packet(r), ssrcs)
        else:  # a new SSRC naming a real m-line: what the core learns streams from
            base = bytearray(r.choice(captured))
            struct.pack_into("!I", base, 8, r.getrandbits(32))
            base[1] = (base[1] & 0x80) | r.randrange(128)
            clear = bytes(base)
        into_pub.send(clear, False)
        into_pub.send(_with_ssrc(r, fi.rtcp_compound(r), ssrcs), True)  # SR for the producers
        into_sub.send(_with_rtcp_media(r, fi.rtcp_compound(r), consumer_ssrcs), True)  # NACK/PLI/REMB

    stats = worker.stats
    print(f"fuzz offline transport: into the publisher {dict(into_pub.outcomes)}, into the subscriber "
          f"{dict(into_sub.outcomes)}; rtp dropped {stats.rtp_dropped}, rtcp dropped {stats.rtcp_dropped}; "
          f"nack {stats.nack_received} pli {stats.pli_received} sr {stats.sr_received}; "
          f"tables: ssrcs {len(pub._listener.producer_by_ssrc)} rtx {len(pub._listener.rtx_ssrcs)}")
    assert into_pub.outcomes["sent"] > PACKETS and into_sub.outcomes["sent"] > PACKETS // 2
    assert stats.rtp_dropped.get(RTP_ERROR, 0) == 0 and stats.rtcp_dropped.get(RTCP_ERROR, 0) == 0
    assert pub._listener.hook_errors == sub._listener.hook_errors == 0
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR] == []
    assert stats.nack_received > 0 and stats.pli_received > 0 and stats.sr_received > 0  # the paths were hit
    assert len(pub._listener.producer_by_ssrc) <= 2 + 2  # the producers' SSRCs (and what their MID re-bound)

    # valid packets after the storm are forwarded: the publisher goes on from the newest sequence
    # number it sent (as a client's stack does); fresh SRTP sessions on the way in, because the
    # random sequence numbers above put the two sides' rollover counters out of step
    reader = OutReader(path)
    reader.read()  # everything sent so far, in order: the reader's rollover counter follows the sender's
    into_pub.rekey()
    video = producers["video"]
    vp8 = _renumber(VP8, (video.streams[0].highest_seq + 1) & 0xFFFF, 3000, 0x40000000)
    for data in vp8:
        into_pub.send(_ssrc(data, producers["video"].ssrc), False)
    out = [parse_header(p) for p in reader.read()]
    video_out = [h for h in out if h.ssrc == consumers[0].ssrc]
    assert len(video_out) >= len(vp8) // 2, (len(video_out), len(vp8))


def _ssrc(data: bytes, ssrc: int | None) -> bytes:
    assert ssrc is not None
    return data[:8] + struct.pack("!I", ssrc) + data[12:]


def _with_rtcp_media(r: random.Random, data: bytes, ssrcs: list[int]) -> bytes:
    """Feedback names a consumer's SSRC as its media source (bytes 8..12 of the packet)."""
    if len(data) >= 12 and r.random() < 0.7:
        return data[:8] + struct.pack("!I", r.choice(ssrcs)) + data[12:]
    return data


async def test_one_packet_with_a_far_sequence_number_does_not_stop_forwarding(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    _sub, (consumer,), path, _ = await offline_subscriber(router, [producers["video"]])
    reader = OutReader(path)
    packets = _renumber(VP8, 1000, 3000, 0x1000)
    for data in packets[:10]:
        pub._on_rtp(data)
    far = bytearray(packets[10])
    struct.pack_into("!H", far, 2, 1000 + 10 + 20000)  # one packet from far ahead (a bug, a replay)
    pub._on_rtp(bytes(far))
    for data in packets[10:]:
        pub._on_rtp(data)
    out = [parse_header(p) for p in reader.read()]
    assert worker.stats.rtp_dropped.get("srtp_error", 0) == 0, worker.stats.rtp_dropped
    assert len([h for h in out if h.ssrc == consumer.ssrc]) >= len(packets) - 1


async def test_new_ssrcs_naming_a_real_mid_keep_the_transport_tables_bounded(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    other_pt = producers["video"].codec_info.payload_type ^ 1
    for data in VP8[:5]:
        pub._on_rtp(data)
    with_mid = next(p for p in VP8 if find_extension(p, pub._listener.mid_ext_id) is not None)
    r = random.Random(3)
    for _ in range(5000):  # the publisher's own (or a broken) stack: RTX-like streams on fresh SSRCs
        base = bytearray(with_mid)
        struct.pack_into("!I", base, 8, r.getrandbits(32))
        base[1] = (base[1] & 0x80) | other_pt
        pub._on_rtp(bytes(base))
    assert len(pub._listener.rtx_ssrcs) <= 64 and len(pub._listener.producer_by_ssrc) <= 4
