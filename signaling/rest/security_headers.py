"""Security headers on every response (page, client files, API, errors, the WebSocket upgrade).

The browser client is plain ES modules and one stylesheet from ``/web/`` (docs/client.md): no inline
script, no inline style attribute (styles set through the CSSOM, ``el.style.x = ...``, are not
restricted by CSP), no eval, no resources from elsewhere. So the policy can be strict:

- ``script-src 'self'`` / ``style-src 'self'``: an injected ``<script>`` or ``style="..."`` does nothing.
  ``'wasm-unsafe-eval'`` lets the page compile WebAssembly (the virtual background's segmentation
  model, web/background.js, served from /web/vendor/); it allows no JavaScript ``eval``.
- ``connect-src``: the page's own origin and the WebSocket to the same host. CSP 3 lets ``'self'``
  match ``ws:``/``wss:`` on the same host, but older engines (Safari before 15.4) do not, so the
  request's Host is named too, after it has been checked to be a plain host[:port] (it comes from the
  client; anything else would let a forged Host add directives).
- ``img-src data:``: the page's empty ``data:,`` favicon. Video and audio use ``srcObject`` (a
  MediaStream, not a fetch), so ``media-src`` needs nothing beyond ``'self'``.
- ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (for engines without CSP 2): the host
  controls cannot be clickjacked from a page that frames the lesson.
- ``Referrer-Policy: no-referrer``: a join link carries the access token; no URL of ours is ever sent
  to another site.

``Server`` names the product only (aiohttp's default names the framework and Python versions). A
reply to a request aiohttp could not parse at all is built before the app sees it and keeps
aiohttp's header (a reverse proxy in front replaces it; docs/operations.md).
"""

from __future__ import annotations

import re

from aiohttp import web

SERVER = "urok"
# a DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port
_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")

_POLICY_HEAD = ("default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'",
                "img-src 'self' data:", "media-src 'self'", "font-src 'self'", "manifest-src 'self'")
_POLICY_TAIL = ("base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'")

STATIC_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
}


def content_security_policy(host: str | None) -> str:
    connect = "connect-src 'self'"
    if host and _PLAIN_HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join((*_POLICY_HEAD, connect, *_POLICY_TAIL))


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: runs for every response the app prepares, errors included."""
    headers = response.headers
    headers["Server"] = SERVER
    headers["Content-Security-Policy"] = content_security_policy(request.headers.get("Host"))
    for name, value in STATIC_HEADERS.items():
        headers[name] = value
