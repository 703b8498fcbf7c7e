"""/healthz, /metrics, /v1/openapi.json."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from signaling.app_keys import METRICS, ROOMS
from signaling.metrics import CONTENT_TYPE
from signaling.rest.api_route import ApiRoute
from signaling.rest.models import Health

OPENAPI_KEY = web.AppKey("openapi", dict[str, Any])


def server_version() -> str:
    try:
        return version("urok")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0+checkout"


async def healthz(request: web.Request) -> web.Response:
    counts = request.app[ROOMS].counts()
    return web.json_response({"status": "ok", "rooms": counts["rooms"], "participants": counts["participants"],
                              "version": server_version()})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


ROUTES = (
    ApiRoute("GET", "/healthz", healthz, "Liveness and counts", admin=False, response=Health, errors=()),
    ApiRoute("GET", "/metrics", metrics, "Prometheus metrics", admin=False, errors=(),
             content_type="text/plain"),
    ApiRoute("GET", "/v1/openapi.json", openapi, "This document", admin=False, errors=()),
)
