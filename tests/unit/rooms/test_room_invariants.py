"""Random sequences of joins, leaves and host actions by random actors (hypothesis state machine):
whatever the order, and whoever tries, the room stays consistent."""

import contextlib
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from signaling.rooms import ParticipantState, Role, RoomError
from tests.unit.rooms.helpers import make_room, who

IDENTITIES = [f"u{i}" for i in range(6)]
ROLES = [Role.HOST, Role.COHOST, Role.PARTICIPANT, Role.VIEWER]
SOURCES = ["microphone", "camera", "screen"]


class RoomMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.room = make_room(guest_policy="ALWAYS_ACCEPT_AUTH", max_participants=5)
        self.now = 0.0

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    def pick(self, i: int) -> str | None:
        present = sorted(p.participant_id for p in self.room.present())
        return present[i % len(present)] if present else None

    def try_(self, fn: Callable[[], object]) -> None:
        with contextlib.suppress(RoomError):  # refused: the invariants check nothing half-changed
            fn()

    @rule(ident=st.sampled_from(IDENTITIES), role=st.sampled_from(ROLES), registered=st.booleans())
    def join(self, ident: str, role: Role, registered: bool) -> None:
        self.try_(lambda: self.room.admit_or_queue(who(ident, role=role, registered=registered), self.tick()))

    @rule(i=st.integers(0, 10))
    def leave(self, i: int) -> None:
        pid = self.pick(i)
        if pid is not None:
            self.room.leave(pid, self.tick())

    @rule(a=st.integers(0, 10), t=st.integers(0, 10), everyone=st.booleans())
    def admit(self, a: int, t: int, everyone: bool) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            self.try_(lambda: self.room.admit(self.room.get(actor), None if everyone else [target], self.tick()))

    @rule(a=st.integers(0, 10), t=st.integers(0, 10))
    def deny(self, a: int, t: int) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            self.try_(lambda: self.room.deny(self.room.get(actor), [target], self.tick()))

    @rule(a=st.integers(0, 10), t=st.integers(0, 10), ban=st.booleans())
    def remove(self, a: int, t: int, ban: bool) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            self.try_(lambda: self.room.remove(self.room.get(actor), target, ban=ban, now=self.tick()))

    @rule(a=st.integers(0, 10), t=st.integers(0, 10), role=st.sampled_from(ROLES))
    def set_role(self, a: int, t: int, role: Role) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            self.try_(lambda: self.room.set_role(self.room.get(actor), target, role))

    @rule(a=st.integers(0, 10), t=st.integers(0, 10), source=st.sampled_from(SOURCES), ask=st.booleans())
    def unmute_grants(self, a: int, t: int, source: str, ask: bool) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            if ask:
                self.try_(lambda: self.room.request_unmute(self.room.get(actor), target, source))
            else:
                self.try_(lambda: self.room.check_self_unmute(self.room.get(target), source))

    @rule(a=st.integers(0, 10), t=st.integers(0, 10), everyone=st.booleans(), own=st.booleans())
    def hands(self, a: int, t: int, everyone: bool, own: bool) -> None:
        actor, target = self.pick(a), self.pick(t)
        if actor and target:
            self.try_(lambda: self.room.raise_hand(self.room.get_joined(actor), self.tick()))
            self.try_(lambda: self.room.lower_hands(self.room.get(actor), None if own else target, everyone))

    @rule(a=st.integers(0, 10), on=st.booleans(), chat=st.booleans())
    def locks(self, a: int, on: bool, chat: bool) -> None:
        actor = self.pick(a)
        if actor:
            if chat:
                self.try_(lambda: self.room.set_lock(self.room.get(actor), {"self_unmute": on}))
            else:
                self.try_(lambda: self.room.set_lockdown(self.room.get(actor), on))

    @invariant()
    def consistent(self) -> None:
        room = self.room
        joined = {p.participant_id for p in room.joined()}
        present_ids = {p.identity for p in room.present()}
        # the indexes agree with the participants' states
        assert joined == {pid for pid, p in room.participants.items() if p.state is ParticipantState.JOINED}
        assert room.num_joined == len(joined)
        assert {p.participant_id for p in room.present()} == {
            pid for pid, p in room.participants.items() if p.state is not ParticipantState.LEFT}
        assert all(room.participants[p.participant_id] is p for p in room.present())
        page, total = room.page(0, 3)
        assert total == len(joined) and page == room.sorted_joined()[:3]
        queue = room.hands.queue()
        assert {h.participant_id for h in queue} <= joined
        assert [h.position for h in queue] == list(range(1, len(queue) + 1))
        for p in room.participants.values():
            assert (p.hand_raised_at is not None) == (p.participant_id in room.hands)
            if p.state is ParticipantState.WAITING:
                assert p.waiting_since is not None and not p.role.is_moderator
        assert not (room.banned | room.denied) & present_ids
        assert {pid for pid, _ in room.unmute_once} <= joined and room.unmute_allowed <= joined
        assert len(room.present()) <= room.settings.max_participants
        for p in room.participants.values():
            rec = room.attendance.get(p.identity)
            assert (rec is not None and rec.present) == (p.state is ParticipantState.JOINED)
        assert room.lockdown == (room.lock_before_lockdown is not None)
        for identity, role in room.role_overrides.items():
            p = room.by_identity(identity)
            assert p is None or p.role is role


RoomMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestRoomInvariants = RoomMachine.TestCase
