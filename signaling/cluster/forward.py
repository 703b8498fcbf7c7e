"""REST and /metrics on any worker: a room's REST goes to the worker serving the room (its live
state is there), forwarded over HTTP to its private port; /metrics sums every live worker's.

Requests another worker forwarded carry FORWARD_HEADER and are answered here as they are (no second
hop).  A room nobody serves is answered here from the database (ClusterRooms reads it fresh)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.parser import text_string_to_metric_families

from signaling.app_keys import CLUSTER, CLUSTER_HTTP, METRICS
from signaling.cluster.node import FORWARD_HEADER
from signaling.metrics import CONTENT_TYPE

log = logging.getLogger("urok.cluster")

SERVED_BY_HEADER = "X-Urok-Served-By"
WEBHOOKS_CHANNEL = "webhooks"  # a registration was made or deleted on some worker
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"}
_FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=30.0, sock_connect=2.0, sock_read=10.0)  # a hung owner: 503
_METRICS_TIMEOUT = aiohttp.ClientTimeout(total=3.0, sock_connect=1.0)


@web.middleware
async def cluster_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.headers.get(FORWARD_HEADER) is not None:
        return await handler(request)
    if request.path == "/metrics" and request.method == "GET":
        return await aggregated_metrics(request)
    room_id = request.match_info.get("room_id")
    if room_id:
        target = await request.app[CLUSTER].owner_url(room_id)
        if target is not None:
            return await forward(request, target)
    response = await handler(request)
    if request.method != "GET" and request.path.startswith("/v1/webhooks") and response.status < 300:
        # the other workers' rooms deliver to this registration from now on, not from their next
        # periodic refresh (10 s): they read the registrations again at once (setup.py)
        await request.app[CLUSTER].publish(WEBHOOKS_CHANNEL, {"path": request.path})
    return response


def may_forward(request: web.Request) -> bool:
    """Whether a request could go to another worker: this is one of several, and it was not
    forwarded here already (no second hop).  False with one process: nothing more to look up."""
    return CLUSTER in request.app and request.headers.get(FORWARD_HEADER) is None


async def forward_to_owner(request: web.Request, room_id: str) -> web.StreamResponse | None:
    """For a route without {room_id} in its path whose handler finds the room first (a lesson's
    roster: /v1/lessons/{lesson_id}/roster; BigBlueButton's end): the request forwarded to the worker
    serving ``room_id`` when that is another one, else None (one process, a request already
    forwarded, a room served here or by nobody: answer here)."""
    if not may_forward(request):
        return None
    target = await request.app[CLUSTER].owner_url(room_id)
    return None if target is None else await forward(request, target)


async def forward(request: web.Request, target: str) -> web.StreamResponse:
    """The same request to the owner; its answer back as it is."""
    node = request.app[CLUSTER]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers[FORWARD_HEADER] = node.worker_id
    body = await request.read()
    http = request.app[CLUSTER_HTTP]
    try:
        async with http.request(request.method, target + str(request.rel_url), headers=headers, data=body or None,
                                timeout=_FORWARD_TIMEOUT, allow_redirects=False) as r:
            payload = await r.read()
            out = {k: v for k, v in r.headers.items() if k.lower() not in _HOP_BY_HOP}
            out[SERVED_BY_HEADER] = target  # which worker answered (operators, tests)
            return web.Response(status=r.status, body=payload, headers=out)
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        log.warning("forwarding %s %s to %s failed: %s", request.method, request.path, target, e)
        return web.json_response({"error": {"code": "service_unavailable",
                                            "message": "the worker serving this room is not reachable; try again"}},
                                 status=503, headers={"Retry-After": "2"})


async def _scrape(http: aiohttp.ClientSession, url: str, worker_id: str) -> str:
    try:
        async with http.get(url + "/metrics", headers={FORWARD_HEADER: worker_id}, timeout=_METRICS_TIMEOUT) as r:
            return await r.text() if r.status == 200 else ""
    except (TimeoutError, aiohttp.ClientError, OSError):
        return ""  # a worker that just died: its counters are missing until its successor counts


async def aggregated_metrics(request: web.Request) -> web.Response:
    node = request.app[CLUSTER]
    http = request.app[CLUSTER_HTTP]
    local = request.app[METRICS].render().decode()
    others = await asyncio.gather(*(_scrape(http, w.url, node.worker_id) for w in await node.others()))
    text = merge_metrics([local, *(o for o in others if o)])
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _combine(name: str, kind: str, old: float, new: float) -> float:
    """Counters and counts add up across workers; a creation time is the earliest; the up flag,
    the worst loop lag and the longest pause are the largest of any worker."""
    if name.endswith("_created"):
        return min(old, new)
    if kind == "gauge" and (name == "urok_up" or any(w in name for w in ("lag", "pause", "max"))):
        return max(old, new)
    return old + new


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def merge_metrics(texts: Iterable[str]) -> str:
    """Several Prometheus text expositions as one (same families, samples combined)."""
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            _, _, samples = families.setdefault(fam.name, (fam.type, fam.documentation, {}))
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                samples[key] = _combine(s.name, fam.type, samples[key], s.value) if key in samples else s.value
    lines: list[str] = []
    for name, (kind, doc, samples) in families.items():
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        for (sname, labels), value in samples.items():
            lab = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sname}{{{lab}}} {_number(value)}" if lab else f"{sname} {_number(value)}")
    return "\n".join(lines) + "\n"

