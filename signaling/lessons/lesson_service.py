"""The lessons service: lessons from the e-journal's timetable, entered through per-person links.

create/update/cancel/list, the roster (applied at once to a running occurrence's room), the links,
``enter`` (the occurrence open now: its room made on the first entry, a room token for the person),
the roster attendance report, and ``attendance_ready`` when a room ends.  Authorisation: an admin
may do anything; a teacher only with lessons they teach (LessonForbidden otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from signaling import events as ev
from signaling.auth import AdminGrant, TeacherGrant, TokenService
from signaling.errors import RoomNotFound, ServiceUnavailable
from signaling.events import EventSink
from signaling.lessons.errors import (
    InvalidLesson,
    LessonCancelled,
    LessonEnded,
    LessonForbidden,
    LessonNotFound,
    LessonNotOpen,
)
from signaling.lessons.lesson import Lesson, LessonState, Roster
from signaling.lessons.lesson_store import LessonQuery, LessonStore, OccurrenceRecord
from signaling.lessons.roster_attendance import roster_report
from signaling.lessons.spec import apply_patch, parse_lesson, parse_roster
from signaling.lessons.timetable import Occurrence, RoomStatus, Window, occurrence_state
from signaling.room_manager import RoomManager
from signaling.rooms import Role, Room, RoomSettings, new_id
from signaling.settings import Settings

log = logging.getLogger("urok.lessons")

Actor = AdminGrant | TeacherGrant
NEXT_OCCURRENCES = 10
MAX_RANGE_S = 92 * 86_400.0  # the listing's occurrences: a school term at most per call
DEFAULT_RANGE_S = 7 * 86_400.0
CANCELLED_REASON = "the lesson was cancelled"
RECENT_S = 86_400.0  # an occurrence's room may still run this long after its start (older ones have ended)


@runtime_checkable
class LeaseHolder(Protocol):
    """The rooms of one worker among several (ClusterRooms): a room's lease held while it is changed."""

    def hold(self, room_id: str) -> contextlib.AbstractAsyncContextManager[bool]: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """What ``enter`` gives a person: the occurrence's room and a token for it."""

    lesson: Lesson
    occurrence: Occurrence
    room_id: str
    token: str
    role: Role
    expires_at: int


class LessonService:
    def __init__(self, store: LessonStore, rooms: RoomManager, tokens: TokenService, settings: Settings, *,
                 clock: Callable[[], float], events: EventSink) -> None:
        self.store = store
        self.rooms = rooms
        self.tokens = tokens
        self.settings = settings
        self.clock = clock
        self.events = events
        self.window = Window(open_before_s=settings.lesson_open_before_min * 60.0,
                             close_after_s=settings.lesson_close_after_min * 60.0)
        self.link_max_ttl_s = settings.lesson_link_max_days * 86_400
        self._entering = asyncio.Lock()  # one first entry at a time makes an occurrence's room
        self._tasks: set[asyncio.Task[None]] = set()

    # --- access ------------------------------------------------------------------------------
    @staticmethod
    def check(lesson: Lesson, actor: Actor) -> None:
        if isinstance(actor, TeacherGrant) and not lesson.taught_by(actor.teacher_id):
            raise LessonForbidden("this lesson is not yours: a teacher token sees only the lessons it teaches")

    async def get(self, lesson_id: str, actor: Actor) -> Lesson:
        lesson = await self.store.get(lesson_id)
        if lesson is None:
            raise LessonNotFound(f"no lesson {lesson_id!r}")
        self.check(lesson, actor)
        return lesson

    # --- create, change, cancel --------------------------------------------------------------
    async def create(self, data: Any, actor: Actor) -> tuple[Lesson, bool]:
        lesson = parse_lesson(data, lesson_id=new_id("LS"), now=self.clock())
        if isinstance(actor, TeacherGrant) and not lesson.taught_by(actor.teacher_id):
            raise LessonForbidden("a teacher plans lessons they teach: list yourself among the teachers")
        stored, created = await self.store.create(lesson)
        if not created:
            self.check(stored, actor)
        else:
            log.info("lesson created", extra={"lesson_id": stored.lesson_id})
        return stored, created

    async def update(self, lesson_id: str, data: Any, actor: Actor) -> Lesson:
        lesson = await self._changeable(lesson_id, actor)
        changed = apply_patch(lesson, data, now=self.clock())
        await self.store.save(changed)
        return changed

    async def _changeable(self, lesson_id: str, actor: Actor) -> Lesson:
        lesson = await self.get(lesson_id, actor)
        if lesson.cancelled:
            raise LessonCancelled("this lesson was cancelled; it cannot be changed")
        return lesson

    async def replace_roster(self, lesson_id: str, data: Any, actor: Actor) -> Lesson:
        """A new roster, at once for the room of an occurrence that is running: who waits and is now
        on it enters (LiveRoom.set_roster); nobody already in is put out."""
        lesson = await self._changeable(lesson_id, actor)
        roster = parse_roster(data)
        if isinstance(actor, TeacherGrant) and roster.find(actor.teacher_id) is None:
            raise LessonForbidden("a teacher cannot take themselves off the roster")
        changed = lesson.replace(roster=roster, updated_at=self.clock())
        await self.store.save(changed)
        for rec, room in await self._running(changed):
            live = self.rooms.live.get(room.room_id)
            if live is not None and not live.closed:
                await live.set_roster(roster.identities)
            else:
                await self._set_roster_unserved(room, roster)
            await self.store.set_occurrence_roster(rec.lesson_id, rec.starts_at, roster)
        return changed

    async def _set_roster_unserved(self, room: Room, roster: Roster) -> None:
        """The roster onto the row of a room nobody serves here.  With several workers (the request
        was already sent to the worker serving the room, if any: rest/lessons_api.py) it is written
        under the room's lease, read afresh: no worker opens the room with the old roster meanwhile;
        one that another worker took in between answers 503 (the retry goes to that worker)."""
        if not isinstance(self.rooms, LeaseHolder):
            room.set_roster(roster.identities, self.clock())
            await self.rooms.store.save_room(room)
            return
        async with self.rooms.hold(room.room_id) as held:
            if not held:
                raise ServiceUnavailable("the lesson's room was just opened by another worker; try again")
            fresh = await self.rooms.get(room.room_id)
            fresh.set_roster(roster.identities, self.clock())
            await self.rooms.store.save_room(fresh)

    async def recent_rooms(self, lesson_id: str, actor: Actor) -> list[str]:
        """The rooms of the lesson's occurrences that may be running (started within RECENT_S):
        with several workers a change that must reach a running room goes to the worker serving it."""
        lesson = await self.get(lesson_id, actor)
        since = self.clock() - RECENT_S
        return [rec.room_id for rec in await self.store.occurrences(lesson.lesson_id) if rec.starts_at >= since]

    async def cancel(self, lesson_id: str, actor: Actor) -> Lesson:
        """Future occurrences are cancelled; a running one ends for everyone.  Idempotent."""
        lesson = await self.get(lesson_id, actor)
        if lesson.cancelled:
            return lesson
        changed = lesson.replace(state=LessonState.CANCELLED, updated_at=self.clock())
        await self.store.save(changed)
        for _, room in await self._running(changed):
            await self.rooms.end(room.room_id, reason=CANCELLED_REASON)
        log.info("lesson cancelled", extra={"lesson_id": lesson_id})
        return changed

    async def _room(self, rec: OccurrenceRecord) -> Room | None:
        try:
            return await self.rooms.get(rec.room_id)
        except RoomNotFound:  # deleted by the retention job: long over
            return None

    async def _running(self, lesson: Lesson) -> list[tuple[OccurrenceRecord, Room]]:
        """Entered occurrences whose room has not ended (at most a day old: older ones have ended)."""
        out = []
        for rec in await self.store.occurrences(lesson.lesson_id):
            if rec.room_id not in self.rooms.live and rec.starts_at < self.clock() - RECENT_S:
                continue
            room = await self._room(rec)
            if room is not None and not room.ended:
                out.append((rec, room))
        return out

    # --- reading -----------------------------------------------------------------------------
    async def _statuses(self, lesson: Lesson) -> dict[float, tuple[RoomStatus, str]]:
        out: dict[float, tuple[RoomStatus, str]] = {}
        for rec in await self.store.occurrences(lesson.lesson_id):
            room = await self._room(rec) if rec.starts_at > self.clock() - 86_400 else None
            status = RoomStatus.LIVE if room is not None and not room.ended else RoomStatus.ENDED
            out[rec.starts_at] = (status, rec.room_id)
        return out

    def occurrence_json(self, lesson: Lesson, occ: Occurrence, status: tuple[RoomStatus, str] | None,
                        now: float) -> dict[str, Any]:
        tt = lesson.timetable
        room_status, room_id = status if status is not None else (RoomStatus.NONE, None)
        state = occurrence_state(occ, now, room_status, cancelled=lesson.cancelled)
        return {"starts_at": tt.iso(occ.starts_at), "ends_at": tt.iso(occ.ends_at), "opens_at": tt.iso(occ.opens_at),
                "closes_at": tt.iso(occ.closes_at), "starts_at_s": occ.starts_at, "ends_at_s": occ.ends_at,
                "state": state.value, "room_id": room_id}

    async def view(self, lesson: Lesson) -> dict[str, Any]:
        """The lesson as the API shows it: its fields, the next occurrences, the links."""
        now = self.clock()
        statuses = await self._statuses(lesson)
        upcoming = lesson.timetable.upcoming(now, self.window, NEXT_OCCURRENCES)
        return {**lesson.to_json(),
                "next_occurrences": [self.occurrence_json(lesson, o, statuses.get(o.starts_at), now)
                                     for o in upcoming],
                "links": self.links(lesson)}

    def link_expiry(self, lesson: Lesson) -> int:
        """A lesson token lives to the last occurrence's close, at most lesson_link_max_days."""
        last_close = lesson.timetable.last_ends_at + self.window.close_after_s
        return int(min(last_close, self.clock() + self.link_max_ttl_s))

    def links(self, lesson: Lesson) -> list[dict[str, Any]]:
        """One link per teacher and student; the token is in the fragment (never reaches a log)."""
        out = []
        exp = self.link_expiry(lesson)
        now = self.clock()
        for people, role in ((lesson.roster.teachers, Role.HOST), (lesson.roster.students, Role.PARTICIPANT)):
            for p in people:
                token = self.tokens.mint_lesson(
                    identity=p.identity, name=p.display_name, lesson_id=lesson.lesson_id, role=role,
                    registered=p.registered, expires_at=max(exp, int(now) + 60), family_name=p.family_name,
                    given_name=p.given_name, max_ttl_s=self.link_max_ttl_s + 60)
                out.append({"identity": p.identity, "role": role.value, "name": p.display_name,
                            "family_name": p.family_name, "given_name": p.given_name,
                            "join_url": f"{self.settings.base_url}/lesson/{quote(lesson.lesson_id, safe='')}"
                                        f"#token={token}"})
        return out

    async def list(self, actor: Actor, *, class_id: str | None, teacher_id: str | None, start: float | None,
                   end: float | None, offset: int, limit: int) -> dict[str, Any]:
        if isinstance(actor, TeacherGrant):
            if teacher_id is not None and teacher_id != actor.teacher_id:
                raise LessonForbidden("a teacher token lists only its own lessons")
            teacher_id = actor.teacher_id
        if start is not None and end is not None and end <= start:
            raise InvalidLesson("to: must be after from")
        query = LessonQuery(class_id=class_id, teacher_id=teacher_id, start=start, end=end)
        page, total = await self.store.find(query, offset=offset, limit=limit)
        now = self.clock()
        o_start = now if start is None else start
        o_end = o_start + DEFAULT_RANGE_S if end is None else end
        if o_end - o_start > MAX_RANGE_S:
            raise InvalidLesson(f"from, to: at most {int(MAX_RANGE_S // 86_400)} days apart")
        in_range, _ = await self.store.find(LessonQuery(class_id=class_id, teacher_id=teacher_id, start=o_start,
                                                        end=o_end), offset=0, limit=500)
        occurrences: list[tuple[float, str, dict[str, Any]]] = []
        for lesson in in_range:
            found = lesson.timetable.between(o_start, o_end, self.window)
            statuses = await self._statuses(lesson) if found else {}
            for occ in found:
                item = {"lesson_id": lesson.lesson_id, "name": lesson.name, "subject": lesson.subject,
                        "class": lesson.class_ref.to_json(),
                        **self.occurrence_json(lesson, occ, statuses.get(occ.starts_at), now)}
                occurrences.append((occ.starts_at, lesson.lesson_id, item))
        occurrences.sort(key=lambda x: (x[0], x[1]))
        return {"lessons": [await self.view(x) for x in page], "total": total, "offset": offset, "limit": limit,
                "occurrences": [item for _, _, item in occurrences]}

    # --- entering ----------------------------------------------------------------------------
    async def enter(self, lesson_id: str, token: str) -> Entry:
        """The occurrence open now, for the person of a lesson token (TokenError if it is not one
        for this lesson): its room (made on the first entry) and a room token for it."""
        grant = self.tokens.verify_lesson(token, lesson_id=lesson_id, max_ttl_s=self.link_max_ttl_s + 60)
        lesson = await self.store.get(lesson_id)
        if lesson is None:
            raise LessonNotFound(f"no lesson {lesson_id!r}")
        if lesson.cancelled:
            raise LessonCancelled("this lesson was cancelled")
        now = self.clock()
        tt = lesson.timetable
        occ = tt.open_at(now, self.window)
        if occ is None:  # a lesson the teacher extended past its window still takes its class
            last = tt.last_started(now, self.window)
            rec = await self.store.get_occurrence(lesson_id, last.starts_at) if last is not None else None
            room = await self._room(rec) if rec is not None else None
            if last is not None and room is not None and not room.ended:
                occ = last
        if occ is None:
            nxt = tt.next_opening(now, self.window)
            if nxt is None:
                raise LessonEnded("this lesson is over: it has no more occurrences")
            raise LessonNotOpen(f"the lesson starts at {tt.iso(nxt.starts_at)}; entry opens at {tt.iso(nxt.opens_at)}",
                                details={"opens_at": tt.iso(nxt.opens_at), "starts_at": tt.iso(nxt.starts_at),
                                         "opens_at_s": nxt.opens_at, "starts_at_s": nxt.starts_at,
                                         "name": lesson.name})
        room = await self._occurrence_room(lesson, occ)
        found = lesson.roster.find(grant.identity)
        if found is not None:
            person, role = found
            name, family, given, registered = person.display_name, person.family_name, person.given_name, \
                person.registered
        else:  # taken off the roster since the link was made: they wait for the teacher like a stranger
            role = Role.PARTICIPANT
            name, family, given, registered = grant.name, grant.family_name, grant.given_name, grant.registered
        ends = room.ends_at(self.rooms.minute_s) or occ.ends_at
        closes = max(occ.closes_at, ends + self.window.close_after_s)
        ttl = int(min(max(60.0, closes - now), self.tokens.max_ttl_s))
        room_token = self.tokens.mint_access(identity=grant.identity, name=name, room_id=room.room_id, role=role,
                                             registered=registered, ttl_s=ttl, family_name=family, given_name=given)
        return Entry(lesson=lesson, occurrence=occ, room_id=room.room_id, token=room_token, role=role,
                     expires_at=int(now) + ttl)

    async def _occurrence_room(self, lesson: Lesson, occ: Occurrence) -> Room:
        rec = await self.store.get_occurrence(lesson.lesson_id, occ.starts_at)
        if rec is None:
            async with self._entering:
                rec = await self.store.get_occurrence(lesson.lesson_id, occ.starts_at)
                if rec is None:
                    rec = await self._open_occurrence(lesson, occ)
        room = await self._room(rec)
        if room is None or room.ended:
            raise LessonEnded("this lesson has ended (its teacher ended it, or its time is up)")
        return room

    async def _open_occurrence(self, lesson: Lesson, occ: Occurrence) -> OccurrenceRecord:
        """The occurrence's room, made on its first entry: an ordinary room whose settings carry the
        lesson, the timetable's end and "wait for the teacher", with the roster on it."""
        tt = lesson.timetable
        data: dict[str, Any] = {**lesson.room, "name": lesson.name,
                                "external_id": f"{lesson.lesson_id}@{tt.iso(occ.starts_at)}",
                                "lesson": {"lesson_id": lesson.lesson_id, "external_id": lesson.external_id,
                                           "starts_at": occ.starts_at},
                                "ends_at": occ.ends_at, "wait_for_host": lesson.wait_for_teacher}
        settings = RoomSettings.parse(data)
        now = self.clock()
        room = Room(room_id=new_id("RM"), settings=settings, created_at=now, roster=set(lesson.roster.identities))
        stored, _ = await self.rooms.create_room(room)
        rec, _ = await self.store.add_occurrence(OccurrenceRecord(lesson.lesson_id, occ.starts_at, stored.room_id,
                                                                  lesson.roster, now))
        log.info("lesson occurrence opened", extra={"lesson_id": lesson.lesson_id, "room_id": stored.room_id})
        return rec

    # --- attendance --------------------------------------------------------------------------
    async def attendance(self, lesson_id: str, actor: Actor, *, occurrence: float | None) -> dict[str, Any]:
        """The roster report of one occurrence (default: the latest that has started)."""
        lesson = await self.get(lesson_id, actor)
        now = self.clock()
        tt = lesson.timetable
        if occurrence is None:
            occ = tt.last_started(now, self.window)
            if occ is None:
                raise LessonNotOpen("no occurrence of this lesson has started yet")
            rec = await self.store.get_occurrence(lesson_id, occ.starts_at)
        else:
            rec = await self.store.get_occurrence(lesson_id, occurrence)
            found = tt.find(occurrence, self.window)
            if found is None and rec is None:
                raise LessonNotFound(f"no occurrence of this lesson starts at {tt.iso(occurrence)}")
            occ = found or tt.occurrence(occurrence, self.window)
        room = await self._room(rec) if rec is not None else None
        return self.report(lesson, occ, rec.roster if rec is not None else lesson.roster, room, now)

    def report(self, lesson: Lesson, occ: Occurrence, roster: Roster, room: Room | None, now: float) -> dict[str, Any]:
        s = self.settings
        ends_at = (room.ends_at(self.rooms.minute_s) if room is not None else None) or occ.ends_at
        report = roster_report(roster.teachers, roster.students, room.attendance.records() if room else [],
                               starts_at=occ.starts_at, ends_at=ends_at, late_after_s=s.lesson_late_after_min * 60.0,
                               left_early_s=s.lesson_left_early_min * 60.0, now=now,
                               ended_at=room.ended_at if room is not None else None, tz=lesson.timetable.tz)
        return {"lesson": {"lesson_id": lesson.lesson_id, "external_id": lesson.external_id, "name": lesson.name,
                           "subject": lesson.subject, "class": lesson.class_ref.to_json()},
                "room_id": room.room_id if room is not None else None, **report}

    # --- events ------------------------------------------------------------------------------
    def on_event(self, event: ev.RoomEvent) -> None:
        """The bus's subscriber: a room that ended gets its attendance report out (``attendance_ready``;
        the webhooks deliver it to the journal)."""
        if event.name != ev.ROOM_ENDED:
            return
        task = asyncio.create_task(self._attendance_ready(event.room_id), name=f"attendance-{event.room_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attendance_ready(self, room_id: str) -> None:
        try:
            room = await self.rooms.get(room_id)
            now = self.clock()
            ref = room.settings.lesson
            lesson = await self.store.get(ref.lesson_id) if ref is not None else None
            if ref is not None and lesson is not None:
                rec = await self.store.get_occurrence(ref.lesson_id, ref.starts_at)
                occ = lesson.timetable.occurrence(ref.starts_at, self.window)
                report = self.report(lesson, occ, rec.roster if rec is not None else lesson.roster, room, now)
            else:
                self.events.emit(ev.room_event(room, ev.ATTENDANCE_READY, now, {
                    "attendance": [r.to_json(now) for r in room.attendance.records()]}))
                return
            self.events.emit(ev.room_event(room, ev.ATTENDANCE_READY, now, {"attendance": report}))
        except Exception:
            log.exception("the attendance report of an ended room failed", extra={"room_id": room_id})

    async def close(self) -> None:
        """Let the reports of rooms that just ended go out (bounded), then stop."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=5.0)
            for t in pending:
                t.cancel()
