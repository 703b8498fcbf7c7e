"""Raised hands (an ordered queue) and reactions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.control_messages import ListHands, LowerHand, RaiseHand, React
from signaling.dispatcher import Reply, Route
from signaling.errors import InvalidMessage
from signaling.rooms import Action

if TYPE_CHECKING:
    from signaling.ws.session import Session


async def raise_hand(session: Session, _: RaiseHand) -> Reply:
    live = session.room
    hand, new = live.room.raise_hand(session.participant, live.clock())
    event = {"event": "hand_raised", "participant_id": hand.participant_id, "raised_at": hand.raised_at,
             "position": hand.position}
    if new:
        live.to_place(event, of=session.participant_id)  # while in breakout groups: the group and the hosts
        await live.store.save_room(live.room)  # the hands' history is part of the lesson's record
    return {"raised_at": hand.raised_at, "position": hand.position}


async def lower_hand(session: Session, req: LowerHand) -> Reply:
    if req.all_ and req.participant_id is not None:
        raise InvalidMessage("give either 'participant_id' or 'all': true, not both")
    live = session.room
    lowered = live.room.lower_hands(session.participant, req.participant_id, req.all_, live.clock())
    by = session.participant_id
    for pid in lowered:
        live.to_place({"event": "hand_lowered", "participant_id": pid, "by": None if pid == by else by}, of=pid)
    if lowered:
        await live.store.save_room(live.room)
    return {"lowered": lowered}


async def list_hands(session: Session, _: ListHands) -> Reply:
    session.room.room.hand_queue(session.participant)
    return {"hands": session.room.hands_json()}


async def react(session: Session, req: React) -> Reply:
    live = session.room
    now = live.clock()
    emoji = live.room.react(session.participant, req.emoji, now)
    live.to_place({"event": "reaction", "participant_id": session.participant_id, "emoji": emoji, "sent_at": now},
                  of=session.participant_id)
    return {}


ROUTES: dict[str, Route[Any]] = {
    "raise_hand": Route(RaiseHand, raise_hand, action=Action.RAISE_HAND),
    "lower_hand": Route(LowerHand, lower_hand),  # own hand: anyone; someone else's: checked by the domain
    "list_hands": Route(ListHands, list_hands, action=Action.VIEW_HANDS),
    "react": Route(React, react, action=Action.REACT),
}
