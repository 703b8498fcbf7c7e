"""REST for boards: materials upload, export (PNG, SVG, PDF), the pictures behind pages.

Who: an admin token, or the room's access token (``Authorization: Bearer`` or ``?token=`` for
``<img>``): any participant reads pictures; a host or co-host uploads and exports."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from signaling.app_keys import CLOCK, ROOMS, SETTINGS, TOKENS
from signaling.auth import TokenError
from signaling.errors import ApiError, Forbidden, InvalidRequest, NotFound, Unauthorized
from signaling.rest.api_route import ApiRoute, QueryParam
from whiteboard.board import Board, BoardKey, Page, new_id
from whiteboard.board_feature import BOARD_KEY, BoardFeature
from whiteboard.board_render import page_svg, pdf_bytes, png_bytes
from whiteboard.board_store import Asset
from whiteboard.errors import BoardError, MaterialTooLarge
from whiteboard.feature import BOARDS
from whiteboard.materials import render_material

BOARD = "/v1/rooms/{room_id}/board"
_CHUNK = 64 * 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


def _api_error(e: BoardError) -> ApiError:
    return ApiError(e.message, code=e.code, status=e.status)


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query.get("token", "")


def _caller(request: web.Request, room_id: str) -> bool:
    """Authenticate; True for a host, co-host or admin, False for another participant of the room."""
    token = _token(request)
    if not token:
        raise Unauthorized("send a token: Authorization: Bearer <token> (or ?token=)")
    tokens = request.app[TOKENS]
    try:
        tokens.verify_admin(token)
        return True
    except TokenError:
        pass
    try:
        grant = tokens.verify_access(token, room_id=room_id)
    except TokenError as e:
        raise Unauthorized(str(e)) from None
    live = request.app[ROOMS].live.get(room_id)
    p = live.room.by_identity(grant.identity) if live is not None else None
    return (p.role if p is not None else grant.role).is_moderator


def _moderator(request: web.Request, room_id: str) -> None:
    if not _caller(request, room_id):
        raise Forbidden("only a host or co-host may do this")


def _key(request: web.Request) -> BoardKey:
    return BoardKey(request.match_info["room_id"], request.query.get("group_id") or None)


async def _read_file(request: web.Request, limit: int) -> tuple[str, bytes]:
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise _api_error(MaterialTooLarge(f"the file may have at most {limit // (1024 * 1024)} MB"))
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise InvalidRequest("send multipart/form-data with a field 'file'") from None
    while True:
        part = await reader.next()
        if part is None:
            raise InvalidRequest("no field 'file' in the form")
        if isinstance(part, BodyPartReader) and part.name == "file":
            break
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise _api_error(MaterialTooLarge(f"the file may have at most {limit // (1024 * 1024)} MB"))
    return part.filename or "file", bytes(data)


async def upload_material(request: web.Request) -> web.Response:
    key = _key(request)
    _moderator(request, key.room_id)
    app = request.app
    service = app[BOARDS]
    name, data = await _read_file(request, app[SETTINGS].board_max_upload_mb * 1024 * 1024)
    live = app[ROOMS].live.get(key.room_id)
    if live is None:
        raise NotFound("the room is not running: open the lesson first")
    board = await service.board(key)
    room_left = board.limits.max_pages - len(board.meta.pages)
    try:
        rendered = await asyncio.to_thread(render_material, data, max_pages=max(0, room_left))
    except BoardError as e:
        raise _api_error(e) from None
    now = app[CLOCK]()
    pages: list[Page] = []
    for r in rendered:
        asset = Asset(new_id("a"), key.room_id, "background", name[:200], "image/png", r.png, now)
        await service.add_asset(asset)
        pages.append(Page(new_id("p"), asset.asset_id, r.width, r.height))
    try:
        board.add_pages(pages)
    except BoardError as e:
        raise _api_error(e) from None
    feature = live.extensions.get(BOARD_KEY)
    if isinstance(feature, BoardFeature):
        feature.pages_added(board)
    return _json({"pages": [p.to_json() for p in pages]}, status=201)


async def get_asset(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["room_id"]
    _caller(request, room_id)
    asset = await request.app[BOARDS].store.get_asset(request.match_info["asset_id"])
    if asset is None or asset.room_id != room_id:
        raise NotFound("no such picture on this room's boards")
    disposition = "attachment" if asset.kind == "export" else "inline"
    return web.Response(body=asset.data, content_type=asset.content_type, headers={
        "Cache-Control": "private, max-age=86400",
        "Content-Disposition": f'{disposition}; filename="{asset.name}"'})


async def _svg(service: Any, board: Board, page: Page) -> str:
    href = None
    if page.background is not None:
        asset = await service.store.get_asset(page.background)
        if asset is not None:
            href = f"data:{asset.content_type};base64," + base64.b64encode(asset.data).decode()
    return page_svg(page, board.elements_json(page.page_id), href)


async def export_board(request: web.Request) -> web.Response:
    key = _key(request)
    _moderator(request, key.room_id)
    fmt = request.query.get("format", "pdf")
    if fmt not in ("pdf", "png", "svg"):
        raise InvalidRequest("format: pdf, png or svg")
    service = request.app[BOARDS]
    board = await service.snapshot_board(key)
    pages = board.meta.pages
    if fmt == "pdf":
        images = await service.render_pages(board, pages)
        body = await asyncio.to_thread(pdf_bytes, images)
        ctype, name = "application/pdf", "board.pdf"
    else:
        try:
            n = int(request.query.get("page", "1"))
        except ValueError:
            raise InvalidRequest("page: a number from 1") from None
        if not 1 <= n <= len(pages):
            raise NotFound(f"no page {n}: the board has {len(pages)}")
        page = pages[n - 1]
        if fmt == "png":
            body = await asyncio.to_thread(png_bytes, (await service.render_pages(board, [page]))[0])
            ctype, name = "image/png", f"board-page-{n}.png"
        else:
            body = (await _svg(service, board, page)).encode("utf-8")
            ctype, name = "image/svg+xml", f"board-page-{n}.svg"
    # every export is kept with the lesson's materials (board_assets, kind export)
    asset = Asset(new_id("x"), key.room_id, "export", name, ctype, body, request.app[CLOCK]())
    await service.add_asset(asset)
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Board-Asset-Id": asset.asset_id})


async def list_exports(request: web.Request) -> web.Response:
    room_id = request.match_info["room_id"]
    _moderator(request, room_id)
    assets = await request.app[BOARDS].store.list_assets(room_id, "export")
    return _json({"exports": [{"asset_id": a.asset_id, "name": a.name, "content_type": a.content_type,
                               "bytes": len(a.data), "created_at": a.created_at} for a in assets]})


GROUP = QueryParam("group_id", {"type": "string"}, "a breakout group's board (default: the room's own)")
TOKEN = QueryParam("token", {"type": "string"}, "the room's access token, where no header can be sent")
ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("POST", BOARD + "/materials", upload_material, "Upload a PDF or a picture (multipart field "
             "'file'): its pages become board pages (host, co-host or admin)", admin=False, status=201,
             query=(GROUP, TOKEN), errors=(400, 401, 403, 404, 409, 413, 415), content_type="multipart/form-data"),
    ApiRoute("GET", BOARD + "/export", export_board, "Export the board: all pages as PDF, or one page as PNG or "
             "SVG; kept with the lesson's materials (host, co-host or admin)", admin=False,
             query=(QueryParam("format", {"enum": ["pdf", "png", "svg"]}, "pdf (default), png or svg"),
                    QueryParam("page", {"type": "integer", "minimum": 1}, "the page (png, svg; default 1)"),
                    GROUP, TOKEN), errors=(400, 401, 403, 404)),
    ApiRoute("GET", BOARD + "/exports", list_exports, "Exports kept for this room (host, co-host or admin)",
             admin=False, query=(TOKEN,), errors=(401, 403)),
    ApiRoute("GET", BOARD + "/assets/{asset_id}", get_asset, "A page's picture or a kept export (any participant)",
             admin=False, query=(TOKEN,), errors=(401, 404)),
)
