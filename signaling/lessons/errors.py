"""Named errors of the lessons domain; each has a stable wire code and an HTTP status (the REST edge
maps them; ``details`` goes into the error body as it is)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LessonError(Exception):
    code = "lesson_error"
    status = 400

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidLesson(LessonError):
    """A lesson body (or roster, or query) that breaks a rule; the message names the field."""

    code, status = "invalid_lesson", 400


class LessonNotFound(LessonError):
    code, status = "lesson_not_found", 404


class LessonForbidden(LessonError):
    """A teacher token asks for a lesson that is not the teacher's."""

    code, status = "forbidden", 403


class LessonNotOpen(LessonError):
    """Too early: the next occurrence's window has not opened (details: opens_at, starts_at, name)."""

    code, status = "lesson_not_open", 409


class LessonEnded(LessonError):
    """No occurrence is open now and none is to come (or this one's room has ended)."""

    code, status = "lesson_ended", 410


class LessonCancelled(LessonError):
    code, status = "lesson_cancelled", 410
