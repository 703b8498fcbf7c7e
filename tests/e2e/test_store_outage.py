"""PostgreSQL goes down during a lesson (pg_ctl stop -m fast under a real `urok serve`) and comes
back: the lesson goes on from memory (chat, a join), the failed writes are logged, counted in
/metrics and retried, nothing already stored is lost, and what was said while it was down is stored
once it is back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.rooms import Role
from signaling.store import schema as t
from signaling.store.sql_store import driver_url
from tests.e2e.test_store_restart import TOKENS, Serve, connect, token
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running

FAILURES = re.compile(r"^urok_store_write_failures_total (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PgCluster | None]:
    """A cluster of this module's own: the test stops it."""
    with pg_cluster_running() as cluster:
        yield cluster


async def stored_texts(url: str) -> set[str]:
    engine = create_async_engine(driver_url(url))
    try:
        async with engine.connect() as conn:
            return set((await conn.scalars(sa.select(t.chat_messages.c.text))).all())
    finally:
        await engine.dispose()


async def eventually_stored(url: str, want: set[str], what: str) -> None:
    for _ in range(300):  # up to 30 s on a loaded machine
        try:
            if want <= await stored_texts(url):
                return
        except (sa.exc.SQLAlchemyError, OSError):
            pass  # PostgreSQL is still starting
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: {want - await stored_texts(url)} not stored within 30 s")


async def write_failures(http: aiohttp.ClientSession, srv: Serve) -> float:
    async with http.get(srv.base + "/metrics") as r:
        m = FAILURES.search(await r.text())
    assert m is not None, "no urok_store_write_failures_total in /metrics"
    return float(m.group(1))


async def test_postgresql_down_during_a_lesson_the_lesson_goes_on_and_nothing_is_lost(
        tmp_path: Path, http: aiohttp.ClientSession, own_cluster: PgCluster | None) -> None:
    if own_cluster is None:
        pytest.skip(SKIP_REASON)
    cluster = own_cluster
    url = await cluster.new_database()
    srv = Serve(tmp_path / "data", url, log=tmp_path / "serve.log")
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    clients = []
    try:
        await srv.start(http)
        async with http.post(srv.base + "/v1/rooms", json={"name": "История"}, headers=admin) as r:
            room_id = (await r.json())["room_id"]
        host = await connect(http, srv, token(room_id, "teacher", Role.HOST))
        anna = await connect(http, srv, token(room_id, "anna"))
        clients += [host, anna]
        for c in clients:
            await c.event("chat_history")
        assert (await anna.request("chat_send", text="до"))["ok"]
        await eventually_stored(url, {"до"}, "before the outage")
        assert await write_failures(http, srv) == 0.0

        cluster.stop()
        try:
            # the lesson goes on from memory: chat both ways, a latecomer joins
            for c, text in ((anna, "во время 1"), (host, "во время 2")):
                sent = await c.request("chat_send", text=text)
                assert sent["ok"], sent
            await anna.wait_for(lambda: any(e["event"] == "chat_message" and e["message"]["text"] == "во время 2"
                                            for e in anna.events))
            boris = await connect(http, srv, token(room_id, "boris"))
            clients.append(boris)
            history = (await boris.event("chat_history"))["messages"]
            assert [m["text"] for m in history] == ["до", "во время 1", "во время 2"]
            assert (await boris.request("chat_send", text="во время 3"))["ok"]
            for _ in range(200):  # the writer tries, fails, counts and tries again
                if await write_failures(http, srv) >= 3:
                    break
                await asyncio.sleep(0.1)
            assert await write_failures(http, srv) >= 3
        finally:
            cluster.start()

        await eventually_stored(url, {"до", "во время 1", "во время 2", "во время 3"}, "after the outage")
        engine = create_async_engine(driver_url(url))
        try:
            async with engine.connect() as conn:
                people = set((await conn.scalars(sa.select(t.participants.c.identity))).all())
        finally:
            await engine.dispose()
        assert people == {"teacher", "anna", "boris"}
        failures = await write_failures(http, srv)
        assert (await anna.request("chat_send", text="после"))["ok"]
        await eventually_stored(url, {"после"}, "after the recovery")
        assert await write_failures(http, srv) == failures  # back to normal: no new failures
        log = (tmp_path / "serve.log").read_text(errors="replace")
        assert "retrying on the next round" in log and "the store is writing again after" in log
    finally:
        for c in clients:
            await c.close()
        if srv.proc is not None and srv.proc.returncode is None:
            await srv.kill9()
