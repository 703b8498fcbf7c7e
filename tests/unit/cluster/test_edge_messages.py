"""The owner -> edge requests of a room spanning workers are parsed into typed values; a frame that
is not one is refused with a message naming the field (signaling/cluster/edge_messages.py)."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.cluster.edge_messages import (
    Answer,
    Candidate,
    Connect,
    ConsumerOp,
    EdgeMessageError,
    Open,
    Pipe,
    parse_request,
)


@pytest.mark.parametrize(("frame", "want"), [
    ({"id": 1, "op": "open", "room_id": "RM_1", "srtp": True}, Open("RM_1", True)),
    ({"id": 2, "op": "connect", "address": ["127.0.0.1", 4000], "srtp": None}, Connect(("127.0.0.1", 4000), None)),
    ({"id": 3, "op": "pipe", "description": {"producer_id": "p"}}, Pipe({"producer_id": "p"})),
    ({"id": 4, "op": "answer", "sub": "anna:1", "sdp": "v=0"}, Answer("anna:1", "v=0")),
    ({"id": 5, "op": "candidate", "sub": "anna:1", "candidate": None}, Candidate("anna:1", None)),
    ({"id": 6, "op": "quality", "sub": "anna:1", "producer_id": "p", "quality": "low"},
     ConsumerOp("quality", "anna:1", "p", quality="low")),
    ({"id": 7, "op": "replace", "sub": "anna:1", "producer_id": "p", "source_id": "q"},
     ConsumerOp("replace", "anna:1", "p", source_id="q")),
    ({"id": 8, "op": "stop", "sub": "anna:1", "producer_id": "p"}, ConsumerOp("stop", "anna:1", "p")),
])
def test_requests_parse_into_typed_values(frame: dict[str, Any], want: object) -> None:
    assert parse_request(frame) == (frame["id"], want)


@pytest.mark.parametrize(("frame", "field"), [
    ([], "JSON object"),
    ({"op": "open", "room_id": "r"}, "id"),
    ({"id": True, "op": "open", "room_id": "r"}, "id"),
    ({"id": 1, "op": "drop_tables"}, "op"),
    ({"id": 1, "op": "open"}, "room_id"),
    ({"id": 1, "op": "connect", "address": ["127.0.0.1", 70000]}, "address"),
    ({"id": 1, "op": "connect", "address": "127.0.0.1:4000"}, "address"),
    ({"id": 1, "op": "pipe", "description": "p"}, "description"),
    ({"id": 1, "op": "quality", "sub": "a", "producer_id": "p", "quality": "ultra"}, "quality"),
    ({"id": 1, "op": "consume", "sub": "a" * 201, "producer_id": "p"}, "sub"),
    ({"id": 1, "op": "candidate", "sub": "a", "candidate": "x"}, "candidate"),
])
def test_a_frame_that_is_no_request_is_refused_naming_the_field(frame: Any, field: str) -> None:
    with pytest.raises(EdgeMessageError, match=field):
        parse_request(frame)
