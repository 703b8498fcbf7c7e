"""The room's chat: public and private messages, deletion as a tombstone, history for late joiners.

Texts are stored and sent as plain text; nothing here (or anywhere on the server) builds HTML."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from signaling.rooms.errors import InvalidInput, ParticipantNotFound

MAX_CHAT_CHARS = 2000
HISTORY_PUBLIC = 200  # public messages a late joiner gets
HISTORY_PRIVATE = 200  # and at most this many of their own private ones
KEEP_MESSAGES = 5000  # the log keeps this many messages in all (oldest dropped first)


@dataclass(slots=True)
class ChatMessage:
    message_id: str
    from_id: str
    from_name: str
    text: str
    sent_at: float
    to_id: str | None = None
    to_name: str | None = None
    deleted: bool = False

    @property
    def private(self) -> bool:
        return self.to_id is not None

    def visible_to(self, participant_id: str) -> bool:
        return self.to_id is None or participant_id in (self.from_id, self.to_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "from": {"participant_id": self.from_id, "name": self.from_name},
            "to": None if self.to_id is None else {"participant_id": self.to_id, "name": self.to_name},
            "text": "" if self.deleted else self.text,
            "sent_at": self.sent_at,
            "deleted": self.deleted,
        }


def clean_text(text: str) -> str:
    """The text as it will be stored: surrounding whitespace trimmed; empty or too long is refused."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInput("a chat message needs some text")
    if len(stripped) > MAX_CHAT_CHARS:
        raise InvalidInput(f"a chat message has at most {MAX_CHAT_CHARS} characters (this one has {len(stripped)})")
    return stripped


class ChatLog:
    def __init__(self, *, keep: int = KEEP_MESSAGES) -> None:
        self._messages: OrderedDict[str, ChatMessage] = OrderedDict()
        self._keep = keep

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, message: ChatMessage) -> ChatMessage:
        self._messages[message.message_id] = message
        while len(self._messages) > self._keep:
            self._messages.popitem(last=False)
        return message

    def get(self, message_id: str) -> ChatMessage:
        m = self._messages.get(message_id)
        if m is None:
            raise ParticipantNotFound(f"no chat message {message_id!r}")
        return m

    def delete(self, message_id: str) -> ChatMessage:
        """Replace the message by a tombstone for everyone, for good.  Idempotent."""
        m = self.get(message_id)
        m.deleted, m.text = True, ""
        return m

    def history_for(self, participant_id: str, *, public: int = HISTORY_PUBLIC,
                    private: int = HISTORY_PRIVATE) -> list[ChatMessage]:
        """The last ``public`` public messages and the last ``private`` private ones this participant
        sent or received, oldest first (tombstones included: a deleted message stays deleted)."""
        pub: list[ChatMessage] = []
        priv: list[ChatMessage] = []
        for m in reversed(self._messages.values()):
            if m.to_id is None:
                if len(pub) < public:
                    pub.append(m)
            elif m.visible_to(participant_id) and len(priv) < private:
                priv.append(m)
            if len(pub) >= public and len(priv) >= private:
                break
        return sorted(pub + priv, key=lambda m: (m.sent_at, m.message_id))

    def messages(self) -> list[ChatMessage]:
        return list(self._messages.values())
