"""The OpenAPI 3.1 document, built from the route table and the msgspec models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from signaling.rest.api_route import ApiRoute
from signaling.rest.models import ErrorResponse

_PARAM = re.compile(r"{(\w+)}")
_ERROR_TEXT = {400: "invalid request", 401: "missing or bad admin token", 404: "not found",
               409: "conflict", 410: "the room has ended", 413: "body too large",
               415: "body is not Content-Type: application/json", 503: "unavailable"}


def build_openapi(routes: Sequence[ApiRoute], *, version: str, base_url: str) -> dict[str, Any]:
    models: list[type] = [ErrorResponse]
    for r in routes:
        models += [m for m in (r.body, r.response) if m is not None]
    (_, components) = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")

    def ref(model: type) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "operationId": r.handler.__name__}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _PARAM.findall(r.path)]
        params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                    "description": q.description} for q in r.query]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(r.body)}}}
        ok: dict[str, Any] = {"description": "success"}
        if r.response is not None:
            ok["content"] = {r.content_type: {"schema": ref(r.response)}}
        elif r.content_type != "application/json":
            ok["content"] = {r.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(r.status): ok}
        for code in r.error_statuses:
            responses[str(code)] = {"description": _ERROR_TEXT.get(code, "error"),
                                    "content": {"application/json": {"schema": ref(ErrorResponse)}}}
        op["responses"] = responses
        if r.admin:
            op["security"] = [{"adminToken": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "urok API", "version": version,
                 "description": "Rooms, tokens and participants of the urok lesson server. "
                                "WebSocket signalling: GET /v1/rtc?token=... (docs/protocol.md)."},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
