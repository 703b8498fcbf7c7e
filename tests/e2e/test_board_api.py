"""The whiteboard's REST through a real server: a host uploads a 3-page PDF (made by pdfium) and
everyone on the board learns the pages; bad, oversized and too-long files get their codes; students
may not upload or export; the export (PDF whose pages pdftoppm renders with the strokes, PNG, SVG) is
kept with the lesson's materials; pictures are served by the room's token."""

from __future__ import annotations

import asyncio
import io
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.board_peer import BoardPeer, b64
from tests.unit.whiteboard.pdfs import COLORS, colour_pdf


def board(room_id: str) -> str:
    return f"/v1/rooms/{room_id}/board"


async def upload(server: Server, room_id: str, token: str, data: bytes, name: str = "sheet.pdf",
                 ) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with server.http.post(server.base + board(room_id) + "/materials", data=form,
                                headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


def pdftoppm(pdf: bytes, where: Path) -> list[Path]:
    """The PDF's pages as PNGs (poppler, 36 dpi), in order."""
    out = where / "board.pdf"
    out.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "36", "-png", str(out), str(where / "p")], check=True, timeout=60)
    return sorted(where.glob("p-*.png"))


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 16) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


async def test_a_pdf_becomes_pages_the_export_renders_with_strokes(server: Server, tmp_path: Path) -> None:
    room_id = await server.create_room()
    host_token = server.token(room_id, "teacher", role=Role.HOST)
    host = await server.connect(host_token)
    await host.event("welcome")
    student = await server.join(room_id, "student")
    await student.event("board_state")
    status, body = await upload(server, room_id, host_token, colour_pdf(3))
    assert status == 201, body
    pages = body["pages"]
    assert len(pages) == 3 and all(p["background"] and p["width"] == 1600 for p in pages)
    ev = await student.event("board_pages")
    assert [p["page_id"] for p in ev["pages"]][1:] == [p["page_id"] for p in pages]
    # the picture behind page 2, by the student's own token (for <img>)
    s_token = server.token(room_id, "student")
    async with server.http.get(server.base + board(room_id) + f"/assets/{pages[1]['background']}?token={s_token}") as r:
        assert r.status == 200 and r.content_type == "image/png"
        img = Image.open(io.BytesIO(await r.read())).convert("RGB")
        assert close(img.getpixel((800, img.height // 2)), COLORS[1])
    # the host draws a red line on page 2 (the PDF's first page, green-less: page index 2 of 4)
    peer = BoardPeer("teacher")
    _, upd = peer.stroke(pages[1]["page_id"], [100, 100, 1500, 100], color="#d32f2f", width=12)
    assert (await host.request("board_update", update=b64(upd)))["ok"]
    # students may not export or upload
    async with server.http.get(server.base + board(room_id) + f"/export?token={s_token}") as r:
        assert r.status == 403
    status, body = await upload(server, room_id, s_token, colour_pdf(1))
    assert status == 403, body
    # the PDF export: 4 pages, page 3 (the PDF's page 2) shows its background and the stroke
    async with server.http.get(server.base + board(room_id) + "/export?format=pdf",
                               headers={"Authorization": f"Bearer {host_token}"}) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        pdf = await r.read()
        asset_id = r.headers["X-Board-Asset-Id"]
    renders = await asyncio.to_thread(pdftoppm, pdf, tmp_path)
    assert len(renders) == 4
    p3 = Image.open(renders[2]).convert("RGB")
    assert close(p3.getpixel((p3.width // 2, p3.height // 2)), COLORS[1])
    y = round(100 * p3.width / 1600)
    assert any(close(p3.getpixel((p3.width // 2, y + dy)), (0xD3, 0x2F, 0x2F), 40) for dy in (-1, 0, 1))
    # PNG and SVG of one page
    async with server.http.get(server.base + board(room_id) + f"/export?format=png&page=3&token={host_token}") as r:
        assert r.status == 200 and r.content_type == "image/png"
        png = Image.open(io.BytesIO(await r.read())).convert("RGB")
        assert close(png.getpixel((800, 100)), (0xD3, 0x2F, 0x2F), 30)
    async with server.http.get(server.base + board(room_id) + f"/export?format=svg&page=3&token={host_token}") as r:
        assert r.status == 200 and "<path" in await r.text()
    async with server.http.get(server.base + board(room_id) + f"/export?format=png&page=9&token={host_token}") as r:
        assert r.status == 404
    async with server.http.get(server.base + board(room_id) + f"/export?format=gif&token={host_token}") as r:
        assert r.status == 400
    # every export is kept with the lesson's materials
    status, kept = await server.rest("GET", board(room_id) + "/exports")
    assert status == 200 and kept["exports"][0]["asset_id"] == asset_id
    assert len(kept["exports"]) == 3


async def test_bad_large_and_too_long_files_have_their_codes(server_factory: Any) -> None:
    server: Server = await server_factory(board_max_upload_mb=1, board_max_pages=4)
    room_id = await server.create_room()
    host_token = server.token(room_id, "teacher", role=Role.HOST)
    host = await server.connect(host_token)
    await host.event("board_state")
    status, body = await upload(server, room_id, host_token, b"this is not a pdf", "x.pdf")
    assert (status, body["error"]["code"]) == (415, "board_bad_file")
    status, body = await upload(server, room_id, host_token, b"%PDF-" + b"0" * (1024 * 1024 + 10))
    assert (status, body["error"]["code"]) == (413, "board_file_too_large")
    status, body = await upload(server, room_id, host_token, colour_pdf(4))  # 1 page + 4 > 4
    assert (status, body["error"]["code"]) == (409, "board_too_many_pages")
    status, body = await upload(server, room_id, host_token, colour_pdf(3))
    assert status == 201
    r = await host.request("board_add_page")
    assert r["error"]["code"] == "board_too_many_pages"
    # nothing half-made: the board has exactly its 4 pages
    st = await host.request("board_sync")
    assert len(st["pages"]) == 4
    async with server.http.get(server.base + board(room_id) + "/export") as r:
        assert r.status == 401
