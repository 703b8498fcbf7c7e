"""The e2e client (tests/e2e/rtc_client.py) does not swallow a failed renegotiation: a refused
`subscriber_answer` is recorded and fails the test at close() unless the test declared it expects one."""

import pytest

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.rtc_client import RtcClient, wait_until


async def test_a_refused_subscriber_answer_is_recorded_and_fails_close(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
    assert (await teacher.publish(video=False))["ok"]
    broken = await RtcClient.join(server, room_id, "broken", mangle_answer=lambda sdp: "v=0\r\nnot an answer\r\n")
    declared = await RtcClient.join(server, room_id, "declared", expect_refused_answer=True,
                                    mangle_answer=lambda sdp: "v=0\r\nnot an answer\r\n")
    assert await wait_until(lambda: bool(broken.refused_answers and declared.refused_answers), 15)
    assert broken.refused_answers[0]["error"]["code"] == "invalid_sdp", broken.refused_answers
    assert broken.answered == 0 and broken.offers == 1
    with pytest.raises(AssertionError, match="subscriber_answer refused"):
        await broken.close()
    await declared.close()  # the test said it expects the refusal
    await teacher.close()  # its own negotiation went through
