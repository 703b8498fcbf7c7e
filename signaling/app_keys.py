"""Typed keys of the aiohttp application."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from sfu import Worker
from signaling.auth import TokenService
from signaling.cluster.node import ClusterNode
from signaling.dispatcher import DispatchTable
from signaling.events import EventBus
from signaling.media.subscriber_connection import SubscriberPlacer
from signaling.metrics import Metrics
from signaling.room_manager import RoomManager
from signaling.settings import Settings
from signaling.store import RoomStore

SETTINGS = web.AppKey("settings", Settings)
TOKENS = web.AppKey("tokens", TokenService)
STORE = web.AppKey("store", RoomStore)
ROOMS = web.AppKey("rooms", RoomManager)
METRICS = web.AppKey("metrics", Metrics)
DISPATCH = web.AppKey("dispatch", DispatchTable)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
WORKER = web.AppKey("worker", Worker)
EVENTS = web.AppKey("events", EventBus)  # every room's events (webhooks, lessons subscribe)
CLUSTER = web.AppKey("cluster", ClusterNode)  # only with several workers or redis_url (signaling/cluster)
CLUSTER_HTTP = web.AppKey("cluster_http", aiohttp.ClientSession)  # relays, forwarded REST, /metrics of the others
SUBSCRIBER_PLACER: web.AppKey[SubscriberPlacer] = web.AppKey("subscriber_placer")  # a room spanning workers
