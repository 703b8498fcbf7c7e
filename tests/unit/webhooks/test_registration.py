"""Registrations: what a URL, an event list and a scope may be; which events a webhook wants."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.events import EVENT_NAMES, RoomEvent
from signaling.webhooks.registration import MASK, InvalidWebhook, parse_registration


def reg(**body: Any) -> Any:
    return parse_registration({"url": "https://journal.example/hooks", **body}, webhook_id="WH_1", now=5.0)


def event(name: str = "participant_joined", room_id: str = "R1", lesson_id: str | None = None) -> RoomEvent:
    return RoomEvent(name=name, room_id=room_id, external_id=None, room_name="", at=1.0,
                     lesson={"lesson_id": lesson_id} if lesson_id else None)


@pytest.mark.parametrize("url", [
    "ftp://journal.example/x", "javascript:alert(1)", "https://", "https://user:pw@journal.example/",
    "https://token@journal.example/", "https://journal.example/x#frag", "https://journal.example:99999/",
    "https://journal.example/ x", "https://journal.example/\nx", "/relative", "", None, 17,
    "https://journal.example/" + "a" * 2048, "http://journal.example:0/",
])
def test_a_url_must_be_http_or_https_with_a_host_and_no_credentials(url: Any) -> None:
    with pytest.raises(InvalidWebhook) as e:
        reg(url=url)
    assert e.value.field == "url"


def test_a_good_registration_gets_every_event_and_a_generated_secret_by_default() -> None:
    w = reg()
    assert w.events == ("*",) and len(w.secret) >= 32 and w.room_id is None and w.lesson_id is None
    assert reg().secret != w.secret
    assert w.to_json()["secret"] == MASK and w.to_json(show_secret=True)["secret"] == w.secret
    assert all(w.wants(event(n)) for n in EVENT_NAMES)


@pytest.mark.parametrize("events", [[], ["nope"], "participant_joined", [1], ["participant_joined", "x"]])
def test_events_are_known_names_or_star(events: Any) -> None:
    with pytest.raises(InvalidWebhook) as e:
        reg(events=events)
    assert e.value.field == "events"


def test_the_features_events_can_be_registered_one_by_one() -> None:
    w = reg(events=["recording_ready", "transcript_ready", "breakouts_started"])
    assert w.wants(event("recording_ready")) and w.wants(event("transcript_ready"))
    assert not w.wants(event("recording_started")) and not w.wants(event("participant_joined"))


def test_a_webhook_wants_only_its_events_and_its_scope() -> None:
    w = reg(events=["participant_joined", "participant_joined", "room_ended"])
    assert w.events == ("participant_joined", "room_ended")
    assert w.wants(event("room_ended")) and not w.wants(event("participant_left"))
    room = reg(room_id="R1")
    assert room.wants(event(room_id="R1")) and not room.wants(event(room_id="R2"))
    lesson = reg(lesson_id="LS_1")
    assert lesson.wants(event(lesson_id="LS_1"))
    assert not lesson.wants(event(lesson_id="LS_2")) and not lesson.wants(event())


@pytest.mark.parametrize("body", [
    {"room_id": "R1", "lesson_id": "LS_1"}, {"room_id": ""}, {"room_id": "x" * 65}, {"lesson_id": 3},
    {"secret": "short"}, {"secret": "x" * 201}, {"secret": 12345678901234567}, {"colour": "red"},
])
def test_bad_scope_secret_or_unknown_fields_are_refused_naming_the_field(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidWebhook) as e:
        reg(**body)
    assert e.value.field == next(iter(body))


def test_a_given_secret_is_kept() -> None:
    assert reg(secret="s" * 16).secret == "s" * 16
