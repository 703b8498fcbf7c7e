"""Breakout rooms: breakouts_start, breakouts_broadcast, breakouts_move, breakouts_end and the rest.

Handlers parse, call the live feature (signaling/rooms/live_breakouts.py, rules in breakouts.py)
and answer; every host request declares Action.BREAKOUTS, checked before its parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from signaling.dispatcher import Reply, Route
from signaling.errors import InvalidMessage
from signaling.messages import Id, Request, Text
from signaling.rooms import Action
from signaling.rooms.breakouts import Assignment
from signaling.rooms.live_breakouts import breakouts_of

if TYPE_CHECKING:
    from signaling.ws.session import Session

Seconds = Annotated[float, msgspec.Meta(gt=0, le=4 * 3600)]
Countdown = Annotated[float, msgspec.Meta(ge=0, le=600)]
BreakoutId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class RoomSpec(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(max_length=60)] = ""
    participant_ids: Annotated[list[Id], msgspec.Meta(max_length=2000)] | None = None


class BreakoutsPrepare(Request):
    rooms: Annotated[list[RoomSpec], msgspec.Meta(max_length=50)] | None = None
    count: Annotated[int, msgspec.Meta(ge=2, le=50)] | None = None  # instead of rooms: K groups named 1..K
    assign: Literal["manual", "auto", "random", "self"] = "manual"
    seed: int | None = None
    cap: Annotated[int, msgspec.Meta(ge=1, le=2000)] | None = None
    template_id: Id | None = None


class BreakoutsStart(BreakoutsPrepare):
    duration_s: Seconds | None = None
    record_groups: bool = False  # while the lesson is recorded, each group has its own recording too


class BreakoutsBroadcast(Request):
    text: Annotated[str, msgspec.Meta(max_length=500)]


class BreakoutsMove(Request):
    participant_id: Id
    breakout_id: BreakoutId | None  # null: back to the main room


class BreakoutsEnd(Request):
    countdown_s: Countdown | None = None
    breakout_id: BreakoutId | None = None  # close this group alone, now


class BreakoutsExtend(Request):
    seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)]


class BreakoutsJoin(Request):
    breakout_id: BreakoutId | None  # null: back to the main room
    listen_only: bool = False


class BreakoutsSpeakAll(Request):
    on: bool


class BreakoutsHelpDone(Request):
    participant_id: Id


class BreakoutsTemplateSave(Request):
    name: Annotated[str, msgspec.Meta(max_length=60)]
    class_id: Text | None = None


class BreakoutsTemplates(Request):
    class_id: Text | None = None


class BreakoutsState(Request):
    pass


class BreakoutsHelp(Request):
    pass


class BreakoutsChoose(Request):
    breakout_id: BreakoutId


class BreakoutsChat(Request):
    text: Annotated[str, msgspec.Meta(max_length=2000)]


def _rooms(req: BreakoutsPrepare) -> list[tuple[str, list[str] | None]]:
    if req.rooms is not None and req.count is not None:
        raise InvalidMessage("give either 'rooms' or 'count', not both")
    if req.count is not None:
        return [(f"Группа {i}", None) for i in range(1, req.count + 1)]
    return [(r.name, r.participant_ids) for r in req.rooms or ()]


async def breakouts_prepare(session: Session, req: BreakoutsPrepare) -> Reply:
    live = session.room
    b = await breakouts_of(live).prepare(_rooms(req), assign=Assignment(req.assign), seed=req.seed, cap=req.cap,
                                         template_id=req.template_id)
    return {"breakouts": b.to_json(live.clock())}


async def breakouts_start(session: Session, req: BreakoutsStart) -> Reply:
    """With rooms (or count, or a template): make them and open at once; without: open the prepared ones."""
    live = session.room
    feature = breakouts_of(live)
    if req.rooms is not None or req.count is not None or req.template_id is not None:
        await feature.prepare(_rooms(req), assign=Assignment(req.assign), seed=req.seed, cap=req.cap,
                              template_id=req.template_id)
    b = await feature.start(req.duration_s, record_groups=req.record_groups)
    return {"breakouts": b.to_json(live.clock())}


async def breakouts_broadcast(session: Session, req: BreakoutsBroadcast) -> Reply:
    return await breakouts_of(session.room).broadcast(session.participant, req.text)


async def breakouts_move(session: Session, req: BreakoutsMove) -> Reply:
    old = await breakouts_of(session.room).move(req.participant_id, req.breakout_id)
    return {"from": old, "to": req.breakout_id}


async def breakouts_end(session: Session, req: BreakoutsEnd) -> Reply:
    return await breakouts_of(session.room).end(session.participant, countdown_s=req.countdown_s,
                                                group_id=req.breakout_id)


async def breakouts_extend(session: Session, req: BreakoutsExtend) -> Reply:
    return {"ends_at": await breakouts_of(session.room).extend(req.seconds)}


async def breakouts_join(session: Session, req: BreakoutsJoin) -> Reply:
    await breakouts_of(session.room).visit(session.participant, req.breakout_id, req.listen_only)
    return {"breakout_id": req.breakout_id, "listen_only": req.listen_only}


async def breakouts_speak_all(session: Session, req: BreakoutsSpeakAll) -> Reply:
    await breakouts_of(session.room).speak_to_all(session.participant, req.on)
    return {"on": req.on}


async def breakouts_help_done(session: Session, req: BreakoutsHelpDone) -> Reply:
    await breakouts_of(session.room).help_done(req.participant_id)
    return {}


async def breakouts_template_save(session: Session, req: BreakoutsTemplateSave) -> Reply:
    tpl = await breakouts_of(session.room).save_template(req.name, req.class_id)
    return {"template": tpl.to_json()}


async def breakouts_templates(session: Session, req: BreakoutsTemplates) -> Reply:
    feature = breakouts_of(session.room)
    found = await feature.store.templates(feature.class_id(req.class_id))
    return {"templates": [t.to_json() for t in found]}


async def breakouts_state(session: Session, _: BreakoutsState) -> Reply:
    return {"breakouts": breakouts_of(session.room).state_for(session)}


async def breakouts_help(session: Session, _: BreakoutsHelp) -> Reply:
    return await breakouts_of(session.room).ask_help(session.participant)


async def breakouts_choose(session: Session, req: BreakoutsChoose) -> Reply:
    await breakouts_of(session.room).choose(session.participant, req.breakout_id)
    return {"breakout_id": req.breakout_id}


async def breakouts_chat(session: Session, req: BreakoutsChat) -> Reply:
    return await breakouts_of(session.room).chat(session.participant, req.text)


ROUTES: dict[str, Route[Any]] = {
    # hosts and co-hosts
    "breakouts_prepare": Route(BreakoutsPrepare, breakouts_prepare, action=Action.BREAKOUTS),
    "breakouts_start": Route(BreakoutsStart, breakouts_start, action=Action.BREAKOUTS),
    "breakouts_broadcast": Route(BreakoutsBroadcast, breakouts_broadcast, action=Action.BREAKOUTS),
    "breakouts_move": Route(BreakoutsMove, breakouts_move, action=Action.BREAKOUTS),
    "breakouts_end": Route(BreakoutsEnd, breakouts_end, action=Action.BREAKOUTS),
    "breakouts_extend": Route(BreakoutsExtend, breakouts_extend, action=Action.BREAKOUTS),
    "breakouts_join": Route(BreakoutsJoin, breakouts_join, action=Action.BREAKOUTS),
    "breakouts_speak_all": Route(BreakoutsSpeakAll, breakouts_speak_all, action=Action.BREAKOUTS),
    "breakouts_help_done": Route(BreakoutsHelpDone, breakouts_help_done, action=Action.BREAKOUTS),
    "breakouts_template_save": Route(BreakoutsTemplateSave, breakouts_template_save, action=Action.BREAKOUTS),
    "breakouts_templates": Route(BreakoutsTemplates, breakouts_templates, action=Action.BREAKOUTS),
    # everyone
    "breakouts_state": Route(BreakoutsState, breakouts_state),
    "breakouts_help": Route(BreakoutsHelp, breakouts_help, action=Action.BREAKOUT_HELP),
    "breakouts_choose": Route(BreakoutsChoose, breakouts_choose, action=Action.BREAKOUT_CHOOSE),
    "breakouts_chat": Route(BreakoutsChat, breakouts_chat, action=Action.CHAT),
}
