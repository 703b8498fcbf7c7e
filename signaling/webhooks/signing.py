"""How a payload is signed, as LiveKit does: the ``Authorization`` header carries a JWT (HS256,
signed with the webhook's own secret) whose ``sha256`` claim is the base64 SHA-256 of the exact
body bytes.  A receiver checks the JWT with the secret it got at registration, then that the body it
read hashes to the claim (docs/operations.md shows the receiver's side).  Signed at every attempt:
``exp`` is ``iat`` + 5 minutes, and a delivery may be retried for hours."""

from __future__ import annotations

import base64
import hashlib
import warnings
from typing import Any

import jwt

ALGORITHM = "HS256"
TTL_S = 300


class BadSignature(ValueError):
    pass


def body_sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign(body: bytes, *, secret: str, issuer: str, now: float) -> str:
    iat = int(now)
    claims = {"iss": issuer, "sha256": body_sha256(body), "iat": iat, "exp": iat + TTL_S}
    with warnings.catch_warnings():  # a short secret is the admin's choice (16 characters at least)
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(body: bytes, token: str, *, secret: str, now: float, leeway_s: float = 60.0) -> dict[str, Any]:
    """What a receiver does (here for the tests and as the reference): the claims, or BadSignature."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[ALGORITHM], leeway=leeway_s,
                                                # PyJWT reads the clock itself: exp and iat are
                                                # checked below against `now` (passed in)
                                                options={"require": ["iss", "sha256", "iat", "exp"],
                                                         "verify_iat": False, "verify_exp": False})
    except jwt.PyJWTError as e:
        raise BadSignature(f"bad token: {e}") from None
    if not (isinstance(claims["iat"], int) and isinstance(claims["exp"], int)):
        raise BadSignature("bad token: iat and exp must be integers")
    if now > claims["exp"] + leeway_s:
        raise BadSignature("the signature has expired")
    if now < claims["iat"] - leeway_s:
        raise BadSignature("the signature is issued in the future")
    if claims["sha256"] != body_sha256(body):
        raise BadSignature("the body does not match the signature's sha256")
    return claims
