"""GET /v1/rtc?token=...: authenticate, admit (or queue), then run the session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from signaling.app_keys import CLOCK, DISPATCH, METRICS, ROOMS, SETTINGS, TOKENS
from signaling.auth import AccessGrant, TokenError
from signaling.cluster.join import route_join
from signaling.cluster.relay import TRY_AGAIN
from signaling.errors import ApiError, RoomEnded, RoomNotFound
from signaling.rooms import (
    EntryRefused,
    Identity,
    ParticipantState,
    RoomClosed,
    RoomError,
    RoomFull,
    SeatTaken,
)
from signaling.ws.close_codes import CloseCode
from signaling.ws.join_gate import JOIN_GATE, JoinRefused, JoinTicket
from signaling.ws.live_room import LiveRoom
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


# a join's slot is held until its media is up, at most this long (a client that never answers, or
# a room with nothing to receive yet, does not keep the queue waiting)
MEDIA_HOLD_S = 5.0
EARLY_FRAMES = 40  # frames a queued client may send before its welcome; they are handled after it


async def _refuse(request: web.Request, ws: web.WebSocketResponse, code: int,
                  err_code: str, message: str, **extra: float) -> web.WebSocketResponse:
    request.app[METRICS].ws_refused.labels(code=str(int(code))).inc()
    request.app[METRICS].errors.labels(code=err_code).inc()
    await ws.send_json({"event": "error", "error": {"code": err_code, "message": message, **extra}})
    await ws.close(code=int(code), message=message.encode()[:120])
    return ws


async def _wait_turn(ws: web.WebSocketResponse, ticket: JoinTicket, early: list[str]) -> bool:
    """A queued join: read the socket meanwhile (pongs, a close, early requests kept for after the
    welcome) until the gate admits it.  False: the client went away; JoinRefused: waited too long."""
    waiter = asyncio.ensure_future(ticket.wait())
    reader: asyncio.Future[Any] | None = None
    try:
        while not waiter.done():
            reader = asyncio.ensure_future(ws.receive())
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                break
            msg = reader.result()
            reader = None
            if msg.type is WSMsgType.TEXT:
                if len(early) < EARLY_FRAMES:
                    early.append(msg.data)
            elif msg.type is not WSMsgType.BINARY:  # CLOSE, CLOSED, ERROR: gone
                return False
        waiter.result()  # JoinRefused after the timeout
        return True
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if not waiter.done():
            waiter.cancel()


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
    # join admission (join_gate.py): hosts, co-hosts and a participant coming back to its seat pass
    # at once; the others wait their turn while this process is busy
    served = rooms.live.get(grant.room_id)
    seat = served.room.by_identity(grant.identity) if served is not None else None
    back = seat is not None and seat.state is ParticipantState.JOINED

    def queued(position: int, estimate_s: float) -> None:
        told.append(asyncio.ensure_future(ws.send_json(
            {"event": "join_queued", "position": position, "estimate_s": estimate_s})))

    told: list[asyncio.Future[None]] = []
    early: list[str] = []
    try:
        ticket = app[JOIN_GATE].enter(bypass=grant.role.is_moderator or back, on_update=queued)
    except JoinRefused as e:  # the queue is full
        return await _refuse(request, ws, TRY_AGAIN, e.code, e.message, retry_after_s=e.retry_after_s)
    try:  # the slot is freed after the join's work (in _join), or here whatever ends the wait
        if not ticket.admitted:
            try:
                if not await _wait_turn(ws, ticket, early):
                    return ws  # left the queue
            except JoinRefused as e:  # waited too long
                await asyncio.gather(*told, return_exceptions=True)
                return await _refuse(request, ws, TRY_AGAIN, e.code, e.message, retry_after_s=e.retry_after_s)
            await asyncio.gather(*told, return_exceptions=True)  # every join_queued before the welcome
        return await _join(request, ws, grant, ticket, early)
    finally:
        ticket.release()
        for f in told:
            f.cancel()


async def _free_when_settled(live: LiveRoom, session: Session, ticket: JoinTicket) -> None:
    """Frees the join's slot once its media is set up (LiveRoom.settled), MEDIA_HOLD_S at most."""
    try:
        await asyncio.wait_for(live.settled(session), MEDIA_HOLD_S)
    except TimeoutError:
        pass
    finally:
        ticket.release()


async def _join(request: web.Request, ws: web.WebSocketResponse, grant: AccessGrant, ticket: JoinTicket,
                early: list[str]) -> web.WebSocketResponse:
    """The join itself, holding a slot of the gate until the welcome and the features' join work
    (media endpoints, the tracks to receive) are done."""
    app = request.app
    settings = app[SETTINGS]
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
    settle: asyncio.Future[None] | None = None
    try:
        await live.attach(session)
        # the slot is held until the media is up (join_gate.py: the handshakes are most of a join)
        settle = asyncio.ensure_future(_free_when_settled(live, session, ticket))
        for data in early:  # sent while queued, before the welcome
            await session.handle_frame(data)
        await session.read_loop()
    finally:
        if settle is not None:
            settle.cancel()
        ticket.release()
        session.closing = True
        await live.detach(session)
        await session.stop_writer()
        if not ws.closed:
            await ws.close()
        rooms.release_if_empty(live)
        session.log.info("disconnected (close code %s)", ws.close_code)
    return ws
