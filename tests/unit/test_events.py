"""The event bus: every subscriber gets every event in order; one that fails keeps nothing from the others."""

from __future__ import annotations

import logging

import pytest

from signaling.events import EventBus, RoomEvent, participant_data, room_event
from signaling.rooms import Identity, LessonRef, Role, Room, RoomSettings


def _room(**settings: object) -> Room:
    return Room(room_id="RM_1", settings=RoomSettings(name="7B", external_id="ext-1", **settings),  # type: ignore[arg-type]
                created_at=0.0)


def test_every_subscriber_gets_every_event_in_order() -> None:
    bus, seen_a, seen_b = EventBus(), [], []
    bus.subscribe(lambda e: seen_a.append(e.name))
    bus.subscribe(lambda e: seen_b.append(e.name))
    for name in ("room_started", "participant_joined", "room_ended"):
        bus.emit(room_event(_room(), name, 1.0))
    assert seen_a == seen_b == ["room_started", "participant_joined", "room_ended"]


def test_a_failing_subscriber_is_logged_and_the_others_still_get_the_event(caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = EventBus(), []

    def broken(_e: RoomEvent) -> None:
        raise RuntimeError("receiver bug")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(e.name))
    with caplog.at_level(logging.ERROR, logger="urok.events"):
        bus.emit(room_event(_room(), "room_started", 1.0))  # does not raise into the room
    assert seen == ["room_started"]
    assert "an event subscriber failed" in caplog.text


def test_an_event_carries_the_room_ids_and_its_lesson() -> None:
    room = _room(lesson=LessonRef(lesson_id="LS_1", external_id="ejd-1", starts_at=100.0))
    e = room_event(room, "room_started", 5.0, {"reason": "x"})
    assert (e.room_id, e.external_id, e.room_name, e.at) == ("RM_1", "ext-1", "7B", 5.0)
    assert e.lesson == {"lesson_id": "LS_1", "external_id": "ejd-1", "starts_at": 100.0}
    assert room_event(_room(), "room_started", 5.0).lesson is None


def test_participant_data_has_who_not_live_state() -> None:
    room = _room()
    p = room.admit_or_queue(Identity("s-1", "Пётр Петров", Role.PARTICIPANT, True, "Петров", "Пётр"), 1.0)
    data = participant_data(p)
    assert data == {"participant_id": p.participant_id, "identity": "s-1", "name": "Пётр Петров",
                    "family_name": "Петров", "given_name": "Пётр", "role": "participant", "registered": True}
