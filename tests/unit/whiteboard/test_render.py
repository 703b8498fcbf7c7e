"""The server-side renderer (exports, the recording): every tool drawn where it belongs, in SVG and
as pixels; what a client wrote is not trusted (bad colours, huge numbers, junk fields)."""

from __future__ import annotations

import io
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
from PIL import Image

from whiteboard.board import Page
from whiteboard.board_render import page_image, page_svg, pdf_bytes, png_bytes

PAGE = Page("p1")
RED = "#d32f2f"


def el(kind: str, pts: list[float], **kw: Any) -> dict[str, Any]:
    return {"id": kind, "type": kind, "page": "p1", "color": RED, "width": 6.0, "pts": pts, **kw}


def red(px: tuple[int, ...]) -> bool:
    return px[0] > 150 and px[1] < 110 and px[2] < 110


ALL = [
    el("pen", [100, 100, 150, 120, 200, 100, 250, 130]),
    el("highlighter", [100, 300, 400, 300], color="#ffeb3b", width=20),
    el("line", [500, 100, 700, 100]),
    el("arrow", [500, 300, 700, 300]),
    el("rect", [800, 100, 1000, 200]),
    el("ellipse", [800, 300, 1000, 400]),
    el("text", [100, 500], text="Привет <b>&", size=40),
    el("sticky", [500, 500], text="note", color="#000000"),
]


def test_svg_has_every_tool_escaped_and_parses() -> None:
    svg = page_svg(PAGE, ALL)
    root = ET.fromstring(svg)
    tags = [c.tag.split("}")[1] for c in root]
    assert tags.count("path") == 2 and "line" in tags and "polygon" in tags and "ellipse" in tags
    assert tags.count("rect") == 3  # background, rect, sticky
    assert "Привет &lt;b&gt;&amp;" in svg
    assert 'stroke-opacity="0.35"' in svg  # the highlighter is translucent


def test_pixels_where_the_elements_are() -> None:
    img = page_image(PAGE, ALL)
    assert img.size == (1600, 1000)
    assert red(img.getpixel((600, 100)))  # the line
    assert red(img.getpixel((800, 150)))  # the rect's left edge
    assert not red(img.getpixel((900, 150)))  # inside the rect: not filled
    assert red(img.getpixel((695, 300)))  # the arrow's head
    yellow = img.getpixel((250, 300))
    assert yellow[2] < 200 and yellow[0] > 240 and yellow[1] > 240  # translucent yellow over white
    assert img.getpixel((600, 560)) == (0xFF, 0xF1, 0xA8)  # the sticky's paper
    assert img.getpixel((1500, 900)) == (255, 255, 255)
    half = page_image(PAGE, ALL, scale=0.5)
    assert half.size == (800, 500) and red(half.getpixel((300, 50)))


def test_transform_moves_an_element() -> None:
    moved = el("rect", [0, 0, 100, 100], t=[1, 1, 400, 400])
    img = page_image(PAGE, [moved])
    assert red(img.getpixel((400, 450))) and not red(img.getpixel((0, 50)))


def test_untrusted_fields_do_not_break_rendering() -> None:
    junk = [
        {"type": "pen", "pts": "nope"},
        {"type": "pen", "pts": [float("nan"), 1e300, 5, 5], "color": "red; x", "width": 1e9},
        {"type": "rect", "pts": [1]},
        {"type": "text", "pts": [10, 10], "text": 5, "size": -3},
        {"type": "unknown", "pts": [1, 1, 2, 2]},
        {"type": "line", "pts": [1, 1, 2, 2], "t": ["a", None, 0, 0]},
    ]
    img = page_image(PAGE, junk)
    assert img.size == (1600, 1000)
    assert "<svg" in page_svg(PAGE, junk)


def test_background_is_scaled_under_the_strokes() -> None:
    bg = Image.new("RGB", (400, 250), (0, 0, 255))
    img = page_image(PAGE, [el("line", [0, 500, 1600, 500])], bg)
    assert img.getpixel((10, 10)) == (0, 0, 255) and red(img.getpixel((800, 500)))


def test_png_and_a_pdf_whose_pages_render(tmp_path: Path) -> None:
    img = page_image(PAGE, ALL)
    png = png_bytes(img)
    assert Image.open(io.BytesIO(png)).size == (1600, 1000)
    pdf = pdf_bytes([img, page_image(Page("p2", None, 1600, 2000), [])])
    doc = pdfium.PdfDocument(pdf)
    assert len(doc) == 2
    w, h = doc[1].get_size()
    assert abs(h / w - 1.25) < 0.01
    out = tmp_path / "page.pdf"
    out.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "36", "-png", str(out), str(tmp_path / "r")],
                   check=True, timeout=60)
    rendered = Image.open(next(tmp_path.glob("r*.png"))).convert("RGB")
    x, y = round(600 * rendered.width / 1600), round(100 * rendered.height / 1000)
    assert any(red(rendered.getpixel((x, y + dy))) for dy in (-1, 0, 1))
