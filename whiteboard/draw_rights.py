"""Who may draw on a board: the host's choice (everyone, nobody, chosen students: "give the pen").

Hosts and co-hosts always draw.  This rule comes on top of the room's own (Action.DRAW: the
``whiteboard`` lock and the viewer role, signaling/rooms/permissions.py), checked by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DrawMode(StrEnum):
    EVERYONE = "everyone"
    NOBODY = "nobody"
    CHOSEN = "chosen"


@dataclass(slots=True)
class DrawRights:
    mode: DrawMode = DrawMode.EVERYONE
    pens: set[str] = field(default_factory=set)  # participant ids holding a pen (mode CHOSEN)

    def may_draw(self, participant_id: str, *, moderator: bool) -> bool:
        if moderator:
            return True
        if self.mode is DrawMode.EVERYONE:
            return True
        if self.mode is DrawMode.NOBODY:
            return False
        return participant_id in self.pens

    def give_pen(self, participant_id: str, give: bool) -> None:
        """Giving a pen switches to CHOSEN (the others keep what they had only in that mode)."""
        if self.mode is not DrawMode.CHOSEN:
            self.pens = set()
            self.mode = DrawMode.CHOSEN
        if give:
            self.pens.add(participant_id)
        else:
            self.pens.discard(participant_id)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "pens": sorted(self.pens)}

    @classmethod
    def from_json(cls, data: Any) -> DrawRights:
        if not isinstance(data, dict):
            return cls()
        try:
            mode = DrawMode(data.get("mode", "everyone"))
        except ValueError:
            mode = DrawMode.EVERYONE
        pens = data.get("pens", [])
        return cls(mode, {str(p) for p in pens} if isinstance(pens, list) else set())
