"""Who has noise suppression on: the room's setting, the host's choice, one's own switch."""

from __future__ import annotations

import pytest

from media.noise_policy import NoiseForced, NoisePolicy


def test_own_switch_decides_when_the_host_said_nothing() -> None:
    p = NoisePolicy()
    assert not p.enabled("a") and not p.forced("a")
    assert p.set_own("a", True) is True
    assert p.enabled("a") and not p.enabled("b")
    assert p.to_json("a") == {"participant_id": "a", "enabled": True, "forced": False}


def test_the_room_setting_turns_it_on_for_everyone_and_locks_the_own_switch() -> None:
    p = NoisePolicy()
    p.set_own("a", False)
    p.set_room(True)
    assert p.enabled("a") and p.enabled("b") and p.forced("a")
    with pytest.raises(NoiseForced):
        p.set_own("a", False)
    assert p.set_own("a", True) is True  # the same state as the host's is accepted
    p.set_room(False)
    assert p.enabled("a") and not p.enabled("b")  # own switches decide again


def test_the_hosts_choice_for_one_wins_until_the_room_setting_changes() -> None:
    p = NoisePolicy(room_on=True)
    p.set_by_host("a", False)
    assert not p.enabled("a") and p.forced("a") and p.enabled("b")
    with pytest.raises(NoiseForced):
        p.set_own("a", True)
    p.set_room(True)
    assert p.enabled("a")
    assert p.decided() == set()  # the room setting ended the choices for single participants
