"""Breakout groups served in a live room: the domain (breakouts.py) plus the events, the media's
audience, the timer and the attendance records.

Design (docs/breakouts.md): the groups live inside the room's one LiveRoom and sfu Router.  Nobody
builds a new peer connection on a move: the media plane (MediaFeature.audience) lets a participant
receive only the tracks of its own place (a group, or the main room), and ``refresh_audience``
closes the consumers of the old place's tracks and makes the new place's on the existing subscriber
transport (one renegotiation), telling the client track_unpublished / track_published for the
difference.  Isolation is the server's: no consumer is made for another group's track, and a
`subscribe` to one is refused as an unknown track.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from signaling.media.media_feature import Track, media_feature_of
from signaling.rooms.breakout_store import BreakoutStore, BreakoutTemplate, StintRecord, TemplateGroup
from signaling.rooms.breakouts import Assignment, Breakouts, BreakoutState, clean_name
from signaling.rooms.chat_log import clean_text
from signaling.rooms.errors import InvalidInput, InvalidState, ParticipantNotFound
from signaling.rooms.participant import Participant, ParticipantState
from signaling.rooms.permissions import Action
from signaling.rooms.rate_limit import CHAT_RATE
from signaling.rooms.room import new_id

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

log = logging.getLogger("urok.breakouts")


def breakouts_of(live: LiveRoom) -> LiveBreakouts:
    for feature in live.features:
        if isinstance(feature, LiveBreakouts):
            return feature
    raise InvalidState("breakout groups are not served here")


def group_of(live: LiveRoom, participant_id: str) -> str | None:
    """Which breakout group a participant is in now (None: the main room).  For other features
    (the whiteboard keys its boards by (room_id, group_id | None))."""
    for feature in live.features:
        if isinstance(feature, LiveBreakouts) and feature.current is not None:
            return feature.current.group_of(participant_id)
    return None


class LiveBreakouts:
    def __init__(self, live: LiveRoom, store: BreakoutStore, *, max_groups: int, countdown_s: int) -> None:
        self.live = live
        self.store = store
        self.max_groups = max_groups
        self.countdown_s = countdown_s
        self.current: Breakouts | None = None
        self._due: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._dirty = False
        self.record_groups = False  # breakouts_start's record_groups: each open group has its own recording
        self._listeners: list[Callable[[], None]] = []

    # --- for other features (the recording) --------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called on the loop whenever the places change (open, move, visit,
        speak to all, a group closed, the end), after the media follows them."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def heard_in(self, group_id: str | None, participant_id: str, *, audio: bool) -> bool:
        """Whether a participant's track is heard in a place now (a group, or None: the main
        room), as a member of that place hears it (Breakouts.hears)."""
        b = self.current
        if b is None or not b.running:
            return group_id is None
        if audio and participant_id in b.speakers:
            return True
        visit = b.visits.get(participant_id)
        if visit is not None and visit.listen_only:
            return False
        return b.group_of(participant_id) == group_id

    def recorded_groups(self) -> dict[str, str]:
        """The open groups (id -> name) to record apart: those of a start with record_groups."""
        b = self.current
        if b is None or not b.running or not self.record_groups:
            return {}
        return {g.group_id: g.name for g in b.groups.values() if g.open}

    def _places_moved(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's failure never stops the groups
                log.exception("breakout listener failed", extra={"room_id": self.live.room_id})

    # --- helpers -----------------------------------------------------------------------------
    def _now(self) -> float:
        return self.live.clock()

    def _require(self) -> Breakouts:
        if self.current is None or self.current.state is BreakoutState.CLOSED:
            raise InvalidState("no breakout groups: create them first")
        return self.current

    def _audience(self, participant_id: str, track: Track) -> bool:
        b = self.current
        return b is None or b.hears(participant_id, track.participant_id, audio=track.producer.kind == "audio")

    async def _apply_media(self, first: Sequence[str] = ()) -> None:
        """Who receives whom follows the groups (all of it: the checks are cheap; only the
        differences make or close consumers).  ``first``: the participants who moved, whose
        renegotiations go first (the room negotiates one at a time, first come first served; a
        moved student waited behind both groups' offers before hearing the new one)."""
        media = media_feature_of(self.live)
        if media is None:
            return
        b = self.current
        media.audience = self._audience if b is not None and b.running else None
        if first:
            await media.refresh_audience(first)
        await media.refresh_audience()
        self._places_moved()

    def _student(self, participant_id: str) -> Participant:
        """A joined participant who is not a host or co-host (guests in the waiting room are not assigned)."""
        p = self.live.room.participants.get(participant_id)
        if p is None or p.state is not ParticipantState.JOINED:
            raise ParticipantNotFound(f"no participant {participant_id[:80]!r} in the room")
        if p.role.is_moderator:
            raise InvalidInput("hosts and co-hosts visit groups (breakouts_join); they are not assigned")
        return p

    def _students(self) -> list[Participant]:
        return [p for p in self.live.room.sorted_joined() if not p.role.is_moderator]

    def student_view(self, participant_id: str) -> dict[str, Any]:
        b = self._require()
        now = self._now()
        gid = b.group_of(participant_id) if b.running else None
        view: dict[str, Any] = {
            "session_id": b.session_id, "state": b.state.value, "assign": b.assignment.value, "cap": b.cap,
            "rooms": [{"breakout_id": g.group_id, "name": g.name, "count": len(g.members), "closed": not g.open}
                      for g in b.groups.values()],
            "breakout_id": gid, "name": b.groups[gid].name if gid else None,
            "ends_at": b.ends_at, "closing_at": b.closing_at, "remaining_s": b.remaining_s(now), "server_time": now,
            "broadcasts": [{"text": x.text, "sent_at": x.sent_at, "by": x.by} for x in b.broadcasts[-5:]],
            "asked_help": any(h.participant_id == participant_id for h in b.help),
            # where everyone is (students by group, visiting hosts): the client shows only the tiles
            # of its own place; the media is the server's to keep apart (the audience)
            "places": dict(b.where) if b.running else {},
            "visits": {pid: {"breakout_id": v.group_id, "listen_only": v.listen_only} for pid, v in b.visits.items()},
        }
        if gid is not None:
            view["chat"] = [m.to_json() for m in b.chat[gid][-50:]]
        return view

    def _tell_moderators(self) -> None:
        b = self.current
        if b is not None:
            self.live.to_moderators({"event": "breakouts_updated", "breakouts": b.to_json(self._now())})

    def _tell_students(self, event: str, pids: Sequence[str] | None = None, **extra: Any) -> None:
        wanted = None if pids is None else set(pids)
        for p in self._students():
            if wanted is None or p.participant_id in wanted:
                self.live.send_to(p.participant_id, {"event": event, "breakouts": self.student_view(p.participant_id),
                                                     **extra})

    def _assigned(self, pids: Sequence[str]) -> None:
        """The students who changed place are told theirs; every other student gets the new places."""
        b = self._require()
        for pid in pids:
            gid = b.group_of(pid)
            self.live.send_to(pid, {"event": "breakout_assigned", "breakout_id": gid,
                                    "name": b.groups[gid].name if gid else None,
                                    "breakouts": self.student_view(pid)})
        self._places_changed(exclude=pids)

    def _places_changed(self, exclude: Sequence[str] = ()) -> None:
        b = self.current
        if b is not None and b.running:
            self._tell_students("breakouts_state", [p.participant_id for p in self._students()
                                                    if p.participant_id not in exclude])

    def _persist_soon(self) -> None:
        """The attendance written behind the request (a move must not wait for the database);
        writes coalesce: one at a time, each with the state of its moment."""
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_behind(), name=f"breakouts-stints-{self.live.room_id}")

    async def _write_behind(self) -> None:
        while self._dirty:
            self._dirty = False
            await self._persist()

    async def _persist(self) -> None:
        """The attendance so far (who was in which group when); a store outage is logged, the lesson goes on."""
        async with self._write_lock:  # in order: a later state is never overwritten by an earlier one
            await self._write_stints()

    async def _write_stints(self) -> None:
        b = self.current
        if b is None:
            return
        rows = []
        for s in b.stints:
            p = self.live.room.participants.get(s.participant_id)
            rows.append(StintRecord(self.live.room_id, b.session_id, s.group_id, b.groups[s.group_id].name,
                                    s.participant_id, p.identity if p else "", p.name if p else "", s.joined_at,
                                    s.left_at, s.visitor))
        try:
            await self.store.save_stints(self.live.room_id, b.session_id, rows)
        except Exception:
            log.exception("breakout attendance not saved", extra={"room_id": self.live.room_id})

    def _schedule(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        b = self.current
        at = b.next_due_at() if b is not None else None
        if at is None or self.live.closed:
            return
        self._due = asyncio.get_running_loop().call_later(max(0.0, at - self._now()), self._on_due)

    def _on_due(self) -> None:
        self._due = None
        self._task = asyncio.create_task(self._run_due(), name=f"breakouts-{self.live.room_id}")

    async def _run_due(self) -> None:
        b = self.current
        if b is None or self.live.closed:
            return
        try:
            due = b.due(self._now())
            if due == "close":
                await self.end(None, countdown_s=self.countdown_s)
            elif due == "finish":
                await self._finish()
            else:
                self._schedule()  # the clock is behind the timer: look again
        except Exception:
            log.exception("breakout timer failed", extra={"room_id": self.live.room_id})

    # --- RoomFeature hooks -------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        b = self.current
        if b is None or b.state is BreakoutState.CLOSED:
            return
        if session.participant.role.is_moderator:
            session.send_event("breakouts_updated", breakouts=b.to_json(self._now()))
        elif b.running:
            session.send_event("breakouts_state", breakouts=self.student_view(session.participant_id))

    async def on_left(self, session: Session) -> None:
        return None  # a reconnect finds its group again; the room's attendance says who left

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        return None

    async def close(self) -> None:
        if self._due is not None:
            self._due.cancel()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        b = self.current
        if b is not None and b.state is not BreakoutState.CLOSED:
            b.finish(self._now())
            await self._persist()
        if self._writer is not None and not self._writer.done():
            await self._writer  # the last write behind (it logs a store's failure itself)

    # --- host requests -----------------------------------------------------------------------
    async def prepare(self, rooms: Sequence[tuple[str, Sequence[str] | None]], *, assign: Assignment,
                      seed: int | None, cap: int | None, template_id: str | None = None) -> Breakouts:
        """Groups made (replacing prepared ones), not opened: only hosts and co-hosts see them."""
        if self.current is not None and self.current.running:
            raise InvalidState("breakout groups are open: end them first")
        now = self._now()
        if template_id is not None:
            rooms = await self._from_template(template_id)
            assign = Assignment.MANUAL
        if not rooms:
            raise InvalidInput("rooms: give the groups (at least 2) or a template_id")
        b = Breakouts([name for name, _ in rooms], max_groups=self.max_groups, now=now, session_id=new_id("BS"),
                      cap=cap, assignment=assign)
        students = [p.participant_id for p in self._students()]
        if assign is Assignment.MANUAL:
            taken: set[str] = set()
            for gid, (_, pids) in zip(list(b.groups), rooms, strict=True):
                for pid in pids or ():
                    self._student(pid)
                    if pid in taken:
                        raise InvalidInput(f"participant {pid[:80]!r} is listed in two groups")
                    taken.add(pid)
                b.assign(gid, list(pids or ()), now)
        elif assign in (Assignment.AUTO, Assignment.RANDOM):
            if assign is Assignment.RANDOM and seed is None:
                seed = int(now * 1000)  # a fresh shuffle; a given seed gives the same groups again
            b.split(students, now, seed=seed if assign is Assignment.RANDOM else None)
        self.current = b
        self._tell_moderators()
        return b

    async def _from_template(self, template_id: str) -> list[tuple[str, Sequence[str] | None]]:
        tpl = await self.store.template(template_id)
        if tpl is None:
            raise ParticipantNotFound(f"no breakout template {template_id[:80]!r}")
        present = {p.identity: p.participant_id for p in self._students()}
        return [(g.name, [present[i] for i in g.identities if i in present]) for g in tpl.groups]

    async def start(self, duration_s: float | None, *, record_groups: bool = False) -> Breakouts:
        b = self.current
        if b is None or b.state is not BreakoutState.PREPARED:
            raise InvalidState("no prepared breakout groups: give the rooms")
        now = self._now()
        b.open(now, duration_s=duration_s)
        self.record_groups = record_groups
        await self._apply_media()
        self._tell_students("breakouts_started")
        self.live.to_moderators({"event": "breakouts_started", "breakouts": b.to_json(now)})
        self._schedule()
        self.live.emit("breakouts_started", {"session_id": b.session_id, "rooms": [
            {"breakout_id": g.group_id, "name": g.name} for g in b.groups.values()]})
        self._persist_soon()
        return b

    async def move(self, participant_id: str, group_id: str | None) -> str | None:
        b = self._require()
        self._student(participant_id)
        if group_id is not None:
            b.group(group_id)  # unknown group: not_found before anything changes
        old = b.move(participant_id, group_id, self._now())
        if b.running:
            await self._apply_media(first=[participant_id])
            self._assigned([participant_id])
            self._persist_soon()
        self._tell_moderators()
        return old

    async def choose(self, participant: Participant, group_id: str) -> None:
        b = self._require()
        b.choose(participant.participant_id, group_id, self._now())
        if b.running:
            await self._apply_media(first=[participant.participant_id])
            self._assigned([participant.participant_id])
            self._persist_soon()
        self._tell_moderators()

    async def broadcast(self, actor: Participant, text: str) -> dict[str, Any]:
        b = self._require()
        x = b.broadcast(actor.participant_id, text, self._now())
        event = {"event": "breakouts_broadcast", "text": x.text, "sent_at": x.sent_at, "by": x.by,
                 "by_name": actor.name}
        self.live.broadcast(event)
        return {"sent_at": x.sent_at}

    async def extend(self, seconds: float) -> float:
        b = self._require()
        ends_at = b.extend(seconds, self._now())
        self._schedule()
        self._tell_students("breakouts_timer")
        self.live.broadcast({"event": "breakouts_timer", "ends_at": ends_at, "server_time": self._now()},
                            to=[p.participant_id for p in self.live.room.moderators()])
        self._tell_moderators()
        return ends_at

    async def end(self, actor: Participant | None, *, countdown_s: float | None = None,
                  group_id: str | None = None) -> dict[str, Any]:
        b = self._require()
        now = self._now()
        if b.state is BreakoutState.PREPARED:
            if group_id is not None:
                raise InvalidState("the groups are not open")
            b.finish(now)
            self._tell_moderators()
            return {"state": "closed"}
        if group_id is not None:
            back = b.close_group(group_id, now)
            await self._apply_media()
            self.live.broadcast({"event": "breakout_closed", "breakout_id": group_id}, to=back)
            self._assigned([pid for pid in back if not self.live.room.participants[pid].role.is_moderator])
            self._tell_moderators()
            await self._persist()
            if all(not g.open for g in b.groups.values()):
                await self._finish()
            return {"returned": back}
        seconds = self.countdown_s if countdown_s is None else countdown_s
        closing_at = b.begin_close(now, seconds)
        if closing_at <= now:
            await self._finish()
            return {"state": "closed"}
        self.live.broadcast({"event": "breakouts_ending", "countdown_s": round(closing_at - now, 3),
                             "closing_at": closing_at, "server_time": now})
        self._tell_moderators()
        self._schedule()
        return {"closing_at": closing_at}

    async def _finish(self) -> None:
        b = self.current
        if b is None or b.state is BreakoutState.CLOSED:
            return
        b.finish(self._now())
        self._schedule()
        await self._apply_media()
        await self._persist()  # before the news: whoever reads the attendance after it finds it complete
        self.live.broadcast({"event": "breakouts_ended", "session_id": b.session_id})
        self._tell_moderators()
        self.live.emit("breakouts_ended", {"session_id": b.session_id})

    async def visit(self, actor: Participant, group_id: str | None, listen_only: bool) -> None:
        b = self._require()
        asked = [h.participant_id for h in b.help]
        b.visit(actor.participant_id, group_id, self._now(), listen_only=listen_only)
        still = {h.participant_id for h in b.help}
        for pid in asked:
            if pid not in still:  # a visit to their group answers them
                self.live.send_to(pid, {"event": "breakout_help_answered", "by": actor.participant_id,
                                        "by_name": actor.name})
        await self._apply_media(first=[actor.participant_id])
        self.live.send_to(actor.participant_id, {"event": "breakout_assigned", "breakout_id": group_id,
                                                 "name": b.groups[group_id].name if group_id else None,
                                                 "listen_only": listen_only})
        self._places_changed()
        self._tell_moderators()
        self._persist_soon()

    async def speak_to_all(self, actor: Participant, on: bool) -> None:
        b = self._require()
        if b.speak_to_all(actor.participant_id, on):
            await self._apply_media()
            self.live.broadcast({"event": "breakouts_speak_all", "participant_id": actor.participant_id,
                                 "name": actor.name, "on": on})
            self._tell_moderators()

    async def help_done(self, participant_id: str) -> None:
        b = self._require()
        if b.help_done(participant_id):
            self.live.send_to(participant_id, {"event": "breakout_help_answered"})
            self._tell_moderators()

    # --- student requests --------------------------------------------------------------------
    async def ask_help(self, participant: Participant) -> dict[str, Any]:
        b = self._require()
        h = b.ask_help(participant.participant_id, self._now())
        position = [x.participant_id for x in b.help].index(participant.participant_id) + 1
        self.live.to_moderators({"event": "breakout_help", "participant_id": participant.participant_id,
                                 "name": participant.name, "breakout_id": h.group_id,
                                 "group_name": b.groups[h.group_id].name, "asked_at": h.asked_at,
                                 "position": position})
        self._tell_moderators()
        return {"asked_at": h.asked_at, "position": position}

    async def chat(self, participant: Participant, text: str) -> dict[str, Any]:
        """A message to one's group, under the room's chat rules (guests read only, the chat lock)."""
        b = self._require()
        room = self.live.room
        room.require(participant, Action.CHAT)
        clean = clean_text(text)
        gid = b.group_of(participant.participant_id)
        if gid is None:
            raise InvalidState("you are in no breakout group")
        room.limits.take(participant.participant_id, "chat", CHAT_RATE, self._now())
        msg = b.chat_send(participant.participant_id, participant.name, clean, self._now())
        members = [pid for pid in [*b.groups[gid].members, *b.visits] if b.group_of(pid) == gid]
        self.live.broadcast({"event": "breakout_chat", "message": msg.to_json()}, to=members)
        return {"message_id": msg.message_id, "sent_at": msg.sent_at}

    # --- templates ---------------------------------------------------------------------------
    def class_id(self, given: str | None) -> str:
        """Templates belong to a class: the one given, else the room's lesson, its external id, the room."""
        if given:
            return given
        s = self.live.room.settings
        if s.lesson is not None:
            return s.lesson.lesson_id
        return s.external_id or self.live.room_id

    async def save_template(self, name: str, class_id: str | None) -> BreakoutTemplate:
        b = self.current
        if b is None:
            raise InvalidState("no breakout groups to save")
        ident = {pid: p.identity for pid, p in self.live.room.participants.items()}
        now = self._now()
        groups = tuple(TemplateGroup(g.name, tuple(ident[pid] for pid in g.members if pid in ident))
                       for g in b.groups.values())
        tpl = BreakoutTemplate(new_id("BT"), self.class_id(class_id), clean_name(name, "Шаблон"), groups, now, now)
        return await self.store.save_template(tpl)

    def state_for(self, session: Session) -> dict[str, Any] | None:
        b = self.current
        if b is None:
            return None
        if session.participant.role.is_moderator:
            return b.to_json(self._now())
        if b.state is BreakoutState.PREPARED:
            return None  # prepared groups are the host's draft
        return self.student_view(session.participant_id)
