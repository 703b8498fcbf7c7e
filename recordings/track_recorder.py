"""One published track into one file: a direct consumer of its producer, its packets queued on the
receive path, turned into frames and written by the recording's writer thread.

The timeline: a track's RTP timestamps are placed on the server's wall clock by its packets'
arrivals (the earliest any packet of the first ``ARRIVAL_WINDOW_S`` arrived for its timestamp: the
least delayed one, so network and sender jitter do not move it).  With sender reports, a
participant's tracks are placed by them instead (the sender's capture clock, one clock offset per
participant: the tightest that no packet contradicts), so a participant's microphone and camera
stay lip-synced as they were captured, unless the reports disagree with the arrivals by more than
``SR_AGREE_S`` (a sender whose reports stamp the sending, not the capture, under load: aiortc).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

from recordings.manifest import TrackEntry
from recordings.rtp_depacketizer import Frame, FrameAssembler, depacketizer_for
from recordings.track_writer import EXTENSIONS, TrackWriter, codec_of
from sfu import DirectConsumer, DirectTransport, Producer, parse_header

ARRIVAL_WINDOW_S = 10.0  # arrivals looked at (later, clock drift would weigh in)
SR_AGREE_S = 0.08  # reports and arrivals of a participant's tracks agree within this: the reports are used
NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_EPOCH + (ntp & 0xFFFFFFFF) / 2**32


class TrackRecorder:
    def __init__(self, direct: DirectTransport, producer: Producer, directory: Path, entry: TrackEntry,
                 *, started_at: float, clocks: dict[str, dict[str, tuple[float, float | None]]],
                 wall: Callable[[], float] = time.time) -> None:
        """``entry``: this file's manifest entry (``start`` filled in when the first frame is
        written); ``clocks``: the recording's per participant, per track (arrival base, sender
        report base), shared by the participant's tracks; ``wall``: the server's wall clock."""
        self.producer = producer
        self.entry = entry
        self.path = directory / entry.file
        self.clock_rate = producer.codec_info.clock_rate
        self.video = producer.kind == "video"
        self._started_at = started_at
        self._clocks = clocks
        self._wall = wall
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.first_arrival = 0.0
        self._ts0 = -1  # extended timestamp of the first packet (the arrival anchor)
        self._first_frame_ts = -1
        self._sr_last: tuple[int, int] | None = None  # the sender report last looked at
        self._sr_base: float | None = None  # the sender's wall clock at timestamp ``_ts0`` (best report)
        self._arr_base: float | None = None  # the server's wall clock at timestamp ``_ts0`` (best arrival)
        self._arr_until = 0.0
        self.assembler = FrameAssembler(depacketizer_for(producer.codec), video=self.video)
        self.writer = TrackWriter(self.path, entry.codec)
        self.started = False  # the first frame is in the file (its start is known)
        self.moved = False  # ``entry.start`` changed since the manifest was last written
        self.closed = False
        # not part of this recording now (its participant is in another breakout group): packets
        # are dropped on arrival, a gap on the same timeline as a mute's
        self.paused = False
        self.consumer: DirectConsumer = direct.consume(producer, self._on_rtp)

    @staticmethod
    def file_name(producer: Producer, segment: int, participant_id: str) -> str:
        codec = codec_of(producer.codec)
        return f"{participant_id[:24]}-{producer.source}-{segment}.{EXTENSIONS[codec]}"

    def _on_rtp(self, packet: bytes) -> None:
        # on the receive path: one append with the arrival time
        if self.paused:
            return
        now = self._wall()
        if not self.first_arrival:
            self.first_arrival = now
        self._queue.append((now, packet))

    def set_paused(self, paused: bool) -> None:
        """On the loop: leave the recording (breakout groups) or come back to it."""
        if paused == self.paused:
            return
        self.paused = paused
        if not paused and self.video and not self.consumer.closed:
            self.consumer.request_keyframe()  # the first frame after the gap must decode

    def take(self) -> collections.deque[tuple[float, bytes]]:
        """On the loop: the packets since the last take (handed to the writer thread)."""
        batch = self._queue
        self._queue = collections.deque()
        if self.assembler.want_keyframe and self.video and not self.consumer.closed:
            self.consumer.request_keyframe()  # throttled by the core to one a second
        return batch

    def _update_sr(self) -> bool:
        """Take a new sender report into the track's RTP-to-sender-clock mapping; True if it moved.

        A report pairs a wall-clock instant with the timestamp of the frame last sent, which was
        captured a little earlier (encoding, pacing: aiortc's video is late by up to a frame and
        its encoding time, and it varies report to report).  So each report gives an upper bound
        of when timestamp ``ts0`` was captured, and the lowest bound seen is the best mapping."""
        sr = self.consumer.last_sender_report
        if sr is None or sr == self._sr_last or self._ts0 < 0:
            return False
        self._sr_last = sr
        ntp, rtp_ts = sr
        ext = self._ts0 + ((rtp_ts - self._ts0) & 0xFFFFFFFF)
        if ext - self._ts0 > 0x80000000:
            ext -= 1 << 32  # a report for a timestamp just before the first packet
        base = ntp_to_unix(ntp) - (ext - self._ts0) / self.clock_rate
        if self._sr_base is not None and base >= self._sr_base:
            return False
        self._sr_base = base
        return True

    def _place(self) -> None:
        """Where the first frame sits on the recording's timeline (again whenever a report or an
        arrival improves the mapping: the manifest is rewritten, the file is not)."""
        if not self.started or self._arr_base is None:
            return
        rel = (self._first_frame_ts - self._ts0) / self.clock_rate
        peers = self._clocks.setdefault(self.entry.participant_id, {})
        peers[self.producer.id] = (self._arr_base, self._sr_base)
        start = self._arr_base + rel
        if self._sr_base is not None:
            diffs = [a - s for a, s in peers.values() if s is not None]
            if max(diffs) - min(diffs) <= SR_AGREE_S:
                start = self._sr_base + min(diffs) + rel  # the sender's clock, shifted onto the server's
        # not clamped at 0: a first frame captured just before the start keeps its place relative
        # to the participant's other tracks (the composer shows time >= 0)
        start = round(start - self._started_at, 4)
        if start != self.entry.start:
            self.entry.start = start
            self.moved = True

    def write(self, batch: collections.deque[tuple[float, bytes]]) -> None:
        """In the writer thread: frames out of the packets, into the file.  Raises TrackWriteError."""
        if self.closed or not batch:
            if self.started:
                self._update_sr()
                self._place()  # a peer's mapping may have moved
            return
        if self._ts0 < 0:
            self._ts0 = parse_header(batch[0][1]).timestamp
            self._arr_until = batch[0][0] + ARRIVAL_WINDOW_S
        frames: list[Frame] = []
        push = self.assembler.push
        ts0, rate, best = self._ts0, self.clock_rate, self._arr_base
        for at, packet in batch:
            if at <= self._arr_until and len(packet) >= 8:
                d = (int.from_bytes(packet[4:8], "big") - ts0) & 0xFFFFFFFF
                if d >= 0x80000000:
                    d -= 1 << 32  # a timestamp before the first packet's (reordered)
                base = at - d / rate
                if best is None or base < best:
                    best = base
            push(packet, frames)
        self._arr_base = best
        if not frames:
            return
        if self._first_frame_ts < 0:
            self._first_frame_ts = frames[0].timestamp
        base = self._first_frame_ts
        scale = 1000 / self.clock_rate
        write = self.writer.write
        for f in frames:
            write(f.data, int((f.timestamp - base) * scale), f.keyframe)
        self.started = True
        self._update_sr()
        self._place()

    @property
    def duration(self) -> float:
        return self.writer.last_ms / 1000 + (0.02 if not self.video else 1 / 30) if self.started else 0.0

    def stop_consuming(self) -> None:
        """On the loop: no more packets (the file is finished by ``finish`` in the writer thread)."""
        if not self.consumer.closed:
            self.consumer.close()

    def finish(self) -> None:
        """In the writer thread: duration and cues written, the file closed."""
        if self.closed:
            return
        self.closed = True
        self._clocks.get(self.entry.participant_id, {}).pop(self.producer.id, None)  # a later segment: new clocks
        self.writer.close()
        if self.started:
            self.entry.end = round(self.entry.start + self.duration, 4)
        elif self.path.exists():
            self.path.unlink()
