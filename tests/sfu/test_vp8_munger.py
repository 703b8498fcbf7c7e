"""VP8 picture ids across a simulcast switch (sfu.vp8_munger): the new layer's ids continue the
old layer's, with wrap-around, 7-bit ids and TL0PICIDX; a truncated descriptor is left alone."""

from __future__ import annotations

from sfu.vp8_munger import Vp8Munger, vp8_picture_ids


def descriptor(pid: int | None, tl0: int | None = None, bits: int = 15, start: bool = True) -> bytes:
    """A VP8 payload descriptor (RFC 7741 4.2) followed by 3 bytes of payload."""
    x = (0x80 if pid is not None else 0) | (0x40 if tl0 is not None else 0)
    out = bytearray([0x90 if start else 0x80, x])
    if pid is not None:
        out += bytes([0x80 | (pid >> 8), pid & 0xFF]) if bits == 15 else bytes([pid & 0x7F])
    if tl0 is not None:
        out.append(tl0)
    return bytes(out) + b"\x10\x02\x00"


def test_the_fields_are_found_with_and_without_the_extension_byte() -> None:
    assert vp8_picture_ids(descriptor(0x1234, 7), 0, 10) == (2, 15, 4, 5)
    assert vp8_picture_ids(descriptor(0x12, bits=7), 0, 10) == (2, 7, -1, 3)
    assert vp8_picture_ids(b"\x10\x00\x00", 0, 3) == (-1, 0, -1, 1)  # no X: no ids
    assert vp8_picture_ids(descriptor(0x1234)[:3], 0, 3) == (-1, 0, -1, 0)  # cut in the id: nothing


def test_a_switch_continues_the_ids_after_the_last_sent_and_wraps() -> None:
    m = Vp8Munger()
    assert not m.active
    last = m.outgoing(descriptor(0x7FFE, 250), 0, 8)
    assert last == (0x7FFE, 250)
    new_layer = descriptor(0x0100, 3)
    m.switch(last, new_layer, 0, len(new_layer))
    assert m.active
    buf = bytearray(new_layer)
    m.rewrite(buf, 0, len(buf))
    assert m.outgoing(new_layer, 0, len(new_layer)) == (0x7FFF, 251)
    assert vp8_picture_ids(buf, 0, len(buf))[0] == 2 and buf[2:5] == bytes([0xFF, 0xFF, 251])
    later = bytearray(descriptor(0x0101, 3))
    m.rewrite(later, 0, len(later))
    assert later[2:5] == bytes([0x80, 0x00, 251])  # 0x7FFF + 1 wraps to 0; same TL0PICIDX
    assert later[5:] == new_layer[5:]  # the payload itself untouched


def test_seven_bit_ids_and_fields_missing_on_one_side() -> None:
    m = Vp8Munger()
    m.switch((0x7F, -1), descriptor(5, bits=7), 0, 6)
    buf = bytearray(descriptor(6, bits=7))
    m.rewrite(buf, 0, len(buf))
    assert buf[2] == 1  # 0x7F + 1 wraps to 0 at the switch; the next frame is 1
    assert m.tl0_offset == 0  # the old layer had no TL0PICIDX: nothing to continue
    short = bytearray(b"\x90\x80")  # X and I set, the id itself cut off
    m.rewrite(short, 0, len(short))
    assert short == bytearray(b"\x90\x80")
