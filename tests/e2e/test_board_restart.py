"""A board survives kill -9 of the server: `urok serve` on SQLite, a host and a student draw, the
write-behind saves (every 0.5 s), the process is killed, started again on the same data dir; a
reconnecting client gets every stroke, the pages and the rights back, and may go on drawing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from signaling.rooms import Role
from tests.conftest import WsClient
from tests.e2e.board_peer import BoardPeer, b64
from tests.e2e.test_store_restart import TOKENS, Serve, connect, token
from whiteboard.board_service import FLUSH_S


async def test_the_board_survives_kill_9(tmp_path: Path) -> None:
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    clients: list[WsClient] = []
    first = Serve(tmp_path / "data", "")
    second = Serve(tmp_path / "data", "")
    async with aiohttp.ClientSession() as http:
        try:
            await first.start(http)
            async with http.post(first.base + "/v1/rooms", json={"name": "Геометрия"}, headers=admin) as r:
                room_id = (await r.json())["room_id"]
            host = await connect(http, first, token(room_id, "teacher", Role.HOST))
            student = await connect(http, first, token(room_id, "anna"))
            clients += [host, student]
            await host.event("board_state")
            await student.event("board_state")
            hp, sp = BoardPeer("teacher"), BoardPeer("anna")
            eid, u = hp.stroke("p1", [10, 10, 20, 20])
            assert (await host.request("board_update", update=b64(u)))["ok"]
            assert (await host.request("board_update", update=b64(hp.extend(eid, [30, 30]))))["ok"]
            _, u2 = sp.stroke("p1", [5, 5])
            assert (await student.request("board_update", update=b64(u2)))["ok"]
            page = (await host.request("board_add_page"))["page"]["page_id"]
            assert (await host.request("board_rights", mode="nobody"))["ok"]
            await asyncio.sleep(FLUSH_S * 4)  # saved by the write-behind
            await first.kill9()
            await second.start(http)
            again = await connect(http, second, token(room_id, "teacher", Role.HOST))
            clients.append(again)
            st = await again.event("board_state", timeout=20)
            got = BoardPeer("check")
            got.apply(st["update"])
            assert got.points(eid) == [10, 10, 20, 20, 30, 30]
            assert len(got.ids("p1")) == 2
            assert [p["page_id"] for p in st["pages"]] == ["p1", page]
            assert st["rights"]["mode"] == "nobody"
            _, u3 = got.stroke(page, [1, 1])
            assert (await again.request("board_update", update=b64(u3)))["ok"]
        finally:
            for c in clients:
                await c.close()
            for srv in (first, second):
                if srv.proc is not None and srv.proc.returncode is None:
                    await srv.kill9()
