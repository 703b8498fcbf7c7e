"""Pipe transports (issue 19): two routers of two workers joined by plain RTP/RTCP over UDP.

Real workers, real sockets on 127.0.0.1, real aiortc clients; between the two pipe ends a UDP relay
(two sockets of the test) where a test must see or drop what crosses the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from sfu import (
    ClosedError,
    DirectProducer,
    InvalidPipeDescriptionError,
    InvalidSrtpParametersError,
    PipeAddressError,
    PipeProducerDescription,
    PipeTransport,
    Worker,
    WorkerSettings,
    parse_header,
)

from .helpers import SubscriberClient, connect_publisher, wait_for
from .offline import offline_worker
from .test_simulcast_forwarding import SSRCS, Layers, payload_of, plis, simulcast_publisher

pytestmark = pytest.mark.timeout(60)


async def new_worker() -> Worker:
    # the shared port: the far router's subscribers forward on the compiled fan-out when it is built
    w = Worker(WorkerSettings(host_addresses=("127.0.0.1",), udp_port=0, udp_listen_address="127.0.0.1",
                              tick_interval=0.1))
    await w.start()
    return w


@pytest.fixture
async def workers() -> AsyncIterator[tuple[Worker, Worker]]:
    a, b = await new_worker(), await new_worker()
    yield a, b
    await a.close()
    await b.close()


class Relay:
    """A UDP relay between two pipe ends: what each sends crosses the test's two sockets, where it
    is recorded (``a_to_b``) and may be dropped (``drop(datagram) -> bool``, A to B only)."""

    def __init__(self) -> None:
        self.to_a = self._socket()
        self.to_b = self._socket()
        self.a: tuple[str, int] | None = None
        self.b: tuple[str, int] | None = None
        self.a_to_b: list[bytes] = []
        self.dropped = 0
        self.drop: Callable[[bytes], bool] = lambda data: False
        loop = asyncio.get_running_loop()
        loop.add_reader(self.to_a.fileno(), self._from_a)
        loop.add_reader(self.to_b.fileno(), self._from_b)

    @staticmethod
    def _socket() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return s

    def join(self, a: PipeTransport, b: PipeTransport) -> None:
        """A sends to the relay's A-side socket, B to its B-side socket; the relay passes it on."""
        self.a, self.b = a.local_address, b.local_address
        a.connect(*self.to_a.getsockname(), srtp_parameters=b.srtp_parameters)
        b.connect(*self.to_b.getsockname(), srtp_parameters=a.srtp_parameters)

    def _from_a(self) -> None:
        while True:
            try:
                data = self.to_a.recv(65536)
            except BlockingIOError:
                return
            self.a_to_b.append(data)
            if self.drop(data):
                self.dropped += 1
                continue
            assert self.b is not None
            self.to_b.sendto(data, self.b)

    def _from_b(self) -> None:
        while True:
            try:
                data = self.to_b.recv(65536)
            except BlockingIOError:
                return
            assert self.a is not None
            self.to_a.sendto(data, self.a)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for s in (self.to_a, self.to_b):
            loop.remove_reader(s.fileno())
            s.close()


def ssrc_of(data: bytes) -> int:
    return int(struct.unpack_from("!I", data, 8)[0])


async def send_tone(producer: DirectProducer, count: int, marker: bytes) -> None:
    """``count`` Opus-sized packets whose payload starts with ``marker``, 20 ms apart."""
    for i in range(count):
        producer.send_opus(marker + bytes([i & 0xFF]) * 40, 0.02)
        await asyncio.sleep(0.02)


async def test_a_subscriber_on_b_decodes_a_publisher_on_a_and_its_pli_reaches_the_publisher(
    workers: tuple[Worker, Worker],
) -> None:
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    pub_t = ra.create_transport("alice:publisher")
    pub_pc, mids = await connect_publisher(pub_t)
    video = pub_t.produce(mids["video"], "camera")
    audio = pub_t.produce(mids["audio"], "microphone")
    pipe_video, far_video = ra.pipe_to_router(video, rb)
    pipe_audio, far_audio = ra.pipe_to_router(audio, rb)
    assert ra.pipe_to_router(video, rb) == (pipe_video, far_video)  # idempotent per producer
    assert len(ra.pipe_transports) == 1 and len(rb.pipe_transports) == 1  # one pipe pair, reused
    assert (far_video.id, far_video.kind, far_video.codec) == (video.id, "video", video.codec)
    assert rb.get_producer(video.id) is far_video and rb.get_producer(audio.id) is far_audio
    sub_t = rb.create_transport("bob:subscriber")
    consumer = sub_t.consume(far_video)
    sub_t.consume(far_audio)
    sub = SubscriberClient()
    try:
        offer = await sub.negotiate(sub_t)
        # the far subscriber sees the publisher's tracks as at the origin: same track ids, one msid
        # stream (its browser syncs audio and video of one stream)
        assert far_video.transport.stream_id == far_audio.transport.stream_id == pub_t.stream_id
        assert f"a=msid:{pub_t.stream_id} {video.id}" in offer and f"a=msid:{pub_t.stream_id} {audio.id}" in offer
        ok = await wait_for(lambda: sub.frames("video") >= 20 and sub.frames("audio") >= 20, 20)
        assert ok, (sub.frames("video"), sub.frames("audio"), wa.stats, wb.stats)
        assert pipe_video.packets > 0 and pipe_audio.packets > 0
        assert far_video.packets > 0 and wb.stats.rtp_in >= pipe_video.packets // 2
        # B forwards the piped stream like a local publisher's: on the compiled fan-out when built
        assert consumer.fast == wb.fast_path
        # a PLI of B's subscriber crosses the pipe to A's publisher, which answers with a keyframe
        await asyncio.sleep(1.1)  # past B's once-a-second throttle of the start's request
        requests, plis, keyframes = pipe_video.keyframe_requests, wa.stats.pli_sent, wa.stats.keyframes
        receiver = next(r for r in sub.pc.getReceivers() if r.track.kind == "video")
        await receiver._send_rtcp_pli(consumer.ssrc)
        assert await wait_for(lambda: wa.stats.keyframes > keyframes, 5), wa.stats
        assert pipe_video.keyframe_requests > requests and wa.stats.pli_sent > plis
        assert wb.stats.pli_received >= 1
        # sender reports cross too (the far producer's streams have the publisher's)
        assert await wait_for(lambda: far_audio.last_sr is not None, 8)
        # the origin producer closing closes the pipe consumer and the far producer and its consumer
        video.close()
        assert pipe_video.closed and far_video.closed and consumer.closed
        assert rb.get_producer(video.id) is None
        assert not pipe_audio.closed and not far_audio.closed
        # the far producer closing closes its pipe consumer (the other way)
        far_audio.close()
        assert pipe_audio.closed and not audio.closed
    finally:
        await sub.close()
        await pub_pc.close()


async def test_pipe_cascade_over_the_wire_and_router_close(workers: tuple[Worker, Worker]) -> None:
    """Without pipe_to_router's in-process links: the far producer closes by the BYE that the
    pipe consumer sends; closing a router closes its pipes."""
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    a, b = ra.create_pipe_transport(), rb.create_pipe_transport()
    a.connect(*b.local_address)
    b.connect(*a.local_address)
    bot = ra.create_direct_transport().produce("audio", "audio/opus")
    consumer = a.consume(bot)
    far = b.produce(consumer.description.to_dict())  # as the signalling would carry it
    got: list[bytes] = []
    rb.create_direct_transport().consume(far, got.append)
    await send_tone(bot, 10, b"HELLO")
    assert await wait_for(lambda: len(got) >= 10, 5), (len(got), b.stats)
    assert all(p[12:17] == b"HELLO" for p in got)
    bot.close()
    assert consumer.closed
    assert await wait_for(lambda: far.closed, 5)  # the BYE crossed
    ra.close()
    assert a.closed and not b.closed
    rb.close()
    assert b.closed
    with pytest.raises(ClosedError):
        b.connect("127.0.0.1", 9)


async def test_closing_a_pipe_closes_its_producers_and_consumers(workers: tuple[Worker, Worker]) -> None:
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    a, b = ra.create_pipe_transport(), rb.create_pipe_transport()
    a.connect(*b.local_address)
    b.connect(*a.local_address)
    bot = ra.create_direct_transport().produce("video", "video/VP8")
    consumer = a.consume(bot)
    far = b.produce(consumer.description)
    far_consumer = rb.create_direct_transport().consume(far, lambda p: None)
    closed: list[str] = []
    far.on_close = lambda: closed.append("far")
    b.on_close = lambda: closed.append("pipe")
    b.close()
    assert far.closed and far_consumer.closed and closed == ["far", "pipe"]
    assert rb.get_producer(bot.id) is None and rb.pipe_transports == []
    assert wb.stats.producers == 0
    a.close()
    assert consumer.closed and not bot.closed and bot.consumers == []
    assert wa.stats.consumers == 0
    with pytest.raises(ClosedError):
        a.consume(bot)


async def test_srtp_on_the_wire_is_not_plain_rtp_and_still_arrives(workers: tuple[Worker, Worker]) -> None:
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    a, b = ra.create_pipe_transport(srtp=True), rb.create_pipe_transport(srtp=True)
    assert a.srtp_parameters is not None and b.srtp_parameters is not None
    assert a.srtp_parameters.crypto_suite == "AEAD_AES_256_GCM" and a.srtp_parameters != b.srtp_parameters
    relay = Relay()
    try:
        relay.join(a, b)
        bot = ra.create_direct_transport().produce("audio", "audio/opus")
        consumer = a.consume(bot)
        far = b.produce(consumer.description)
        got: list[bytes] = []
        rb.create_direct_transport().consume(far, got.append)
        await send_tone(bot, 20, b"SECRET-PAYLOAD")
        assert await wait_for(lambda: len(got) >= 20, 5), (len(got), b.stats)
        assert all(p[12:26] == b"SECRET-PAYLOAD" for p in got)  # decrypted at B: the payload as sent
        rtp = [d for d in relay.a_to_b if not 192 <= d[1] <= 223]
        assert len(rtp) >= 20
        # on the wire: the header in clear (SRTP), the payload not, and the 16-byte GCM tag after it
        assert not any(b"SECRET-PAYLOAD" in d for d in relay.a_to_b)
        assert {ssrc_of(d) for d in rtp} == set(consumer.ssrcs)
        assert len(rtp[0]) == len(got[0]) + 16
        assert not b.stats.dropped
        # a datagram altered on the way fails authentication: counted, not delivered
        relay.drop = lambda data: True
        before = len(got)
        await send_tone(bot, 1, b"SECRET-PAYLOAD")
        tampered = bytearray(relay.a_to_b[-1])
        tampered[-1] ^= 1
        relay.to_b.sendto(bytes(tampered), b.local_address)
        assert await wait_for(lambda: b.stats.dropped.get("srtp", 0) == 1, 5), b.stats
        assert len(got) == before
    finally:
        relay.close()


async def test_srtp_keys_are_checked(workers: tuple[Worker, Worker]) -> None:
    ra = workers[0].create_router("room")
    plain, secure, other = ra.create_pipe_transport(), ra.create_pipe_transport(srtp=True), \
        ra.create_pipe_transport(srtp=True)
    assert other.srtp_parameters is not None
    with pytest.raises(InvalidSrtpParametersError):
        plain.connect(*secure.local_address, srtp_parameters=other.srtp_parameters)
    with pytest.raises(InvalidSrtpParametersError):
        secure.connect(*plain.local_address)
    with pytest.raises(InvalidSrtpParametersError):
        short = {"crypto_suite": "AEAD_AES_256_GCM", "key_base64": "c2hvcnQ="}
        secure.connect(*other.local_address, srtp_parameters=short)
    with pytest.raises(InvalidSrtpParametersError):
        secure.connect(*other.local_address, srtp_parameters={"crypto_suite": "NULL", "key_base64": ""})
    secure.connect(*other.local_address, srtp_parameters=other.srtp_parameters.to_dict())
    assert secure.connected


async def test_bad_addresses_are_named_errors(workers: tuple[Worker, Worker]) -> None:
    ra = workers[0].create_router("room")
    pipe = ra.create_pipe_transport()
    for ip, port in [("not-an-ip", 5000), ("localhost", 5000), ("127.0.0.1", 0), ("127.0.0.1", 70000),
                     ("0.0.0.0", 5000), ("224.0.0.1", 5000), ("::1", 5000), ("127.0.0.1", "5000")]:
        with pytest.raises(PipeAddressError) as info:
            pipe.connect(ip, port)  # type: ignore[arg-type]
        assert info.value.code == "invalid_address"
    assert not pipe.connected
    with pytest.raises(PipeAddressError):
        ra.create_pipe_transport("no-such-host")
    with pytest.raises(PipeAddressError):
        ra.create_pipe_transport("203.0.113.7")  # TEST-NET-3: not an address of this machine
    taken = pipe.local_address[1]
    with pytest.raises(PipeAddressError):
        ra.create_pipe_transport("127.0.0.1", taken)
    pipe.connect("127.0.0.1", 9)
    with pytest.raises(Exception, match="connected already"):
        pipe.connect("127.0.0.1", 10)


async def test_bad_descriptions_are_named_errors(workers: tuple[Worker, Worker]) -> None:
    ra = workers[0].create_router("room")
    bot = ra.create_direct_transport().produce("video", "video/VP8")
    pipe = ra.create_pipe_transport()
    good = pipe.consume(bot).description.to_dict()
    assert PipeProducerDescription.from_dict(good).to_dict() == good
    assert "nack" in good["codec"]["feedback"]  # the pipe hop repairs its losses
    other = ra.create_pipe_transport()
    for broken in [{}, {**good, "kind": "data"}, {**good, "ssrcs": []}, {**good, "ssrcs": [0]},
                   {**good, "ssrcs": [1, 1]}, {**good, "ssrcs": [1, 2]}, {**good, "codec": "VP8"},
                   {**good, "extensions": {"urn:x": 300}}, {**good, "ssrcs": ["x"]}]:
        with pytest.raises(InvalidPipeDescriptionError):
            other.produce(broken)
    other.produce(good)
    with pytest.raises(Exception, match="exists"):
        other.produce(good)


async def test_garbage_on_the_pipe_socket_is_ignored_and_counted(workers: tuple[Worker, Worker]) -> None:
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    a, b = ra.create_pipe_transport(), rb.create_pipe_transport()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.bind(("127.0.0.1", 0))
        stranger.sendto(b"\x80\x60early", b.local_address)  # before connect
        assert await wait_for(lambda: b.stats.dropped.get("not_connected") == 1, 5), b.stats
        b.connect(*peer.getsockname())
        garbage = [b"", b"x", b"\x00" * 40, b"\x80\x60\x00\x01", bytes(range(256)) * 4,
                   b"\x80\x60" + b"\x00" * 6 + b"\x00\x00\x00\x2a" + b"payload",  # RTP of an unknown SSRC
                   b"\x81\xc9\x00\x20" + b"\x00" * 8]  # RTCP whose length overruns the datagram
        for data in garbage:
            peer.sendto(data, b.local_address)
        stranger.sendto(b"\x80\x60" + b"\x00" * 30, b.local_address)
        expect = {"garbage": 4, "unknown_ssrc": 1, "rtcp_error": 1, "unknown_source": 1, "not_connected": 1}
        # the empty datagram is read and dropped like the others ("garbage": "", "x", zeros, bytes 0-255)
        assert await wait_for(lambda: b.stats.dropped == {**expect, "garbage": 5}, 5), b.stats
        # and the pipe still works: a real sender now
        b2 = rb.create_pipe_transport()
        a.connect(*b2.local_address)
        b2.connect(*a.local_address)
        bot = ra.create_direct_transport().produce("audio", "audio/opus")
        far = b2.produce(a.consume(bot).description)
        got: list[bytes] = []
        rb.create_direct_transport().consume(far, got.append)
        await send_tone(bot, 5, b"OK")
        assert await wait_for(lambda: len(got) == 5, 5), b2.stats
    finally:
        peer.close()
        stranger.close()


async def test_a_lost_packet_is_asked_for_across_the_pipe_and_repaired(workers: tuple[Worker, Worker]) -> None:
    """The far producer's NACK generator asks the origin; the origin answers from its history."""
    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    pub_t = ra.create_transport("alice:publisher")
    pub_pc, mids = await connect_publisher(pub_t, audio=False)
    video = pub_t.produce(mids["video"], "camera")
    a, b = ra.create_pipe_transport(), rb.create_pipe_transport()
    relay = Relay()
    try:
        relay.join(a, b)
        consumer = a.consume(video)
        far = b.produce(consumer.description)
        seqs: list[int] = []
        rb.create_direct_transport().consume(far, lambda p: seqs.append(int.from_bytes(p[2:4], "big")))
        counter = {"n": 0}

        def drop_some(data: bytes) -> bool:
            if 192 <= data[1] <= 223:
                return False
            counter["n"] += 1
            return counter["n"] % 25 == 10  # 4% of the video, first sends only (repairs pass)

        relay.drop = drop_some
        assert await wait_for(lambda: len(seqs) >= 150, 20), (len(seqs), b.stats, a.stats)
        assert relay.dropped >= 4
        assert consumer.retransmitted >= 1 and consumer.nack_received >= 1
        nack = far.nack_stats
        assert nack is not None and nack.recovered >= 1, nack
        # what the far end delivered has no hole: every dropped number came back
        ordered = sorted(set(seqs))
        assert ordered[-1] - ordered[0] + 1 - len(ordered) <= 2, (relay.dropped, len(ordered))
    finally:
        relay.close()
        await pub_pc.close()


async def test_simulcast_layers_all_cross_and_the_far_router_chooses(workers: tuple[Worker, Worker]) -> None:
    """Every layer of a simulcast producer crosses on its own SSRC; a consumer on the far router
    takes the layer it asks for, and its keyframe request for another layer reaches the publisher
    for that layer."""
    wb = workers[1]
    origin = offline_worker("python")  # a publisher fed from captured packets (test_simulcast_forwarding)
    try:
        pub, producer, pub_path = await simulcast_publisher(origin)
        layers = Layers(pub)
        layers.all([1])  # learn the three layers
        rb = wb.create_router("room")
        pipe_consumer, far = origin.routers[0].pipe_to_router(producer, rb)
        assert far.simulcast and far.rids == producer.rids and len(set(pipe_consumer.ssrcs)) == 3
        assert set(plis(pub_path)) == set(SSRCS.values())  # the pipe starts each layer at a keyframe
        got: list[bytes] = []
        direct = rb.create_direct_transport().consume(far, got.append, layer="low")
        layers.all(range(2, 15))  # keyframes at 10
        assert await wait_for(lambda: len(got) >= 5, 5), (len(got), far.layer_stats())
        assert [p[parse_header(p).payload_start :] for p in got] == [payload_of(i) for i in range(10, 15)]
        assert [la["packets"] for la in far.layer_stats()] == [5, 5, 5]  # every layer crossed
        await asyncio.sleep(0.15)  # past the origin's merge window of forced keyframe requests
        before = len(plis(pub_path))
        direct.set_preferred_layer("high")
        assert await wait_for(lambda: plis(pub_path)[before:] == [SSRCS["f"]], 5), plis(pub_path)
        assert pipe_consumer.keyframe_requests >= 1
    finally:
        await origin.close()


async def test_creating_a_pipe_needs_an_open_router(workers: tuple[Worker, Worker]) -> None:
    ra = workers[0].create_router("room")
    pipe = ra.create_pipe_transport()
    ra.close()
    assert pipe.closed
    with pytest.raises(ClosedError):
        ra.create_pipe_transport()
    with contextlib.suppress(OSError):
        assert pipe.local_address  # the socket is closed: no address to give
        raise AssertionError("a closed pipe still has a socket")


@pytest.mark.parametrize("srtp", [False, True])
async def test_fuzzed_datagrams_from_the_peer_never_break_the_pipe(workers: tuple[Worker, Worker], srtp: bool) -> None:
    """Real RTP/RTCP of a pipe, mutated (bytes flipped, cut, lengths and SSRCs kept so that they
    reach the parsers), sent from the connected peer's address: all counted, none an exception,
    and the real flow still arrives afterwards."""
    import random

    wa, wb = workers
    ra, rb = wa.create_router("room"), wb.create_router("room")
    a, b = ra.create_pipe_transport(srtp=srtp), rb.create_pipe_transport(srtp=srtp)
    relay = Relay()
    try:
        relay.join(a, b)
        bot = ra.create_direct_transport().produce("video", "video/VP8")
        consumer = a.consume(bot)
        far = b.produce(consumer.description)
        got: list[bytes] = []
        rb.create_direct_transport().consume(far, got.append)
        # a VP8 keyframe start (payload descriptor S bit, then a key frame header), then deltas
        bot.send(bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x10, 0x00, 0x00, 0x00]) + b"k" * 100)
        for i in range(2, 30):
            bot.send(bytes([0x80, 96, 0, i, 0, 0, 0, i, 0, 0, 0, 1, 0x10, 0x01]) + b"d" * 100)
        assert await wait_for(lambda: len(got) >= 29, 5), (len(got), b.stats)
        samples = list(relay.a_to_b)
        rng = random.Random(19)
        before = len(got)
        for n in range(3000):
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data) + 1)]
            relay.to_b.sendto(bytes(data), b.local_address)
            if n % 200 == 0:
                await asyncio.sleep(0.01)
        # a bit flipped in the header bytes of plain RTP may still be a valid packet: counted
        # wherever it went; never as an error
        assert await wait_for(lambda: sum(b.stats.dropped.values()) + b.stats.rtcp_in + b.stats.rtp_in > 3000, 5)
        assert "error" not in b.stats.dropped, b.stats
        if srtp:
            assert len(got) == before  # nothing altered passes authentication
        received = b.stats.rtp_in
        for i in range(30, 40):
            bot.send(bytes([0x80, 96, 0, i, 0, 0, 0, i, 0, 0, 0, 1, 0x10, 0x01]) + b"d" * 100)
        assert await wait_for(lambda: b.stats.rtp_in >= received + 10, 5), b.stats
        if srtp:
            assert await wait_for(lambda: len(got) == before + 10, 5), (len(got), before)
    finally:
        relay.close()
