"""Wires the lessons service into the app (app keys, event subscriptions, lifecycle)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from signaling.app_keys import CLOCK, EVENTS, ROOMS, SETTINGS, STORE, TOKENS
from signaling.lessons.lesson_service import LessonService
from signaling.lessons.lesson_store import LessonStore, MemoryLessonStore
from signaling.lessons.sql_lesson_store import SqlLessonStore
from signaling.store.sql_store import SqlStore

LESSONS = web.AppKey("lessons", LessonService)


def make_lesson_store(store: object) -> LessonStore:
    """The lessons live where the rooms do: on the SQL store's engine, or in memory."""
    if isinstance(store, SqlStore):
        sql = store
        return SqlLessonStore(lambda: sql.engine)
    return MemoryLessonStore()


def setup_lessons(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""
    lessons = make_lesson_store(app[STORE])
    service = LessonService(lessons, app[ROOMS], app[TOKENS], app[SETTINGS], clock=app[CLOCK], events=app[EVENTS])
    app[LESSONS] = service
    app[EVENTS].subscribe(service.on_event)  # room_ended -> attendance_ready

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await lessons.open()
        yield
        await service.close()
        await lessons.close()

    app.cleanup_ctx.append(lifecycle)

    async def watch_room_ends(app: web.Application) -> None:
        # rooms whose end passed while the server was down end now, and the others get a deadline,
        # so their room_ended and attendance_ready go out.  on_startup runs after every feature's
        # cleanup_ctx has started (aiohttp runs those first): the webhook outbox is open by then.
        await app[ROOMS].watch_ends()

    app.on_startup.append(watch_room_ends)

    async def report_before_stop(app: web.Application) -> None:
        # on_shutdown runs before any cleanup_ctx unwinds: the reports of rooms that just ended
        # reach the webhook outbox while it is still open (it closes before this feature's
        # cleanup, being set up after it), and no deadline ends a room after that
        app[ROOMS].stop_watching()
        await service.close()

    app.on_shutdown.append(report_before_stop)
