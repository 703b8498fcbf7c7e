"""One published track into one file: a direct consumer of its producer, its packets queued on the
receive path, turned into frames and written by the recording's writer thread.

The timeline: the first packet's arrival (server wall clock) anchors the track's RTP timestamps;
when the publisher's sender reports arrive, the track is placed by them instead, through one clock
offset per participant (the sender's wall clock to the server's, measured once), so a participant's
microphone and camera stay lip-synced as the sender captured them.
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

NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_EPOCH + (ntp & 0xFFFFFFFF) / 2**32


class TrackRecorder:
    def __init__(self, direct: DirectTransport, producer: Producer, directory: Path, entry: TrackEntry,
                 *, started_at: float, offsets: dict[str, float],
                 wall: Callable[[], float] = time.time) -> None:
        """``entry``: this file's manifest entry (``start`` filled in when the first frame is
        written); ``offsets``: the recording's sender-to-server clock offsets by participant
        (shared by the participant's tracks); ``wall``: the server's wall clock."""
        self.producer = producer
        self.entry = entry
        self.path = directory / entry.file
        self.clock_rate = producer.codec_info.clock_rate
        self.video = producer.kind == "video"
        self._started_at = started_at
        self._offsets = offsets
        self._wall = wall
        self._queue: collections.deque[bytes] = collections.deque()
        self.first_arrival = 0.0
        self._ts0 = -1  # extended timestamp of the first packet (the arrival anchor)
        self._first_frame_ts = -1
        self._placed_by_sr = False
        self.assembler = FrameAssembler(depacketizer_for(producer.codec), video=self.video)
        self.writer = TrackWriter(self.path, entry.codec)
        self.started = False  # the first frame is in the file (its start is known)
        self.moved = False  # ``entry.start`` changed since the manifest was last written
        self.closed = False
        self.consumer: DirectConsumer = direct.consume(producer, self._on_rtp)

    @staticmethod
    def file_name(producer: Producer, segment: int, participant_id: str) -> str:
        codec = codec_of(producer.codec)
        return f"{participant_id[:24]}-{producer.source}-{segment}.{EXTENSIONS[codec]}"

    def _on_rtp(self, packet: bytes) -> None:
        # on the receive path: one append (and the arrival of the very first packet)
        if not self.first_arrival:
            self.first_arrival = self._wall()
        self._queue.append(packet)

    def take(self) -> collections.deque[bytes]:
        """On the loop: the packets since the last take (handed to the writer thread)."""
        batch = self._queue
        self._queue = collections.deque()
        if self.assembler.want_keyframe and self.video and not self.consumer.closed:
            self.consumer.request_keyframe()  # throttled by the core to one a second
        return batch

    def _sr_wall(self, ts: int) -> float | None:
        sr = self.consumer.last_sender_report
        if sr is None:
            return None
        ntp, rtp_ts = sr
        ext = self._ts0 + ((rtp_ts - self._ts0) & 0xFFFFFFFF)
        if ext - self._ts0 > 0x80000000:
            ext -= 1 << 32  # a report for a timestamp just before the first packet
        return ntp_to_unix(ntp) + (ts - ext) / self.clock_rate

    def _place(self) -> None:
        """Where the first frame sits on the recording's timeline."""
        ts = self._first_frame_ts
        start = self.first_arrival + (ts - self._ts0) / self.clock_rate - self._started_at
        sr_wall = self._sr_wall(ts)
        if sr_wall is not None:
            pid = self.entry.participant_id
            if pid not in self._offsets:
                first = self._sr_wall(self._ts0)
                assert first is not None
                self._offsets[pid] = self.first_arrival - first
            start = sr_wall + self._offsets[pid] - self._started_at
            self._placed_by_sr = True
        start = round(max(0.0, start), 4)
        if start != self.entry.start:
            self.entry.start = start
            self.moved = True

    def write(self, batch: collections.deque[bytes]) -> None:
        """In the writer thread: frames out of the packets, into the file.  Raises TrackWriteError."""
        if self.closed or not batch:
            if self.started and not self._placed_by_sr and self.consumer.last_sender_report is not None:
                self._place()
            return
        if self._ts0 < 0:
            self._ts0 = parse_header(batch[0]).timestamp
        frames: list[Frame] = []
        push = self.assembler.push
        for packet in batch:
            push(packet, frames)
        if not frames:
            return
        if self._first_frame_ts < 0:
            self._first_frame_ts = frames[0].timestamp
        base = self._first_frame_ts
        scale = 1000 / self.clock_rate
        write = self.writer.write
        for f in frames:
            write(f.data, int((f.timestamp - base) * scale), f.keyframe)
        if not self.started:
            self.started = True
            self._place()
        elif not self._placed_by_sr and self.consumer.last_sender_report is not None:
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
        self.writer.close()
        if self.started:
            self.entry.end = round(self.entry.start + self.duration, 4)
        elif self.path.exists():
            self.path.unlink()
