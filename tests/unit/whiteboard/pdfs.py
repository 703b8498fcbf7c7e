"""Real PDFs for the whiteboard tests, made with pdfium (pypdfium2): pages each filled with a colour
in a rectangle, so a render shows which page is which."""

from __future__ import annotations

import io

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as raw  # type: ignore[import-untyped]

COLORS = [(220, 30, 30), (30, 160, 30), (30, 30, 220), (200, 160, 0)]


def colour_pdf(pages: int, size: tuple[float, float] = (595.0, 842.0)) -> bytes:
    """``pages`` A4 pages; page i has a COLORS[i % 4] rectangle over its middle third."""
    doc = pdfium.PdfDocument.new()
    w, h = size
    for i in range(pages):
        page = doc.new_page(w, h)
        rect = raw.FPDFPageObj_CreateNewRect(w / 3, h / 3, w / 3, h / 3)
        r, g, b = COLORS[i % len(COLORS)]
        raw.FPDFPageObj_SetFillColor(rect, r, g, b, 255)
        raw.FPDFPath_SetDrawMode(rect, raw.FPDF_FILLMODE_ALTERNATE, False)
        raw.FPDFPage_InsertObject(page.raw, rect)
        raw.FPDFPage_GenerateContent(page.raw)
        page.close()
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()
