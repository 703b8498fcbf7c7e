"""An uploaded PDF or picture turned into page backgrounds: PNG images ``PAGE_W`` wide (a PDF is
rendered by pdfium, pypdfium2), each with the page size that keeps its ratio.  CPU work: the caller
runs it in a thread.  A file that is neither gets BadMaterial, never a half-made board."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pypdfium2 as pdfium  # type: ignore[import-untyped]  # no stubs
from PIL import Image, UnidentifiedImageError

from whiteboard.board import PAGE_W
from whiteboard.errors import BadMaterial, TooManyPages

MAX_PIXELS = 40_000_000  # a picture larger than this is refused (a decompression bomb otherwise)
_MAX_H = 4 * PAGE_W  # a very tall page is cut to this height


@dataclass(frozen=True, slots=True)
class RenderedPage:
    png: bytes
    width: int
    height: int


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _fit(img: Image.Image) -> Image.Image:
    w, h = img.size
    height = max(1, min(_MAX_H, round(h * PAGE_W / w)))
    return img.resize((PAGE_W, height), Image.Resampling.LANCZOS)


def is_pdf(data: bytes) -> bool:
    return data[:5] == b"%PDF-"


def render_material(data: bytes, *, max_pages: int) -> list[RenderedPage]:
    """Pages of a PDF (at most ``max_pages``, else TooManyPages) or one page for a picture."""
    if is_pdf(data):
        return _render_pdf(data, max_pages)
    return [_render_picture(data)]


def _render_pdf(data: bytes, max_pages: int) -> list[RenderedPage]:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise BadMaterial(f"the PDF cannot be read ({e})") from None
    try:
        n = len(pdf)
        if n == 0:
            raise BadMaterial("the PDF has no pages")
        if n > max_pages:
            raise TooManyPages(f"the PDF has {n} pages; this board can take {max_pages} more")
        out: list[RenderedPage] = []
        for i in range(n):
            page = pdf[i]
            try:
                w, _ = page.get_size()
                img = _fit(page.render(scale=PAGE_W / max(w, 1.0)).to_pil())
            finally:
                page.close()
            out.append(RenderedPage(_png(img), img.width, img.height))
        return out
    finally:
        pdf.close()


def _render_picture(data: bytes) -> RenderedPage:
    try:
        with Image.open(io.BytesIO(data)) as src:
            if src.width * src.height > MAX_PIXELS:
                raise BadMaterial(f"the picture is too large ({src.width}x{src.height} pixels)")
            img = _fit(src.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise BadMaterial("not a PDF or a picture (PNG, JPEG, GIF, WebP)") from None
    return RenderedPage(_png(img), img.width, img.height)
