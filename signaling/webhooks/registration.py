"""A webhook registration: where to send (URL), which events, for which rooms (all, one room, one
lesson's rooms), and the secret its payloads are signed with.  Validation lives here (plain
Python); the REST edge maps ``InvalidWebhook`` to 400 ``invalid_webhook``."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from signaling.events import EVENT_NAMES, RoomEvent

ALL_EVENTS = "*"
MAX_URL = 2048
MAX_ID = 64  # room and lesson ids (the store's ID column)
MIN_SECRET, MAX_SECRET = 16, 200
MASK = "********"


class InvalidWebhook(ValueError):
    """A registration that cannot be accepted; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Webhook:
    webhook_id: str
    url: str
    events: tuple[str, ...]  # known event names, or ("*",): every event, those added later too
    room_id: str | None  # scope: one room ...
    lesson_id: str | None  # ... or every room of one lesson; neither: every room
    secret: str
    created_at: float

    def wants(self, event: RoomEvent) -> bool:
        if ALL_EVENTS not in self.events and event.name not in self.events:
            return False
        if self.room_id is not None and event.room_id != self.room_id:
            return False
        if self.lesson_id is not None:
            lesson_id = (event.lesson or {}).get("lesson_id")
            return bool(lesson_id == self.lesson_id)
        return True

    def to_json(self, *, show_secret: bool = False) -> dict[str, Any]:
        """The REST view; the secret is shown once, when the webhook is created."""
        return {"webhook_id": self.webhook_id, "url": self.url, "events": list(self.events),
                "room_id": self.room_id, "lesson_id": self.lesson_id, "created_at": self.created_at,
                "secret": self.secret if show_secret else MASK}


def check_url(url: Any) -> str:
    """http or https with a host, no user or password in it (the secret signs instead), at most
    2048 characters, no fragment (never sent)."""
    if not isinstance(url, str) or not url:
        raise InvalidWebhook("url", "url: an http:// or https:// URL is required")
    if len(url) > MAX_URL:
        raise InvalidWebhook("url", f"url: at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidWebhook("url", "url: no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as e:
        raise InvalidWebhook("url", f"url: not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook("url", "url: the scheme must be http or https")
    if not parts.hostname:
        raise InvalidWebhook("url", "url: a host is required")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidWebhook("url", "url: no user name or password in the URL (payloads are signed with the "
                                    "webhook's secret instead)")
    if parts.fragment or url.endswith("#"):
        raise InvalidWebhook("url", "url: no fragment (#...): it is never sent")
    if port == 0:
        raise InvalidWebhook("url", "url: port 0 is not a port")
    return url


def check_events(events: Any) -> tuple[str, ...]:
    """A non-empty list of known names, or ["*"] (the default): duplicates dropped, order kept."""
    if events is None:
        return (ALL_EVENTS,)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise InvalidWebhook("events", "events: a non-empty list of event names, or [\"*\"] for all")
    unknown = [e for e in events if e != ALL_EVENTS and e not in EVENT_NAMES]
    if unknown:
        raise InvalidWebhook("events", f"events: unknown {', '.join(map(repr, unknown[:5]))}; known: "
                                       f"{', '.join(EVENT_NAMES)} or \"*\"")
    if ALL_EVENTS in events:
        return (ALL_EVENTS,)
    return tuple(dict.fromkeys(events))


def _check_id(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        raise InvalidWebhook(name, f"{name}: a non-empty id of at most {MAX_ID} printable characters")
    return value


def check_secret(secret: Any) -> str | None:
    if secret is None:
        return None
    if not isinstance(secret, str) or not (MIN_SECRET <= len(secret) <= MAX_SECRET) or not secret.isprintable():
        raise InvalidWebhook("secret", f"secret: {MIN_SECRET} to {MAX_SECRET} printable characters "
                                       "(leave it out and one is generated)")
    return secret


FIELDS = frozenset({"url", "events", "room_id", "lesson_id", "secret"})


def parse_registration(body: Mapping[str, Any], *, webhook_id: str, now: float) -> Webhook:
    """A webhook from the REST body ``{url, events?, room_id?, lesson_id?, secret?}``."""
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise InvalidWebhook(extra[0], f"{extra[0]}: not a webhook field (known: {', '.join(sorted(FIELDS))})")
    room_id = _check_id("room_id", body.get("room_id"))
    lesson_id = _check_id("lesson_id", body.get("lesson_id"))
    if room_id is not None and lesson_id is not None:
        raise InvalidWebhook("room_id", "room_id and lesson_id: one scope at most (neither: every room)")
    return Webhook(webhook_id=webhook_id, url=check_url(body.get("url")), events=check_events(body.get("events")),
                   room_id=room_id, lesson_id=lesson_id, secret=check_secret(body.get("secret")) or new_secret(),
                   created_at=now)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
