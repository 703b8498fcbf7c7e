"""Access tokens and admin tokens: JWT HS256 signed with the API secret (PROTOCOL.md, Auth)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import jwt

from signaling.errors import InvalidRequest
from signaling.rooms.role import Role

ALGORITHM = "HS256"
LEEWAY_S = 10
MAX_TTL_S = 7 * 24 * 3600  # the default of the setting token_max_ttl_s (and the REST API's ttl_s cap)
# a lesson link's token lives to the end of the lesson's last occurrence: a school year, not a week
# (the setting lesson_link_max_days; the lessons service passes it)
LESSON_MAX_TTL_S = 400 * 24 * 3600
_TIME_CLAIMS = ("exp", "iat", "nbf")


class TokenError(Exception):
    """The token cannot be used; the message says why (shown to the client)."""


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a verified access token allows: one identity in one room with one role."""

    identity: str
    name: str
    room_id: str
    role: Role
    registered: bool
    expires_at: int
    family_name: str = ""
    given_name: str = ""


@dataclass(frozen=True, slots=True)
class AdminGrant:
    subject: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class LessonGrant:
    """What a verified lesson token allows: one person entering one lesson's occurrences (it is no
    room token: POST /v1/lessons/{id}/enter trades it for one)."""

    identity: str
    name: str
    lesson_id: str
    role: Role
    registered: bool
    expires_at: int
    family_name: str = ""
    given_name: str = ""


@dataclass(frozen=True, slots=True)
class TeacherGrant:
    """A teacher of the school (the teacher's page, and the lessons API for their own lessons)."""

    teacher_id: str
    name: str
    expires_at: int
    family_name: str = ""
    given_name: str = ""


MAX_TEXT = 200
MAX_IDENTITY = 128


def _text(claims: dict[str, Any], key: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    value = claims.get(key)
    if value is None:
        if required:
            raise TokenError(f"token has no {key!r} claim")
        return ""
    if not isinstance(value, str):
        raise TokenError(f"token claim {key!r} must be a string")
    if required and not value.strip():
        raise TokenError(f"token claim {key!r} is empty")
    if len(value) > limit:
        raise TokenError(f"token claim {key!r} is longer than {limit} characters")
    return value


def _person(claims: dict[str, Any]) -> tuple[str, str, str, str]:
    """The person an access, lesson or teacher token names: ``sub`` (the identity), ``name`` (the
    identity when absent), ``family_name`` and ``given_name`` (empty when absent), checked."""
    return (_text(claims, "sub", required=True, limit=MAX_IDENTITY),
            _text(claims, "name", required=False) or _text(claims, "sub", required=True),
            _text(claims, "family_name", required=False), _text(claims, "given_name", required=False))


def _role_registered(claims: dict[str, Any]) -> tuple[Role, bool]:
    """The ``role`` (default participant) and ``registered`` (default false) claims, checked."""
    try:
        role = Role(claims.get("role", Role.PARTICIPANT.value))
    except ValueError:
        raise TokenError(f"token claim 'role' must be one of {', '.join(Role.values())}") from None
    registered = claims.get("registered", False)
    if not isinstance(registered, bool):
        raise TokenError("token claim 'registered' must be true or false")
    return role, registered


def _with_names(claims: dict[str, Any], family_name: str, given_name: str) -> dict[str, Any]:
    """The optional name claims, only when given (a token stays short)."""
    if family_name:
        claims["family_name"] = family_name
    if given_name:
        claims["given_name"] = given_name
    return claims


class TokenService:
    """Mints and verifies tokens.  ``max_ttl_s`` bounds every token's lifetime: one that expires
    later than that from now is refused (a leaked token must not work for years), and none is minted
    with a longer one."""

    def __init__(self, api_key: str, api_secret: str, *, max_ttl_s: int = MAX_TTL_S) -> None:
        if not api_key or not api_secret:
            raise ValueError("TokenService needs an API key and secret")
        if max_ttl_s < 60:
            raise ValueError("max_ttl_s must be at least 60 seconds")
        self._key = api_key
        self._secret = api_secret
        self._max_ttl_s = max_ttl_s

    @property
    def max_ttl_s(self) -> int:
        return self._max_ttl_s

    def _check_ttl(self, ttl_s: int) -> None:
        if ttl_s > self._max_ttl_s:
            raise InvalidRequest(f"ttl_s: at most {self._max_ttl_s} seconds (setting token_max_ttl_s)")

    @property
    def api_key(self) -> str:
        return self._key

    def _encode(self, claims: dict[str, Any]) -> str:
        with warnings.catch_warnings():  # the dev secret is short on purpose; serve refuses short ones
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def mint_access(
        self,
        *,
        identity: str,
        name: str,
        room_id: str,
        role: Role,
        registered: bool,
        ttl_s: int,
        family_name: str = "",
        given_name: str = "",
        now: float | None = None,
    ) -> str:
        self._check_ttl(ttl_s)
        t = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self._key, "sub": identity, "name": name, "room": room_id, "role": role.value,
            "registered": registered, "iat": t, "nbf": t - LEEWAY_S, "exp": t + ttl_s,
        }
        return self._encode(_with_names(claims, family_name, given_name))

    def mint_admin(self, *, subject: str = "admin", ttl_s: int, now: float | None = None) -> str:
        self._check_ttl(ttl_s)
        t = int(time.time() if now is None else now)
        return self._encode({"iss": self._key, "sub": subject, "admin": True, "iat": t, "exp": t + ttl_s})

    def mint_lesson(
        self,
        *,
        identity: str,
        name: str,
        lesson_id: str,
        role: Role,
        registered: bool,
        expires_at: int,
        family_name: str = "",
        given_name: str = "",
        max_ttl_s: int = LESSON_MAX_TTL_S,
        now: float | None = None,
    ) -> str:
        """A lesson link's token; ``expires_at`` (absolute) is the lesson's last close, at most
        ``max_ttl_s`` from now.  No ``room`` claim: no room accepts it (verify_access)."""
        t = int(time.time() if now is None else now)
        if expires_at - t > max_ttl_s:
            raise ValueError(f"a lesson token lives at most {max_ttl_s} s")
        claims: dict[str, Any] = {
            "iss": self._key, "sub": identity, "name": name, "lesson": lesson_id, "role": role.value,
            "registered": registered, "iat": t, "exp": int(expires_at),
        }
        return self._encode(_with_names(claims, family_name, given_name))

    def mint_teacher(self, *, teacher_id: str, name: str, ttl_s: int, family_name: str = "", given_name: str = "",
                     now: float | None = None) -> str:
        self._check_ttl(ttl_s)
        t = int(time.time() if now is None else now)
        claims: dict[str, Any] = {"iss": self._key, "sub": teacher_id, "name": name, "teacher": True, "iat": t,
                                  "exp": t + ttl_s}
        return self._encode(_with_names(claims, family_name, given_name))

    def _decode(self, token: str, *, max_ttl_s: int | None = None) -> dict[str, Any]:
        if not token:
            raise TokenError("no token")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
                claims: dict[str, Any] = jwt.decode(
                    token, self._secret, algorithms=[ALGORITHM], leeway=LEEWAY_S,
                    options={"require": ["exp", "iss", "sub"]},
                )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not match this server's secret") from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenError(f"token has no {e.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token is not valid yet") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError("token must be signed with HS256") from None
        except jwt.PyJWTError as e:
            raise TokenError(f"malformed token: {e}") from None
        if claims.get("iss") != self._key:
            raise TokenError("token was issued for another API key")
        for name in _TIME_CLAIMS:  # PyJWT takes int(value): "99999999999" as a string would pass
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise TokenError(f"token claim {name!r} must be a number (seconds since the epoch)")
        limit = self._max_ttl_s if max_ttl_s is None else max_ttl_s
        if claims["exp"] - time.time() > limit + LEEWAY_S:
            raise TokenError(f"token lives longer than this server allows ({limit} s); "
                             "mint one with a shorter lifetime")
        return claims

    def verify_access(self, token: str, *, room_id: str | None = None) -> AccessGrant:
        claims = self._decode(token)
        if "admin" in claims:  # whatever else it claims (a room too): admin tokens are for the REST API
            raise TokenError("an admin token cannot join a room")
        if "lesson" in claims:
            raise TokenError("a lesson link's token cannot join a room: enter the lesson (its /lesson/ link) first")
        if "teacher" in claims:
            raise TokenError("a teacher token cannot join a room: open the lesson from the teacher's page")
        room = _text(claims, "room", required=True)
        if room_id is not None and room != room_id:
            raise TokenError("token is for another room")
        role, registered = _role_registered(claims)
        identity, name, family_name, given_name = _person(claims)
        return AccessGrant(identity=identity, name=name, room_id=room, role=role, registered=registered,
                           expires_at=int(claims["exp"]), family_name=family_name, given_name=given_name)

    def verify_lesson(self, token: str, *, lesson_id: str | None = None,
                      max_ttl_s: int = LESSON_MAX_TTL_S) -> LessonGrant:
        """A lesson link's token (``max_ttl_s``: the setting lesson_link_max_days in seconds)."""
        claims = self._decode(token, max_ttl_s=max_ttl_s)
        if "admin" in claims or "teacher" in claims or "room" in claims or "lesson" not in claims:
            raise TokenError("not a lesson token (send the token of the lesson link)")
        lesson = _text(claims, "lesson", required=True, limit=64)
        if lesson_id is not None and lesson != lesson_id:
            raise TokenError("token is for another lesson")
        role, registered = _role_registered(claims)
        identity, name, family_name, given_name = _person(claims)
        return LessonGrant(identity=identity, name=name, lesson_id=lesson, role=role, registered=registered,
                           expires_at=int(claims["exp"]), family_name=family_name, given_name=given_name)

    def verify_teacher(self, token: str) -> TeacherGrant:
        claims = self._decode(token)
        if claims.get("teacher") is not True or "admin" in claims or "room" in claims or "lesson" in claims:
            raise TokenError("not a teacher token (claim teacher: true is missing)")
        teacher_id, name, family_name, given_name = _person(claims)
        return TeacherGrant(teacher_id=teacher_id, name=name, expires_at=int(claims["exp"]),
                            family_name=family_name, given_name=given_name)

    def verify_admin(self, token: str) -> AdminGrant:
        claims = self._decode(token)
        if claims.get("admin") is not True:
            raise TokenError("not an admin token (claim admin: true is missing)")
        return AdminGrant(subject=str(claims["sub"]), expires_at=int(claims["exp"]))
