"""Signing as LiveKit does: a JWT (HS256, the webhook's secret) whose sha256 claim is the body's."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest

from signaling.webhooks.signing import BadSignature, Signer, body_sha256, sign, verify

BODY = b'{"event":"participant_joined","room":{"room_id":"R1"}}'
SECRET = "a-receivers-secret-of-32-chars!!"
NOW = 1_800_000_000.0


def test_the_token_carries_the_issuer_and_the_bodys_sha256_and_expires_in_five_minutes() -> None:
    token = sign(BODY, secret=SECRET, issuer="urok-key", now=NOW)
    # what any receiver does with PyJWT and the standard library alone
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == "urok-key"
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert claims["iat"] == int(NOW) and claims["exp"] == int(NOW) + 300
    assert verify(BODY, token, secret=SECRET, now=NOW + 10)["iss"] == "urok-key"


def test_another_body_another_secret_or_a_late_check_is_refused() -> None:
    token = sign(BODY, secret=SECRET, issuer="k", now=NOW)
    with pytest.raises(BadSignature, match="body"):
        verify(BODY + b" ", token, secret=SECRET, now=NOW)
    with pytest.raises(BadSignature, match="bad token"):
        verify(BODY, token, secret="another-secret-of-thirty-two-chr", now=NOW)
    with pytest.raises(BadSignature, match="expired"):
        verify(BODY, token, secret=SECRET, now=NOW + 300 + 61)
    with pytest.raises(BadSignature, match="future"):
        verify(BODY, token, secret=SECRET, now=NOW - 120)
    with pytest.raises(BadSignature):
        verify(BODY, jwt.encode({"iss": "k"}, SECRET, algorithm="HS256"), secret=SECRET, now=NOW)


def test_an_unsigned_token_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b'{"iss":"k","sha256":"x","iat":1,"exp":2}').rstrip(b"=").decode()
    with pytest.raises(BadSignature):
        verify(BODY, f"{header}.{body}.", secret=SECRET, now=NOW)


def test_the_signature_is_exactly_pyjwts_for_the_same_claims_and_each_secret_keeps_its_own() -> None:
    signer = Signer()
    for secret in (SECRET, "second-secret-of-sixteen", SECRET):
        claims = {"iss": "k", "sha256": body_sha256(BODY), "iat": int(NOW), "exp": int(NOW) + 300}
        assert signer.sign(BODY, secret=secret, issuer="k", now=NOW) == jwt.encode(claims, secret, algorithm="HS256")
