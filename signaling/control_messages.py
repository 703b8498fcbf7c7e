"""Typed requests of call control (waiting room, host controls, hands, reactions, chat, attention).

Same rules as signaling/messages.py: parsed once at the edge with msgspec; unknown fields ignored;
wrong types and out-of-range values are ``invalid_message`` naming the field.  ``all`` is a field
name on the wire (``all_`` here)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from signaling.errors import InvalidMessage
from signaling.messages import Id, Request, Source
from signaling.rooms import GuestPolicy, Role

Ids = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=2000)]
Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
ChatText = Annotated[str, msgspec.Meta(max_length=20_000)]  # the room's rule (2000) is checked by the domain
AttentionText = Annotated[str, msgspec.Meta(max_length=1000)]


def one_target(participant_id: str | None, everyone: bool) -> str | None:
    """`participant_id` or `all: true` (None = everyone); exactly one of them."""
    if everyone and participant_id is not None:
        raise InvalidMessage("give either 'participant_id' or 'all': true, not both")
    if not everyone and participant_id is None:
        raise InvalidMessage("give 'participant_id' or 'all': true")
    return participant_id


class Admit(Request):
    participant_ids: Ids | None = None
    all_: bool = msgspec.field(default=False, name="all")


class Deny(Request):
    participant_ids: Ids


class ListWaiting(Request):
    pass


class Mute(Request):
    source: Source
    participant_id: Id | None = None
    all_: bool = msgspec.field(default=False, name="all")


class AllowUnmute(Request):
    participant_id: Id
    allowed: bool = True


class RequestUnmute(Request):
    participant_id: Id
    source: Source = "microphone"


class SetRole(Request):
    participant_id: Id
    role: Role


class Remove(Request):
    participant_id: Id
    ban: bool = False


class SetLock(Request):
    camera: bool | None = None
    microphone: bool | None = None
    screen_share: bool | None = None
    chat: bool | None = None
    private_chat: bool | None = None
    reactions: bool | None = None
    whiteboard: bool | None = None
    self_unmute: bool | None = None
    all_: bool | None = msgspec.field(default=None, name="all")  # the one-click lockdown (on / undo)

    def changes(self) -> dict[str, bool]:
        return {name: value for name in self.__struct_fields__
                if name != "all_" and (value := getattr(self, name)) is not None}


class Lockdown(Request):
    enabled: bool


class EndRoom(Request):
    pass


class SetGuestPolicy(Request):
    guest_policy: GuestPolicy


class Spotlight(Request):
    participant_id: Id | None = None  # None: nobody


class RaiseHand(Request):
    pass


class LowerHand(Request):
    participant_id: Id | None = None
    all_: bool = msgspec.field(default=False, name="all")


class ListHands(Request):
    pass


class React(Request):
    emoji: Emoji


class ChatSend(Request):
    text: ChatText
    to: Id | None = None


class ChatDelete(Request):
    message_id: Id


class Attention(Request):
    participant_id: Id | None = None
    all_: bool = msgspec.field(default=False, name="all")
    text: AttentionText = ""


class AttentionAck(Request):
    attention_id: Id | None = None


class AttentionStatus(Request):
    attention_id: Id
