"""Worker: the forwarding core of one event loop (one process); owns the routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from . import aiortc_compat, ice_lite
from .errors import ClosedError, DuplicateIdError
from .fast_path import fast_path_available
from .router import Router
from .stats import WorkerStats
from .udp_mux import UdpMux

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN/TURN server handed to every peer connection."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Settings of a worker.

    ``ice_servers``: STUN/TURN servers (``IceServer`` or a plain URL string); empty means none,
    which is right on loopback and for a server with a public address. A public STUN server is
    never used by default.
    """

    ice_servers: tuple[IceServer | str, ...] = ()
    remb_bitrate: int = 3_000_000  # bits/s announced to publishers in REMB
    remb_interval: float = 1.0  # seconds
    tick_interval: float = 0.25  # seconds between periodic checks (PLI retries, REMB, paths)
    history_size: int = 1024  # packets kept per producer for NACKs (power of two)
    history_age: float = 2.0  # seconds a packet stays answerable
    # NACK answering limits per consumer (sfu.nack, issue 10): retransmitted RTP bytes per second
    # and at once (a token bucket; 64 kB/s is about 17% of a 3 Mbit/s stream), and how far behind
    # the newest sent packet a NACKed sequence number may be (further ones are ignored)
    retransmit_rate: int = 64_000
    retransmit_burst: int = 64_000
    nack_window: int = 512
    # Receive SRTP synchronously from aioice's datagram callback (faster); False: from aiortc's
    # DTLS transport receive loop (one queue hop and one coroutine per packet more).
    direct_receive: bool = True
    # Host candidate addresses to gather on (process-wide, applied when the Worker is created);
    # None: every interface aioice finds (which never includes 127.0.0.1). ("127.0.0.1",) for a
    # loopback-only dev server and for tests.
    host_addresses: tuple[str, ...] | None = None
    # One UDP port for every transport (ICE-lite, sfu.udp_mux): None = each peer connection gathers
    # its own sockets with aioice (full ICE). 0 = any free port. Bound by ``await worker.start()``.
    udp_port: int | None = None
    udp_listen_address: str = "0.0.0.0"
    # addresses put in the shared port's host candidates; () = host_addresses, else every interface
    announced_addresses: tuple[str, ...] = ()
    # ICE consent on the shared port (RFC 7675): a path without a valid check from the peer, or without
    # an answer to the port's own check, for this long loses consent; a transport left without a
    # verified path is failed. See docs/sfu.md, "One UDP port for every transport".
    ice_consent_timeout: float = 30.0
    # Sends on the shared port in sendmmsg batches (the C extension sfu._sendmmsg): None = when the
    # extension is built, False = one sendto per datagram. See docs/sfu.md, "Batched sends".
    batch_send: bool | None = None
    # The compiled fan-out (sfu._fastpath): None = when it is built, False = the Python fan-out
    # only, True = required (a warning when it is not built). See docs/sfu.md, "The compiled fan-out".
    fast_path: bool | None = None

    def normalized_ice_servers(self) -> list[IceServer]:
        return [IceServer(urls=(s,)) if isinstance(s, str) else s for s in self.ice_servers]


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
        router = Router(self, router_id)
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
                try:
                    router._tick_observers(now)
                except Exception:
                    logger.exception("router %s: active speaker observer failed", router.id)
                for transport in router.transports:
                    try:
                        transport._tick(now)
                    except Exception:
                        logger.exception("transport %s: periodic work failed", transport.id)
