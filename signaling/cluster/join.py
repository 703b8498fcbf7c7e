"""The cluster's step in a WebSocket join (signaling/ws/rtc_endpoint.py): after the token is
checked, a join for a room another worker serves is relayed there (relay.py); one for a room
nobody serves is placed (here or on the least-loaded worker: ClusterNode.place)."""

from __future__ import annotations

import logging

from aiohttp import web

from signaling.app_keys import CLUSTER, CLUSTER_HTTP, METRICS
from signaling.cluster.node import RELAY_HEADER, Unplaceable
from signaling.cluster.relay import TRY_AGAIN, relay

log = logging.getLogger("urok.cluster")


async def route_join(request: web.Request, ws: web.WebSocketResponse, room_id: str) -> bool:
    """True when the join was handled here (relayed, or refused with 1013: try again); False when
    this worker serves the room and the join goes on as in a single process."""
    node = request.app.get(CLUSTER)
    if node is None:
        return False
    try:
        hops = int(request.headers.get(RELAY_HEADER, "0") or 0)
    except ValueError:
        hops = 0
    try:
        target = await node.place(room_id, hops=hops)
    except Unplaceable as e:
        request.app[METRICS].ws_refused.labels(code=str(TRY_AGAIN)).inc()
        await ws.send_json({"event": "error", "error": {"code": "try_again", "message": str(e)}})
        await ws.close(code=TRY_AGAIN, message=str(e).encode()[:120])
        return True
    if target is None:
        return False
    await relay(request, ws, target, request.app[CLUSTER_HTTP], hops=hops, path=request.path)
    return True
