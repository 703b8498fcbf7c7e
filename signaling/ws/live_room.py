"""A room being served by this process: the domain Room plus its connected sessions.

Features (media, and later chat history, recording...) attach as RoomFeature objects and get the
join/leave/close hooks; the LiveRoom itself never reaches into them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from signaling.rooms import Participant, ParticipantState, Room
from signaling.ws.close_codes import CloseCode

if TYPE_CHECKING:
    from signaling.store import RoomStore
    from signaling.ws.session import Session

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


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class LiveRoom:
    def __init__(
        self,
        room: Room,
        *,
        store: RoomStore,
        clock: Callable[[], float],
        ice_servers: list[dict[str, Any]],
    ) -> None:
        self.room = room
        self.store = store
        self.clock = clock
        self.ice_servers = ice_servers
        self.sessions: dict[str, Session] = {}
        self.features: list[RoomFeature] = []
        self.extensions: dict[str, Any] = {}
        self.closed = False

    @property
    def room_id(self) -> str:
        return self.room.room_id

    def summary(self) -> dict[str, Any]:
        s = self.room.settings
        return {
            "room_id": self.room_id, "name": s.name, "mode": s.mode.value, "settings": s.to_json(),
            "created_at": self.room.created_at, "num_participants": len(self.room.joined()),
        }

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

    def to_moderators(self, message: dict[str, Any]) -> int:
        return self.broadcast(message, to=[pid for pid, s in self.sessions.items()
                                           if s.participant.role.is_moderator])

    async def set_muted(self, participant: Participant, source: str, muted: bool) -> None:
        """Record a mute change and let the features (the media plane) enforce it."""
        participant.muted[source] = muted
        for f in self.features:
            await f.on_mute_changed(participant, source, muted)

    # --- membership --------------------------------------------------------------------------
    def welcome(self, session: Session) -> None:
        p = session.participant
        listed, total = self.room.page(0, WELCOME_PARTICIPANTS)
        session.send_event(
            "welcome",
            participant_id=p.participant_id,
            state=p.state.value,
            you=p.to_json(),
            room=self.summary(),
            participants=[q.to_json() for q in listed],
            num_participants=total,
            ice_servers=self.ice_servers,
        )

    async def attach(self, session: Session) -> None:
        """A session for an admitted or queued participant: replace an older socket of the same
        participant, send the welcome, tell the others."""
        p = session.participant
        old = self.sessions.get(p.participant_id)
        self.sessions[p.participant_id] = session
        if old is not None and old is not session:
            old.close_soon(CloseCode.REPLACED, "replaced by a newer connection of the same user")
            for f in self.features:
                await f.on_left(old)
        self.welcome(session)
        if p.state is ParticipantState.JOINED:
            if old is None:
                self.broadcast({"event": "participant_joined", "participant_id": p.participant_id,
                                "participant": p.to_json()}, exclude=p.participant_id)
            for f in self.features:
                await f.on_joined(session)
        else:
            self.to_moderators({"event": "participant_waiting", "participant_id": p.participant_id,
                                "participant": p.to_json()})
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
        if p is None or p.state is ParticipantState.LEFT:
            return
        was_joined = p.state is ParticipantState.JOINED
        self.room.leave(pid, self.clock())
        if was_joined:
            self.broadcast({"event": "participant_left", "participant_id": pid, "reason": reason})
        else:
            self.to_moderators({"event": "participant_left_waiting_room", "participant_id": pid})
        await self.store.save_room(self.room)

    async def end(self, *, reason: str = "ended by a host") -> list[Participant]:
        """End for everyone: tell them, close their sockets, close features.  Idempotent."""
        if self.closed:
            return []
        self.closed = True
        present = self.room.end(self.clock())
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
        for f in self.features:
            await f.close()
        self.closed = True
