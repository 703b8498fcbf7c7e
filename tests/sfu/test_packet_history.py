from __future__ import annotations

import pytest

from sfu.packet_history import PacketHistory


def test_store_get_wrap_and_overwrite() -> None:
    h = PacketHistory(size=8, max_age=2.0)
    for seq in range(65530, 65536):
        h.store(seq, bytes([seq & 0xFF]), now=0.0)
    for seq in range(0, 4):
        h.store(seq, bytes([seq]), now=0.0)
    assert h.get(65535, now=1.0) == b"\xff"
    assert h.get(3, now=1.0) == b"\x03"
    assert h.get(65530, now=1.0) is None  # overwritten by seq 2 (same slot)
    assert h.get(4, now=1.0) is None  # never stored
    assert h.get(3, now=2.5) is None  # too old


def test_size_must_be_power_of_two() -> None:
    with pytest.raises(ValueError):
        PacketHistory(size=1000)
