"""The browser client: /, /join/{room_id}, /web/* (static files from web/; nothing from the internet),
and the e-journal's pages: /lesson/{lesson_id} (a per-person lesson link: enters the occurrence open
now, or says when it starts) and /teacher (a teacher's schedule and the form to plan a lesson).

The client is plain ES modules and CSS (docs/client.md). Its files are revalidated on every load
(``Cache-Control: no-cache``: a 304 when unchanged) so a server upgrade never mixes old and new modules.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from signaling.app_keys import SETTINGS

WEB_ROOT = web.AppKey("web_root", Path)
NO_STORE = {"Cache-Control": "no-store"}


def default_web_root() -> Path:
    return Path(__file__).resolve().parents[2] / "web"


async def join_page(request: web.Request) -> web.FileResponse:
    # the page itself reads ?token= and shows a clear message when it is missing
    return web.FileResponse(request.app[WEB_ROOT] / "index.html", headers=NO_STORE)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "index.html", headers=NO_STORE)


async def lesson_page(request: web.Request) -> web.FileResponse:
    # the token is in the fragment (#token=...): it never reaches the server or its logs
    return web.FileResponse(request.app[WEB_ROOT] / "lesson.html", headers=NO_STORE)


async def teacher_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "teacher.html", headers=NO_STORE)


async def _revalidate_client_files(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/web/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"


def setup_web(app: web.Application) -> None:
    root = Path(app[SETTINGS].web_root) if app[SETTINGS].web_root else default_web_root()
    app[WEB_ROOT] = root
    app.router.add_get("/", index_page)
    app.router.add_get("/join/{room_id}", join_page)
    app.router.add_get("/lesson/{lesson_id}", lesson_page)
    app.router.add_get("/teacher", teacher_page)
    if root.is_dir():
        app.router.add_static("/web/", root, follow_symlinks=False, append_version=False)
        app.on_response_prepare.append(_revalidate_client_files)
