"""`urok serve --workers N`: the supervisor process starts N workers and keeps them running.

Each worker is a process of its own (`python -m signaling.cluster.worker INDEX NODE`, the resolved
settings in UROK_CLUSTER_SETTINGS): its own event loop and media worker, the shared public port
(SO_REUSEPORT), a private port (port + 1 + index) and a UDP port (rtc_udp_port + index).  A worker
that dies (kill -9, a crash) is started again at once, and its leases are dropped from the
directory at once (remove_worker): its rooms are taken over by the next join without waiting for
the lease to expire.  The schema is migrated here once, before any worker starts (N workers
migrating one empty database at the same moment would race).  SIGTERM or SIGINT: every worker is
asked to stop (SIGTERM; each writes its store and gives its leases up) and killed after 15 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from signaling.cluster.setup import node_id
from signaling.settings import Settings, SettingsError

log = logging.getLogger("urok.cluster")

SETTINGS_ENV = "UROK_CLUSTER_SETTINGS"
STOP_GRACE_S = 15.0
FAST_EXIT_S = 3.0  # a worker that exits this soon after its start ...
FAST_EXITS = 5  # ... this many times in a row cannot start: the supervisor stops (exit 1)


def settings_to_env(settings: Settings) -> str:
    return json.dumps(dataclasses.asdict(settings))


def settings_from_env(text: str) -> Settings:
    data: dict[str, Any] = json.loads(text)
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return Settings(**values)


def _migrate_once(settings: Settings) -> None:
    if settings.store == "memory" or not settings.migrate_on_start:
        return
    from signaling.store.factory import database_url
    from signaling.store.sql_store import upgrade_database

    url = database_url(settings)
    if url is not None:
        asyncio.run(upgrade_database(url))


def _drop_leases(settings: Settings, worker_id: str) -> None:
    """The dead worker's rooms are free now (not in LEASE_TTL_S): the clients' reconnects take them."""
    if not settings.redis_url:
        return
    from signaling.cluster.redis_directory import RedisDirectory

    async def drop() -> int:
        d = RedisDirectory(settings.redis_url)
        try:
            return await d.remove_worker(worker_id)
        finally:
            await d.close()

    try:
        n = asyncio.run(drop())
        log.warning("worker %s: %d room leases dropped", worker_id, n)
    except Exception as e:  # Redis away: the leases expire by themselves
        log.warning("worker %s: its leases could not be dropped (%s); they expire", worker_id, e)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.count = settings.worker_count
        self.node = node_id()
        self.env = {**os.environ, SETTINGS_ENV: settings_to_env(settings)}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.fast_exits: dict[int, int] = {}
        self.stopping = False

    def _start(self, index: int) -> None:
        self.procs[index] = subprocess.Popen(
            [sys.executable, "-m", "signaling.cluster.worker", str(index), self.node], env=self.env)
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, self.procs[index].pid)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        _migrate_once(self.settings)
        for i in range(self.count):
            self._start(i)
        code = 0
        while not self.stopping:
            time.sleep(0.1)
            for i, proc in list(self.procs.items()):
                rc = proc.poll()
                if rc is None or self.stopping:
                    continue
                log.error("worker %d (pid %d) exited with %s; starting it again", i, proc.pid, rc)
                _drop_leases(self.settings, f"{self.node}/{i}/{proc.pid}")
                fast = time.monotonic() - self.started[i] < FAST_EXIT_S
                self.fast_exits[i] = self.fast_exits.get(i, 0) + 1 if fast else 0
                if self.fast_exits[i] >= FAST_EXITS:
                    log.error("worker %d cannot start (%d exits within %.0f s of starting); stopping",
                              i, FAST_EXITS, FAST_EXIT_S)
                    self.stopping, code = True, 1
                    break
                self._start(i)
        self._stop_all()
        return code

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # our own children only
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_supervisor(settings: Settings) -> int:
    if settings.worker_count < 2:
        raise SettingsError("the supervisor runs two workers or more")
    log.info("starting %d workers (public port %d, private ports %d..%d)", settings.worker_count, settings.port,
             settings.port + 1, settings.port + settings.worker_count)
    return Supervisor(settings).run()
