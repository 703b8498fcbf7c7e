"""Per-producer history of recent RTP packets, to answer NACKs from subscribers."""

from __future__ import annotations

import time


class PacketHistory:
    """A ring indexed by sequence number; keeps at most ``size`` packets for ``max_age`` seconds.

    Stores the publisher's packet bytes unchanged (already decrypted); a retransmission applies the
    requesting consumer's rewrite to a fresh copy. ``size`` must be a power of two.
    """

    __slots__ = ("_mask", "_max_age", "_packets", "_seqs", "_times")

    def __init__(self, size: int = 1024, max_age: float = 2.0) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("size must be a power of two")
        self._mask = size - 1
        self._max_age = max_age
        self._packets: list[bytes | None] = [None] * size
        self._seqs: list[int] = [-1] * size
        self._times: list[float] = [0.0] * size

    def store(self, seq: int, packet: bytes, now: float | None = None) -> None:
        i = seq & self._mask
        self._packets[i] = packet
        self._seqs[i] = seq
        self._times[i] = time.monotonic() if now is None else now

    def get(self, seq: int, now: float | None = None) -> bytes | None:
        """The packet with this sequence number if still held and not older than ``max_age``."""
        i = seq & self._mask
        if self._seqs[i] != seq:
            return None
        t = time.monotonic() if now is None else now
        if t - self._times[i] > self._max_age:
            return None
        return self._packets[i]

    def clear(self) -> None:
        n = self._mask + 1
        self._packets = [None] * n
        self._seqs = [-1] * n
