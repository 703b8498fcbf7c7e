"""RtpOpusDecoder: real libopus packets in RTP (sfu.OpusPacketizer), lost, late, garbage, DTX."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

from media.opus_codec import OpusEncoder
from media.rtp_opus_decoder import RtpOpusDecoder
from sfu import OpusPacketizer


def tone(seconds: float, rate: int = 48000, freq: float = 440.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def packets(seconds: float = 1.0) -> list[bytes]:
    enc = OpusEncoder()
    pk = OpusPacketizer(111, 1234, rng=random.Random(7))
    pcm = tone(seconds)
    return [pk.packetize(enc.encode(np.ascontiguousarray(pcm[i:i + 960])))
            for i in range(0, len(pcm) - 959, 960)]


def run(dec: RtpOpusDecoder, pks: list[bytes]) -> list[tuple[npt.NDArray[np.int16], float]]:
    out = []
    for p in pks:
        out.extend(dec.feed(p))
    return out


def test_a_clean_stream_decodes_to_contiguous_20ms_chunks_at_the_rate_asked() -> None:
    dec = RtpOpusDecoder(16000)
    out = run(dec, packets(1.0))
    assert len(out) == 50
    assert all(len(pcm) == 320 for pcm, _ in out)
    assert [round(t, 3) for _, t in out] == [round(i * 0.02, 3) for i in range(50)]
    level = np.sqrt(np.mean(np.concatenate([p for p, _ in out[5:]]).astype(np.float64) ** 2))
    assert level > 3000  # the tone (8000 peak, rms ~5600) survived
    assert dec.lost == dec.garbage == dec.late == 0


def test_lost_packets_are_concealed_so_time_stays_continuous() -> None:
    pks = packets(1.0)
    del pks[20:23]  # 60 ms lost
    dec = RtpOpusDecoder()
    out = run(dec, pks)
    assert dec.lost == 3
    assert abs(dec.concealed_s - 0.06) < 1e-6
    assert len(out) == 50 and [round(t, 3) for _, t in out] == [round(i * 0.02, 3) for i in range(50)]


def test_a_long_loss_is_a_jump_in_time_not_invented_audio() -> None:
    pks = packets(1.0)
    del pks[10:30]  # 400 ms lost
    dec = RtpOpusDecoder()
    out = run(dec, pks)
    ts = [round(t, 3) for _, t in out]
    assert ts[:10] == [round(i * 0.02, 3) for i in range(10)] and ts[10] == 0.6
    assert dec.concealed_s == 0


def test_dtx_silence_jumps_time_without_a_loss() -> None:
    enc = OpusEncoder()
    pk = OpusPacketizer(111, 1, rng=random.Random(1))
    pcm = tone(0.2)
    pks = [pk.packetize(enc.encode(np.ascontiguousarray(pcm[i:i + 960]))) for i in range(0, 960 * 5, 960)]
    pk.advance(0.4)  # DTX: 400 ms without packets, the sequence numbers go on
    pks.append(pk.packetize(b"\xf8\xff\xfe"))  # a DTX/comfort-noise sized frame (TOC only)
    dec = RtpOpusDecoder()
    out = run(dec, pks)
    assert dec.lost == 0 and dec.concealed_s == 0
    assert round(out[-1][1], 3) == 0.5


def test_garbage_duplicates_and_non_rtp_do_not_raise_and_are_counted() -> None:
    pks = packets(0.4)
    rnd = random.Random(3)
    bad = bytearray(pks[5])
    bad[12:] = bytes(rnd.getrandbits(8) for _ in range(len(bad) - 12))
    bad[12] = 0xFF  # code 3 TOC with an impossible frame count
    bad[13] = 0xFF
    stream = [*pks[:5], bytes(bad), *pks[6:8], pks[6], b"\x00junk", pks[7][:12], *pks[8:]]
    dec = RtpOpusDecoder()
    out = run(dec, stream)
    assert dec.garbage >= 2 and dec.late >= 1
    assert len(out) == 20  # every 20 ms slot still produced: the garbage packet was concealed
