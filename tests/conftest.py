"""Shared fixtures: a real server on a free 127.0.0.1 port, clients that speak the protocol."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling.app import create_app
from signaling.app_keys import TOKENS
from signaling.auth import TokenService
from signaling.rooms import Role
from signaling.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings(**overrides: Any) -> Settings:
    """A test server's settings: the in-memory store unless the test names another (the server_factory
    below gives each server its own SQLite file), never the shared ./data."""
    base: dict[str, Any] = {"dev": True, "api_key": "testkey", "api_secret": "testsecret", "port": free_port(),
                            "demo_room": False, "ws_heartbeat_s": 20.0, "rtc_udp_port": 0, "store": "memory",
                            # an in-process server shares this process's CPU with the test's clients:
                            # its share says nothing of the server (join_gate.py); the lag rule stays
                            "join_cpu_limit": 10.0}
    base.update(overrides)
    return Settings(**base)


test_settings.__test__ = False  # type: ignore[attr-defined]


class WsClient:
    """A protocol client: requests with ids, events collected in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self._ids = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    m = json.loads(msg.data)
                    if "event" in m:
                        self.events.append(m)
                    else:
                        self.responses[m.get("id")] = m
                    self._changed.set()
                else:
                    break
        finally:
            self.closed.set()
            self._changed.set()

    async def wait_for(self, pred: Callable[[], Any], timeout: float = 5.0) -> Any:
        async def loop() -> Any:
            while True:
                v = pred()
                if v:
                    return v
                if self.closed.is_set():
                    v = pred()
                    if v:
                        return v
                    raise AssertionError("socket closed while waiting")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def event(self, name: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for e in self.events:
                if e["event"] == name and all(e.get(k) == v for k, v in match.items()):
                    return e
            return None

        result: dict[str, Any] = await self.wait_for(find, timeout)
        return result

    async def request(self, type_: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        self._ids += 1
        rid = self._ids
        await self.ws.send_str(json.dumps({"id": rid, "type": type_, **fields}))
        result: dict[str, Any] = await self.wait_for(lambda: self.responses.get(rid), timeout)
        return result

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


@dataclass
class Server:
    app: web.Application
    base: str
    http: aiohttp.ClientSession
    admin: dict[str, str]
    clients: list[WsClient] = field(default_factory=list)

    @property
    def tokens(self) -> TokenService:
        return self.app[TOKENS]

    async def rest(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                   auth: bool = True) -> tuple[int, Any]:
        h = dict(self.admin) if auth else {}
        h.update(headers or {})
        async with self.http.request(method, self.base + path, json=body, headers=h) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text) if text else None
            except ValueError:
                return r.status, text

    async def create_room(self, **settings: Any) -> str:
        status, body = await self.rest("POST", "/v1/rooms", settings)
        assert status in (200, 201), body
        room_id: str = body["room_id"]
        return room_id

    def token(self, room_id: str, identity: str, *, role: Role = Role.PARTICIPANT, registered: bool = True,
              name: str | None = None, family_name: str = "", given_name: str = "") -> str:
        return self.tokens.mint_access(identity=identity, name=name or identity, room_id=room_id, role=role,
                                       registered=registered, ttl_s=600, family_name=family_name,
                                       given_name=given_name)

    async def connect(self, token: str) -> WsClient:
        ws = await self.http.ws_connect(self.base.replace("http", "ws", 1) + f"/v1/rtc?token={token}",
                                        heartbeat=None)
        c = WsClient(ws)
        self.clients.append(c)
        return c

    async def join(self, room_id: str, identity: str, **kw: Any) -> WsClient:
        c = await self.connect(self.token(room_id, identity, **kw))
        await c.event("welcome")
        return c


async def start_server(settings: Settings, *, clock: Callable[[], float] = time.time) -> tuple[web.AppRunner, str]:
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    return runner, f"http://127.0.0.1:{settings.port}"


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[web.AppRunner, Server]] = []
    data_dirs: list[str] = []

    async def make(*, clock: Callable[[], float] = time.time, **overrides: Any) -> Server:
        # Memory unless the test names a store: the e2e signalling/call-control/REST/media files on
        # SQLite took 40-46 s against 31 s on memory on the shared 2-core box (issue 11, helper M);
        # UROK_TEST_STORE=sqlite runs them all on it.
        # A SQLite server gets a data dir of its own (never ./data: servers would share rooms).
        overrides.setdefault("store", os.environ.get("UROK_TEST_STORE", "memory"))
        if overrides["store"] == "sqlite" and "data_dir" not in overrides:
            data_dirs.append(tempfile.mkdtemp(prefix="urok-test-"))
            overrides["data_dir"] = data_dirs[-1]
        settings = test_settings(**overrides)
        runner, base = await start_server(settings, clock=clock)
        http = aiohttp.ClientSession()
        app = runner.app
        admin = {"Authorization": "Bearer " + app[TOKENS].mint_admin(ttl_s=600)}
        srv = Server(app=app, base=base, http=http, admin=admin)
        made.append((runner, srv))
        return srv

    yield make
    for runner, srv in made:
        for c in srv.clients:
            await c.close()
        await srv.http.close()
        await runner.cleanup()
    for d in data_dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def server(server_factory: Callable[..., Any]) -> Server:
    srv: Server = await server_factory()
    return srv


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One rule for the ``slow`` marker (pyproject.toml): skipped unless UROK_SLOW=1, whatever else
    the test says (a small version of each runs by default)."""
    if os.environ.get("UROK_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long load test: set UROK_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
