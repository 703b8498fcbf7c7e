"""Chat: public and private messages, deletion by hosts (a tombstone for everyone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.control_messages import ChatDelete, ChatSend
from signaling.dispatcher import Reply, Route
from signaling.rooms import Action

if TYPE_CHECKING:
    from signaling.ws.session import Session


async def chat_send(session: Session, req: ChatSend) -> Reply:
    live = session.room
    msg = live.room.chat_send(session.participant, req.text, req.to, live.clock())
    event = {"event": "chat_message", "message": msg.to_json()}
    if msg.to_id is None:
        live.broadcast(event)
    else:
        live.broadcast(event, to=[msg.from_id, msg.to_id])
    await live.store.save_room(live.room)  # marks it changed: the store's writer writes it behind
    return {"message_id": msg.message_id, "sent_at": msg.sent_at}


async def chat_delete(session: Session, req: ChatDelete) -> Reply:
    live = session.room
    msg = live.room.chat_delete(session.participant, req.message_id)
    event = {"event": "chat_deleted", "message_id": msg.message_id, "by": session.participant_id}
    if msg.to_id is None:
        live.broadcast(event)
    else:
        live.broadcast(event, to=dict.fromkeys([msg.from_id, msg.to_id, session.participant_id]))
    await live.store.save_room(live.room)  # the tombstone: the text leaves the database too
    live.emit("chat_deleted", {"message_id": msg.message_id})  # and the recordings' chat.vtt (recordings/)
    return {}


ROUTES: dict[str, Route[Any]] = {
    # the weakest chat permission is checked first (guests and a locked chat are refused before
    # parsing); the domain then checks public / private / to a host
    "chat_send": Route(ChatSend, chat_send, action=Action.CHAT_TO_HOST),
    "chat_delete": Route(ChatDelete, chat_delete, action=Action.CHAT_DELETE),
}
