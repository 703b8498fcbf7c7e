"""Wires the BigBlueButton API (/bigbluebutton/api/...) into the app when bbb_secret is set.

Without the secret nothing is added (the paths answer 404 like any unknown path).  The meetings'
store follows the room store: SQL on its engine (the same database and pool, used once the room
store's lifecycle has opened it), or in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS, SETTINGS, STORE, TOKENS
from signaling.bbb.bbb_api import PREFIX, BbbApi, version
from signaling.bbb.meetings import MeetingStore, MemoryMeetingStore, SqlMeetingStore
from signaling.store.sql_store import SqlStore

BBB_API = web.AppKey("bbb_api", BbbApi)


async def handle(request: web.Request) -> web.StreamResponse:
    return await request.app[BBB_API].handle(request)


def setup_bbb(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""
    settings = app[SETTINGS]
    if not settings.bbb_secret:
        return
    store = app[STORE]
    meetings: MeetingStore = (SqlMeetingStore(lambda: store.engine) if isinstance(store, SqlStore)
                              else MemoryMeetingStore())
    app[BBB_API] = BbbApi(secret=settings.bbb_secret, algorithms=settings.bbb_checksum_algorithms,
                          meetings=meetings, rooms=app[ROOMS], tokens=app[TOKENS], base_url=settings.base_url,
                          token_ttl_s=settings.token_ttl_s, clock=app[CLOCK])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await meetings.open()
        yield
        await meetings.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(PREFIX, version, name="bbb_version")
    app.router.add_get(PREFIX + "/", version, name="bbb_version_slash")
    app.router.add_route("GET", PREFIX + "/{call}", handle, name="bbb_call")
    app.router.add_route("POST", PREFIX + "/{call}", handle, name="bbb_call_post")
