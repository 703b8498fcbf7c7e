"""Host controls: waiting room (admit, deny), mute, unmute allowances, roles, removal, locks,
lockdown, ending the lesson.  Parse, call the domain, tell the room."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling.control_messages import (
    Admit,
    AllowUnmute,
    Deny,
    EndRoom,
    ListWaiting,
    Lockdown,
    Mute,
    Remove,
    RequestUnmute,
    SetGuestPolicy,
    SetLock,
    SetRole,
    Spotlight,
    one_target,
)
from signaling.dispatcher import Reply, Route
from signaling.errors import InvalidMessage
from signaling.rooms import Action, LockSettings, Participant, Role
from signaling.rooms.moderation import lock_diff, sources_newly_locked

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

PUBLISHED_SOURCES = ("microphone", "camera", "screen", "screen_audio")


async def admit(session: Session, req: Admit) -> Reply:
    if req.all_ == (req.participant_ids is not None):
        raise InvalidMessage("give either 'participant_ids' or 'all': true")
    live = session.room
    admitted = live.room.admit(session.participant, None if req.all_ else req.participant_ids, live.clock())
    await live.admitted(admitted, by=session.participant_id)
    return {"admitted": [p.participant_id for p in admitted]}


async def deny(session: Session, req: Deny) -> Reply:
    live = session.room
    denied = live.room.deny(session.participant, req.participant_ids, live.clock())
    await live.denied(denied, reason="a host did not let you in")
    return {"denied": [p.participant_id for p in denied]}


async def list_waiting(session: Session, _: ListWaiting) -> Reply:
    waiting = session.room.room.waiting()
    return {"participants": [p.to_json() for p in waiting], "count": len(waiting)}


async def mute_participants(live: LiveRoom, targets: list[Participant], sources: tuple[str, ...] | list[str],
                            *, by: str | None, single: bool) -> None:
    """Mute ``sources`` of ``targets`` at the server: each target gets `muted_by_host`; one target's
    change is a `participant_updated`, a bulk change one `participants_muted` per source."""
    for source in sources:
        for p in targets:
            await live.set_muted(p, source, True, notify=single)
            live.send_to(p.participant_id, {"event": "muted_by_host", "source": source, "muted": True, "by": by})
        if not single and targets:
            live.broadcast({"event": "participants_muted", "source": source, "muted": True, "by": by,
                            "participant_ids": [p.participant_id for p in targets]})


async def mute(session: Session, req: Mute) -> Reply:
    target = one_target(req.participant_id, req.all_)
    live = session.room
    targets = live.room.mute_targets(session.participant, target, req.source)
    await mute_participants(live, targets, (req.source,), by=session.participant_id, single=target is not None)
    await live.store.save_room(live.room)
    return {"muted": [p.participant_id for p in targets]}


async def allow_unmute(session: Session, req: AllowUnmute) -> Reply:
    live = session.room
    target = live.room.allow_unmute(session.participant, req.participant_id, req.allowed)
    live.send_to(target.participant_id, {"event": "unmute_allowed", "allowed": req.allowed,
                                         "by": session.participant_id})
    return {}


async def request_unmute(session: Session, req: RequestUnmute) -> Reply:
    live = session.room
    target = live.room.request_unmute(session.participant, req.participant_id, req.source)
    live.send_to(target.participant_id, {"event": "unmute_requested", "source": req.source,
                                         "by": session.participant_id, "name": session.participant.name})
    return {}


async def set_role(session: Session, req: SetRole) -> Reply:
    live = session.room
    target, before = live.room.set_role(session.participant, req.participant_id, req.role)
    if req.role is Role.VIEWER and before is not Role.VIEWER:  # viewers do not publish
        for source in PUBLISHED_SOURCES:
            if not target.muted.get(source):
                await live.set_muted(target, source, True, notify=False)
    elif before is Role.VIEWER and req.role is not Role.VIEWER:  # promoted to speak: the host lets them
        for source in PUBLISHED_SOURCES:
            if target.muted.get(source):
                await live.set_muted(target, source, False, notify=False)
    live.participant_updated(target)
    s = live.sessions.get(target.participant_id)
    if s is not None and req.role.is_moderator and not before.is_moderator:
        live.send_moderator_state(s)
    await live.store.save_room(live.room)
    return {"participant": target.to_json()}


async def remove(session: Session, req: Remove) -> Reply:
    live = session.room
    p = await live.remove(session.participant, req.participant_id, ban=req.ban,
                          reason=f"removed by {session.participant.name}")
    return {"removed": p.participant_id, "banned": req.ban}


async def apply_locks(live: LiveRoom, old: LockSettings, new: LockSettings, *, by: str | None) -> dict[str, Any]:
    """Tell everyone the new locks; sources whose lock was just switched on are muted at once."""
    live.broadcast({"event": "locks_changed", "lock": _lock_json(new), "changed": lock_diff(old, new),
                    "lockdown": live.room.lockdown, "by": by})
    sources = sources_newly_locked(old, new)
    if sources:
        targets = [p for p in live.room.joined() if not p.role.is_moderator]
        await mute_participants(live, targets, sources, by=by, single=False)
    await live.store.save_room(live.room)
    return {"lock": _lock_json(new), "lockdown": live.room.lockdown}


def _lock_json(lock: LockSettings) -> dict[str, bool]:
    return {name: bool(getattr(lock, name)) for name in lock.__struct_fields__}


async def set_lock(session: Session, req: SetLock) -> Reply:
    live = session.room
    changes = req.changes()
    if req.all_ is not None:
        if changes:
            raise InvalidMessage("'all' switches every lock; do not combine it with single locks")
        old, new = live.room.set_lockdown(session.participant, req.all_)
    else:
        if not changes:
            raise InvalidMessage("name at least one lock (camera, microphone, ...) or 'all'")
        old, new = live.room.set_lock(session.participant, changes)
    return await apply_locks(live, old, new, by=session.participant_id)


async def lockdown(session: Session, req: Lockdown) -> Reply:
    live = session.room
    old, new = live.room.set_lockdown(session.participant, req.enabled)
    return await apply_locks(live, old, new, by=session.participant_id)


async def end_room(session: Session, _: EndRoom) -> Reply:
    session.room.end_soon(reason=f"ended by {session.participant.name}")
    return {}


async def set_guest_policy(session: Session, req: SetGuestPolicy) -> Reply:
    live = session.room
    before = live.room.set_guest_policy(session.participant, req.guest_policy)
    live.broadcast({"event": "guest_policy_changed", "guest_policy": req.guest_policy.value,
                    "before": before.value, "by": session.participant_id})
    await live.store.save_room(live.room)
    return {"guest_policy": req.guest_policy.value}


async def spotlight(session: Session, req: Spotlight) -> Reply:
    live = session.room
    pid = live.room.set_spotlight(session.participant, req.participant_id)
    live.broadcast({"event": "spotlight_changed", "participant_id": pid, "by": session.participant_id})
    return {"participant_id": pid}


ROUTES: dict[str, Route[Any]] = {
    "admit": Route(Admit, admit, action=Action.ADMIT),
    "deny": Route(Deny, deny, action=Action.ADMIT),
    "list_waiting": Route(ListWaiting, list_waiting, action=Action.VIEW_WAITING_ROOM),
    "mute": Route(Mute, mute, action=Action.MUTE_OTHERS),
    "allow_unmute": Route(AllowUnmute, allow_unmute, action=Action.MUTE_OTHERS),
    "request_unmute": Route(RequestUnmute, request_unmute, action=Action.MUTE_OTHERS),
    "set_role": Route(SetRole, set_role, action=Action.SET_ROLE),
    "remove": Route(Remove, remove, action=Action.REMOVE),
    "set_lock": Route(SetLock, set_lock, action=Action.SET_LOCK),
    "lockdown": Route(Lockdown, lockdown, action=Action.SET_LOCK),
    "end_room": Route(EndRoom, end_room, action=Action.END_ROOM),
    "set_guest_policy": Route(SetGuestPolicy, set_guest_policy, action=Action.GUEST_POLICY),
    "spotlight": Route(Spotlight, spotlight, action=Action.SPOTLIGHT),
}
