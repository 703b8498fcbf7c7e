"""Paints the composed frames (issue 13): tiles scaled by swscale into one yuv420p frame, names on
tiles and avatars (initials) drawn with Pillow (DejaVu Sans, Cyrillic included) once and cached.

The output frame is one VideoFrame painted in place: libx264 copies each picture it is given, so
reusing the buffer is safe and saves an allocation and a copy per frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recordings.layout import Rect, Tile

FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf")
BLACK_Y, GREY_Y = 16, 28


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in FONT_PATHS:
        if Path(p).is_file():
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size)


@dataclass(slots=True)
class _Label:
    mask: np.ndarray  # bool, text pixels
    box_h: int
    box_w: int


class Painter:
    """One output frame (`frame`) and the caches that make painting it cheap."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.frame = av.VideoFrame(width=width, height=height, format="yuv420p")
        self._y, self._u, self._v = (self._view(i) for i in range(3))
        self._scaled: dict[tuple[str, Rect], tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._labels: dict[tuple[str, int], _Label] = {}
        self._avatars: dict[tuple[str, str, Rect], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def _view(self, i: int) -> np.ndarray:
        plane = self.frame.planes[i]
        rows = plane.buffer_size // plane.line_size
        data: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8)
        return data.reshape(rows, plane.line_size)[:plane.height, :plane.width]

    def clear(self) -> None:
        self._y[:] = BLACK_Y
        self._u[:] = 128
        self._v[:] = 128

    def picture(self, tile: Tile, key: str, serial: int, frame: av.VideoFrame) -> None:
        """A video picture fitted into the tile (scaled only when the picture or the tile changed)."""
        inner = tile.rect.fit(frame.width, frame.height)
        cached = self._scaled.get((key, inner))
        if cached is None or cached[0] != serial:
            scaled = frame.reformat(width=inner.w, height=inner.h, format="yuv420p", interpolation="BILINEAR")
            planes = tuple(_plane_array(scaled, i) for i in range(3))
            cached = (serial, (planes[0], planes[1], planes[2]))
            self._scaled[(key, inner)] = cached
        y, u, v = cached[1]
        self._fill(tile.rect, GREY_Y)
        self._put(inner, y, u, v)

    def avatar(self, tile: Tile) -> None:
        """A coloured tile with the participant's initials (no camera, or not yet / no longer)."""
        r = tile.rect
        key = (tile.participant_id, tile.name, r)
        planes = self._avatars.get(key)
        if planes is None:
            digest = hashlib.sha256(tile.participant_id.encode()).digest()
            y = np.full((r.h, r.w), 60, dtype=np.uint8)
            u = np.full((r.h // 2, r.w // 2), 96 + digest[0] % 64, dtype=np.uint8)
            v = np.full((r.h // 2, r.w // 2), 96 + digest[1] % 64, dtype=np.uint8)
            size = max(12, min(r.w, r.h) // 3)
            text = _initials(tile.name)
            img = Image.new("L", (r.w, r.h), 0)
            draw = ImageDraw.Draw(img)
            font = self._font(size)
            box = draw.textbbox((0, 0), text, font=font)
            draw.text(((r.w - (box[2] - box[0])) / 2 - box[0], (r.h - (box[3] - box[1])) / 2 - box[1]), text,
                      fill=255, font=font)
            y[np.asarray(img) > 127] = 220
            planes = (y, u, v)
            self._avatars[key] = planes
        self._put(r, *planes)

    def label(self, tile: Tile) -> None:
        """The participant's name at the bottom left of the tile, white on a darkened band."""
        r = tile.rect
        size = max(10, min(24, r.h // 14))
        lab = self._labels.get((tile.name + (" (экран)" if tile.screen else ""), size))
        if lab is None:
            lab = self._render_label(tile.name + (" (экран)" if tile.screen else ""), size)
            self._labels[(tile.name + (" (экран)" if tile.screen else ""), size)] = lab
        h, w = min(lab.box_h, r.h), min(lab.box_w, r.w)
        x0, y0 = r.x, r.y + r.h - h
        band = self._y[y0:y0 + h, x0:x0 + w]
        band >>= 1  # darken what is under the name (integer halving in place, no allocation)
        band[lab.mask[:h, :w]] = 235

    def _render_label(self, text: str, size: int) -> _Label:
        font = self._font(size)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        box = probe.textbbox((0, 0), text, font=font)
        pad = max(2, size // 4)
        w, h = int(box[2] - box[0]) + 2 * pad, size + 2 * pad
        w, h = w + w % 2, h + h % 2
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).text((pad - box[0], pad + (size - (box[3] - box[1])) // 2 - box[1]), text, fill=255,
                                 font=font)
        return _Label(mask=np.asarray(img) > 127, box_h=h, box_w=w)

    def _font(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        f = self._fonts.get(size)
        if f is None:
            f = self._fonts[size] = _font(size)
        return f

    def _fill(self, r: Rect, y: int) -> None:
        self._y[r.y:r.y + r.h, r.x:r.x + r.w] = y
        self._u[r.y // 2:(r.y + r.h) // 2, r.x // 2:(r.x + r.w) // 2] = 128
        self._v[r.y // 2:(r.y + r.h) // 2, r.x // 2:(r.x + r.w) // 2] = 128

    def _put(self, r: Rect, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        self._y[r.y:r.y + r.h, r.x:r.x + r.w] = y
        self._u[r.y // 2:r.y // 2 + r.h // 2, r.x // 2:r.x // 2 + r.w // 2] = u
        self._v[r.y // 2:r.y // 2 + r.h // 2, r.x // 2:r.x // 2 + r.w // 2] = v

    def forget(self, live_keys: set[str]) -> None:
        """Drop scaled pictures of tracks no longer shown (bounded memory over a long lesson)."""
        for k in [k for k in self._scaled if k[0] not in live_keys]:
            del self._scaled[k]


def _plane_array(frame: av.VideoFrame, i: int) -> np.ndarray:
    plane = frame.planes[i]
    rows = plane.buffer_size // plane.line_size
    data: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return data.reshape(rows, plane.line_size)[:plane.height, :plane.width]


def _initials(name: str) -> str:
    parts = [p for p in name.split() if p]
    return ("".join(p[0] for p in parts[:2]) or "?").upper()
