"""'Are you with us?': a host asks, students acknowledge, the host sees who did and how fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.control_messages import Attention, AttentionAck, AttentionStatus, one_target
from signaling.dispatcher import Reply, Route
from signaling.rooms import Action

if TYPE_CHECKING:
    from signaling.ws.session import Session


async def attention(session: Session, req: Attention) -> Reply:
    target = one_target(req.participant_id, req.all_)
    live = session.room
    # everyone: everyone of the asker's place while breakout groups are open (a host visiting a
    # group asks that group; the record counts only who was asked)
    within = live.place_of(session.participant_id) if target is None else None
    r = live.room.ask_attention(session.participant, target, req.text, live.clock(), within=within)
    live.broadcast({"event": "attention", "attention_id": r.attention_id, "text": r.text,
                    "from": {"participant_id": r.from_id, "name": r.from_name}, "sent_at": r.sent_at},
                   to=list(r.targets))
    await live.store.save_room(live.room)  # the request and its answers are part of the lesson's record
    return {"attention_id": r.attention_id, "targets": len(r.targets)}


async def attention_ack(session: Session, req: AttentionAck) -> Reply:
    live = session.room
    r, new = live.room.ack_attention(session.participant, req.attention_id, live.clock())
    after_ms = r.after_ms(session.participant_id)
    if new:
        live.to_moderators({"event": "attention_acked", "attention_id": r.attention_id,
                            "participant_id": session.participant_id, "name": session.participant.name,
                            "after_ms": after_ms})
        await live.store.save_room(live.room)
    return {"attention_id": r.attention_id, "after_ms": after_ms}


async def attention_status(session: Session, req: AttentionStatus) -> Reply:
    live = session.room
    return live.room.attention_status(session.participant, req.attention_id, live.clock())


ROUTES: dict[str, Route[Any]] = {
    "attention": Route(Attention, attention, action=Action.ATTENTION),
    "attention_ack": Route(AttentionAck, attention_ack, action=Action.ACK_ATTENTION),
    "attention_status": Route(AttentionStatus, attention_status, action=Action.ATTENTION),
}
