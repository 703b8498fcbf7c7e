"""REST /v1/webhooks: registrations, deliveries, the dead-letter list.  Thin: parse, call, map errors."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from signaling.errors import ApiError
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import int_query, read_body, require_admin
from signaling.webhooks.feature import WEBHOOKS
from signaling.webhooks.registration import InvalidWebhook
from signaling.webhooks.schedule import STATES
from signaling.webhooks.service import DeliveryPending, UnknownDelivery, UnknownWebhook


class InvalidWebhookError(ApiError):
    code, status = "invalid_webhook", 400


class WebhookNotFound(ApiError):
    code, status = "webhook_not_found", 404


class DeliveryNotFound(ApiError):
    code, status = "delivery_not_found", 404


class DeliveryStillPending(ApiError):
    code, status = "delivery_pending", 409


# --- shapes for the OpenAPI document (the body is checked field by field: invalid_webhook names it)
class WebhookIn(msgspec.Struct, kw_only=True):
    url: str
    events: list[str] | None = None
    room_id: str | None = None
    lesson_id: str | None = None
    secret: str | None = None


class WebhookOut(msgspec.Struct, kw_only=True):
    webhook_id: str
    url: str
    events: list[str]
    room_id: str | None
    lesson_id: str | None
    created_at: float
    secret: str


class WebhookList(msgspec.Struct, kw_only=True):
    webhooks: list[WebhookOut]


class DeliveryOut(msgspec.Struct, kw_only=True):
    delivery_id: str
    webhook_id: str
    room_id: str
    event_id: str
    event: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float | None
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    finished_at: float | None


class DeliveryPage(msgspec.Struct, kw_only=True):
    deliveries: list[DeliveryOut]
    total: int
    offset: int
    limit: int


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


def _webhook_id(request: web.Request) -> str:
    return request.match_info["webhook_id"]


async def create_webhook(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_body(request, dict[str, Any])
    try:
        w = await request.app[WEBHOOKS].create(body)
    except InvalidWebhook as e:
        raise InvalidWebhookError(e.message) from None
    return _json(w.to_json(show_secret=True), status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    require_admin(request)
    return _json({"webhooks": [w.to_json() for w in request.app[WEBHOOKS].registrations()]})


async def get_webhook(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        w = request.app[WEBHOOKS].get(_webhook_id(request))
    except UnknownWebhook:
        raise WebhookNotFound("no such webhook") from None
    return _json(w.to_json())


async def delete_webhook(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        await request.app[WEBHOOKS].delete(_webhook_id(request))
    except UnknownWebhook:
        raise WebhookNotFound("no such webhook") from None
    return web.Response(status=204)


async def list_deliveries(request: web.Request) -> web.Response:
    require_admin(request)
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise InvalidWebhookError(f"state: one of {', '.join(STATES)}")
    offset = int_query(request, "offset", 0, 0, 10**9)
    limit = int_query(request, "limit", 100, 1, 500)
    try:
        rows, total = await request.app[WEBHOOKS].deliveries(_webhook_id(request), state=state, offset=offset,
                                                              limit=limit)
    except UnknownWebhook:
        raise WebhookNotFound("no such webhook") from None
    return _json({"deliveries": [d.to_json() for d in rows], "total": total, "offset": offset, "limit": limit})


async def retry_delivery(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        d = await request.app[WEBHOOKS].retry(_webhook_id(request), request.match_info["delivery_id"])
    except UnknownWebhook:
        raise WebhookNotFound("no such webhook") from None
    except UnknownDelivery:
        raise DeliveryNotFound("no such delivery for this webhook") from None
    except DeliveryPending:
        raise DeliveryStillPending("this delivery is pending: it is being retried already") from None
    return _json(d.to_json(), status=202)


_ID = "/v1/webhooks/{webhook_id}"
ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("POST", "/v1/webhooks", create_webhook,
             "Register a webhook (the secret is shown in this answer only)", body=WebhookIn, response=WebhookOut,
             status=201, errors=(400, 401)),
    ApiRoute("GET", "/v1/webhooks", list_webhooks, "The webhooks, oldest first (secrets masked)",
             response=WebhookList, errors=(401,)),
    ApiRoute("GET", _ID, get_webhook, "One webhook (secret masked)", response=WebhookOut, errors=(401, 404)),
    ApiRoute("DELETE", _ID, delete_webhook, "Delete a webhook and its deliveries", status=204, errors=(401, 404)),
    ApiRoute("GET", _ID + "/deliveries", list_deliveries,
             "A webhook's deliveries, oldest first; state=dead is the dead-letter list", response=DeliveryPage,
             query=(QueryParam("state", {"type": "string", "enum": list(STATES)}, "only this state"),
                    QueryParam("offset", {"type": "integer", "minimum": 0}, "first item"),
                    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "items per page (100)"))),
    ApiRoute("POST", _ID + "/deliveries/{delivery_id}/retry", retry_delivery,
             "Send a dead (or delivered) delivery again, at the end of its room's queue", response=DeliveryOut,
             status=202, errors=(401, 404, 409)),
)
