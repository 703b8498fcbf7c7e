"""The durable store: rooms in SQLite (one file under data_dir, the embedded default) or PostgreSQL
(database_url), through SQLAlchemy Core on async drivers (aiosqlite, asyncpg): one code path.

How the live Room and the rows relate (docs/architecture.md, "The durable store"): the store keeps
an identity map, one Room object per room it has created or loaded, and hands out that object, as
the memory store does; the domain mutates it in memory with no I/O.  A write-behind task writes
what changed: it compares the room's durable state (``room_rows.capture``) with what it last
wrote and sends only the difference, in one transaction for every changed room.  It runs when
``save_room`` asks (every durable change does: chat, tombstones, joins and leaves, bans, roles,
locks, the end; at once, coalesced into batches ``batch_gap_s`` apart), and every ``flush_s`` for
retries and retention.  So the event loop never waits for the database, and a ``kill -9`` loses at
most the changes of the last batch gap + one write in flight (``batch_gap_s``, up to ``flush_s``
while a big room changes all the time: the last chat messages, tombstones, joins and leaves).
Creating a room is written before ``create_room`` returns (the API hands out its id and join
links).  A failed write is logged, counted (``write_failures``) and retried on the next round with
nothing already stored lost; the rooms stay served from memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from signaling.rooms import Room
from signaling.rooms.attention import KEEP_REQUESTS
from signaling.rooms.chat_log import KEEP_MESSAGES, ChatMessage
from signaling.rooms.hand_queue import KEEP_HANDS
from signaling.store import schema as t
from signaling.store.migrate import SchemaError, StoreUnavailable, check_current, current_revision, upgrade
from signaling.store.room_rows import (
    AttendanceRow,
    AttentionRow,
    Capture,
    HandRow,
    ParticipantRow,
    RoomRow,
    capture,
    rebuild,
)
from signaling.store.write_behind import WriteBehind

log = logging.getLogger("urok.store")

SQLITE_FILE = "urok.sqlite3"


def sqlite_url(data_dir: str | Path) -> str:
    """The embedded database: one file in ``data_dir`` (the folder is made by ``open``)."""
    return f"sqlite+aiosqlite:///{(Path(data_dir) / SQLITE_FILE).resolve()}"


def postgres_url(database_url: str) -> str:
    """``postgresql://user@host/db`` as the asyncpg driver's URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix):]
    raise ValueError(f"database_url: {database_url!r} is not a postgresql:// URL")


def driver_url(url: str) -> str:
    """The URL with its async driver: postgresql:// URLs get asyncpg, sqlite ones aiosqlite."""
    if url.startswith(("postgresql", "postgres://")):
        return postgres_url(url)
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL: readers do not wait for the writer; synchronous=NORMAL in WAL loses nothing on a process
    # kill (the OS has the pages), only on a power cut the last commits (sqlite.org/wal.html)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


async def _connect(url: str, prepare: Callable[[sa.Connection], Any]) -> tuple[AsyncEngine, Any]:
    """An engine for ``url`` (SQLite: WAL pragmas, the folder made) after ``prepare`` ran on it in one
    transaction (migrate or check the schema).  Raises SchemaError, or StoreUnavailable naming the
    database (password hidden) when it cannot be reached or read."""
    engine = create_async_engine(driver_url(url))
    where = engine.url.render_as_string(hide_password=True)
    try:
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            if engine.url.database:
                Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        async with engine.begin() as conn:
            result = await conn.run_sync(prepare)
    except SchemaError as e:
        await engine.dispose()
        raise SchemaError(f"store: {where}: {e}") from None
    except (SQLAlchemyError, OSError) as e:
        await engine.dispose()
        reason = getattr(e, "orig", None) or e
        raise StoreUnavailable(f"store: cannot open the database {where}: {reason}") from e
    except BaseException:
        await engine.dispose()
        raise
    return engine, result


async def upgrade_database(url: str) -> tuple[str | None, str | None]:
    """``urok db upgrade``: bring the database to this version's schema; (revision before, after)."""

    def run(conn: sa.Connection) -> tuple[str | None, str | None]:
        before = current_revision(conn)
        upgrade(conn)
        return before, current_revision(conn)

    engine, revisions = await _connect(url, run)
    await engine.dispose()
    result: tuple[str | None, str | None] = revisions
    return result


def _differs(old: Capture | None, new: Capture) -> bool:
    return (old is None or bool(new.new_chat) or old.room != new.room or old.exclusions != new.exclusions
            or old.overrides != new.overrides or old.participants != new.participants
            or old.attendance != new.attendance or old.chat != new.chat or old.hands != new.hands
            or bool(new.new_attention) or bool(new.new_acks))


class SqlStore:
    def __init__(self, url: str, *, flush_s: float = 0.5, batch_gap_s: float = 0.05, retention_rooms_s: float = 0.0,
                 retention_chat_s: float = 0.0, purge_every_s: float = 3600.0,
                 clock: Callable[[], float] = time.time, migrate: bool = True) -> None:
        self.url = url
        self.migrate = migrate  # False: the schema must be current already (`urok db upgrade`)
        self.flush_s = flush_s
        self.batch_gap_s = batch_gap_s
        self.retention_rooms_s = retention_rooms_s  # 0: ended rooms are kept
        self.retention_chat_s = retention_chat_s  # 0: chat is kept as long as its room
        self.purge_every_s = purge_every_s
        self.clock = clock
        self._next_purge = 0.0
        self.write_failures = 0
        self.writes = 0  # transactions that wrote rooms' changes
        self._failing = 0  # failed writes in a row (logging: see _flush_locked)
        self._engine: AsyncEngine | None = None
        self._rooms: dict[str, Room] = {}
        self._written: dict[str, Capture] = {}
        self._chat_seq: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._write_lock = asyncio.Lock()  # one writer: every write goes through it
        self._open_lock = asyncio.Lock()
        self._loading: dict[str, asyncio.Future[Room | None]] = {}
        self._writer = WriteBehind(self._round, flush_s=flush_s, name="urok-store-writer")
        self._compare_s = 0.0  # the event loop's time comparing rooms in the last round

    # --- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and migrate the schema to this version's (idempotent).  Raises SchemaError for a
        database made by a newer urok, StoreUnavailable when the database cannot be reached or read
        (both SettingsErrors: the server does not start and says why)."""
        async with self._open_lock:
            if self._engine is not None:
                return
            engine, _ = await _connect(self.url, upgrade if self.migrate else check_current)
            self._engine = engine
            self._writer.start()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("SqlStore.open() was not called")
        return self._engine

    async def close(self) -> None:
        if self._engine is None:
            return
        await self._writer.stop()  # between rounds (write_behind.py); the last flush is below
        try:
            await self.flush()
        except (SQLAlchemyError, OSError):
            log.exception("the last write before closing the store failed")
        await self._engine.dispose()
        self._engine = None
        self._rooms.clear()
        self._written.clear()

    # --- RoomStore ---------------------------------------------------------------------------
    async def create_room(self, room: Room) -> tuple[Room, bool]:
        await self.open()
        async with self._write_lock:
            await self._flush_locked()  # a room ended in memory is ended in the database before the check
            new = capture(room, None)
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(sa.insert(t.rooms).values(room_id=room.room_id, created_at=room.created_at,
                                                                  **self._room_values(new.room)))
                    await self._write(conn, room.room_id, Capture(room=new.room), new, 0)
            except IntegrityError:
                ext = room.settings.external_id
                if ext is None:
                    raise
                async with self.engine.connect() as conn:
                    existing_id = await conn.scalar(sa.select(t.rooms.c.room_id).where(
                        t.rooms.c.external_id == ext, t.rooms.c.ended_at.is_(None)))
                if existing_id is None:
                    raise
                existing = await self._get(existing_id)
                assert existing is not None
                return existing, False
            self._remember(room, new, len(new.new_chat))
            return room, True

    async def get_room(self, room_id: str) -> Room | None:
        await self.open()
        return await self._get(room_id)

    async def save_room(self, room: Room) -> None:
        """Mark the room changed; the writer writes it within ``batch_gap_s`` (not awaited)."""
        self._rooms.setdefault(room.room_id, room)
        self._dirty.add(room.room_id)
        self._writer.wake()

    async def flush(self) -> None:
        """Write every change made so far (tests, shutdown, reads that must see the latest state)."""
        await self.open()
        async with self._write_lock:
            await self._flush_locked()

    async def list_rooms(self, *, active_only: bool, offset: int, limit: int) -> tuple[list[Room], int]:
        await self.flush()
        q = sa.select(t.rooms.c.room_id)
        if active_only:
            q = q.where(t.rooms.c.ended_at.is_(None))
        async with self.engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(q.subquery()))
            ids = (await conn.scalars(q.order_by(t.rooms.c.created_at.desc(), t.rooms.c.room_id)
                                      .offset(offset).limit(limit))).all()
        rooms = [r for r in [await self._get(i) for i in ids] if r is not None]
        return rooms, int(total or 0)

    async def count_rooms(self, *, active_only: bool) -> int:
        await self.flush()
        q = sa.select(sa.func.count()).select_from(t.rooms)
        if active_only:
            q = q.where(t.rooms.c.ended_at.is_(None))
        async with self.engine.connect() as conn:
            return int(await conn.scalar(q) or 0)

    def counters(self) -> dict[str, dict[str, float]]:
        return {"writes": {"": float(self.writes)}, "write_failures": {"": float(self.write_failures)}}

    # --- loading -----------------------------------------------------------------------------
    async def _get(self, room_id: str) -> Room | None:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        pending = self._loading.get(room_id)
        if pending is not None:  # another request loads it: share its object (one Room per room)
            return await asyncio.shield(pending)
        fut: asyncio.Future[Room | None] = asyncio.get_running_loop().create_future()
        self._loading[room_id] = fut
        try:
            loaded = await self._load(room_id)
            if loaded is not None:
                room, seq = loaded
                self._remember(room, capture(room, None), seq)
                fut.set_result(room)
                return room
            fut.set_result(None)
            return None
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._loading[room_id]

    async def _load(self, room_id: str) -> tuple[Room, int] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(t.rooms).where(t.rooms.c.room_id == room_id))).first()
            if r is None:
                return None
            row: RoomRow = (r.settings, r.external_id, r.ended_at, r.started_at, r.lock_before_lockdown,
                            None if r.roster is None else frozenset(r.roster))
            where = {tbl: tbl.c.room_id == room_id for tbl in (t.room_exclusions, t.role_overrides, t.participants,
                                                                t.attendance, t.attendance_intervals,
                                                                t.chat_messages)}
            exclusions = [(x.kind, x.identity) for x in await conn.execute(
                sa.select(t.room_exclusions).where(where[t.room_exclusions]))]
            overrides = {x.identity: x.role for x in await conn.execute(
                sa.select(t.role_overrides).where(where[t.role_overrides]))}
            people: list[tuple[str, ParticipantRow]] = [
                (p.participant_id, (p.identity, p.name, p.family_name, p.given_name, p.role, p.registered, p.state,
                                    p.joined_at, p.waiting_since, p.left_at))
                for p in await conn.execute(sa.select(t.participants).where(where[t.participants]))]
            intervals: dict[str, list[tuple[float, float | None]]] = {}
            for i in await conn.execute(sa.select(t.attendance_intervals).where(where[t.attendance_intervals])
                                        .order_by(t.attendance_intervals.c.identity, t.attendance_intervals.c.seq)):
                intervals.setdefault(i.identity, []).append((i.joined_at, i.left_at))
            attendance: dict[str, AttendanceRow] = {
                a.identity: (a.name, a.family_name, a.given_name, a.role, a.registered,
                             tuple(intervals.get(a.identity, ())))
                for a in await conn.execute(sa.select(t.attendance).where(where[t.attendance]))}
            seq = await conn.scalar(sa.select(sa.func.max(t.chat_messages.c.seq)).where(where[t.chat_messages]))
            recent = (await conn.execute(sa.select(t.chat_messages).where(where[t.chat_messages])
                                         .order_by(t.chat_messages.c.seq.desc()).limit(KEEP_MESSAGES))).all()
            hands, attention = await self._load_records(conn, room_id)
        chat = [ChatMessage(message_id=m.message_id, from_id=m.from_id, from_name=m.from_name, text=m.text,
                            sent_at=m.sent_at, to_id=m.to_id, to_name=m.to_name, deleted=m.deleted)
                for m in reversed(recent)]
        room = rebuild(room_id, r.created_at, row, exclusions=exclusions, overrides=overrides, participants=people,
                       attendance=attendance, chat=chat, hands=hands, attention=attention)
        return room, (-1 if seq is None else int(seq)) + 1

    @staticmethod
    async def _load_records(conn: AsyncConnection, room_id: str) -> tuple[list[HandRow], list[AttentionRow]]:
        """The hands' history and the attention requests the live room keeps (the latest ones)."""
        h = t.hands.c
        hands: list[HandRow] = [
            (x.seq, x.participant_id, x.raised_at, x.lowered_at, x.lowered_by, x.reason)
            for x in await conn.execute(sa.select(t.hands).where(h.room_id == room_id)
                                        .order_by(h.seq.desc()).limit(KEEP_HANDS))]
        if len(hands) == KEEP_HANDS:  # a hand still up stays in the queue however old (as in the domain)
            hands += [(x.seq, x.participant_id, x.raised_at, x.lowered_at, x.lowered_by, x.reason)
                      for x in await conn.execute(sa.select(t.hands).where(
                          h.room_id == room_id, h.reason.is_(None), h.seq < hands[-1][0]))]
        a, tg = t.attention_requests.c, t.attention_targets.c
        requests = list(reversed((await conn.execute(
            sa.select(t.attention_requests).where(a.room_id == room_id)
            .order_by(a.sent_at.desc(), a.attention_id.desc()).limit(KEEP_REQUESTS))).all()))
        targets: dict[str, list[tuple[str, str, float | None]]] = {}
        if requests:
            for x in await conn.execute(sa.select(t.attention_targets).where(
                    tg.room_id == room_id, tg.attention_id.in_([q.attention_id for q in requests]))
                    .order_by(tg.attention_id, tg.seq)):
                targets.setdefault(x.attention_id, []).append((x.participant_id, x.name, x.acked_at))
        attention: list[AttentionRow] = [(q.attention_id, q.from_id, q.from_name, q.text, q.sent_at,
                                          tuple(targets.get(q.attention_id, ()))) for q in requests]
        return hands, attention

    def _remember(self, room: Room, written: Capture, chat_seq: int) -> None:
        written.new_chat = []
        written.new_attention = []
        written.new_acks = {}
        self._rooms[room.room_id] = room
        self._written[room.room_id] = written
        self._chat_seq[room.room_id] = chat_seq

    # --- writing -----------------------------------------------------------------------------
    async def _round(self) -> float:
        """One round of the writer (write_behind.py); returns the pause before the next one."""
        try:
            async with self._write_lock:
                await self._flush_locked()
            if self.clock() >= self._next_purge:
                self._next_purge = self.clock() + self.purge_every_s
                await self.purge(self.clock())
        except (SQLAlchemyError, OSError):
            pass  # logged and counted; the next round retries
        except Exception:  # a bug must not stop the writer: every later change would be lost
            self.write_failures += 1
            log.exception("the store's writer failed; it goes on")
        # What changes meanwhile goes into the next batch.  The comparison runs on the event loop
        # (about 3 ms for a 2000-person room): the gap grows with it so the writer takes at most
        # a tenth of the loop while a big room changes every moment (2000 joins in 3 s cost 25%
        # of the join rate with a fixed 50 ms gap), and at most flush_s (what a kill -9 loses).
        return min(self.flush_s, max(self.batch_gap_s, 9 * self._compare_s))

    async def _flush_locked(self) -> None:
        ids = set(self._dirty)  # every durable change calls save_room (no periodic scan of rooms)
        self._dirty.clear()
        changed: list[tuple[Room, Capture]] = []
        started = time.perf_counter()
        for rid in ids:
            room = self._rooms.get(rid)
            if room is None:
                continue
            cap = capture(room, self._written.get(rid))
            if _differs(self._written.get(rid), cap):
                changed.append((room, cap))
        self._compare_s = time.perf_counter() - started
        if not changed:
            return
        try:
            async with self.engine.begin() as conn:
                for room, cap in changed:
                    await self._write(conn, room.room_id, self._written.get(room.room_id), cap,
                                      self._chat_seq.get(room.room_id, 0), created_at=room.created_at)
        except (SQLAlchemyError, OSError) as e:
            self.write_failures += 1
            self._failing += 1
            self._dirty.update(room.room_id for room, _ in changed)
            # the first failure with its traceback; while the database stays away (a round every
            # flush_s at most) one line at the 2nd, 4th, 8th, ... attempt, not a traceback each time
            if self._failing == 1:
                log.exception("writing %d rooms to the store failed; retrying on the next round", len(changed))
            elif self._failing & (self._failing - 1) == 0:
                log.error("the store still cannot write (%d attempts, %d rooms waiting; the lessons go on "
                          "from memory): %s", self._failing, len(changed), getattr(e, "orig", None) or e)
            raise
        if self._failing:
            log.warning("the store is writing again after %d failed attempts; nothing was lost", self._failing)
            self._failing = 0
        self.writes += 1
        for room, cap in changed:
            self._remember(room, cap, self._chat_seq.get(room.room_id, 0) + len(cap.new_chat))

    async def purge(self, now: float) -> dict[str, int]:
        """Retention: delete the rooms ended more than ``retention_rooms_s`` ago (their rows go with
        them) and the chat of rooms ended more than ``retention_chat_s`` ago.  Returns the counts."""
        out = {"rooms": 0, "chat_messages": 0}
        async with self._write_lock:
            try:
                async with self.engine.begin() as conn:
                    if self.retention_chat_s > 0:
                        old_rooms = sa.select(t.rooms.c.room_id).where(
                            t.rooms.c.ended_at < now - self.retention_chat_s)
                        res = await conn.execute(sa.delete(t.chat_messages).where(
                            t.chat_messages.c.room_id.in_(old_rooms)))
                        out["chat_messages"] = res.rowcount
                    if self.retention_rooms_s > 0:
                        res = await conn.execute(sa.delete(t.rooms).where(
                            t.rooms.c.ended_at < now - self.retention_rooms_s))
                        out["rooms"] = res.rowcount
            except (SQLAlchemyError, OSError):
                self.write_failures += 1
                log.exception("the retention job failed; it runs again later")
                raise
        for rid, room in list(self._rooms.items()):  # ended and written: loaded again if asked for
            if room.ended and rid not in self._dirty:
                self._forget(rid)
        if out["rooms"] or out["chat_messages"]:
            log.info("retention: deleted %(rooms)d ended rooms and %(chat_messages)d chat messages", out)
        return out

    async def forget(self, keep: Callable[[str], bool], *, write: bool = True) -> int:
        """Drop from the identity map every room ``keep`` refuses, so the next read loads it from the
        database: several workers share one (signaling/cluster), and a room another worker serves
        changes there, not here.  Changes made here are written first, unless ``write`` is false
        (a room whose lease this worker lost: the new owner's state wins).  Returns how many."""
        if write and self._dirty:
            await self.flush()
        gone = [rid for rid in self._rooms if not keep(rid) and rid not in self._loading]
        for rid in gone:
            self._dirty.discard(rid)
            self._forget(rid)
        return len(gone)

    def _forget(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        self._written.pop(room_id, None)
        self._chat_seq.pop(room_id, None)

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @staticmethod
    def _room_values(row: RoomRow) -> dict[str, Any]:
        settings, external_id, ended_at, started_at, lock, roster = row
        return {"settings": settings, "external_id": external_id, "ended_at": ended_at, "started_at": started_at,
                "lock_before_lockdown": lock, "roster": None if roster is None else sorted(roster)}

    async def _upsert(self, conn: AsyncConnection, table: sa.Table, keys: Sequence[str],
                      rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        await conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update), rows)

    async def _write(self, conn: AsyncConnection, room_id: str, old: Capture | None, new: Capture, chat_seq: int,
                     *, created_at: float | None = None) -> None:
        """The statements that turn ``old`` (what the database has) into ``new``."""
        if old is None or old.room != new.room:
            values = {"room_id": room_id, **self._room_values(new.room)}
            if old is None:  # not written by this process yet: the row may or may not be there
                await self._upsert(conn, t.rooms, ["room_id"], [{**values, "created_at": created_at}])
            else:
                await conn.execute(sa.update(t.rooms).where(t.rooms.c.room_id == room_id)
                                   .values(**self._room_values(new.room)))
        old_ex = old.exclusions if old is not None else frozenset()
        if added := new.exclusions - old_ex:
            await conn.execute(self._insert(t.room_exclusions).on_conflict_do_nothing(),
                               [{"room_id": room_id, "kind": k, "identity": i} for k, i in added])
        for k, i in old_ex - new.exclusions:
            await conn.execute(sa.delete(t.room_exclusions).where(
                t.room_exclusions.c.room_id == room_id, t.room_exclusions.c.kind == k,
                t.room_exclusions.c.identity == i))
        old_ov = old.overrides if old is not None else {}
        await self._upsert(conn, t.role_overrides, ["room_id", "identity"],
                           [{"room_id": room_id, "identity": i, "role": r}
                            for i, r in new.overrides.items() if old_ov.get(i) != r])
        if gone := [i for i in old_ov if i not in new.overrides]:
            await conn.execute(sa.delete(t.role_overrides).where(t.role_overrides.c.room_id == room_id,
                                                                  t.role_overrides.c.identity.in_(gone)))
        old_p = old.participants if old is not None else {}
        names = ("identity", "name", "family_name", "given_name", "role", "registered", "state", "joined_at",
                 "waiting_since", "left_at")
        await self._upsert(conn, t.participants, ["room_id", "participant_id"],
                           [{"room_id": room_id, "participant_id": pid, **dict(zip(names, row, strict=True))}
                            for pid, row in new.participants.items() if old_p.get(pid) != row])
        old_a = old.attendance if old is not None else {}
        changed_a = {i: a for i, a in new.attendance.items() if old_a.get(i) != a}
        if changed_a:
            await self._upsert(conn, t.attendance, ["room_id", "identity"], [
                {"room_id": room_id, "identity": i, "name": a[0], "family_name": a[1], "given_name": a[2],
                 "role": a[3], "registered": a[4]} for i, a in changed_a.items()])
            await conn.execute(sa.delete(t.attendance_intervals).where(
                t.attendance_intervals.c.room_id == room_id, t.attendance_intervals.c.identity.in_(list(changed_a))))
            rows = [{"room_id": room_id, "identity": i, "seq": n, "joined_at": j, "left_at": left}
                    for i, a in changed_a.items() for n, (j, left) in enumerate(a[5])]
            if rows:
                await conn.execute(sa.insert(t.attendance_intervals), rows)
        if new.new_chat:
            # a message deleted before it was first written goes in as its tombstone: its text never
            # reaches the database
            await conn.execute(self._insert(t.chat_messages).on_conflict_do_nothing(), [
                {"room_id": room_id, "message_id": m.message_id, "seq": chat_seq + n, "from_id": m.from_id,
                 "from_name": m.from_name, "to_id": m.to_id, "to_name": m.to_name,
                 "text": "" if m.deleted else m.text, "sent_at": m.sent_at, "deleted": m.deleted}
                for n, m in enumerate(new.new_chat)])
        old_c = old.chat if old is not None else {}
        if tombstones := [mid for mid, deleted in new.chat.items() if deleted and old_c.get(mid) is False]:
            await conn.execute(sa.update(t.chat_messages).where(
                t.chat_messages.c.room_id == room_id, t.chat_messages.c.message_id.in_(tombstones),
            ).values(text="", deleted=True))
        await self._write_records(conn, room_id, old, new)

    async def _write_records(self, conn: AsyncConnection, room_id: str, old: Capture | None, new: Capture) -> None:
        """The lesson's record: hands raised and lowered, attention requests and their answers."""
        old_h = old.hands if old is not None else {}
        names = ("seq", "participant_id", "raised_at", "lowered_at", "lowered_by", "reason")
        await self._upsert(conn, t.hands, ["room_id", "seq"],
                           [{"room_id": room_id, **dict(zip(names, row, strict=True))}
                            for seq, row in new.hands.items() if old_h.get(seq) != row])
        if new.new_attention:
            await conn.execute(self._insert(t.attention_requests).on_conflict_do_nothing(), [
                {"room_id": room_id, "attention_id": aid, "from_id": from_id, "from_name": from_name, "text": text,
                 "sent_at": sent_at} for aid, from_id, from_name, text, sent_at, _ in new.new_attention])
            await self._upsert(conn, t.attention_targets, ["room_id", "attention_id", "participant_id"], [
                {"room_id": room_id, "attention_id": aid, "seq": n, "participant_id": pid, "name": name,
                 "acked_at": acked_at}
                for aid, _, _, _, _, targets in new.new_attention for n, (pid, name, acked_at) in enumerate(targets)])
        if new.new_acks:
            tg = t.attention_targets.c
            await conn.execute(
                sa.update(t.attention_targets).where(
                    tg.room_id == room_id, tg.attention_id == sa.bindparam("b_attention_id"),
                    tg.participant_id == sa.bindparam("b_participant_id"),
                ).values(acked_at=sa.bindparam("b_acked_at")),
                [{"b_attention_id": aid, "b_participant_id": pid, "b_acked_at": at}
                 for aid, acks in new.new_acks.items() for pid, at in acks])
