"""The wire between a room's owner and an edge worker (a room spanning workers, edge_link.py and
edge_room.py): JSON text frames on one WebSocket per (room, edge), in order.

The owner sends requests ``{"id": n, "op": ..., ...}``; the edge answers each, in the order it
took them, with ``{"re": n, "ok": true, ...}`` or ``{"re": n, "error": {"code", "message"}}``
(``code``: the core's SfuError code, or ``invalid_message``).  The edge sends events
``{"event": "state", "sub": ..., "state": ...}`` when a subscriber connection's state changes.
Requests are parsed here into typed values before the edge acts on them; a frame that is not one
is answered with an error and changes nothing.

``sub`` names one subscriber connection: ``<participant_id>:<connection>`` as on the owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EDGE_PATH = "/_cluster/edge"
MAX_FRAME = 256 * 1024  # an SDP offer of a large room's subscriber (hundreds of m-lines) fits
QUALITIES = ("low", "medium", "high")
# WebSocket pings between owner and edge: a peer that died is seen at once (its socket closes); this
# is for a hung one or a lost machine, and is long enough that a loop lagging in a join storm (the
# pong waits for it) does not cut every participant on the edge
HEARTBEAT_S = 10.0


class EdgeMessageError(Exception):
    """A frame that is not a request of this protocol."""

    code = "invalid_message"


def _text(d: Mapping[str, Any], key: str, limit: int = 200) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise EdgeMessageError(f"{key}: a non-empty string of at most {limit} characters")
    return v


def _address(d: Mapping[str, Any]) -> tuple[str, int]:
    v = d.get("address")
    if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
            and 0 < v[1] < 65536):
        raise EdgeMessageError("address: [ip, port]")
    return v[0], v[1]


def _object(d: Mapping[str, Any], key: str, *, optional: bool = False) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, dict):
        raise EdgeMessageError(f"{key}: an object")
    return v


@dataclass(frozen=True, slots=True)
class Open:
    """Make the edge's router for the room and its end of the pipe (answer: address, srtp)."""

    room_id: str
    srtp: bool


@dataclass(frozen=True, slots=True)
class Connect:
    """The owner's end of the pipe: where it listens (and its SRTP keys)."""

    address: tuple[str, int]
    srtp: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Pipe:
    """A producer of the owner now comes over the pipe (PipeConsumer.description)."""

    description: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Unpipe:
    producer_id: str


@dataclass(frozen=True, slots=True)
class Join:
    sub: str


@dataclass(frozen=True, slots=True)
class Leave:
    sub: str


@dataclass(frozen=True, slots=True)
class Offer:
    """Create and apply the subscriber's next offer (answer: sdp)."""

    sub: str


@dataclass(frozen=True, slots=True)
class Answer:
    sub: str
    sdp: str


@dataclass(frozen=True, slots=True)
class Candidate:
    sub: str
    candidate: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConsumerOp:
    """consume / stop / pause / resume / quality / replace of one track for one subscriber."""

    op: str
    sub: str
    producer_id: str
    quality: str = ""
    source_id: str = ""


EdgeRequest = Open | Connect | Pipe | Unpipe | Join | Leave | Offer | Answer | Candidate | ConsumerOp


def _consumer_op(op: str) -> Any:
    def parse(d: Mapping[str, Any]) -> ConsumerOp:
        quality = source_id = ""
        if op == "quality":
            quality = _text(d, "quality")
            if quality not in QUALITIES:
                raise EdgeMessageError(f"quality: one of {', '.join(QUALITIES)}")
        if op == "replace":
            source_id = _text(d, "source_id")
        return ConsumerOp(op, _text(d, "sub"), _text(d, "producer_id"), quality, source_id)

    return parse


_PARSERS: dict[str, Any] = {
    "open": lambda d: Open(_text(d, "room_id"), bool(d.get("srtp", False))),
    "connect": lambda d: Connect(_address(d), _object(d, "srtp", optional=True)),
    "pipe": lambda d: Pipe(_object(d, "description") or {}),
    "unpipe": lambda d: Unpipe(_text(d, "producer_id")),
    "join": lambda d: Join(_text(d, "sub")),
    "leave": lambda d: Leave(_text(d, "sub")),
    "offer": lambda d: Offer(_text(d, "sub")),
    "answer": lambda d: Answer(_text(d, "sub"), _text(d, "sdp", MAX_FRAME)),
    "candidate": lambda d: Candidate(_text(d, "sub"), _object(d, "candidate", optional=True)),
    **{op: _consumer_op(op) for op in ("consume", "stop", "pause", "resume", "quality", "replace")},
}


def parse_request(frame: Any) -> tuple[int, EdgeRequest]:
    """(request id, the request) of one frame; EdgeMessageError names what is wrong."""
    if not isinstance(frame, dict):
        raise EdgeMessageError("a request is a JSON object")
    rid = frame.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise EdgeMessageError("id: an integer")
    parser = _PARSERS.get(frame.get("op"))  # type: ignore[arg-type]
    if parser is None:
        raise EdgeMessageError(f"op: one of {', '.join(sorted(_PARSERS))}")
    request: EdgeRequest = parser(frame)
    return rid, request
