"""A room being served by this process: the domain Room plus its connected sessions.

Features (media, and later chat history, recording...) attach as RoomFeature objects and get the
join/leave/close hooks; the LiveRoom itself never reaches into them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from signaling import events as ev
from signaling.events import EventSink, NoEvents
from signaling.rooms import Participant, ParticipantState, Role, Room, RoomMode
from signaling.rooms.schedule import warning_leads
from signaling.ws.close_codes import CloseCode

if TYPE_CHECKING:
    from signaling.store import RoomStore
    from signaling.ws.session import Session

TIME_UP = "the lesson's time is up"  # the reason a room ends at its end (timetable or duration)
log = logging.getLogger("urok.room")

WELCOME_PARTICIPANTS = 100  # the first page of the sorted list; more via `list_participants`


class RoomFeature(Protocol):
    async def on_joined(self, session: Session) -> None:
        """The session's participant is in the room (welcome sent)."""

    async def on_left(self, session: Session) -> None:
        """The session ended (leave, close, removal, room end)."""

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        """A participant's source was muted or unmuted (by itself or by a host): the media plane
        stops or resumes forwarding it, whatever the client does."""

    async def close(self) -> None:
        """The room ends or the server stops."""


@runtime_checkable
class SettlingFeature(Protocol):
    """A feature whose join work goes on after on_joined (the media plane: ICE and DTLS)."""

    async def settled(self, session: Session) -> None:
        """Returns once that work is done for ``session`` (or there is none)."""


class Places(Protocol):
    """Where each participant is while breakout groups are open (LiveBreakouts gives it): activity
    news (hands, reactions, attention) stays in the place it happens in."""

    def grouped(self) -> bool:
        """Whether breakout groups are open (or closing) now."""

    def group_of(self, participant_id: str) -> str | None:
        """The group a participant (a student, or a visiting host) is in now; None: the main room."""

    def open_groups(self) -> list[dict[str, Any]]:
        """The open groups (breakout_id, name, participant_ids) for the room's REST view; [] if none."""


def _encode(message: dict[str, Any] | list[Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class LiveRoom:
    def __init__(
        self,
        room: Room,
        *,
        store: RoomStore,
        clock: Callable[[], float],
        ice_servers: list[dict[str, Any]],
        minute_s: float = 60.0,
        events: EventSink | None = None,
    ) -> None:
        self.room = room
        self.events: EventSink = events if events is not None else NoEvents()  # webhooks, lessons (events.py)
        self._started_told = room.started_at is not None  # room_started goes out once in the room's life
        self.store = store
        self.clock = clock
        self.ice_servers = ice_servers
        self.minute_s = minute_s  # seconds of the clock per lesson minute (tests run short lessons)
        self.sessions: dict[str, Session] = {}
        self.features: list[RoomFeature] = []
        self.extensions: dict[str, Any] = {}
        self.closed = False
        self.on_end: Callable[[LiveRoom], None] | None = None  # the RoomManager forgets an ended room
        self._timer: asyncio.Task[None] | None = None
        self._absent_check: asyncio.TimerHandle | None = None  # the reconnect window after a restart
        self._absent_task: asyncio.Task[None] | None = None
        self._end_task: asyncio.Task[list[Participant]] | None = None
        self._announced: set[str] = set()  # participant ids the others were told have joined
        # who listeners outside (webhooks) were told is in the room and not yet that they left:
        # whoever the store brings back as joined was told before the restart, so their reconnect is
        # no second participant_joined, and the room's end still tells that they left
        self._in_told: set[str] = {p.participant_id for p in room.joined()}
        self.audience_update_s = 1.0  # webinar: at most one `room_update` to the viewers per interval
        self._audience_timer: asyncio.TimerHandle | None = None
        self._last_audience_update: dict[str, Any] = {}
        self._reactions: dict[str, int] = {}
        self.places: Places | None = None  # breakout groups (breakout_feature wires it)

    @property
    def room_id(self) -> str:
        return self.room.room_id

    def summary(self) -> dict[str, Any]:
        s = self.room.settings
        return {
            "room_id": self.room_id, "name": s.name, "mode": s.mode.value, "settings": s.to_json(),
            "created_at": self.room.created_at, "num_participants": self.room.num_joined,
            "lockdown": self.room.lockdown, "ends_at": self.room.ends_at(self.minute_s),
            "spotlight": self.room.spotlit(),
        }

    # --- events for listeners outside the room (signaling/events.py) --------------------------
    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        self.events.emit(ev.room_event(self.room, name, self.clock(), data))

    def _emit_participant(self, name: str, p: Participant, **extra: Any) -> None:
        self.emit(name, {"participant": ev.participant_data(p), **extra})

    def _told_joined(self, p: Participant) -> None:
        """participant_joined, once while they are in (a reconnect, an admitted seat taken later: not again)."""
        if p.participant_id not in self._in_told:
            self._in_told.add(p.participant_id)
            self._emit_participant(ev.PARTICIPANT_JOINED, p)

    def _told_left(self, p: Participant, **extra: Any) -> None:
        if p.participant_id in self._in_told:
            self._in_told.discard(p.participant_id)
            self._emit_participant(ev.PARTICIPANT_LEFT, p, **extra)

    # --- delivery ----------------------------------------------------------------------------
    def broadcast(self, message: dict[str, Any], *, exclude: str | None = None,
                  to: Iterable[str] | None = None, joined_only: bool = True) -> int:
        """Encode once, queue on every target session.  Returns how many got it."""
        text = _encode(message)
        targets = self.sessions.values() if to is None else (
            s for pid in to if (s := self.sessions.get(pid)) is not None)
        n = 0
        for s in targets:
            if s.participant_id == exclude or (joined_only and not s.joined):
                continue
            s.send_text(text)
            n += 1
        return n

    @property
    def webinar(self) -> bool:
        return self.room.settings.mode is RoomMode.WEBINAR

    def to_stage(self, message: dict[str, Any], *, exclude: str | None = None, also: str | None = None) -> int:
        """Membership and activity news (joins, leaves, updates, hands, reactions): everyone in a
        meeting.  In a webinar only the stage (hosts, co-hosts, speakers) gets each event, plus
        ``also`` (the viewer it is about); the audience gets a throttled `room_update` instead, so
        2000 viewers joining do not send 2000 x 2000 frames."""
        if not self.webinar:
            return self.broadcast(message, exclude=exclude)
        targets = [pid for pid, s in self.sessions.items() if s.participant.role is not Role.VIEWER]
        if also is not None and also not in targets:
            targets.append(also)
        n = self.broadcast(message, exclude=exclude, to=targets)
        if message.get("event") == "reaction":
            emoji = str(message.get("emoji"))
            self._reactions[emoji] = self._reactions.get(emoji, 0) + 1
        self._audience_changed()
        return n

    def _audience_changed(self) -> None:
        if self._audience_timer is None and not self.closed:
            loop = asyncio.get_running_loop()
            self._audience_timer = loop.call_later(self.audience_update_s, self._send_audience_update)

    def audience_update(self) -> dict[str, Any]:
        joined = self.room.joined()
        stage = sorted((p for p in joined if p.role is not Role.VIEWER), key=Participant.sort_key)
        return {"event": "room_update", "num_participants": len(joined),
                "num_viewers": len(joined) - len(stage), "speakers": [p.to_json() for p in stage[:50]],
                "hands": len(self.room.hands)}

    def _send_audience_update(self) -> None:
        self._audience_timer = None
        if self.closed:
            return
        update = self.audience_update()
        if self._reactions:
            update["reactions"], self._reactions = self._reactions, {}
        elif update == self._last_audience_update:
            return
        self._last_audience_update = {k: v for k, v in update.items() if k != "reactions"}
        self.broadcast(update, to=[pid for pid, s in self.sessions.items() if s.participant.role is Role.VIEWER])

    def place_of(self, participant_id: str) -> list[str] | None:
        """Who shares ``participant_id``'s place while breakout groups are open: the people of its
        group (or of the main room) plus the hosts and co-hosts wherever they are.  None: no groups
        are open, the whole room is one place."""
        places = self.places
        if places is None or not places.grouped():
            return None
        here = places.group_of(participant_id)
        return [p.participant_id for p in self.room.joined()
                if p.role.is_moderator or places.group_of(p.participant_id) == here]

    def to_place(self, message: dict[str, Any], *, of: str) -> int:
        """Activity news about ``of`` (a hand, a reaction): to its place while breakout groups are
        open (a group does not see the others' hands), otherwise as `to_stage`."""
        place = self.place_of(of)
        if place is None:
            return self.to_stage(message, also=of)
        return self.broadcast(message, to=place)

    def to_moderators(self, message: dict[str, Any]) -> int:
        return self.broadcast(message, to=[pid for pid, s in self.sessions.items()
                                           if s.participant.role.is_moderator])

    async def set_muted(self, participant: Participant, source: str, muted: bool, *, notify: bool = True) -> None:
        """Record a mute change and let the features (the media plane) enforce it; everyone gets
        `participant_updated` (``notify=False``: the caller tells the room itself, e.g. in bulk)."""
        participant.muted[source] = muted
        for f in self.features:
            await f.on_mute_changed(participant, source, muted)
        if notify and participant.state is ParticipantState.JOINED:
            self.participant_updated(participant)

    def participant_updated(self, participant: Participant) -> None:
        self.to_stage({"event": "participant_updated", "participant_id": participant.participant_id,
                       "participant": participant.to_json()}, also=participant.participant_id)

    # --- membership --------------------------------------------------------------------------
    def connected(self, identity: str) -> bool:
        """Whether that identity has a live socket here (one that is not being closed)."""
        p = self.room.by_identity(identity)
        s = self.sessions.get(p.participant_id) if p is not None else None
        return s is not None and not s.closing

    def welcome(self, session: Session, *, page: tuple[str, dict[str, Any], int] | None = None) -> None:
        """``page`` (from ``_welcome_page``): the shared part, encoded once when many are welcomed
        at once (admit all).  Someone in the waiting room learns only their own state: who is in the
        lesson is not theirs to see until a host lets them in (they may be denied)."""
        p = session.participant
        you = p.to_json()
        if p.state is not ParticipantState.JOINED:
            session.send({"event": "welcome", "participant_id": p.participant_id, "state": p.state.value,
                          "you": you, "room": {"room_id": self.room_id, "name": self.room.settings.name},
                          "participants": [], "ice_servers": self.ice_servers, "server_time": self.clock()})
            return
        listed, summary, total = page if page is not None else self._welcome_page()
        you["unmute_allowed"] = p.participant_id in self.room.unmute_allowed  # after a reconnect too
        you["unmute_requested"] = sorted(src for pid, src in self.room.unmute_once if pid == p.participant_id)
        head = _encode({"event": "welcome", "participant_id": p.participant_id, "state": p.state.value,
                        "you": you, "room": summary, "num_participants": total,
                        "ice_servers": self.ice_servers, "server_time": self.clock()})
        session.send_text(f'{head[:-1]},"participants":{listed}}}')

    def _welcome_page(self) -> tuple[str, dict[str, Any], int]:
        """The first page of participants (encoded), the room summary and the participant count."""
        listed, total = self.room.page(0, WELCOME_PARTICIPANTS)
        summary = self.summary()
        summary["num_participants"] = total
        return _encode([q.to_json() for q in listed]), summary, total

    def send_room_state(self, session: Session) -> None:
        """What a joined participant gets right after `welcome`: the chat history and, for hosts and
        co-hosts, the waiting room and the hand queue."""
        pid = session.participant_id
        session.send_event("chat_history", messages=[m.to_json() for m in self.room.chat.history_for(pid)])
        if session.participant.role.is_moderator:
            self.send_moderator_state(session)

    def send_moderator_state(self, session: Session) -> None:
        waiting = self.room.waiting()
        session.send_event("waiting_room", participants=[p.to_json() for p in waiting], count=len(waiting))
        session.send_event("hand_queue", hands=self.hands_json())

    def hands_json(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for h in self.room.hands.queue():
            p = self.room.participants.get(h.participant_id)
            out.append({"participant_id": h.participant_id, "name": p.name if p else "", "raised_at": h.raised_at,
                        "position": h.position, "waiting_s": round(max(0.0, now - h.raised_at), 3)})
        return out

    async def _entered(self, session: Session, *, announce: bool) -> None:
        """The session's participant is in the room (welcome sent): one path for those who join
        straight away and those admitted from the waiting room."""
        p = session.participant
        if not self._started_told and self.room.started_at is not None:
            self._started_told = True
            self.emit(ev.ROOM_STARTED)
        self._told_joined(p)
        self.send_room_state(session)
        if self.webinar and p.role is Role.VIEWER:
            session.send(self.audience_update())  # the audience's view of the room, kept fresh by room_update
        if announce:
            self._announce_joined(p)
        self._announced.add(p.participant_id)
        for f in self.features:
            await f.on_joined(session)
        self.start_timer()

    async def settled(self, session: Session) -> None:
        """Once every feature's join work for ``session`` is done (SettlingFeature)."""
        for f in self.features:
            if isinstance(f, SettlingFeature):
                await f.settled(session)

    async def attach(self, session: Session) -> None:
        """A session for an admitted or queued participant: replace an older socket of the same
        participant, send the welcome, tell the others."""
        p = session.participant
        old = self.sessions.get(p.participant_id)
        self.sessions[p.participant_id] = session
        if old is not None and old is not session:
            if not old.closing:  # a live socket loses its seat: it is told why, the hosts are told
                old.send_event("replaced", reason="you joined from another tab or device")
                self.broadcast({"event": "participant_replaced", "participant_id": p.participant_id,
                                "participant": p.to_json()},
                               to=[pid for pid, s in self.sessions.items()
                                   if s.participant.role.is_moderator and pid != p.participant_id])
            old.close_soon(CloseCode.REPLACED, "replaced by a newer connection of the same user")
            for f in self.features:
                await f.on_left(old)
        self.welcome(session)
        # the seat is durable from the welcome on: marked for the writer before any feature's hook
        # can yield (a flush meanwhile, e.g. a REST listing, must not miss it); marking is not I/O
        await self.store.save_room(self.room)
        if p.state is ParticipantState.JOINED:  # a reconnect of someone already in: nobody is told
            await self._entered(session, announce=p.participant_id not in self._announced)
            if p.role.is_moderator:  # "wait for the teacher": the teacher is here
                await self.admitted(self.room.release_host_waiters(self.clock()), by=p.participant_id)
        else:
            self.to_moderators({"event": "participant_waiting", "participant_id": p.participant_id,
                                "participant": p.to_json()})
            self._emit_participant(ev.PARTICIPANT_WAITING, p)
            self.start_timer()  # a timetable end closes the room also for those still waiting
        await self.store.save_room(self.room)

    async def admitted(self, participants: Sequence[Participant], *, by: str | None = None) -> None:
        """Participants the domain just admitted: `admitted` and a second `welcome` (state joined) to
        each, then the same path as a direct join.  One admitted: `participant_joined` to the others;
        several (admit all): one `participants_joined` instead of one event per person, so admitting
        a thousand people sends a thousand frames, not a million."""
        if not participants:
            return
        single = len(participants) == 1
        page = self._welcome_page()
        if single:
            self.to_moderators({"event": "participant_left_waiting_room",
                                "participant_id": participants[0].participant_id, "reason": "admitted"})
        for p in participants:
            self._emit_participant(ev.PARTICIPANT_ADMITTED, p, by=by)
            s = self.sessions.get(p.participant_id)
            if s is None:  # the socket is gone: the others still learn about the seat
                if single:
                    self._announce_joined(p)
                self._told_joined(p)
                continue
            s.send_event("admitted", by=by)
            self.welcome(s, page=page)
            await self._entered(s, announce=single)
        if not single:
            ids = [p.participant_id for p in participants]
            event: dict[str, Any] = {"event": "participants_joined", "participant_ids": ids,
                                     "num_participants": page[2]}
            if len(ids) <= WELCOME_PARTICIPANTS:
                event["participants"] = [p.to_json() for p in participants]
            self.to_stage(event)
            waiting = self.room.waiting()  # moderators: the queue that is left, in one frame
            self.to_moderators({"event": "waiting_room", "participants": [p.to_json() for p in waiting],
                                "count": len(waiting)})
        await self.store.save_room(self.room)

    def _announce_joined(self, p: Participant) -> None:
        self.to_stage({"event": "participant_joined", "participant_id": p.participant_id,
                       "participant": p.to_json(), "num_participants": self.room.num_joined},
                      exclude=p.participant_id)

    async def denied(self, participants: Sequence[Participant], *, reason: str) -> None:
        """Participants the domain just refused: `denied`, then close 4403."""
        for p in participants:
            self._emit_participant(ev.PARTICIPANT_DENIED, p, reason=reason)
            self.to_moderators({"event": "participant_left_waiting_room", "participant_id": p.participant_id,
                                "reason": "denied"})
            s = self.sessions.get(p.participant_id)
            if s is not None:
                s.send_event("denied", reason=reason)
                s.close_soon(CloseCode.ENTRY_REFUSED, "a host did not let you in")
        if participants:
            await self.store.save_room(self.room)

    async def remove(self, actor: Participant | None, participant_id: str, *, ban: bool, reason: str) -> Participant:
        """One path for a host's `remove` and the API's DELETE: the domain removes (and bans), the
        participant gets `removed` and close 4411, the others `participant_left` (reason removed)."""
        was_joined = self.room.get(participant_id).state is ParticipantState.JOINED
        p = self.room.remove(actor, participant_id, ban=ban, now=self.clock())
        self._announced.discard(p.participant_id)
        s = self.sessions.get(p.participant_id)
        if s is not None:
            s.send_event("removed", reason=reason, banned=ban)
            s.close_soon(CloseCode.REMOVED, "removed from the lesson")
        if was_joined:
            self.broadcast({"event": "participant_left", "participant_id": p.participant_id, "reason": "removed",
                            "num_participants": self.room.num_joined})
            self._told_left(p, reason="removed", banned=ban)
        else:
            self.to_moderators({"event": "participant_left_waiting_room", "participant_id": p.participant_id,
                                "reason": "removed"})
        await self.store.save_room(self.room)
        return p

    # --- the lesson's duration ---------------------------------------------------------------
    async def extend(self, actor: Participant | None, minutes: int) -> float | None:
        """Move the end ``minutes`` later (``actor`` None: the school's API): everyone in the room
        gets `room_extended`, the timer warns and ends by the new end.  Returns the new end."""
        ends_at = self.room.extend(actor, minutes, self.clock(), minute_s=self.minute_s)
        extended = {"ends_at": ends_at, "minutes": minutes, "by": None if actor is None else actor.participant_id}
        self.broadcast({"event": "room_extended", **extended})
        self.emit("room_extended", extended)  # the journal learns the lesson runs longer (webhooks)
        self.restart_timer()
        await self.store.save_room(self.room)
        return ends_at

    async def set_roster(self, roster: Iterable[str] | None) -> list[Participant]:
        """A lesson's roster changed while the room is served here: whoever it lets in now enters
        through the admitted path; hosts get the waiting room again (reasons may have changed)."""
        entered = self.room.set_roster(None if roster is None else set(roster), self.clock())
        await self.admitted(entered)
        waiting = self.room.waiting()
        self.to_moderators({"event": "waiting_room", "participants": [p.to_json() for p in waiting],
                            "count": len(waiting)})
        await self.store.save_room(self.room)
        return entered

    def restart_timer(self) -> None:
        """The end moved: the timer starts again from the new end (warnings already past are skipped)."""
        t, self._timer = self._timer, None
        if t is not None and t is not asyncio.current_task() and not t.done():
            t.cancel()
        if self.sessions:
            self.start_timer()

    def start_timer(self) -> None:
        """With `duration_minutes` or a timetable end, warn (`room_ending`) before the end and end
        the room on time."""
        if self._timer is not None or self.closed or self.room.ends_at(self.minute_s) is None:
            return
        self._timer = asyncio.create_task(self._run_timer(), name=f"room-timer-{self.room_id}")

    def cancel_timer(self) -> None:
        if self._absent_check is not None:
            self._absent_check.cancel()
            self._absent_check = None
        t, self._timer = self._timer, None
        if t is not None and t is not asyncio.current_task() and not t.done():
            t.cancel()

    async def _run_timer(self) -> None:
        ends_at = self.room.ends_at(self.minute_s)
        if ends_at is None:
            return
        scale = self.minute_s / 60.0
        try:
            for lead in warning_leads(self.room.scheduled_s(self.minute_s)):
                delay = ends_at - lead * scale - self.clock()
                if delay < 0:
                    continue  # reopened after that warning was due
                await asyncio.sleep(delay)
                self.broadcast({"event": "room_ending", "seconds_left": round(lead), "ends_at": ends_at})
            await asyncio.sleep(max(0.0, ends_at - self.clock()))
            await self.end(reason=TIME_UP)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("room timer failed", extra={"room_id": self.room_id})

    # --- the reconnect window after a restart ------------------------------------------------
    def leave_absent_after(self, delay_s: float, *, at: float) -> None:
        """After ``delay_s``, whoever the store brought back as present and has not reconnected
        leaves (at ``at``: the restart, the last moment they could have been here)."""
        if self._absent_check is None and not self.closed:
            self._absent_check = asyncio.get_running_loop().call_later(
                max(0.0, delay_s), self._window_over, at)

    def _window_over(self, at: float) -> None:
        self._absent_check = None
        if not self.closed:
            self._absent_task = asyncio.create_task(self.leave_absent(at=at), name=f"room-absent-{self.room_id}")

    async def leave_absent(self, *, at: float) -> None:
        joined, waited = self.room.leave_absent(self.sessions.keys(), at)
        for p in joined:
            self._announced.discard(p.participant_id)
            self.to_stage({"event": "participant_left", "participant_id": p.participant_id, "reason": "left",
                           "num_participants": self.room.num_joined})
            self._told_left(p, reason="not_reconnected")
        for p in waited:
            self.to_moderators({"event": "participant_left_waiting_room", "participant_id": p.participant_id})
        if joined or waited:
            log.info("%d participants did not reconnect after the restart; they left", len(joined) + len(waited),
                     extra={"room_id": self.room_id})
            await self.store.save_room(self.room)

    async def detach(self, session: Session, *, reason: str = "left") -> None:
        """The session ended.  If it was the participant's current socket, they left the room."""
        pid = session.participant_id
        if self.sessions.get(pid) is not session:
            return  # replaced by a newer socket: the seat is kept
        del self.sessions[pid]
        for f in self.features:
            await f.on_left(session)
        p = self.room.participants.get(pid)
        self._announced.discard(pid)
        if p is None or p.state is ParticipantState.LEFT:
            return
        was_joined = p.state is ParticipantState.JOINED
        self.room.leave(pid, self.clock())
        if was_joined:
            self.to_stage({"event": "participant_left", "participant_id": pid, "reason": reason,
                           "num_participants": self.room.num_joined})
            self._told_left(p, reason=reason)
        else:
            self.to_moderators({"event": "participant_left_waiting_room", "participant_id": pid})
        await self.store.save_room(self.room)

    def send_to(self, participant_id: str, message: dict[str, Any]) -> int:
        return self.broadcast(message, to=[participant_id])

    def end_soon(self, *, reason: str) -> None:
        """End once the current request's response is queued (a host's `end_room`)."""
        if self._end_task is None:
            self._end_task = asyncio.create_task(self.end(reason=reason), name=f"room-end-{self.room_id}")

    async def end(self, *, reason: str = "ended by a host") -> list[Participant]:
        """End for everyone: tell them, close their sockets, close features.  Idempotent."""
        if self.closed:
            return []
        self.closed = True
        self.cancel_timer()
        if self.on_end is not None:
            self.on_end(self)
        present = self.room.end(self.clock())
        for p in present:
            self._told_left(p, reason="room_ended")
        self.emit(ev.ROOM_ENDED, {"reason": reason})
        for s in list(self.sessions.values()):
            s.send_event("room_ended", reason=reason)
            s.close_soon(CloseCode.ROOM_ENDED, f"the lesson has ended ({reason})")
        for f in self.features:
            await f.close()
        await self.store.save_room(self.room)
        return present

    async def shutdown(self) -> None:
        """The server stops: close sockets with 1001 (clients reconnect elsewhere)."""
        for s in list(self.sessions.values()):
            s.close_soon(CloseCode.GOING_AWAY, "server shutting down")
        self.cancel_timer()
        for f in self.features:
            await f.close()
        self.closed = True
