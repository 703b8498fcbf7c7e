"""Hypothesis-generated frames against a live server: nothing a client sends can crash the server or
another participant's session."""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.rooms import Role
from tests.conftest import Server

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
known_types = st.sampled_from(["ping", "leave", "list_participants", "publish", "subscriber_answer",
                               "ice_candidate", "subscribe", "unsubscribe", "set_muted", "raise_hand",
                               "chat_send", "mute", "admit", "end_room"])
frames = st.one_of(
    st.builds(lambda t, body, i: json.dumps({"id": i, "type": t, **body}), known_types,
              st.dictionaries(st.sampled_from(["sdp", "sources", "offset", "limit", "tracks", "track_ids",
                                               "candidate", "target", "source", "muted", "text", "all"]),
                              json_values, max_size=4),
              st.one_of(st.integers(0, 10**6), st.text(max_size=8), st.none())),
    json_values.map(json.dumps),
    st.text(max_size=200),
)


async def test_random_frames_never_break_the_server_or_other_sessions(server: Server) -> None:
    room_id = await server.create_room()
    victim = await server.join(room_id, "victim")
    fuzzer_token = server.token(room_id, "fuzzer", role=Role.PARTICIPANT)
    state: dict[str, Any] = {"client": await server.connect(fuzzer_token)}

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(frames, min_size=1, max_size=5))
    async def run(batch: list[str]) -> None:
        c = state["client"]
        if c.closed.is_set():  # it sent `leave` or was rate limited: come back
            state["client"] = c = await server.connect(fuzzer_token)
            await c.event("welcome")
        for frame in batch:
            if c.closed.is_set():
                break
            try:
                await c.send_raw(frame)
            except ConnectionResetError:
                break

    # hypothesis drives an async test function through the running loop
    examples = await _drive(run)
    assert examples >= 100
    r = await victim.request("ping")
    assert r["ok"] is True and not victim.closed.is_set()
    status, health = await server.rest("GET", "/healthz", auth=False)
    assert status == 200 and health["status"] == "ok"
    status, _ = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert status == 200
    async with server.http.get(server.base + "/metrics") as resp:
        assert 'code="internal_error"' not in await resp.text()


async def _drive(test: Any) -> int:
    """Run a hypothesis @given coroutine function example by example inside this event loop."""
    inner = test.hypothesis.inner_test
    collected: list[Any] = []

    def sync(**kwargs: Any) -> None:
        collected.append(kwargs)

    test.hypothesis.inner_test = sync
    test()  # hypothesis generates and "runs" each example synchronously: we record them
    for kwargs in collected:
        await inner(**kwargs)
    return len(collected)
