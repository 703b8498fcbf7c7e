"""Opus RTP packets (one consumer's stream, in arrival order) to PCM in 20 ms multiples.

Pure (no clock, no I/O, no loop): the audio tap and the noise suppressor feed it from a worker
thread or the event loop.  What it does about the stream's faults:

- a gap in the sequence numbers (packets lost for good: the consumer's NACK/RTX already tried) is
  filled by the decoder: in-band FEC of the next packet for the last lost one, Opus packet loss
  concealment (extrapolation fading to silence) for the others, at most :data:`MAX_CONCEAL_S`; a
  longer gap is a jump in time (``t`` of the next chunk says where the audio resumes);
- a jump in the RTP timestamps without lost packets is DTX (the publisher sent nothing while
  silent) or a pause: nothing is invented, the next chunk's ``t`` jumps;
- a payload that is no Opus packet (garbage, empty) is concealed as one lost packet and counted
  (:attr:`RtpOpusDecoder.garbage`); a packet that is not RTP at all is counted and skipped;
- a duplicate or late packet (sequence number not after the last one) is counted and skipped.
Nothing here raises for what a publisher sends.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .opus_codec import OpusCodecError, OpusDecoder

_SEQ_TS = struct.Struct("!HI")
_EXT = struct.Struct("!HH")


class _Header(NamedTuple):
    sequence_number: int
    timestamp: int
    payload_start: int
    payload_end: int


def parse_header(data: bytes) -> _Header:
    """The RTP header fields the decoder needs, bounds-checked as ``sfu.parse_header`` does
    (ValueError for a malformed packet).  Here rather than imported from ``sfu``: the audio
    processes (media/audio_processes.py) then start without importing the whole SFU."""
    n = len(data)
    if n < 12 or data[0] >> 6 != 2:
        raise ValueError("not an RTP packet")
    b0 = data[0]
    seq, ts = _SEQ_TS.unpack_from(data, 2)
    pos = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if pos + 4 > n:
            raise ValueError("RTP extension header truncated")
        pos += 4 + 4 * _EXT.unpack_from(data, pos)[1]
    end = n
    if b0 & 0x20:
        if data[-1] == 0:
            raise ValueError("RTP padding length is zero")
        end = n - data[-1]
    if pos > end:
        raise ValueError("RTP header longer than packet")
    return _Header(seq, ts, pos, end)

__all__ = ["MAX_CONCEAL_S", "RTP_CLOCK", "RtpOpusDecoder"]

RTP_CLOCK = 48000  # Opus on RTP: always a 48 kHz clock (RFC 7587 4.1)
MAX_CONCEAL_S = 0.1  # longer losses are not concealed: the audio resumes later in time
_DEFAULT_FRAME = 960  # 20 ms at 48 kHz: the duration of a packet whose own could not be read
_BUFFER_S = 0.5  # what one packet (<= 120 ms) plus concealment (<= 100 ms) plus a residue can fill


class RtpOpusDecoder:
    """``feed(packet) -> list[(pcm, t)]``: ``pcm`` int16 mono at ``sample_rate``, a multiple of
    20 ms, a new array per chunk (the caller may keep it); ``t`` the time of its first sample in
    seconds on the stream's RTP clock since the first packet."""

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self._decoder = OpusDecoder(sample_rate)
        self._chunk = sample_rate // 50  # 20 ms
        self._scale = sample_rate / RTP_CLOCK  # output samples per RTP tick
        self._buf = np.zeros(int(sample_rate * _BUFFER_S), dtype=np.int16)
        self._fill = 0
        self._buf_t = 0.0  # time of self._buf[0]
        self._first_ts: int | None = None
        self._next_seq = 0
        self._next_ts = 0  # unwrapped RTP time (ticks since the first packet) the next packet should have
        self._last_ticks = _DEFAULT_FRAME
        # counters (read by stats; written only by the thread that feeds)
        self.packets = 0
        self.concealed_s = 0.0  # audio made up for lost packets (PLC and FEC)
        self.lost = 0  # packets missing from the sequence
        self.garbage = 0  # payloads libopus refused, empty payloads, non-RTP packets
        self.late = 0  # duplicates and packets older than the last one

    def feed(self, packet: bytes) -> list[tuple[npt.NDArray[np.int16], float]]:
        out: list[tuple[npt.NDArray[np.int16], float]] = []
        try:
            h = parse_header(packet)
        except ValueError:
            self.garbage += 1
            return out
        payload = packet[h.payload_start:h.payload_end]
        if self._first_ts is None:
            self._first_ts = h.timestamp
            self._next_seq = h.sequence_number
            self._next_ts = 0
        ticks = (h.timestamp - self._first_ts) & 0xFFFFFFFF
        # unwrap against the expected position: the distance forward, modulo 2**32
        delta = (ticks - self._next_ts) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 1 << 32
        at = self._next_ts + delta  # this packet's time in ticks since the first packet
        gap = (h.sequence_number - self._next_seq) & 0xFFFF
        if gap >= 0x8000:  # before the expected one: a duplicate or a late packet
            self.late += 1
            return out
        self.packets += 1
        self._next_seq = (h.sequence_number + 1) & 0xFFFF
        if gap:
            self.lost += gap
            self._conceal(payload, gap, at, out)
        elif at > self._next_ts:
            self._jump(at, out)  # DTX or a pause: silence that nobody sent
        try:
            pcm = self._decoder.decode(payload) if payload else None
        except OpusCodecError:
            pcm = None
        if pcm is None:
            self.garbage += 1
            pcm = self._safe_conceal(self._last_ticks)
            ticks_here = self._last_ticks
        else:
            ticks_here = round(len(pcm) / self._scale)
            self._last_ticks = ticks_here
        self._append(pcm, out)
        self._next_ts = at + ticks_here
        return out

    def close(self) -> None:
        self._decoder.close()

    # ---- internals ------------------------------------------------------------------------------
    def _conceal(self, payload: bytes, lost: int, at: int, out: list[tuple[npt.NDArray[np.int16], float]]) -> None:
        """``lost`` packets before this one, which starts at ``at`` ticks."""
        missing = max(0, at - self._next_ts)  # ticks the lost packets covered
        limit = int(MAX_CONCEAL_S * RTP_CLOCK)
        if missing > limit or missing == 0:
            # too long to make up (or no timing to go by): the audio resumes at this packet's time
            if missing:
                self._jump(at, out)
            return
        per = max(missing // lost, 120)  # ticks per lost packet (>= 2.5 ms)
        for i in range(lost):
            ticks = per if i < lost - 1 else missing - per * (lost - 1)
            if ticks <= 0:
                continue
            samples = int(ticks * self._scale)
            if i == lost - 1 and payload:
                try:
                    pcm = self._decoder.recover(payload, samples)  # the next packet's FEC
                except OpusCodecError:
                    pcm = self._safe_conceal(ticks)
            else:
                pcm = self._safe_conceal(ticks)
            self.concealed_s += len(pcm) / self.sample_rate
            self._append(pcm, out)

    def _safe_conceal(self, ticks: int) -> npt.NDArray[np.int16]:
        samples = int(ticks * self._scale)
        samples -= samples % max(1, self.sample_rate // 400)  # PLC in 2.5 ms steps
        try:
            return self._decoder.conceal(samples)
        except OpusCodecError:
            return np.zeros(samples, dtype=np.int16)

    def _jump(self, at: int, out: list[tuple[npt.NDArray[np.int16], float]]) -> None:
        """Time moves to ``at`` ticks with nothing decoded in between: what is buffered goes out
        (padded with silence to 20 ms) and the buffer starts at the new time."""
        if self._fill:
            pad = -self._fill % self._chunk
            self._buf[self._fill:self._fill + pad] = 0
            self._fill += pad
            self._flush(out)
        self._buf_t = at / RTP_CLOCK

    def _append(self, pcm: npt.NDArray[np.int16], out: list[tuple[npt.NDArray[np.int16], float]]) -> None:
        n = len(pcm)
        if n == 0:
            return
        if self._fill + n > len(self._buf):  # cannot happen with Opus sizes; never overrun
            self._flush(out)
            n = min(n, len(self._buf) - self._fill)
        self._buf[self._fill:self._fill + n] = pcm[:n]
        self._fill += n
        self._flush(out)

    def _flush(self, out: list[tuple[npt.NDArray[np.int16], float]]) -> None:
        whole = self._fill - self._fill % self._chunk
        if whole == 0:
            return
        out.append((self._buf[:whole].copy(), self._buf_t))
        rest = self._fill - whole
        if rest:
            self._buf[:rest] = self._buf[whole:self._fill]
        self._fill = rest
        self._buf_t += whole / self.sample_rate
