"""Per-transport congestion control (sfu.congestion): which mechanism a publisher gets from the
answer the server really writes (Chromium's and Firefox's offers: transport-cc; aiortc's:
abs-send-time and the server's REMB estimate), what the receive path records from packets aiortc
writes, the REMB it sends when, and a subscriber's estimate from its reports. Time passed in."""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu import rtcp
from sfu.bandwidth_estimator import EXT_ABS_SEND_TIME
from sfu.congestion import PublisherCongestion, SubscriberCongestion, extension_ids
from sfu.layer_selector import HOLD_UP, LayerState, select_layer
from sfu.rtp import EXT_MID
from sfu.sdp import MediaSection, parse_media
from sfu.transport_cc import EXT_TRANSPORT_CC, munge_answer, parse_feedback

from .offline import DATA, offline_worker

CAP = 3_000_000


def _packet(seq: int, ids: dict[str, int], size: int = 1000, **ext: int) -> bytes:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()])
    )
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=5, payload=bytes(size))
    packet.extensions.mid = "0"
    for name, value in ext.items():
        setattr(packet.extensions, name, value)
    return packet.serialize(ext_map)


async def _answer(name: str) -> str:
    worker = offline_worker(bandwidth_estimation=False)  # aiortc's answer, munged below
    try:
        offer = (DATA / name).read_text()
        answer = await worker.create_router("r").create_transport("pub").accept_offer(offer)
        return munge_answer(answer, offer)
    finally:
        await worker.close()


async def test_browsers_get_transport_cc_and_aiortc_gets_the_remb_estimate() -> None:
    for name, twcc in (
        ("chromium_simulcast_offer.sdp", True),
        ("firefox_offer.sdp", True),
        ("aiortc_offer.sdp", False),
    ):
        cc = PublisherCongestion(rtcp_ssrc=1, remb_cap=CAP)
        cc.configure(*extension_ids(parse_media(await _answer(name))))
        assert cc.transport_cc is twcc and cc.active, name


def test_transport_cc_publisher_packets_are_reported_and_remb_stays_the_cap() -> None:
    cc = PublisherCongestion(rtcp_ssrc=77, remb_cap=CAP)
    ids = {EXT_MID: 1, EXT_TRANSPORT_CC: 4}
    cc.configure(*extension_ids([MediaSection(mid="0", kind="video", direction="sendonly", extensions=ids)]))
    for i, seq in enumerate([100, 101, 103]):
        cc.on_rtp(_packet(seq, ids, transport_sequence_number=seq), 10.0 + i * 0.005)
    assert cc.feedback_pending
    (packet,) = cc.feedback(media_ssrc=5)
    ((_pt, fmt, start, end),) = rtcp.split_compound(packet)
    fb = parse_feedback(packet, start, end)
    assert fmt == 15 and fb.sender_ssrc == 77 and fb.media_ssrc == 5
    assert [(s, t is not None) for s, t in fb.packets] == [(100, True), (101, True), (102, False), (103, True)]
    assert not cc.feedback_pending
    assert cc.remb(11.0, periodic=True) == CAP and cc.remb(11.25, periodic=False) is None


def test_abs_send_time_publisher_gets_the_estimate_and_a_fall_at_once() -> None:
    ids = {EXT_MID: 1, EXT_ABS_SEND_TIME: 3}
    cc = PublisherCongestion(rtcp_ssrc=1, remb_cap=CAP)
    cc.configure(*extension_ids([MediaSection(mid="0", kind="video", direction="sendonly", extensions=ids)]))
    assert not cc.transport_cc
    # 600 kbit/s (30 frames of 2500 bytes a second), sent and received with 20 ms of delay
    now = 0.0
    seq = 0
    rembs: list[tuple[float, int]] = []
    for frame in range(30 * 8):
        t = frame / 30
        for k in range(2):
            seq += 1
            sent = t + k * 0.001
            ast = int(sent * (1 << 18)) & 0xFFFFFF
            cc.on_rtp(_packet(seq, ids, size=1250, abs_send_time=ast), sent + 0.02)
        while now + 0.25 <= t:
            now += 0.25
            value = cc.remb(now, periodic=abs(now - round(now)) < 1e-9, video_loss=[0.0])
            if value is not None:
                rembs.append((now, value))
    assert rembs and all(v == CAP for _, v in rembs if _ < 5)  # no estimate yet: the cap
    late = [v for t, v in rembs if t >= 6]
    assert late and all(500_000 < v < 1_100_000 for v in late), rembs
    # the path's queue starts growing by 30 ms per frame: an overuse, sent without waiting a second
    sent_times = []
    for frame in range(30 * 8, 30 * 10):
        t = frame / 30
        extra = (frame - 30 * 8) * 0.03
        for k in range(2):
            seq += 1
            sent = t + k * 0.001
            cc.on_rtp(_packet(seq, ids, size=1250, abs_send_time=int(sent * (1 << 18)) & 0xFFFFFF), sent + 0.02 + extra)
        while now + 0.25 <= t:
            now += 0.25
            periodic = abs(now - round(now)) < 1e-9
            value = cc.remb(now, periodic=periodic, video_loss=[0.0])
            if value is not None:
                sent_times.append((now, periodic, value))
    assert any(not periodic for _, periodic, _ in sent_times), sent_times
    assert min(v for _, _, v in sent_times) < min(late)


def test_a_subscribers_reports_drive_its_estimate() -> None:
    cc = SubscriberCongestion()
    octets = 0
    packets = 0
    t = 0.0
    assert cc.tick(t, octets) is None
    for _ in range(8):  # 1 Mbit/s sent, nothing lost
        t += 0.25
        octets += 31_250
        packets += 25
        cc.on_report_block(t, 1234, 0, packets, 0.05)
        assert cc.tick(t, octets) is None
    t += 0.25
    octets += 31_250
    packets += 25
    cc.on_report_block(t, 1234, 128, packets, 0.05)  # half of it lost
    value = cc.tick(t, octets)
    # what got through (500 kbit/s) x 0.9, x FRESH_FACTOR: the first limit seen
    assert value is not None and 200_000 < value < 300_000
    cc.on_remb(t + 0.25, 200_000, [1234])
    octets += 31_250
    assert cc.tick(t + 0.25, octets) == value  # a fifth of what is sent: no overuse (REMB_FLOOR)
    cc.forget(1234)
    assert cc.tick(t + 0.5, 0) == value  # a closed consumer's octets leave the sum: no rate that tick


class _HeldConsumer:
    """A simulcast video consumer as SubscriberCongestion sees it, its layer chosen by the real
    sfu.layer_selector as the consumer chooses it (hold after each change)."""

    kind = "video"
    rtx = True
    closed = False

    def __init__(self) -> None:
        self.octets = 0
        self.now = 0.0
        self.layer = 2
        self.changed = -100.0
        self.layers = [LayerState(True, r) for r in (150_000, 500_000, 1_500_000)]

    @property
    def held_down(self) -> bool:
        return self.layer < 2

    def probe_goal(self) -> float:
        return self.layers[min(2, self.layer + 1)].bitrate

    def on_bandwidth(self, available_bps: float | None) -> None:
        new = select_layer(2, self.layers, self.layer, available_bps, self.now - self.changed)
        if new is not None and new != self.layer:
            self.layer, self.changed = new, self.now

    def send_padding(self, count: int) -> int:
        return 0


def test_a_consumer_held_below_its_wish_gets_the_share_again_until_its_hold_passed() -> None:
    """An estimate that rose while the consumer's layer was within its hold (a padding probe's
    success just after a step) and then stays flat: the step up comes when the hold passes, not at
    the estimate's next change."""
    cc = SubscriberCongestion(padding_probes=True)
    consumer = _HeldConsumer()
    packets = 0
    t = 0.0

    def tick(loss: int = 0, octets: int = 50_000) -> None:
        nonlocal t, packets
        t = round(t + 0.25, 2)
        consumer.now = t
        consumer.octets += octets
        packets += 40
        cc.on_report_block(t, 1, loss, packets, None)
        cc.share(t, [consumer])

    for _ in range(8):
        tick()  # 1.6 Mbit/s, nothing lost: no estimate, the top layer
    tick(loss=128)  # half lost: the estimate falls, the consumer steps down at once
    assert consumer.layer == 0 and cc.given[0] is not None
    tick(octets=5_000)
    cc.estimator.estimate = 2_000_000  # what a padding cluster's success sets (room for the top layer)
    changed = consumer.changed
    while t < changed + HOLD_UP + 1.0:
        tick(octets=5_000)
        assert cc.estimator.estimate == 2_000_000  # flat: the share given is the same each tick
    assert consumer.layer == 1 and abs(consumer.changed - (changed + HOLD_UP)) <= 0.25
