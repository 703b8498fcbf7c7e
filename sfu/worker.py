"""Worker: the forwarding core of one event loop (one process); owns the routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from . import aiortc_compat, ice_lite
from .errors import ClosedError, DuplicateIdError
from .fast_path import fast_path_available
from .router import Router
from .settings import IceServer, WorkerContext, WorkerSettings
from .stats import WorkerStats
from .udp_mux import UdpMux

logger = logging.getLogger(__name__)


class Worker:
    """One per event loop. ``close()`` is async (it awaits aiortc's shutdown of every transport)."""

    def __init__(self, settings: WorkerSettings | None = None) -> None:
        self.settings = settings or WorkerSettings()
        self.stats = WorkerStats()
        if self.settings.host_addresses is not None:
            aiortc_compat.set_host_addresses(self.settings.host_addresses)
        aiortc_compat.install_parked_receivers()
        self._routers: dict[str, Router] = {}
        self._closed = False
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.mux: UdpMux | None = None
        self.fast_path = self.settings.fast_path is not False and fast_path_available()
        if self.settings.fast_path and not self.fast_path:
            logger.warning("worker: fast_path requested but sfu._fastpath is not built; using the Python fan-out")
        elif self.settings.fast_path and self.settings.udp_port is None:
            logger.warning("worker: fast_path serves the shared UDP port only (udp_port is not set): "
                           "transports with sockets of their own use the Python fan-out")
        # what routers and their transports get of the worker (they never import this module)
        self._context = WorkerContext(settings=self.settings, stats=self.stats, fast_path=self.fast_path,
                                      mux=self._get_mux, spawn=self._spawn, ensure_ticker=self._ensure_ticker)

    async def start(self) -> None:
        """Bind the shared ICE-lite UDP port when ``settings.udp_port`` is set (idempotent)."""
        if self.settings.udp_port is None or self.mux is not None:
            return
        announced = self.settings.announced_addresses or self.settings.host_addresses
        if not announced:
            announced = tuple(aiortc_compat.default_host_addresses())
        mux = UdpMux(self.settings.udp_listen_address, self.settings.udp_port, tuple(announced),
                     batch_send=self.settings.batch_send, consent_timeout=self.settings.ice_consent_timeout)
        await mux.start()
        ice_lite.install()
        self.mux = mux
        self._ensure_ticker()

    @property
    def udp_port(self) -> int | None:
        """The shared UDP port once bound, else None."""
        return self.mux.port if self.mux is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    def gauges(self) -> dict[str, float]:
        """What the worker holds now: transports, producers, consumers, and how many consumers the
        compiled fan-out serves (``consumers_fast``; read at scrape time, O(producers))."""
        fast = 0
        for router in self._routers.values():
            for producer in router.producers:
                fast += sum(len(fan) for fan in producer._fans())
        st = self.stats
        return {"transports": st.transports, "producers": st.producers, "consumers": st.consumers,
                "consumers_fast": fast}

    @property
    def routers(self) -> list[Router]:
        return list(self._routers.values())

    def get_router(self, router_id: str) -> Router | None:
        return self._routers.get(router_id)

    def create_router(self, router_id: str) -> Router:
        if self._closed:
            raise ClosedError("worker is closed")
        if router_id in self._routers:
            raise DuplicateIdError(f"router {router_id!r} exists")
        router = Router(router_id, self._context, owner=self, on_closed=self._router_closed)
        self._routers[router_id] = router
        return router

    async def close(self) -> None:
        """Close every router (cascading to everything) and wait for aiortc to shut down. Idempotent."""
        if not self._closed:
            self._closed = True
            for router in list(self._routers.values()):
                router.close()
            if self.mux is not None:
                self.mux.close()
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker
                self._ticker = None
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def __repr__(self) -> str:
        return f"Worker(routers={len(self._routers)}, closed={self._closed})"

    # ---- internal -------------------------------------------------------------------------------
    def _get_mux(self) -> UdpMux | None:
        return self.mux

    def _router_closed(self, router: Router) -> None:
        if self._routers.get(router.id) is router:
            del self._routers[router.id]

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no running loop: nothing to shut down asynchronously
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("background task failed: %r", task.exception())

    def _ensure_ticker(self) -> None:
        if self._ticker is None and not self._closed:
            try:
                self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
            except RuntimeError:
                self._ticker = None

    async def _tick_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.settings.tick_interval)
            now = time.monotonic()
            if self.mux is not None:
                try:
                    self.mux.expire(now)  # ICE consent (RFC 7675): the only place it is enforced
                except Exception:
                    logger.exception("udp mux: consent expiry failed")
            for router in list(self._routers.values()):
                router._tick(now)


__all__ = ["IceServer", "Worker", "WorkerSettings"]
