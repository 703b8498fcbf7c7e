"""One delivery's life and its queue's order, as plain Python with time passed in.

A delivery is one event for one webhook.  It is ``pending`` until a receiver answers 2xx
(``delivered``) or it has failed for ``retry_s`` since it became due (``dead``: the dead-letter
list).  Between failed attempts it waits 1, 2, 4, ... seconds, at most ``max_backoff_s``; the last
attempt is made at the deadline.  Deliveries of one (webhook, room) go strictly in order: the next
is not tried before the one ahead of it is delivered or dead.  The worker (delivery.py) only sleeps
until ``due_at`` and reports results; every rule is here.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec

from signaling.events import RoomEvent

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)
FIRST_BACKOFF_S = 1.0
MAX_ERROR = 500  # characters of the last error kept


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


@dataclass(slots=True)
class Delivery:
    delivery_id: str
    webhook_id: str
    room_id: str  # the queue: (webhook_id, room_id)
    seq: int  # order in the outbox (a queue's deliveries go by seq)
    event_id: str  # the same for every webhook that gets this event
    event: str
    body: bytes  # the exact bytes sent (and signed) at every attempt
    created_at: float
    retry_since: float  # when its retry period began (creation, or a manual retry)
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_attempt_at: float | None = None
    last_status: int | None = None  # the receiver's HTTP status, None for no answer
    last_error: str | None = None
    finished_at: float | None = None  # delivered or dead at

    @property
    def key(self) -> tuple[str, str]:
        return (self.webhook_id, self.room_id)

    def to_json(self) -> dict[str, Any]:
        """The REST view (without the body: GET it from the receiver's side or the event)."""
        return {"delivery_id": self.delivery_id, "webhook_id": self.webhook_id, "room_id": self.room_id,
                "event_id": self.event_id, "event": self.event, "state": self.state, "attempts": self.attempts,
                "created_at": self.created_at, "next_attempt_at": self.next_attempt_at if self.state == PENDING
                else None, "last_attempt_at": self.last_attempt_at, "last_status": self.last_status,
                "last_error": self.last_error, "finished_at": self.finished_at}


def payload(event: RoomEvent, event_id: str) -> bytes:
    """The JSON body: ids and external ids first, then the event's own data."""
    body: dict[str, Any] = {"id": event_id, "event": event.name, "created_at": event.at,
                            "room": {"room_id": event.room_id, "external_id": event.external_id,
                                     "name": event.room_name}}
    if event.lesson is not None:
        body["lesson"] = dict(event.lesson)
    for k, v in event.data.items():
        body.setdefault(k, v)  # the envelope's names win over a data field of the same name
    return msgspec.json.encode(body)


def backoff_s(attempts: int, max_backoff_s: float) -> float:
    """The pause after the ``attempts``-th failed attempt: 1, 2, 4, ... s, at most ``max_backoff_s``."""
    if attempts <= 0:
        return 0.0
    return min(max_backoff_s, FIRST_BACKOFF_S * 2.0 ** min(attempts - 1, 62))


def succeeded(d: Delivery, now: float, status: int) -> None:
    d.attempts += 1
    d.last_attempt_at = now
    d.last_status = status
    d.last_error = None
    d.state = DELIVERED
    d.finished_at = now


def failed(d: Delivery, now: float, *, status: int | None, error: str, max_backoff_s: float,
           retry_s: float) -> None:
    """Count the failed attempt; schedule the next or, past the deadline, let it die."""
    d.attempts += 1
    d.last_attempt_at = now
    d.last_status = status
    d.last_error = error[:MAX_ERROR]
    deadline = d.retry_since + retry_s
    if now >= deadline:
        d.state = DEAD
        d.finished_at = now
        return
    d.next_attempt_at = min(now + backoff_s(d.attempts, max_backoff_s), deadline)


def retried(d: Delivery, now: float, seq: int) -> None:
    """A dead (or delivered) delivery sent again by hand: pending at the end of its queue, a fresh
    retry period."""
    d.state = PENDING
    d.seq = seq
    d.attempts = 0
    d.retry_since = now
    d.next_attempt_at = now
    d.finished_at = None


class DeliveryQueue:
    """The pending deliveries of one (webhook, room), oldest first; only the head is ever tried."""

    def __init__(self) -> None:
        self._items: deque[Delivery] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, d: Delivery) -> None:
        """Append (a restart loads by seq, so appending keeps the order)."""
        if self._items and d.seq < self._items[-1].seq:  # a resumed row older than one queued live
            items = sorted([*self._items, d], key=lambda x: x.seq)
            self._items = deque(items)
        else:
            self._items.append(d)

    def head(self) -> Delivery | None:
        return self._items[0] if self._items else None

    def due_at(self) -> float | None:
        """When the head may be tried (None: the queue is empty)."""
        h = self.head()
        return None if h is None else max(h.next_attempt_at, 0.0)

    def settle(self) -> Delivery | None:
        """Drop the head once it is delivered or dead; returns it (None while it is pending)."""
        h = self.head()
        if h is not None and h.state != PENDING:
            self._items.popleft()
            return h
        return None

    def remove(self, delivery_ids: set[str]) -> int:
        """Take these out (another process sends them now); how many were here."""
        kept = deque(d for d in self._items if d.delivery_id not in delivery_ids)
        gone = len(self._items) - len(kept)
        self._items = kept
        return gone

    def items(self) -> list[Delivery]:
        return list(self._items)
