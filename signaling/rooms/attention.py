"""'Are you with us?': a host asks one or all students to confirm, and sees who did and how fast.

The requests with their answers are part of the lesson's record (issue 11): the store keeps them
and the REST API lists them (signaling/rest/records_api.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from signaling.rooms.errors import ParticipantNotFound

KEEP_REQUESTS = 100
MAX_ATTENTION_TEXT = 200


@dataclass(slots=True)
class AttentionRequest:
    attention_id: str
    from_id: str
    from_name: str
    text: str
    sent_at: float
    targets: dict[str, str]  # participant id -> name, when asked
    acks: dict[str, float] = field(default_factory=dict)  # participant id -> acknowledged at

    def after_ms(self, participant_id: str) -> int:
        return max(0, round((self.acks[participant_id] - self.sent_at) * 1000))

    def status(self, now: float) -> dict[str, Any]:
        acked = sorted(({"participant_id": pid, "name": self.targets[pid], "after_ms": self.after_ms(pid)}
                        for pid in self.acks), key=lambda a: (a["after_ms"], a["participant_id"]))
        pending = [{"participant_id": pid, "name": name,
                    "waiting_ms": max(0, round((now - self.sent_at) * 1000))}
                   for pid, name in self.targets.items() if pid not in self.acks]
        return {"attention_id": self.attention_id, "text": self.text, "sent_at": self.sent_at,
                "from": {"participant_id": self.from_id, "name": self.from_name},
                "targets": len(self.targets), "acked": acked, "pending": pending}

    def record_json(self) -> dict[str, Any]:
        """For the lesson's record: who asked what and when, who acknowledged (and when, in the order
        they did), who did not."""
        return {"attention_id": self.attention_id, "text": self.text, "sent_at": self.sent_at,
                "from": {"participant_id": self.from_id, "name": self.from_name}, "targets": len(self.targets),
                "acked": [{"participant_id": pid, "name": self.targets[pid], "acked_at": at,
                           "after_ms": self.after_ms(pid)} for pid, at in self.acks.items()],
                "not_acked": [{"participant_id": pid, "name": name} for pid, name in self.targets.items()
                              if pid not in self.acks]}


class AttentionLog:
    def __init__(self, *, keep: int = KEEP_REQUESTS) -> None:
        self._requests: OrderedDict[str, AttentionRequest] = OrderedDict()
        self._keep = keep

    def __len__(self) -> int:
        return len(self._requests)

    def requests(self) -> list[AttentionRequest]:
        return list(self._requests.values())

    def add(self, request: AttentionRequest) -> AttentionRequest:
        self._requests[request.attention_id] = request
        while len(self._requests) > self._keep:
            self._requests.popitem(last=False)
        return request

    def restore(self, requests: Iterable[AttentionRequest]) -> None:
        """The store's rebuild: requests as written, oldest first (acks in the order they came)."""
        for r in requests:
            self.add(r)

    def get(self, attention_id: str) -> AttentionRequest:
        r = self._requests.get(attention_id)
        if r is None:
            raise ParticipantNotFound(f"no attention request {attention_id!r}")
        return r

    def ack(self, participant_id: str, attention_id: str | None, now: float) -> tuple[AttentionRequest, bool]:
        """Acknowledge one request (the latest one asked of this participant when no id is given).

        Returns the request and whether this acknowledgement is new (a repeat keeps the first time)."""
        if attention_id is None:
            for r in reversed(self._requests.values()):
                if participant_id in r.targets and participant_id not in r.acks:
                    break
            else:
                raise ParticipantNotFound("no attention request is waiting for you")
        else:
            r = self.get(attention_id)
            if participant_id not in r.targets:
                raise ParticipantNotFound(f"attention request {attention_id!r} was not sent to you")
        if participant_id in r.acks:
            return r, False
        r.acks[participant_id] = now
        return r, True
