"""Media requests: publish, subscriber_answer, ice_candidate, subscribe, unsubscribe, set_muted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from sfu import SfuError
from sfu.sdp import check_candidate
from signaling.dispatcher import Reply, Route
from signaling.errors import InvalidMessage
from signaling.media.media_feature import MediaFeature, sdp_error
from signaling.messages import IceCandidate, Publish, SetMuted, Subscribe, SubscriberAnswer, Unsubscribe

if TYPE_CHECKING:
    from signaling.ws.session import Session


def feature(session: Session) -> MediaFeature:
    for f in session.room.features:
        if isinstance(f, MediaFeature):
            return f
    raise InvalidMessage("this server has no media plane")  # pragma: no cover - always attached


async def publish(session: Session, req: Publish) -> Reply:
    return await feature(session).publish(session, req.sdp, dict(req.sources))


async def subscriber_answer(session: Session, req: SubscriberAnswer) -> Reply:
    try:
        await MediaFeature.media_of(session).accept_answer(req.sdp)
    except SfuError as e:
        raise sdp_error(session, "sdp", e) from None
    return None


async def ice_candidate(session: Session, req: IceCandidate) -> Reply:
    cand = None if req.candidate is None or not req.candidate.candidate else msgspec.to_builtins(req.candidate)
    try:
        pm = MediaFeature.media_of(session)
        if req.candidate is not None and req.candidate.candidate:
            # our parser names what is wrong (invalid_sdp); aiortc's would only say it could not
            check_candidate(req.candidate.candidate)
        await pm.add_candidate(req.target, cand)
    except SfuError as e:
        raise sdp_error(session, "candidate", e) from None
    return None


async def subscribe(session: Session, req: Subscribe) -> Reply:
    return await feature(session).subscribe(session, [(t.track_id, t.quality) for t in req.tracks])


async def unsubscribe(session: Session, req: Unsubscribe) -> Reply:
    return await feature(session).unsubscribe(session, list(req.track_ids))


async def set_muted(session: Session, req: SetMuted) -> Reply:
    return await feature(session).set_muted(session, req.source, req.muted)


async def _check_publish(session: Session) -> None:
    feature(session).check_may_publish(session)


ROUTES: dict[str, Route[Any]] = {
    "publish": Route(Publish, publish, precheck=_check_publish),
    "subscriber_answer": Route(SubscriberAnswer, subscriber_answer),
    "ice_candidate": Route(IceCandidate, ice_candidate),
    "subscribe": Route(Subscribe, subscribe),
    "unsubscribe": Route(Unsubscribe, unsubscribe),
    "set_muted": Route(SetMuted, set_muted),
}
