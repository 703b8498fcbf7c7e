"""The publisher transport's table of RTX SSRCs stays bounded (issue 10, fuzzing).

A new SSRC that names a real m-line (MID extension) with another payload type than the media
codec's used to be remembered as an RTX stream every time: 5,000 packets, 5,000 entries. Now only a
payload type the answer negotiated as RTX is learned, at most ``RTX_SSRCS_PER_LAYER`` per layer,
the oldest forgotten first; a learned one is dropped as ``rtx`` without a lookup.
"""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCRtpSender, RTCSessionDescription

from sfu import Worker
from sfu.producer import RTX_SSRCS_PER_LAYER
from sfu.rtp import find_extension

from .helpers import client_pc
from .offline import attach, load_packets, offline_worker

VP8 = load_packets("rtp_vp8.hex")


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker("python")
    yield w
    await w.close()


async def test_learned_rtx_ssrcs_are_bounded_per_layer_and_only_for_a_negotiated_rtx_type(worker: Worker) -> None:
    router = worker.create_router("r")
    pub = router.create_transport("pub")
    pc = client_pc()
    vt = pc.addTransceiver("video", direction="sendonly")
    vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                            if c.mimeType in ("video/VP8", "video/rtx")])
    await pc.setLocalDescription(await pc.createOffer())
    answer = await pub.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await pc.close()
    video = pub.produce("0", "camera")
    attach(pub)
    rtx_pt = next(c.payload_type for c in pub._negotiation.local_media[0].codecs if c.mime_type.lower() == "video/rtx")
    vp8_pt = video.codec_info.payload_type
    unknown_pt = next(pt for pt in range(96, 128) if pt not in (rtx_pt, vp8_pt))
    base = bytearray(next(p for p in VP8 if find_extension(p, pub._listener.mid_ext_id) is not None))
    base[1] = (base[1] & 0x80) | vp8_pt
    pub._on_rtp(bytes(base))  # the media SSRC
    r = random.Random(5)
    ssrcs = []
    for pt in (unknown_pt, rtx_pt):
        for _ in range(500):
            packet = bytearray(base)
            ssrc = r.getrandbits(32)
            ssrcs.append(ssrc)
            struct.pack_into("!I", packet, 8, ssrc)
            packet[1] = (packet[1] & 0x80) | pt
            pub._on_rtp(bytes(packet))
    assert worker.stats.rtp_dropped["unknown_pt"] == 500 and worker.stats.rtp_dropped["rtx"] == 500
    declared = set(video.rtx_ssrcs)  # a=ssrc-group:FID in the offer
    assert declared and pub._listener.rtx_ssrcs == declared | set(ssrcs[-RTX_SSRCS_PER_LAYER:])  # the newest
    last = bytearray(base)
    struct.pack_into("!I", last, 8, ssrcs[-1])
    last[1] = (last[1] & 0x80) | rtx_pt
    pub._on_rtp(bytes(last))
    assert worker.stats.rtp_dropped["rtx"] == 501
    video.close()
    assert pub._listener.rtx_ssrcs == declared
