"""The application factory: settings in, a ready aiohttp app out (lifecycle in cleanup_ctx)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from media import audio_handlers
from media.feature import setup_audio
from recordings import recording_handlers, recordings_api
from recordings.feature import setup_recordings
from sfu import Worker, WorkerSettings
from signaling.app_keys import (
    CLOCK,
    DISPATCH,
    EVENTS,
    METRICS,
    ROOMS,
    SETTINGS,
    STORE,
    SUBSCRIBER_PLACER,
    TOKENS,
    WORKER,
)
from signaling.auth import TokenService
from signaling.bbb.feature import setup_bbb
from signaling.cluster.directory import RoomDirectory
from signaling.cluster.node import ClusterConfig
from signaling.cluster.rooms import ClusterRooms
from signaling.cluster.setup import setup_cluster
from signaling.dispatcher import DispatchTable, Route
from signaling.events import EventBus
from signaling.handlers import (
    attention_handlers,
    breakout_handlers,
    chat_handlers,
    hands_handlers,
    media_handlers,
    moderation_handlers,
    schedule_handlers,
    session_handlers,
)
from signaling.lessons.feature import setup_lessons
from signaling.loop_monitor import LoopMonitor
from signaling.media import MediaFeature
from signaling.media.media_feature import ForwardingPolicy
from signaling.metrics import Metrics
from signaling.rest import breakouts_api, lessons_api, ops_api, participants_api, records_api, rooms_api, webhooks_api
from signaling.rest.api_route import ApiRoute
from signaling.rest.middleware import error_middleware
from signaling.rest.openapi import build_openapi
from signaling.rest.ops_api import OPENAPI_KEY, server_version
from signaling.rest.security_headers import add_security_headers
from signaling.rest.web_api import setup_web
from signaling.room_manager import RoomManager
from signaling.rooms.breakout_feature import setup_breakouts
from signaling.settings import Settings
from signaling.store import RoomStore
from signaling.store import factory as store_factory
from signaling.webhooks.feature import setup_webhooks
from signaling.ws import join_gate
from signaling.ws.rtc_endpoint import rtc_handler
from transcription import transcription_handlers, transcripts_api
from transcription.feature import setup_transcription
from whiteboard import board_api, board_handlers
from whiteboard.feature import setup_whiteboard

REST_ROUTES: tuple[ApiRoute, ...] = (*ops_api.ROUTES, *rooms_api.ROUTES, *participants_api.ROUTES,
                                     *lessons_api.ROUTES, *webhooks_api.ROUTES, *records_api.ROUTES,
                                     *recordings_api.ROUTES, *transcripts_api.ROUTES, *breakouts_api.ROUTES,
                                     *board_api.ROUTES)
# Features that attach to the app and the room events (signaling/events.py): each sets up its app
# keys, subscribes to app[EVENTS] and adds its lifecycle after the store's (so the store is open
# before them and closed after them).  Order: lessons emit events the webhooks deliver.
FEATURE_SETUPS: tuple[Callable[[web.Application], None], ...] = (
    setup_lessons, setup_webhooks, setup_bbb, setup_recordings, setup_audio, setup_transcription, setup_whiteboard,
    setup_breakouts)
WS_PATH = "/v1/rtc"
_AUTO_ON_OFF: Mapping[str, bool | None] = {"auto": None, "on": True, "off": False}


def dispatch_table(*route_sets: Mapping[str, Route[Any]]) -> DispatchTable:
    merged: dict[str, Route[Any]] = {}
    for routes in route_sets:
        for name, route in routes.items():
            if name in merged:
                raise ValueError(f"two handlers for message type {name!r}")
            merged[name] = route
    return DispatchTable(merged)


def media_counters(worker: Worker) -> dict[str, dict[str, float]]:
    """The media plane's plain counters as Prometheus counter series."""
    st = worker.stats
    out: dict[str, dict[str, float]] = {
        name: {"": float(getattr(st, name))}
        for name in ("rtp_in", "rtp_out", "rtp_in_bytes", "rtp_out_bytes", "rtcp_in", "rtcp_out", "nack_received",
                     "retransmitted", "retransmitted_bytes", "retransmit_missed", "nack_sent", "pli_received",
                     "pli_sent", "keyframes", "remb_sent", "sr_received", "sr_sent", "rr_received")
    }
    out["rtp_dropped"] = {f"reason={k}": float(v) for k, v in st.rtp_dropped.items()}
    out["rtcp_dropped"] = {f"reason={k}": float(v) for k, v in st.rtcp_dropped.items()}
    out["nack_dropped"] = {f"rule={k}": float(v) for k, v in st.nack_dropped.items()}
    if worker.mux is not None:
        ms = worker.mux.stats
        out["udp_stun_requests"] = {"": float(ms.stun_requests)}
        for name in ("checks_sent", "paths_verified", "paths_expired"):
            out[f"udp_{name}"] = {"": float(getattr(ms, name))}
        out["udp_datagrams_dropped"] = {f"reason={k}": float(v) for k, v in ms.dropped.items()}
    return out


def make_store(settings: Settings) -> RoomStore:
    return store_factory.make_store(settings)


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time,
               extra_routes: Iterable[Mapping[str, Route[Any]]] = (), cluster: ClusterConfig | None = None,
               directory: RoomDirectory | None = None) -> web.Application:
    """``cluster``: this process is one worker of several (signaling/cluster); ``directory``: the
    one it shares with the others (default: Redis at redis_url, else one in memory: tests)."""
    settings.check_can_serve()
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app.on_response_prepare.append(add_security_headers)  # every response, errors and static files too
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[TOKENS] = TokenService(settings.api_key, settings.api_secret, max_ttl_s=settings.token_max_ttl_s)
    app[METRICS] = Metrics()
    store = make_store(settings)
    app[STORE] = store
    bus = app[EVENTS] = EventBus()
    rooms_type = RoomManager if cluster is None else ClusterRooms  # one worker of several: signaling/cluster
    rooms = rooms_type(store, clock=clock, ice_servers=settings.ice_servers, max_rooms=settings.max_rooms,
                       reconnect_window_s=settings.reconnect_window_s, events=bus)
    app[ROOMS] = rooms
    app[DISPATCH] = dispatch_table(session_handlers.ROUTES, media_handlers.ROUTES, moderation_handlers.ROUTES,
                                   hands_handlers.ROUTES, chat_handlers.ROUTES, attention_handlers.ROUTES,
                                   schedule_handlers.ROUTES, breakout_handlers.ROUTES, recording_handlers.ROUTES,
                                   audio_handlers.ROUTES, transcription_handlers.ROUTES, board_handlers.ROUTES,
                                   *extra_routes)
    app[METRICS].add_gauges(rooms.counts, "urok", "served by this process")
    app[METRICS].add_counters(store.counters, "urok_store")  # writes and failed writes (retried)
    monitor = LoopMonitor()  # loop lag and garbage-collector pauses (signaling/loop_monitor.py)
    app[METRICS].add_counters(monitor.counters, "urok")
    app[METRICS].add_gauges(monitor.gauges, "urok", "the event loop's worst lag so far and the longest collector pause")
    join_gate.install(app, settings, monitor)  # joins wait their turn when this process is busy
    worker = Worker(WorkerSettings(
        ice_servers=settings.ice_servers, host_addresses=settings.ice_host_addresses,
        udp_port=settings.rtc_udp_port if settings.rtc_single_port else None,
        udp_listen_address=settings.rtc_listen, announced_addresses=settings.rtc_host_addresses,
        ice_consent_timeout=settings.rtc_ice_consent_timeout_s,
        retransmit_rate=settings.rtc_retransmit_rate, retransmit_burst=settings.rtc_retransmit_burst,
        batch_send=_AUTO_ON_OFF[settings.rtc_batch_send], fast_path=_AUTO_ON_OFF[settings.rtc_fast_path]))
    app[WORKER] = worker
    policy = ForwardingPolicy(large_room_threshold=settings.large_room_threshold, last_n_audio=settings.last_n_audio)
    # the placer is the cluster's (setup_cluster, below): read when each room opens
    rooms.feature_factories.append(lambda live: MediaFeature(live, worker, policy, placer=app.get(SUBSCRIBER_PLACER)))
    app[METRICS].add_counters(lambda: media_counters(worker), "urok_media")
    app[METRICS].add_gauges(worker.gauges, "urok_media", "the media plane now")

    for r in REST_ROUTES:
        app.router.add_route(r.method, r.path, r.handler, name=r.handler.__name__)
    app.router.add_get(WS_PATH, rtc_handler, name="rtc")
    app[OPENAPI_KEY] = build_openapi(REST_ROUTES, version=server_version(), base_url=settings.base_url)
    setup_web(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()  # connects and migrates (SQL); a newer schema or no database stops the start
        await worker.start()
        monitor.start()
        yield
        await monitor.close()
        await rooms.shutdown()
        await worker.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    if cluster is not None:  # after the store's lifecycle: open before the node starts, closed after it
        setup_cluster(app, cluster, directory)
    for setup in FEATURE_SETUPS:
        setup(app)
    return app
