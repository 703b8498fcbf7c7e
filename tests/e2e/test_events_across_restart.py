"""What the journal hears about people across a restart of the server (kill -9): a participant who
reconnects to the seat the store kept did not join twice, and one who never comes back leaves once,
also when the room ends before the reconnect window is over."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from signaling.events import PARTICIPANT_JOINED, PARTICIPANT_LEFT, ROOM_ENDED
from signaling.rooms import Role
from tests.e2e.restart_journal import admin, start_with_journal, stop_all
from tests.e2e.test_store_restart import Serve, connect, token
from tests.e2e.test_webhooks import Receiver


def told(journal: Receiver) -> list[tuple[str, str | None]]:
    return [g.who() for g in journal.unique()]


async def test_a_reconnect_after_a_restart_is_not_a_second_join_and_who_never_returns_leaves_once(
        tmp_path: Path) -> None:
    journal = await Receiver().start()
    # a long reconnect window: the room ends (by a host) while the absent student could still return
    first, second = (Serve(tmp_path / "data", "", UROK_RECONNECT_WINDOW_S="120") for _ in range(2))
    async with aiohttp.ClientSession() as http:
        try:
            await start_with_journal(http, first, journal, [PARTICIPANT_JOINED, PARTICIPANT_LEFT, ROOM_ENDED])
            async with http.post(first.base + "/v1/rooms", json={"name": "7Б"}, headers=admin()) as r:
                room_id = (await r.json())["room_id"]
            clients = [await connect(http, first, token(room_id, who, role))
                       for who, role in (("teacher", Role.HOST), ("s-1", Role.PARTICIPANT),
                                         ("s-2", Role.PARTICIPANT))]
            for c in clients:
                await c.event("welcome")
            await journal.wait_for(lambda: len(told(journal)) == 3)
            async with http.get(first.base + "/v1/rooms", headers=admin()) as r:  # a listing flushes the store:
                assert r.status == 200  # the joins are on disk (a fixed sleep was too short under load)
            await first.kill9()
            for c in clients:
                await c.close()

            await second.start(http)
            teacher = await connect(http, second, token(room_id, "teacher", Role.HOST))
            student = await connect(http, second, token(room_id, "s-1"))
            for c in (teacher, student):
                assert (await c.event("welcome"))["state"] == "joined"
            await student.close()
            await journal.wait_for(lambda: ("participant_left", "s-1") in told(journal))
            await teacher.request("end_room")  # s-2 is still in the store's room: never came back
            await journal.wait_for(lambda: ("room_ended", None) in told(journal))
            await teacher.close()
            assert sorted(told(journal)) == sorted([
                ("participant_joined", "teacher"), ("participant_joined", "s-1"), ("participant_joined", "s-2"),
                ("participant_left", "s-1"), ("participant_left", "s-2"), ("participant_left", "teacher"),
                ("room_ended", None)])
            assert told(journal)[-1] == ("room_ended", None)
        finally:
            await stop_all(journal, first, second)
