"""Malformed WebSocket frames: an `invalid_message` error (or the RFC 6455 close), never a crash or a traceback."""

import asyncio
import logging

import pytest
from aiohttp import WSMsgType

from tests.conftest import Server


def _noisy(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("frame", [
    '{"id": 1, "type": "chat_send", "text": "\\ud800 hi"}',  # a lone surrogate: not encodable as UTF-8
    '{"id": 1, "type": "chat_send", "text": "hi", "x": NaN}',  # not JSON (browsers' JSON.parse refuses it)
    '{"id": 1, "type": "chat_send", "text": "hi", "x": 1e400}',  # a number no JSON peer can read back
    "[" * 30000 + "]" * 30000,  # nesting past the decoder's recursion limit, under ws_max_message_bytes
    '{"id": 1, "type": "chat_send", "text": ' + '{"a": ' * 6000 + "1" + "}" * 6000 + "}",
], ids=["lone-surrogate", "nan", "huge-number", "deep-array", "deep-object"])
async def test_malformed_frame_is_invalid_message_and_the_room_stays_up(
        server: Server, caplog: pytest.LogCaptureFixture, frame: str) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    sender = await server.join(room_id, "sender")
    other = await server.join(room_id, "other")
    await sender.send_raw(frame)
    # an `error` event where the frame does not parse; a reply to id 1 where it parses but does not fit
    err = await sender.wait_for(lambda: sender.responses.get(1) or next(
        (e for e in sender.events if e["event"] == "error"), None))
    assert err["error"]["code"] == "invalid_message"
    # both sockets still work: the frame reached no writer (a lone surrogate used to kill every writer
    # that relayed it, closing the whole room)
    ok = await sender.request("chat_send", text="after")
    assert ok["ok"] is True
    relayed = await other.event("chat_message")
    assert relayed["message"]["text"] == "after"
    assert not sender.closed.is_set() and not other.closed.is_set()
    assert not _noisy(caplog)


async def test_invalid_utf8_text_frame_closes_with_1007_without_a_traceback(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    c = await server.join(room_id, "u")
    other = await server.join(room_id, "other")
    # RFC 6455 section 8.1: a text frame that is not UTF-8 fails the connection (1007, invalid payload);
    # aiohttp's reader does that before the frame reaches the session
    await c.ws.send_frame(b'{"id": 1, "type": "chat_send", "text": "\xff\xfe"}', WSMsgType.TEXT)
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.ws.close_code == 1007
    await other.event("participant_left")
    assert (await other.request("chat_send", text="still here"))["ok"] is True
    assert not _noisy(caplog)
