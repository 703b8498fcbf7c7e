import time
from collections.abc import Callable

import jwt
import pytest

from signaling.auth import TokenError, TokenService
from signaling.errors import InvalidRequest
from signaling.rooms import Role

SVC = TokenService("key", "secret-secret-secret-secret-secret")


def access(**kw: object) -> str:
    args: dict[str, object] = {"identity": "u1", "name": "Анна", "room_id": "R1", "role": Role.PARTICIPANT,
                               "registered": True, "ttl_s": 60}
    args.update(kw)
    return SVC.mint_access(**args)  # type: ignore[arg-type]


def test_access_token_round_trip_keeps_every_claim() -> None:
    t = access(family_name="Иванова", given_name="Анна", role=Role.COHOST)
    g = SVC.verify_access(t, room_id="R1")
    assert (g.identity, g.name, g.room_id, g.role, g.registered) == ("u1", "Анна", "R1", Role.COHOST, True)
    assert (g.family_name, g.given_name) == ("Иванова", "Анна")
    claims = jwt.decode(t, options={"verify_signature": False})
    assert {"iss", "sub", "name", "room", "role", "registered", "exp"} <= set(claims)


def test_expired_token_is_refused() -> None:
    t = access(now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        SVC.verify_access(t)


def test_wrongly_signed_token_is_refused() -> None:
    other = TokenService("key", "another-secret-another-secret-xx")
    with pytest.raises(TokenError, match="signature"):
        SVC.verify_access(other.mint_access(identity="u", name="n", room_id="R", role=Role.HOST,
                                            registered=True, ttl_s=60))


def test_token_of_another_api_key_is_refused() -> None:
    other = TokenService("other", "secret-secret-secret-secret-secret")
    with pytest.raises(TokenError, match="another API key"):
        SVC.verify_access(other.mint_access(identity="u", name="n", room_id="R", role=Role.HOST,
                                            registered=True, ttl_s=60))


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_malformed_token_is_refused(bad: str) -> None:
    with pytest.raises(TokenError):
        SVC.verify_access(bad)


def test_unsigned_alg_none_token_is_refused() -> None:
    t = jwt.encode({"iss": "key", "sub": "u", "room": "R", "exp": time.time() + 60}, None, algorithm="none")
    with pytest.raises(TokenError):
        SVC.verify_access(t)


def test_wrong_room_is_refused() -> None:
    with pytest.raises(TokenError, match="another room"):
        SVC.verify_access(access(), room_id="R2")


def test_unknown_role_is_refused() -> None:
    t = jwt.encode({"iss": "key", "sub": "u", "room": "R", "role": "king", "exp": time.time() + 60},
                   "secret-secret-secret-secret-secret", algorithm="HS256")
    with pytest.raises(TokenError, match="role"):
        SVC.verify_access(t)


def test_admin_token_is_not_an_access_token_and_vice_versa() -> None:
    admin = SVC.mint_admin(ttl_s=60)
    assert SVC.verify_admin(admin).subject == "admin"
    with pytest.raises(TokenError, match="admin token cannot join"):
        SVC.verify_access(admin)
    with pytest.raises(TokenError, match="not an admin token"):
        SVC.verify_admin(access())


def signed(claims: dict[str, object], secret: str = "secret-secret-secret-secret-secret") -> str:
    return jwt.encode({"iss": "key", "sub": "u", "room": "R", **claims}, secret, algorithm="HS256")


# "just past" is taken from the clock when the test runs, not when it is collected: in the whole
# suite the unit tests run minutes after collection
@pytest.mark.parametrize("exp", [lambda: 253402300799, lambda: 1e300, lambda: time.time() + 7 * 24 * 3600 + 60],
                         ids=["year-9999", "1e300", "a-minute-past"])
def test_a_token_living_past_the_maximum_lifetime_is_refused(exp: Callable[[], float]) -> None:
    with pytest.raises(TokenError, match="longer than this server allows"):
        SVC.verify_access(signed({"exp": exp()}))


def test_the_maximum_lifetime_is_a_setting_and_a_token_just_under_it_is_accepted() -> None:
    short = TokenService("key", "secret-secret-secret-secret-secret", max_ttl_s=3600)
    assert short.verify_access(signed({"exp": time.time() + 3500})).identity == "u"
    assert SVC.verify_access(signed({"exp": time.time() + 7 * 24 * 3600 - 60})).identity == "u"
    with pytest.raises(TokenError, match="3600 s"):
        short.verify_access(signed({"exp": time.time() + 7200}))
    with pytest.raises(TokenError, match="longer than"):
        short.verify_admin(signed({"admin": True, "exp": time.time() + 7200}))


@pytest.mark.parametrize("claims", [{"exp": "253402300799"}, {"iat": "1"}, {"nbf": "0"},
                                    {"exp": [1]}])
def test_time_claims_must_be_numbers(claims: dict[str, object]) -> None:
    with pytest.raises(TokenError):
        SVC.verify_access(signed({"exp": time.time() + 60, **claims}))


def test_minting_past_the_maximum_lifetime_is_refused() -> None:
    short = TokenService("key", "secret-secret-secret-secret-secret", max_ttl_s=3600)
    with pytest.raises(InvalidRequest, match="3600"):
        short.mint_access(identity="u", name="n", room_id="R", role=Role.HOST, registered=True, ttl_s=3601)
    with pytest.raises(InvalidRequest):
        short.mint_admin(ttl_s=3601)
    assert short.verify_access(short.mint_access(identity="u", name="n", room_id="R", role=Role.HOST,
                                                 registered=True, ttl_s=3600)).role is Role.HOST


@pytest.mark.parametrize("admin", [True, False, "yes"])
def test_a_token_with_an_admin_claim_cannot_join_even_naming_a_room(admin: object) -> None:
    with pytest.raises(TokenError, match="admin token cannot join"):
        SVC.verify_access(signed({"admin": admin, "role": "host", "exp": time.time() + 60}), room_id="R")


# --- lesson links and teacher tokens (signaling/lessons) ----------------------------------------------

DAY = 86_400


def lesson_token(svc: TokenService, *, days: float = 200, lesson: str = "LS_1", max_days: int = 400) -> str:
    return svc.mint_lesson(identity="s-1", name="Пётр Петров", lesson_id=lesson, role=Role.PARTICIPANT,
                           registered=True, expires_at=int(time.time() + days * DAY), family_name="Петров",
                           given_name="Пётр", max_ttl_s=max_days * DAY)


def test_a_lesson_token_lives_a_school_year_past_the_room_token_maximum() -> None:
    svc = TokenService("k", "s")  # room tokens: at most 7 days
    g = svc.verify_lesson(lesson_token(svc, days=200), lesson_id="LS_1")
    assert (g.identity, g.lesson_id, g.role, g.registered, g.family_name, g.given_name) == (
        "s-1", "LS_1", Role.PARTICIPANT, True, "Петров", "Пётр")
    assert g.expires_at > time.time() + 199 * DAY


def test_a_lesson_token_past_the_lesson_link_maximum_is_refused_and_not_minted() -> None:
    svc = TokenService("k", "s")
    token = lesson_token(svc, days=30)
    with pytest.raises(TokenError, match="lives longer"):
        svc.verify_lesson(token, max_ttl_s=10 * DAY)
    with pytest.raises(ValueError, match="at most"):
        lesson_token(svc, days=30, max_days=10)


def test_a_lesson_token_is_for_its_lesson_only() -> None:
    svc = TokenService("k", "s")
    with pytest.raises(TokenError, match="another lesson"):
        svc.verify_lesson(lesson_token(svc), lesson_id="LS_2")


def test_a_lesson_token_cannot_join_a_room_nor_act_as_admin_or_teacher() -> None:
    svc = TokenService("k", "s")
    token = lesson_token(svc, days=2)
    with pytest.raises(TokenError, match="lesson link"):
        svc.verify_access(token)
    with pytest.raises(TokenError, match="lesson link"):
        svc.verify_access(token, room_id="LS_1")
    with pytest.raises(TokenError):
        svc.verify_admin(token)
    with pytest.raises(TokenError):
        svc.verify_teacher(token)


def test_a_teacher_token_is_neither_a_room_nor_a_lesson_nor_an_admin_token() -> None:
    svc = TokenService("k", "s")
    token = svc.mint_teacher(teacher_id="t-1", name="Мария Иванова", family_name="Иванова", ttl_s=3600)
    g = svc.verify_teacher(token)
    assert (g.teacher_id, g.name, g.family_name) == ("t-1", "Мария Иванова", "Иванова")
    for verify in (svc.verify_access, svc.verify_lesson, svc.verify_admin):
        with pytest.raises(TokenError):
            verify(token)


def test_room_and_admin_tokens_are_not_lesson_or_teacher_tokens() -> None:
    svc = TokenService("k", "s")
    room = svc.mint_access(identity="u", name="U", room_id="R", role=Role.HOST, registered=True, ttl_s=60)
    admin = svc.mint_admin(ttl_s=60)
    for token in (room, admin):
        with pytest.raises(TokenError):
            svc.verify_lesson(token)
        with pytest.raises(TokenError, match="not a teacher token"):
            svc.verify_teacher(token)


def test_a_teacher_token_keeps_to_the_room_token_maximum() -> None:
    svc = TokenService("k", "s", max_ttl_s=3600)
    with pytest.raises(InvalidRequest):
        svc.mint_teacher(teacher_id="t-1", name="T", ttl_s=7200)
