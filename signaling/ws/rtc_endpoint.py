"""GET /v1/rtc?token=...: authenticate, admit (or queue), then run the session."""

from __future__ import annotations

import logging

from aiohttp import web

from signaling.app_keys import CLOCK, DISPATCH, METRICS, ROOMS, SETTINGS, TOKENS
from signaling.auth import TokenError
from signaling.cluster.join import route_join
from signaling.errors import ApiError, RoomEnded, RoomNotFound
from signaling.rooms import EntryRefused, Identity, RoomClosed, RoomError, RoomFull, SeatTaken
from signaling.ws.close_codes import CloseCode
from signaling.ws.session import Session

log = logging.getLogger("urok.rtc")

_ROOM_ERROR_CLOSE: dict[type[Exception], CloseCode] = {
    RoomFull: CloseCode.ROOM_FULL,
    RoomClosed: CloseCode.ROOM_ENDED,
    RoomEnded: CloseCode.ROOM_ENDED,
    EntryRefused: CloseCode.ENTRY_REFUSED,
    RoomNotFound: CloseCode.ROOM_NOT_FOUND,
    SeatTaken: CloseCode.ALREADY_CONNECTED,
}


async def _refuse(request: web.Request, ws: web.WebSocketResponse, code: CloseCode,
                  err_code: str, message: str) -> web.WebSocketResponse:
    request.app[METRICS].ws_refused.labels(code=str(int(code))).inc()
    request.app[METRICS].errors.labels(code=err_code).inc()
    await ws.send_json({"event": "error", "error": {"code": err_code, "message": message}})
    await ws.close(code=int(code), message=message.encode()[:120])
    return ws


async def rtc_handler(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    settings = app[SETTINGS]
    ws = web.WebSocketResponse(heartbeat=settings.ws_heartbeat_s, max_msg_size=settings.ws_max_message_bytes)
    await ws.prepare(request)
    try:
        grant = app[TOKENS].verify_access(request.query.get("token", ""), room_id=request.query.get("room"))
    except TokenError as e:
        return await _refuse(request, ws, CloseCode.UNAUTHORIZED, "unauthorized", str(e))
    if await route_join(request, ws, grant.room_id):  # several workers: relayed to the room's (signaling/cluster)
        return ws
    rooms = app[ROOMS]
    who = Identity(identity=grant.identity, name=grant.name, role=grant.role, registered=grant.registered,
                   family_name=grant.family_name, given_name=grant.given_name)
    live = None
    try:
        live = await rooms.open(grant.room_id, create=settings.rooms_created_by_token)
        participant = live.room.admit_or_queue(who, app[CLOCK](), connected=live.connected(grant.identity))
    except (ApiError, RoomError) as e:
        if live is not None:
            rooms.release_if_empty(live)  # opened for nobody: do not keep serving it
        code = _ROOM_ERROR_CLOSE.get(type(e), CloseCode.INTERNAL)
        return await _refuse(request, ws, code, e.code, e.message)
    session = Session(ws, room=live, participant=participant, settings=settings, metrics=app[METRICS],
                      table=app[DISPATCH])
    app[METRICS].ws_connections.inc()
    session.start()
    session.log.info("connected (%s)", participant.state.value)
    try:
        await live.attach(session)
        await session.read_loop()
    finally:
        session.closing = True
        await live.detach(session)
        await session.stop_writer()
        if not ws.closed:
            await ws.close()
        rooms.release_if_empty(live)
        session.log.info("disconnected (close code %s)", ws.close_code)
    return ws
