"""Who has noise suppression on: the room's setting, the host's choice per person, each own switch.

The rule (the host's choice wins):
1. a host's (or co-host's) choice for one participant, if made since the room's setting last changed;
2. else the room's setting ``noise_suppression`` when on (the host turned it on for everyone);
3. else the participant's own switch (off until switched on).
A participant whose state the host decided cannot switch it the other way (:class:`NoiseForced`).
Pure: no room, no media.
"""

from __future__ import annotations

from signaling.rooms.errors import PermissionDenied

__all__ = ["NoiseForced", "NoisePolicy"]


class NoiseForced(PermissionDenied):
    """The participant's own switch against the host's choice (wire code ``forbidden``)."""


class NoisePolicy:
    def __init__(self, room_on: bool = False) -> None:
        self.room_on = room_on
        self._own: dict[str, bool] = {}
        self._host: dict[str, bool] = {}

    def enabled(self, participant_id: str) -> bool:
        host = self._host.get(participant_id)
        if host is not None:
            return host
        return self.room_on or self._own.get(participant_id, False)

    def forced(self, participant_id: str) -> bool:
        """Whether the host decided this participant's state (the own switch is then locked)."""
        return participant_id in self._host or self.room_on

    def set_own(self, participant_id: str, enabled: bool) -> bool:
        """The participant's own switch; returns the state now.  NoiseForced if the host decided
        otherwise (the same state as the host's is accepted and remembered)."""
        if self.forced(participant_id) and enabled != self.enabled(participant_id):
            state = "on" if self.enabled(participant_id) else "off"
            raise NoiseForced(f"the host has turned noise suppression {state} for you")
        self._own[participant_id] = enabled
        return self.enabled(participant_id)

    def set_by_host(self, participant_id: str, enabled: bool) -> bool:
        self._host[participant_id] = enabled
        return enabled

    def set_room(self, enabled: bool) -> None:
        """The room's setting; earlier choices of the host for single participants end."""
        self.room_on = enabled
        self._host.clear()

    def decided(self) -> set[str]:
        """Participants with a choice of their own or of the host."""
        return set(self._own) | set(self._host)

    def to_json(self, participant_id: str) -> dict[str, object]:
        return {"participant_id": participant_id, "enabled": self.enabled(participant_id),
                "forced": self.forced(participant_id)}
