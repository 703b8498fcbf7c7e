"""Errors as JSON with stable codes, admin-token checks, request counting."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from signaling.app_keys import METRICS, TOKENS
from signaling.auth import TokenError
from signaling.errors import ApiError, InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from signaling.rooms import RoomError

log = logging.getLogger("urok.http")

_ROOM_ERROR_STATUS = {"forbidden": 403, "not_found": 404, "room_full": 409, "room_ended": 410,
                      "entry_refused": 403, "invalid_settings": 400, "invalid_state": 409}


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "<unmatched>"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    try:
        response = await handler(request)
    except ApiError as e:
        response = error_response(e.status, e.code, e.message)
    except RoomError as e:
        response = error_response(_ROOM_ERROR_STATUS.get(e.code, 400), e.code, e.message)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, PayloadTooLarge.code, "request body too large")
    except web.HTTPException as e:
        if e.status < 400 or not request.path.startswith("/v1"):
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status, "http_error")
        response = error_response(e.status, code, e.reason or "error")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = error_response(500, "internal_error", "internal error")
    if isinstance(response, web.Response) and response.status >= 400:
        try:
            code = msgspec.json.decode(response.body or b"{}").get("error", {}).get("code", "")  # type: ignore[arg-type]
        except (msgspec.DecodeError, AttributeError):
            code = ""
        if code:
            metrics.errors.labels(code=code).inc()
    metrics.http_requests.labels(route=_route_label(request), status=str(response.status)).inc()
    return response


def require_admin(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an admin token: Authorization: Bearer <token>")
    try:
        request.app[TOKENS].verify_admin(token.strip())
    except TokenError as e:
        raise Unauthorized(str(e)) from None


def _is_json_media_type(request: web.Request) -> bool:
    mime = request.content_type  # aiohttp: "application/octet-stream" when the header is missing
    return (mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))) \
        and (request.charset or "utf-8").lower() in ("utf-8", "utf8")


async def read_body(request: web.Request, model: type[Any]) -> Any:
    """The JSON body decoded into ``model``; every malformed body is a 4xx with a stable code, never a 500.

    Empty body: ``{}``. A body needs ``Content-Type: application/json`` (415 ``unsupported_media_type``);
    over ``client_max_size``: 413 ``payload_too_large`` (raised by ``request.read``). Invalid UTF-8, lone
    UTF-16 surrogate escapes (they cannot be stored or sent back as UTF-8), bad syntax, nesting deeper than
    the decoder's recursion limit, and a body that does not fit ``model``: 400 ``invalid_request``.
    """
    raw = await request.read()
    if not raw.strip():
        raw = b"{}"
    elif not _is_json_media_type(request):
        raise UnsupportedMediaType("send the body as JSON: Content-Type: application/json (UTF-8)")
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError as e:
        raise InvalidRequest(str(e)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec checks UTF-8 only where it builds a str
        raise InvalidRequest("body is not valid JSON in UTF-8") from None
    except RecursionError:  # msgspec counts depth against the interpreter's recursion limit
        raise InvalidRequest("body is nested too deeply") from None


def int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"query parameter {name!r} must be between {lo} and {hi}")
    return value
