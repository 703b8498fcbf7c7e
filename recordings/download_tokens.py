"""Short-lived signed download links for a recording's files.

A ``<video src>`` cannot send an Authorization header, and the host's page must not hold an admin
token: the server gives a host (over the WebSocket, where the role is known) URLs with a token that
names one recording and expires (``LINK_TTL_S``): HMAC-SHA256 over the recording id and the expiry,
keyed with the server's api_secret.  The REST API takes it as ``?token=`` on the file routes only;
everything else needs an admin token."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

LINK_TTL_S = 6 * 3600  # long enough to watch a lesson with pauses


class DownloadTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"urok-recording-download:" + secret.encode()).digest()

    def _sign(self, recording_id: str, expires: int) -> str:
        msg = f"{recording_id}|{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def mint(self, recording_id: str, *, now: float, ttl_s: int = LINK_TTL_S) -> str:
        expires = int(now) + ttl_s
        return f"{expires}.{self._sign(recording_id, expires)}"

    def valid(self, token: str, recording_id: str, *, now: float) -> bool:
        expires_text, _, sig = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        return expires >= now and hmac.compare_digest(sig, self._sign(recording_id, expires))

    def url(self, base: str, recording_id: str, file: str, *, now: float) -> str:
        token = self.mint(recording_id, now=now)
        return f"{base}/v1/recordings/{quote(recording_id)}/files/{quote(file)}?token={token}"
