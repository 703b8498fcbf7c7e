"""Security headers on every kind of response, through the real server on a real port."""

import pytest

from signaling.rest.security_headers import content_security_policy
from tests.conftest import Server

PATHS = [  # (method, path, status): the page, client files, the API and its errors, other errors
    ("GET", "/", 200),
    ("GET", "/join/RM_x?token=abc", 200),
    ("GET", "/web/main.js", 200),
    ("GET", "/web/app.css", 200),
    ("GET", "/web/no-such-file.js", 404),
    ("GET", "/no-such-page", 404),
    ("GET", "/healthz", 200),
    ("GET", "/metrics", 200),
    ("GET", "/v1/openapi.json", 200),
    ("GET", "/v1/rooms", 401),
    ("GET", "/v1/nothing-here", 404),
    ("PUT", "/v1/rooms", 405),
    ("GET", "/v1/rtc", 400),  # not a WebSocket request: refused before any upgrade
]


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@pytest.mark.parametrize(("method", "path", "status"), PATHS, ids=[f"{m} {p}" for m, p, _ in PATHS])
async def test_every_response_has_the_security_headers(server: Server, method: str, path: str, status: int) -> None:
    async with server.http.request(method, server.base + path) as r:
        assert r.status == status
        h = r.headers
    assert h["Server"] == "urok"  # aiohttp's default names the framework and Python versions
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    csp = _directives(h["Content-Security-Policy"])
    host = server.base.removeprefix("http://")
    assert csp["default-src"] == ["'none'"]
    # WebAssembly for the virtual background's model (web/background.js); no JavaScript eval
    assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]


async def test_the_websocket_upgrade_has_them_too(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    ws = await server.http.ws_connect(server.base.replace("http", "ws", 1) + "/v1/rtc?token="
                                      + server.token(room_id, "u"))
    try:
        assert ws._response.headers["Server"] == "urok"  # aiohttp keeps the upgrade response there
        assert ws._response.headers["X-Frame-Options"] == "DENY"
    finally:
        await ws.close()


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "x'y", "host\tname", ""])
def test_a_forged_host_adds_nothing_to_the_policy(host: str) -> None:
    csp = _directives(content_security_policy(host))
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert set(csp) == set(_directives(content_security_policy(None)))


@pytest.mark.parametrize("host", ["lesson.school.ru", "127.0.0.1:8080", "[::1]:8443", "localhost"])
def test_a_plain_host_is_named_for_the_websocket(host: str) -> None:
    assert _directives(content_security_policy(host))["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
