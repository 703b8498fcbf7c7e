"""The WebhookStore contract, and the outbox written behind on it; every implementation runs this
suite: memory, SQLite, PostgreSQL (the room store's engine, migrated to r0003)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from signaling.events import RoomEvent
from signaling.store.sql_store import SqlStore, sqlite_url
from signaling.webhooks.outbox import Outbox
from signaling.webhooks.outbox_store import MemoryWebhookStore, WebhookStore
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import DEAD, DELIVERED, PENDING, Delivery, failed, retried, succeeded
from signaling.webhooks.sql_outbox_store import SqlWebhookStore
from tests.pg_cluster import SKIP_REASON, PgCluster

Stores = tuple[WebhookStore, SqlStore | None]
ME: dict[str, Any] = {"claimer": "host-1/0/100", "lease_until": 1e12}  # one process writing its own rows


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PgCluster | None,
                 ) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield MemoryWebhookStore(), None
        return
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "data")
    else:
        if pg_cluster is None:
            pytest.skip(SKIP_REASON)
        url = await pg_cluster.new_database()
    rooms = SqlStore(url)
    await rooms.open()
    yield SqlWebhookStore(lambda: rooms.engine), rooms
    await rooms.close()


async def reopened(s: Stores) -> WebhookStore:
    """What a restarted server reads (the memory store keeps nothing across one: it stands for itself)."""
    store, rooms = s
    if rooms is None:
        return store
    fresh = SqlStore(rooms.url)
    await fresh.open()
    return SqlWebhookStore(lambda: fresh.engine)


def hook(webhook_id: str, at: float = 1.0, **kw: object) -> Webhook:
    return Webhook(**{"webhook_id": webhook_id, "url": "https://j.example/h", "events": ("*",), "room_id": None,
                      "lesson_id": None, "secret": "s" * 32, "created_at": at, **kw})  # type: ignore[arg-type]


def delivery(seq: int, webhook_id: str = "WH_a", room_id: str = "R1") -> Delivery:
    return Delivery(delivery_id=f"WD_{webhook_id}_{seq}", webhook_id=webhook_id, room_id=room_id, seq=seq,
                    event_id=f"EV_{seq}", event="room_started", body='{"x":"é"}'.encode(), created_at=10.0 + seq,
                    retry_since=10.0 + seq, next_attempt_at=10.0 + seq)


async def test_registrations_are_kept_listed_oldest_first_and_deleted_with_their_deliveries(stores: Stores) -> None:
    store = stores[0]
    await store.add_webhook(hook("WH_b", 2.0, events=("room_ended", "participant_left"), lesson_id="LS_1"))
    await store.add_webhook(hook("WH_a", 1.0, room_id="R9"))
    await store.save_deliveries([delivery(0, "WH_a"), delivery(1, "WH_b")], **ME)
    again = await reopened(stores)
    listed = await again.list_webhooks()
    assert [w.webhook_id for w in listed] == ["WH_a", "WH_b"]
    assert listed[1] == hook("WH_b", 2.0, events=("room_ended", "participant_left"), lesson_id="LS_1")
    assert await again.delete_webhook("WH_a") and not await again.delete_webhook("WH_a")
    assert [d.webhook_id for d in await again.pending()] == ["WH_b"]


async def test_deliveries_are_upserted_and_read_back_exactly(stores: Stores) -> None:
    store = stores[0]
    await store.add_webhook(hook("WH_a"))
    rows = [delivery(s) for s in (3, 1, 2)]
    await store.save_deliveries(rows, **ME)
    failed(rows[0], 20.0, status=503, error="HTTP 503", max_backoff_s=60, retry_s=3600)
    succeeded(rows[1], 21.0, 200)
    failed(rows[2], 1e9, status=None, error="refused", max_backoff_s=60, retry_s=3600)  # dead
    await store.save_deliveries(rows, **ME)
    rows[0].attempts = 99  # a later change, not saved, is not in the store
    again = await reopened(stores)
    assert [(d.seq, d.attempts, d.next_attempt_at) for d in await again.pending()] == [(3, 1, 21.0)]
    got = await again.get_delivery("WH_a", "WD_WH_a_1")
    assert got == dataclasses.replace(rows[1])
    assert await again.get_delivery("WH_other", "WD_WH_a_1") is None
    page, total = await again.list_deliveries("WH_a", state=None, offset=1, limit=1)
    assert total == 3 and [d.seq for d in page] == [2]
    dead, n = await again.list_deliveries("WH_a", state=DEAD, offset=0, limit=10)
    assert n == 1 and dead[0].last_error == "refused" and dead[0].body == '{"x":"é"}'.encode()
    assert await again.max_seq() == 3


async def test_rows_of_a_deleted_webhook_are_not_written_and_purge_keeps_pending_ones(stores: Stores) -> None:
    store = stores[0]
    assert await store.max_seq() == -1
    await store.add_webhook(hook("WH_a"))
    done, dead, pending = delivery(0), delivery(1), delivery(2)
    succeeded(done, 100.0, 200)
    failed(dead, 1e9, status=None, error="x", max_backoff_s=1, retry_s=1)
    await store.save_deliveries([done, dead, pending, delivery(5, "WH_gone")], **ME)
    assert await store.purge(before=50.0) == 0
    assert await store.purge(before=2e9) == 2
    _, total = await store.list_deliveries("WH_a", state=None, offset=0, limit=10)
    assert total == 1 and await store.max_seq() == 2


def event(room_id: str, name: str = "participant_joined") -> RoomEvent:
    return RoomEvent(name=name, room_id=room_id, external_id="ext", room_name="7Б", at=5.0,
                     data={"participant": {"identity": "s-1"}})


async def test_the_outbox_writes_each_matching_event_behind_and_resumes_pending_rows_in_order(
        stores: Stores) -> None:
    store = stores[0]
    await store.add_webhook(hook("WH_all"))
    await store.add_webhook(hook("WH_r2", room_id="R2"))
    handed: list[Delivery] = []
    outbox = Outbox(store, clock=lambda: 7.0, on_new=handed.append)
    assert await outbox.open() == []
    for room in ("R1", "R2", "R1"):
        outbox.on_event(event(room))
    assert [(d.webhook_id, d.room_id, d.seq) for d in handed] == [
        ("WH_all", "R1", 0), ("WH_all", "R2", 1), ("WH_r2", "R2", 2), ("WH_all", "R1", 3)]
    assert handed[1].body == handed[2].body and handed[1].event_id == handed[2].event_id
    succeeded(handed[0], 8.0, 200)
    outbox.mark(handed[0])
    await outbox.close()  # a graceful stop writes every mark
    second = Outbox(await reopened(stores), clock=lambda: 9.0)
    resumed = await second.open()
    assert [d.seq for d in resumed] == [1, 2, 3] and all(d.state == PENDING for d in resumed)
    assert second.next_seq() == 4
    await second.delete_webhook("WH_r2")
    outbox_rows, _ = await second.store.list_deliveries("WH_all", state=DELIVERED, offset=0, limit=9)
    assert [d.seq for d in outbox_rows] == [0]
    await second.close()


async def test_a_registration_made_through_another_process_is_seen_after_a_refresh(stores: Stores) -> None:
    here, there = Outbox(stores[0], clock=lambda: 1.0), Outbox(await reopened(stores), clock=lambda: 1.0)
    await here.open()
    await there.open()
    await there.add_webhook(hook("WH_new"))
    assert "WH_new" not in here.webhooks
    await here.refresh()
    assert set(here.webhooks) == {"WH_new"}
    await there.delete_webhook("WH_new")
    await here.refresh()
    assert here.webhooks == {}
    await here.close()
    await there.close()


# --- claims: each pending delivery sent by one process at a time (signaling/webhooks/claims.py) -----
A, B, C = "host-1/0/100", "host-1/1/101", "host-2/0/200"


async def test_a_claim_is_won_by_one_claimer_and_taken_over_only_when_its_lease_is_over(stores: Stores) -> None:
    here = stores[0]
    there = await reopened(stores)  # another process: its own engine and connections
    await here.add_webhook(hook("WH_a"))
    await here.save_deliveries([delivery(s) for s in (2, 0, 1)], claimer=A, lease_until=100.0)
    assert await there.claim(B, now=99.0, lease_until=200.0) == []  # A's lease runs: nothing for B
    assert await here.claim(A, now=99.0, lease_until=200.0) == []  # nor again for A: it has them
    assert await there.claimers() == {A}
    taken = await there.claim(B, now=100.0, lease_until=200.0)  # A stopped renewing: B takes every row, by seq
    assert [d.seq for d in taken] == [0, 1, 2] and taken[0] == delivery(0)
    assert await here.claim(A, now=150.0, lease_until=300.0) == []
    assert await here.renew(A, lease_until=400.0) == set()  # A learns it holds nothing
    assert await there.renew(B, lease_until=400.0) == {d.delivery_id for d in taken}
    assert await here.claim(A, now=300.0, lease_until=500.0) == []  # B renewed: still B's
    assert await here.claimers() == {B}


async def test_claimers_at_the_same_moment_never_both_win_a_row(stores: Stores) -> None:
    first = stores[0]
    others = [first, *[await reopened(stores) for _ in range(2)]]
    await first.add_webhook(hook("WH_a"))
    rows = [delivery(s, room_id=f"R{s % 7}") for s in range(120)]
    await first.save_deliveries(rows, claimer="gone", lease_until=10.0)
    for round_ in range(3):
        now = 100.0 * (round_ + 1)  # every claim of the last round has run out
        got = await asyncio.gather(*(s.claim(who, now=now, lease_until=now + 50.0)
                                     for s, who in zip(others, (A, B, C), strict=True)))
        ids = [d.delivery_id for batch in got for d in batch]
        assert len(ids) == len(set(ids)) == len(rows), [len(b) for b in got]  # each row to exactly one
        holders = {who: await s.renew(who, lease_until=now + 50.0) for s, who in zip(others, (A, B, C), strict=True)}
        assert sum(len(h) for h in holders.values()) == len(rows)
        for batch, who in zip(got, (A, B, C), strict=True):
            assert holders[who] == {d.delivery_id for d in batch}


async def test_only_the_claimer_writes_a_row_and_a_released_row_is_free_at_once(stores: Stores) -> None:
    here = stores[0]
    there = await reopened(stores)
    await here.add_webhook(hook("WH_a"))
    row = delivery(0)
    await here.save_deliveries([row], claimer=A, lease_until=100.0)
    [theirs] = await there.claim(B, now=100.0, lease_until=200.0)  # A stalled past its lease
    failed(theirs, 101.0, status=500, error="HTTP 500", max_backoff_s=60, retry_s=3600)
    await there.save_deliveries([theirs], claimer=B, lease_until=200.0)
    succeeded(row, 102.0, 200)  # A's late result: not A's row any more, not written
    await here.save_deliveries([row], claimer=A, lease_until=300.0)
    got = await there.get_delivery("WH_a", row.delivery_id)
    assert got is not None and got.state == PENDING and got.attempts == 1 and got.last_status == 500
    assert await there.release(B) == 1  # a graceful stop: the others need not wait for the lease
    [again] = await here.claim(A, now=103.0, lease_until=300.0)
    assert again.attempts == 1 and again.next_attempt_at == theirs.next_attempt_at  # back-off goes on
    succeeded(again, 104.0, 204)
    await here.save_deliveries([again], claimer=A, lease_until=300.0)
    assert (await there.get_delivery("WH_a", row.delivery_id)) == again


async def test_finished_deliveries_are_never_claimed_and_a_retry_reopens_one_once(stores: Stores) -> None:
    here = stores[0]
    there = await reopened(stores)
    await here.add_webhook(hook("WH_a"))
    done, dead = delivery(0), delivery(1)
    succeeded(done, 20.0, 200)
    failed(dead, 1e9, status=None, error="refused", max_backoff_s=1, retry_s=1)
    await here.save_deliveries([done, dead], claimer=A, lease_until=30.0)
    for store, who in ((here, B), (there, C)):
        assert await store.claim(who, now=1e10, lease_until=2e10) == []
        assert await store.claim(who, now=1e10, lease_until=2e10, force=True) == []  # one process alone: neither
    assert await here.claimers() == set() and await here.renew(A, lease_until=1e12) == set()
    retried(dead, 50.0, 7)
    assert await there.reopen(dead, claimer=C, lease_until=1e12)
    assert not await here.reopen(dataclasses.replace(dead), claimer=B, lease_until=1e12)  # pending already: C's
    assert not await here.reopen(delivery(9), claimer=B, lease_until=1e12)  # no such row
    got = await here.get_delivery("WH_a", dead.delivery_id)
    assert got == dead and got.state == PENDING and got.seq == 7
    assert await here.claim(B, now=1e10, lease_until=2e10) == [] and await here.claimers() == {C}
    assert await there.renew(C, lease_until=1e12) == {dead.delivery_id}


async def test_one_process_alone_takes_every_pending_row_whoever_held_it(stores: Stores) -> None:
    store = stores[0]
    await store.add_webhook(hook("WH_a"))
    await store.save_deliveries([delivery(0), delivery(1)], claimer=A, lease_until=1e12)
    await store.save_deliveries([delivery(2)], claimer=B, lease_until=1e12)
    again = await reopened(stores)
    assert [d.seq for d in await again.claim(C, now=5.0, lease_until=100.0, force=True)] == [0, 1, 2]
    assert await again.claimers() == {C}
