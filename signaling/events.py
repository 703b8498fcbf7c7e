"""Room events for listeners outside the room: webhooks, the lessons service, attendance reports.

The live room (and the room manager, for a room ended while nobody is connected) emits one
RoomEvent per fact: a participant joined, left, waited, was admitted or denied; the room started
or ended.  Emitting never waits and never fails the room: a sink only queues what it needs (the
webhook outbox writes behind, as the store does) and a sink's exception is logged and dropped.
Names are PROTOCOL.md's lowercase ``noun_verb``; the full list is ``EVENT_NAMES``, the features'
(``recording_ready``, ``transcript_ready``, ...) included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from signaling.rooms import Participant, Room

log = logging.getLogger("urok.events")

ROOM_STARTED = "room_started"  # the first participant entered (data: {})
ROOM_ENDED = "room_ended"  # data: {reason}
PARTICIPANT_JOINED = "participant_joined"  # entered the room itself (directly, or admitted); data: participant
PARTICIPANT_LEFT = "participant_left"  # data: participant, reason (left | removed | ended | timeout)
PARTICIPANT_WAITING = "participant_waiting"  # queued in the waiting room; data: participant
PARTICIPANT_ADMITTED = "participant_admitted"  # data: participant, by (participant id of the host, or None)
PARTICIPANT_DENIED = "participant_denied"  # data: participant, reason
ATTENDANCE_READY = "attendance_ready"  # the room ended; data: the attendance report
ROOM_EXTENDED = "room_extended"  # a host moved the end later; data: {ends_at, minutes, by}
# the features' events (emitted by recordings/, transcription/, signaling/rooms/live_breakouts.py through
# LiveRoom.emit): named here so that a webhook can register for them one by one
RECORDING_STARTED = "recording_started"  # data: {recording_id, by}
RECORDING_STOPPED = "recording_stopped"  # data: {recording_id, by, ...}
RECORDING_FAILED = "recording_failed"  # data: {recording_id, reason}
RECORDING_READY = "recording_ready"  # the composed video can be downloaded; data: {recording_id, duration_s}
TRANSCRIPT_READY = "transcript_ready"  # the lesson's transcript is complete; data: {transcript_id, ...}
BREAKOUTS_STARTED = "breakouts_started"  # data: {session_id, rooms}
BREAKOUTS_ENDED = "breakouts_ended"  # data: {session_id}
FEATURE_EVENT_NAMES: tuple[str, ...] = (RECORDING_STARTED, RECORDING_STOPPED, RECORDING_FAILED, RECORDING_READY,
                                        TRANSCRIPT_READY, BREAKOUTS_STARTED, BREAKOUTS_ENDED)
EVENT_NAMES: tuple[str, ...] = (ROOM_STARTED, ROOM_ENDED, ROOM_EXTENDED, PARTICIPANT_JOINED, PARTICIPANT_LEFT,
                                PARTICIPANT_WAITING, PARTICIPANT_ADMITTED, PARTICIPANT_DENIED, ATTENDANCE_READY,
                                *FEATURE_EVENT_NAMES)


@dataclass(frozen=True, slots=True)
class RoomEvent:
    name: str  # one of EVENT_NAMES (or a feature's)
    room_id: str
    external_id: str | None  # the room's external id (the e-journal's), if any
    room_name: str
    at: float  # the server's clock when it happened (seconds since the epoch)
    data: Mapping[str, Any] = field(default_factory=dict)  # JSON-ready
    lesson: Mapping[str, Any] | None = None  # the room's LessonRef as JSON (lesson_id, external_id, starts_at)


class EventSink(Protocol):
    def emit(self, event: RoomEvent) -> None:
        """Take the event; must not block or await (queue it)."""
        ...


class NoEvents:
    """A sink that drops everything (a room without listeners, unit tests)."""

    def emit(self, event: RoomEvent) -> None:
        return None


class EventBus:
    """Fan-out to every subscriber, in subscription order.  One failing subscriber does not keep
    the event from the others, and never reaches the room that emitted it."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[RoomEvent], None]] = []

    def subscribe(self, subscriber: Callable[[RoomEvent], None]) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: RoomEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed", extra={"room_id": event.room_id, "event": event.name})


def participant_data(p: Participant) -> dict[str, Any]:
    """Who an event is about, for listeners outside the room (no live state: mutes, hands)."""
    return {"participant_id": p.participant_id, "identity": p.identity, "name": p.name,
            "family_name": p.family_name, "given_name": p.given_name, "role": p.role.value,
            "registered": p.registered}


def room_event(room: Room, name: str, at: float, data: Mapping[str, Any] | None = None) -> RoomEvent:
    s = room.settings
    lesson = msgspec.to_builtins(s.lesson) if s.lesson is not None else None
    return RoomEvent(name=name, room_id=room.room_id, external_id=s.external_id, room_name=s.name, at=at,
                     data=data or {}, lesson=lesson)
