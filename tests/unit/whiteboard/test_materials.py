"""Uploaded materials become page backgrounds: a real PDF (made by pdfium) renders page by page at
the board's width keeping its ratio; pictures too; bad or oversized files get their named errors."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.unit.whiteboard.pdfs import COLORS, colour_pdf
from whiteboard.board import PAGE_W
from whiteboard.errors import BadMaterial, TooManyPages
from whiteboard.materials import MAX_PIXELS, is_pdf, render_material


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


def test_a_three_page_pdf_gives_three_backgrounds_in_order() -> None:
    data = colour_pdf(3)
    assert is_pdf(data)
    pages = render_material(data, max_pages=10)
    assert len(pages) == 3
    for i, p in enumerate(pages):
        assert p.width == PAGE_W and abs(p.height - round(842 * PAGE_W / 595)) <= 1
        img = Image.open(io.BytesIO(p.png)).convert("RGB")
        assert img.size == (p.width, p.height)
        assert close(img.getpixel((p.width // 2, p.height // 2)), COLORS[i]), (i, img.getpixel((800, 1130)))
        assert img.getpixel((10, 10)) == (255, 255, 255)


def test_too_many_pages_for_the_board_is_refused() -> None:
    with pytest.raises(TooManyPages) as e:
        render_material(colour_pdf(4), max_pages=3)
    assert e.value.code == "board_too_many_pages" and "4 pages" in e.value.message


@pytest.mark.parametrize("data", [b"%PDF-1.7\ngarbage that is no pdf", b"hello", b"", b"\x89PNG\r\n\x1a\nbroken"])
def test_bad_files_are_refused_with_a_clear_code(data: bytes) -> None:
    with pytest.raises(BadMaterial) as e:
        render_material(data, max_pages=10)
    assert e.value.code == "board_bad_file" and e.value.status == 415


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_picture_is_one_page_at_the_board_width(fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (0, 128, 255)).save(buf, format=fmt)
    (page,) = render_material(buf.getvalue(), max_pages=1)
    assert (page.width, page.height) == (PAGE_W, 1200)
    img = Image.open(io.BytesIO(page.png)).convert("RGB")
    assert close(img.getpixel((800, 600)), (0, 128, 255))


def test_a_huge_picture_is_refused_before_decoding() -> None:
    side = int(MAX_PIXELS ** 0.5) + 10
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")  # small file, many pixels
    assert len(buf.getvalue()) < 1_000_000
    with pytest.raises(BadMaterial) as e:
        render_material(buf.getvalue(), max_pages=1)
    assert "too large" in e.value.message


def test_a_very_tall_picture_is_cut_to_four_widths() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 1000), (0, 0, 0)).save(buf, format="PNG")
    (page,) = render_material(buf.getvalue(), max_pages=1)
    assert page.height == 4 * PAGE_W
