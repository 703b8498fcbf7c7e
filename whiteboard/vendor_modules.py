"""Yjs and lib0 from web/vendor/node_modules (npm ci, pinned in web/vendor/package-lock.json) as
browser ES modules: their imports name packages ("lib0/encoding"), which a browser resolves only
through an import map, and the page's CSP (script-src 'self') refuses inline ones.  So the few
package specifiers are rewritten to URLs under /web-lib/ as the files are served (once; kept)."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

PACKAGES = ("yjs", "lib0")
# a package import in an ES module: from 'lib0/x' | import 'lib0/x' | import('lib0/x')
_SPECIFIER = re.compile(r"""((?:\bfrom|\bimport)\s*\(?\s*)(['"])(yjs|lib0)(/[\w./-]+)?\2""")
_ENTRY = {"yjs": "yjs/dist/yjs.mjs", "lib0": "lib0/index.js"}
BASE = "/web-lib/"


def _target(package: str, sub: str | None) -> str:
    if sub is None:
        return BASE + _ENTRY[package]
    rel = sub.lstrip("/")
    return f"{BASE}{package}/{rel if rel.endswith(('.js', '.mjs')) else rel + '.js'}"


def rewrite(source: str) -> str:
    return _SPECIFIER.sub(lambda m: f"{m.group(1)}{m.group(2)}{_target(m.group(3), m.group(4))}{m.group(2)}",
                          source)


class VendorModules:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, bytes] = {}  # bounded: the files of two packages

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = self._cache.get(path)
        if body is None:
            body = self._load(path)
            self._cache[path] = body
        return web.Response(body=body, content_type="text/javascript", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=3600"})

    def _load(self, path: str) -> bytes:
        if path.split("/", 1)[0] not in PACKAGES or not path.endswith((".js", ".mjs")):
            raise web.HTTPNotFound()
        file = (self.root / path).resolve()
        if not file.is_relative_to(self.root) or not file.is_file():
            raise web.HTTPNotFound()
        return rewrite(file.read_text(encoding="utf-8")).encode("utf-8")
