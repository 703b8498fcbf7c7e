"""Lessons for tests, built through the same parser as the REST body."""

from __future__ import annotations

from typing import Any

from signaling.lessons.lesson import Lesson
from signaling.lessons.spec import parse_lesson

NOW = 1_796_000_000.0  # 2026-11-30 (a Monday), before every lesson below


def body(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "external_id": "ejd-7b-alg", "subject": "Алгебра", "class": {"id": "7b", "name": "7Б"},
        "teachers": [{"id": "t-1", "family_name": "Иванова", "given_name": "Мария"}],
        "students": [{"id": "s-1", "family_name": "Петров", "given_name": "Пётр"},
                     {"id": "s-2", "family_name": "Алексеева", "given_name": "Анна", "registered": False}],
        "starts_at": "2026-12-08T09:00:00+03:00", "duration_minutes": 45, "timezone": "Europe/Moscow",
    }
    b.update(overrides)
    return b


def lesson(lesson_id: str = "LS_1", *, now: float = NOW, **overrides: Any) -> Lesson:
    return parse_lesson(body(**overrides), lesson_id=lesson_id, now=now)
