"""Typed WebSocket messages, validated at the edge (msgspec).

A frame is one JSON object.  Requests carry ``type`` and an optional ``id`` (echoed in the
response); the rest of the object is converted to the request's model below.  Unknown fields are
ignored so newer clients can talk to older servers; wrong types, missing fields and out-of-range
values are ``invalid_message``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Text = Annotated[str, msgspec.Meta(max_length=200)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Sdp = Annotated[str, msgspec.Meta(min_length=1, max_length=60_000)]
Source = Literal["microphone", "camera", "screen", "screen_audio"]
Quality = Literal["low", "medium", "high"]


class Request(msgspec.Struct, kw_only=True):
    """Base of every request model (fields besides ``id`` and ``type``)."""


class Ping(Request):
    pass


class Leave(Request):
    pass


class ListParticipants(Request):
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class Publish(Request):
    sdp: Sdp
    sources: dict[Annotated[str, msgspec.Meta(max_length=64)], Source]


class SubscriberAnswer(Request):
    sdp: Sdp


class IceCandidateInit(msgspec.Struct, kw_only=True):
    candidate: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    sdpMid: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    usernameFragment: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class IceCandidate(Request):
    target: Literal["publisher", "subscriber"]
    candidate: IceCandidateInit | None = None


class TrackRequest(msgspec.Struct, kw_only=True):
    track_id: Id
    quality: Quality = "high"


class Subscribe(Request):
    tracks: Annotated[list[TrackRequest], msgspec.Meta(max_length=500)]


class Unsubscribe(Request):
    track_ids: Annotated[list[Id], msgspec.Meta(max_length=500)]


class SetMuted(Request):
    source: Source
    muted: bool
