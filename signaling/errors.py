"""Protocol errors: a stable snake_case code, a message for people, an HTTP status.

Domain errors (signaling.rooms.errors) are mapped to these at the edge; codes never change once
published (docs/protocol.md lists them).
"""

from __future__ import annotations


class ApiError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequest(ApiError):
    code, status = "invalid_request", 400


class InvalidMessage(ApiError):
    code, status = "invalid_message", 400


class UnknownType(ApiError):
    code, status = "unknown_type", 400


class Unauthorized(ApiError):
    code, status = "unauthorized", 401


class Forbidden(ApiError):
    code, status = "forbidden", 403


class NotFound(ApiError):
    code, status = "not_found", 404


class RoomNotFound(ApiError):
    code, status = "room_not_found", 404


class Conflict(ApiError):
    code, status = "conflict", 409


class RoomEnded(ApiError):
    code, status = "room_ended", 410


class PayloadTooLarge(ApiError):
    code, status = "payload_too_large", 413


class UnsupportedMediaType(ApiError):
    code, status = "unsupported_media_type", 415


class RateLimited(ApiError):
    code, status = "rate_limited", 429


class TooManyTracks(ApiError):
    """A publish over the per-source or per-offer limit (docs/protocol.md, Media)."""

    code, status = "too_many_tracks", 400


class InvalidSdp(ApiError):
    """A session description or ICE candidate the client sent (publish, subscriber_answer,
    ice_candidate) that the server refuses; the message names the SDP line where it can
    (docs/protocol.md, Media; issue 21)."""

    code, status = "invalid_sdp", 400


class ServiceUnavailable(ApiError):
    code, status = "unavailable", 503
