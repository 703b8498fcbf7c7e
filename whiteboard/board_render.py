"""Draw a board page from its elements (board.py's layout): SVG text, a Pillow image (PNG), and a
PDF of pages.  Server-side, so exports and the recording's composer do not need a browser.  What a
client wrote is not trusted: a malformed element is skipped, numbers are clamped, colours checked."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from whiteboard.board import Page

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_MAX_POINTS = 20_000  # of one element; more is drawn up to this
_HIGHLIGHT_ALPHA = 0.35
STICKY_FILL = "#fff1a8"
STICKY_W, STICKY_H = 220.0, 160.0
BG = "#ffffff"


def _color(v: Any) -> str:
    return v if isinstance(v, str) and _COLOR.match(v) else "#000000"


def _num(v: Any, default: float, lo: float = -1e6, hi: float = 1e6) -> float:
    if isinstance(v, (int, float)) and math.isfinite(v):
        return min(hi, max(lo, float(v)))
    return default


def _points(el: dict[str, Any]) -> list[tuple[float, float]]:
    """The element's points with its transform applied (t = [sx, sy, tx, ty])."""
    raw = el.get("pts")
    if not isinstance(raw, list):
        return []
    t = el.get("t")
    sx, sy, tx, ty = (_num(t[i], d) for i, d in enumerate((1.0, 1.0, 0.0, 0.0))) \
        if isinstance(t, list) and len(t) == 4 else (1.0, 1.0, 0.0, 0.0)
    pts = raw[: 2 * _MAX_POINTS]
    return [(_num(pts[i], 0.0) * sx + tx, _num(pts[i + 1], 0.0) * sy + ty) for i in range(0, len(pts) - 1, 2)]


def _scale(el: dict[str, Any]) -> float:
    t = el.get("t")
    if isinstance(t, list) and len(t) == 4:
        return (abs(_num(t[0], 1.0)) + abs(_num(t[1], 1.0))) / 2
    return 1.0


def _width(el: dict[str, Any]) -> float:
    return _num(el.get("width"), 3.0, 0.5, 200.0) * _scale(el)


def _text(el: dict[str, Any]) -> str:
    v = el.get("text")
    return v[:5000] if isinstance(v, str) else ""


def _font_size(el: dict[str, Any]) -> float:
    return _num(el.get("size"), 28.0, 6.0, 300.0) * _scale(el)


def _arrow_head(p0: tuple[float, float], p1: tuple[float, float], w: float) -> list[tuple[float, float]]:
    ang = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    size = max(12.0, w * 4)
    return [p1, (p1[0] - size * math.cos(ang - 0.45), p1[1] - size * math.sin(ang - 0.45)),
            (p1[0] - size * math.cos(ang + 0.45), p1[1] - size * math.sin(ang + 0.45))]


# --- SVG ------------------------------------------------------------------------------------------
def _svg_path(pts: Sequence[tuple[float, float]]) -> str:
    """Quadratic curves through the midpoints: the smooth line web/board.js draws too."""
    if len(pts) == 1:
        x, y = pts[0]
        return f"M{x:.1f} {y:.1f}L{x + 0.1:.1f} {y:.1f}"
    d = [f"M{pts[0][0]:.1f} {pts[0][1]:.1f}"]
    for i in range(1, len(pts) - 1):
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        d.append(f"Q{x0:.1f} {y0:.1f} {(x0 + x1) / 2:.1f} {(y0 + y1) / 2:.1f}")
    d.append(f"L{pts[-1][0]:.1f} {pts[-1][1]:.1f}")
    return "".join(d)


def _svg_element(el: dict[str, Any]) -> str:
    kind, pts, color, w = el.get("type"), _points(el), _color(el.get("color")), _width(el)
    if not pts:
        return ""
    stroke = f'stroke="{color}" stroke-width="{w:.1f}" fill="none" stroke-linecap="round" stroke-linejoin="round"'
    if kind in ("pen", "highlighter"):
        op = f' stroke-opacity="{_HIGHLIGHT_ALPHA}"' if kind == "highlighter" else ""
        return f'<path d="{_svg_path(pts)}" {stroke}{op}/>'
    if kind in ("line", "arrow") and len(pts) >= 2:
        out = f'<line x1="{pts[0][0]:.1f}" y1="{pts[0][1]:.1f}" x2="{pts[1][0]:.1f}" y2="{pts[1][1]:.1f}" {stroke}/>'
        if kind == "arrow":
            head = " ".join(f"{x:.1f},{y:.1f}" for x, y in _arrow_head(pts[0], pts[1], w))
            out += f'<polygon points="{head}" fill="{color}"/>'
        return out
    if kind in ("rect", "ellipse") and len(pts) >= 2:
        x0, x1 = sorted((pts[0][0], pts[1][0]))
        y0, y1 = sorted((pts[0][1], pts[1][1]))
        if kind == "rect":
            return f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" {stroke}/>'
        return (f'<ellipse cx="{(x0 + x1) / 2:.1f}" cy="{(y0 + y1) / 2:.1f}" rx="{(x1 - x0) / 2:.1f}" '
                f'ry="{(y1 - y0) / 2:.1f}" {stroke}/>')
    if kind in ("text", "sticky"):
        x, y = pts[0]
        size = _font_size(el)
        lines = _text(el).split("\n")
        out = ""
        if kind == "sticky":
            s = _scale(el)
            out = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{STICKY_W * s:.1f}" height="{STICKY_H * s:.1f}" '
                   f'fill="{STICKY_FILL}" stroke="#d8c25a"/>')
            x, y = x + 10 * s, y + 8 * s
        spans = "".join(f'<tspan x="{x:.1f}" dy="{size * 1.2 if i else size:.1f}">{escape(t)}</tspan>'
                        for i, t in enumerate(lines))
        return out + f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size:.1f}" ' \
                     f'fill="{color}">{spans}</text>'
    return ""


def page_svg(page: Page, elements: Sequence[dict[str, Any]], background_href: str | None = None) -> str:
    body = "".join(_svg_element(el) for el in elements)
    bg = (f'<image href="{escape(background_href)}" x="0" y="0" width="{page.width}" height="{page.height}"/>'
          if background_href else "")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {page.width} {page.height}" '
            f'width="{page.width}" height="{page.height}"><rect width="100%" height="100%" fill="{BG}"/>'
            f'{bg}{body}</svg>')


# --- raster -----------------------------------------------------------------------------------
def _font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", max(6, int(size)))
    except OSError:
        return ImageFont.load_default(size=max(6, int(size)))


def _smooth(pts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The same quadratic curves as the SVG, flattened (4 steps each)."""
    if len(pts) < 3:
        return list(pts)
    out = [pts[0]]
    prev = pts[0]
    for i in range(1, len(pts) - 1):
        (cx, cy), (nx, ny) = pts[i], pts[i + 1]
        end = ((cx + nx) / 2, (cy + ny) / 2)
        for k in (0.25, 0.5, 0.75, 1.0):
            a, b, c = (1 - k) ** 2, 2 * (1 - k) * k, k * k
            out.append((a * prev[0] + b * cx + c * end[0], a * prev[1] + b * cy + c * end[1]))
        prev = end
    out.append(pts[-1])
    return out


def _draw_element(img: Image.Image, el: dict[str, Any], k: float) -> None:
    kind, color, w = el.get("type"), _color(el.get("color")), max(1, round(_width(el) * k))
    pts = [(x * k, y * k) for x, y in _points(el)]
    if not pts:
        return
    if kind == "highlighter":
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        ImageDraw.Draw(layer).line(_smooth(pts), fill=color, width=w, joint="curve")
        alpha = layer.getchannel("A").point(lambda a: int(a * _HIGHLIGHT_ALPHA))
        layer.putalpha(alpha)
        img.alpha_composite(layer)
        return
    d = ImageDraw.Draw(img)
    if kind == "pen":
        if len(pts) == 1:
            x, y = pts[0]
            d.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=color)
            return
        line = _smooth(pts)
        d.line(line, fill=color, width=w, joint="curve")
        for x, y in (line[0], line[-1]):  # round caps
            d.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=color)
    elif kind in ("line", "arrow") and len(pts) >= 2:
        d.line(pts[:2], fill=color, width=w)
        if kind == "arrow":
            d.polygon(_arrow_head(pts[0], pts[1], w), fill=color)
    elif kind in ("rect", "ellipse") and len(pts) >= 2:
        x0, x1 = sorted((pts[0][0], pts[1][0]))
        y0, y1 = sorted((pts[0][1], pts[1][1]))
        (d.rectangle if kind == "rect" else d.ellipse)((x0, y0, x1, y1), outline=color, width=w)
    elif kind in ("text", "sticky"):
        x, y = pts[0]
        s = _scale(el) * k
        if kind == "sticky":
            d.rectangle((x, y, x + STICKY_W * s, y + STICKY_H * s), fill=STICKY_FILL, outline="#d8c25a")
            x, y = x + 10 * s, y + 8 * s
        d.multiline_text((x, y), _text(el), fill=color, font=_font(_font_size(el) * k), spacing=4)


def page_image(page: Page, elements: Sequence[dict[str, Any]], background: Image.Image | None = None,
               *, scale: float = 1.0) -> Image.Image:
    """The page as an RGB image, ``scale`` times its logical size."""
    return page_canvas(page, elements, background, scale=scale).convert("RGB")


def page_canvas(page: Page, elements: Sequence[dict[str, Any]], background: Image.Image | None = None,
                *, scale: float = 1.0) -> Image.Image:
    """The page as the RGBA canvas it is drawn on (more elements can be drawn over it: draw_onto)."""
    size = (max(1, round(page.width * scale)), max(1, round(page.height * scale)))
    img = Image.new("RGBA", size, BG)
    if background is not None:
        img.alpha_composite(background.convert("RGBA").resize(size))
    for el in elements:
        _draw_element(img, el, scale)
    return img


def draw_onto(canvas: Image.Image, elements: Sequence[dict[str, Any]], *, scale: float = 1.0) -> Image.Image:
    """A copy of ``canvas`` (from page_canvas) with ``elements`` drawn over it, as page_canvas would
    have drawn them after the ones already there."""
    img = canvas.copy()
    for el in elements:
        _draw_element(img, el, scale)
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def pdf_bytes(images: Sequence[Image.Image]) -> bytes:
    """One PDF page per image (Pillow's PDF writer; each page the image's size at 144 dpi)."""
    buf = io.BytesIO()
    first, *rest = images
    first.save(buf, format="PDF", save_all=True, append_images=rest, resolution=144.0)
    return buf.getvalue()
