"""The rtpdump file format (rtptools' ``rtpdump -F dump``; Wireshark opens it): RTP packets with
their arrival times, one stream per file, plus a JSON sidecar (``<file>.json``) naming the codec.

Layout: the text line ``#!rtpplay1.0 <address>/<port>\\n``, then a 16-byte header (start time:
seconds, microseconds; source address; port; padding), then per packet an 8-byte header (length of
header + packet, packet length, milliseconds since the start) and the packet.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"#!rtpplay1.0 "
_FILE_HEADER = struct.Struct("!IIIHH")  # start sec, start usec, source, port, padding
_PACKET_HEADER = struct.Struct("!HHI")  # length (header + packet), packet length, offset ms


@dataclass(frozen=True)
class StreamInfo:
    """What the sidecar says about the stream: enough to make a DirectProducer for it."""

    kind: str  # "audio" | "video"
    codec: str  # MIME type, e.g. "audio/opus"
    clock_rate: int


class RtpDumpWriter:
    """Appends packets with their offsets (seconds since the writer started, monotonic)."""

    def __init__(self, path: Path, info: StreamInfo) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._start = time.monotonic()
        now = time.time()
        self._file.write(MAGIC + b"127.0.0.1/5004\n")
        self._file.write(_FILE_HEADER.pack(int(now), int(now % 1 * 1e6), 0x7F000001, 5004, 0))
        Path(str(path) + ".json").write_text(json.dumps(asdict(info)))
        self.packets = 0

    def write(self, packet: bytes, at: float) -> None:
        """``at``: ``time.monotonic()`` when the packet arrived."""
        offset_ms = max(0, int((at - self._start) * 1000))
        self._file.write(_PACKET_HEADER.pack(len(packet) + 8, len(packet), offset_ms & 0xFFFFFFFF) + packet)
        self.packets += 1

    def close(self) -> None:
        self._file.close()


def read_info(path: Path) -> StreamInfo:
    return StreamInfo(**json.loads(Path(str(path) + ".json").read_text()))


def read_packets(path: Path) -> Iterator[tuple[float, bytes]]:
    """``(seconds since the start, packet)`` for each packet of an rtpdump file."""
    with path.open("rb") as f:
        line = f.readline()
        if not line.startswith(MAGIC):
            raise ValueError(f"{path}: not an rtpdump file")
        f.read(_FILE_HEADER.size)
        while True:
            head = f.read(_PACKET_HEADER.size)
            if len(head) < _PACKET_HEADER.size:
                return
            length, plen, offset_ms = _PACKET_HEADER.unpack(head)
            body = f.read(length - _PACKET_HEADER.size)
            if len(body) < length - _PACKET_HEADER.size:
                return  # a file cut short (the recorder was killed): what is whole is played
            yield offset_ms / 1000, body[:plen]
