"""Wiring one worker into the cluster: its directory, node, middleware and lifecycle (create_app
calls setup_cluster when the process is a cluster worker), and the per-worker settings."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from signaling.app_keys import CLUSTER, CLUSTER_HTTP, ROOMS, SETTINGS, STORE, SUBSCRIBER_PLACER, TOKENS, WORKER
from signaling.cluster.directory import DirectoryUnavailable, RoomDirectory
from signaling.cluster.edge_messages import EDGE_PATH
from signaling.cluster.edge_room import EdgeService
from signaling.cluster.forward import WEBHOOKS_CHANNEL, cluster_middleware
from signaling.cluster.memory_directory import MemoryDirectory
from signaling.cluster.node import ClusterConfig, ClusterNode
from signaling.cluster.rooms import ClusterRooms
from signaling.cluster.span import SpanPlacer
from signaling.settings import Settings


def node_id() -> str:
    """This machine's `urok serve`: the host name and the PID of the process that starts the workers."""
    return f"{socket.gethostname()}-{os.getpid()}"


def private_host(settings: Settings) -> str:
    """Where the other workers reach this one's private port: cluster_address, else the listening
    address, else (a wildcard one) loopback: right on one machine; several machines listening on
    every interface set cluster_address to the address the others reach this machine at."""
    if settings.cluster_address:
        return settings.cluster_address
    return "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host


def worker_config(settings: Settings, index: int, node: str) -> ClusterConfig:
    return ClusterConfig(index=index, node_id=node, private_host=private_host(settings),
                         private_port=settings.port + 1 + index)


def worker_settings(settings: Settings, index: int) -> Settings:
    """Each worker's media plane on its own UDP port (rtc_udp_port + index; 0 stays any free port)."""
    if not settings.rtc_udp_port:
        return settings
    return dataclasses.replace(settings, rtc_udp_port=settings.rtc_udp_port + index)


def make_directory(settings: Settings) -> RoomDirectory:
    if settings.redis_url:
        from signaling.cluster.redis_directory import RedisDirectory

        return RedisDirectory(settings.redis_url)
    return MemoryDirectory()


def setup_cluster(app: web.Application, config: ClusterConfig, directory: RoomDirectory | None = None) -> None:
    rooms = app[ROOMS]
    assert isinstance(rooms, ClusterRooms), "a cluster worker's rooms are ClusterRooms (create_app)"
    # rooms owned elsewhere place subscribers here (a room spanning workers): they count as load
    edges = EdgeService(app[WORKER], app[TOKENS], config.private_host)
    app.router.add_get(EDGE_PATH, edges.handle, name="cluster_edge")

    def counts() -> dict[str, Any]:
        here = rooms.counts()
        return {**here, "participants": here["participants"] + edges.subscribers}

    node = ClusterNode(directory if directory is not None else make_directory(app[SETTINGS]), config,
                       counts=counts, is_live=lambda room_id: room_id in rooms.live)
    rooms.attach(node)
    app[CLUSTER] = node
    # outermost: a forwarded request is counted (urok_http_requests_total) by the worker that
    # answers it, not twice in the summed /metrics; what is answered here goes through the rest
    app.middlewares.insert(0, cluster_middleware)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[CLUSTER_HTTP] = aiohttp.ClientSession()
        placer = SpanPlacer(node, app[WORKER], app[CLUSTER_HTTP], app[TOKENS],
                            span_after=app[SETTINGS].span_after, listen_ip=config.private_host)
        app[SUBSCRIBER_PLACER] = placer
        await node.start()
        from signaling.webhooks.feature import WEBHOOKS

        async def webhooks_changed(event: dict[str, Any]) -> None:
            if WEBHOOKS in app:
                await app[WEBHOOKS].outbox.refresh()

        with contextlib.suppress(DirectoryUnavailable, TimeoutError):  # the 10 s refresh still runs
            await node.on_others(WEBHOOKS_CHANNEL, webhooks_changed)
        with contextlib.suppress(DirectoryUnavailable, TimeoutError):
            await rooms.listen()
        yield
        # the rooms stop and are written before their leases go (the next owner reads them)
        await rooms.shutdown()
        placer.close()
        await app[STORE].flush()
        await node.close()
        await app[CLUSTER_HTTP].close()

    app.cleanup_ctx.append(lifecycle)

