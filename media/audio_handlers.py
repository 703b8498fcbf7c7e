"""WebSocket requests of the audio features: the noise suppression switch (../shared/PROTOCOL.md).

``set_noise_suppression {enabled, participant_id?, all?}``:
- without ``participant_id`` (or with one's own): one's own microphone (anyone; ``forbidden`` when
  the host decided the other way).  Reply: ``{participant_id, enabled, forced}``.
- with another's ``participant_id``: the host's choice for that participant (moderators), which
  wins over the participant's own switch.  Reply as above.
- ``all: true`` (no ``participant_id``): the room's setting ``noise_suppression`` (moderators): on
  for everyone (own switches locked), or off (own switches decide).  Reply: the whole state
  ``{room, participants: [...]}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.dispatcher import Reply, Route
from signaling.messages import Id, Request
from signaling.rooms import InvalidState
from signaling.rooms.errors import InvalidInput

from .noise_feature import NoiseFeature, noise_feature_of

if TYPE_CHECKING:
    from signaling.ws.session import Session


class SetNoiseSuppression(Request):
    enabled: bool
    participant_id: Id | None = None
    all: bool = False


def _feature(session: Session) -> NoiseFeature:
    feature = noise_feature_of(session.room)
    if feature is None:
        raise InvalidState("this room has no server audio processing")
    return feature


async def set_noise_suppression(session: Session, req: SetNoiseSuppression) -> Reply:
    feature = _feature(session)
    if req.all:
        if req.participant_id is not None:
            raise InvalidInput("all and participant_id exclude each other")  # invalid_message
        return await feature.set_room(session.participant, req.enabled)  # moderators: checked there
    if req.participant_id is None or req.participant_id == session.participant_id:
        return feature.set_own(session.participant, req.enabled)
    return feature.set_for(session.participant, req.participant_id, req.enabled)


ROUTES: dict[str, Route[Any]] = {
    # the rights depend on the target (own switch: anyone; another's or the room's: moderators)
    "set_noise_suppression": Route(SetNoiseSuppression, set_noise_suppression),
}
