"""sfu.stun against aioice's STUN implementation (the reference) and malformed input."""

from __future__ import annotations

import os
import struct

import pytest
from aioice import stun as aioice_stun
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import stun

KEY = b"s3cret-ice-password-24ch"


def request(username: str = "abcd:efgh", *, use_candidate: bool = False, fingerprint: bool = True,
            key: bytes = KEY) -> bytes:
    m = aioice_stun.Message(message_method=aioice_stun.Method.BINDING, message_class=aioice_stun.Class.REQUEST)
    m.attributes["USERNAME"] = username
    m.attributes["PRIORITY"] = 1853817087
    m.attributes["ICE-CONTROLLING"] = 0x1234567890
    if use_candidate:
        m.attributes["USE-CANDIDATE"] = None
    m.add_message_integrity(key)
    data = bytes(m)  # aioice always ends with FINGERPRINT
    assert data[-8:-6] == b"\x80\x28"
    if not fingerprint:
        data = data[:2] + struct.pack("!H", len(data) - 28) + data[4:-8]
    return data


@pytest.mark.parametrize("use_candidate", [False, True])
@pytest.mark.parametrize("fingerprint", [False, True])
def test_requests_from_aioice_parse_and_verify(use_candidate: bool, fingerprint: bool) -> None:
    data = request("ufrag1:remote", use_candidate=use_candidate, fingerprint=fingerprint)
    r = stun.parse_binding_request(data)
    assert r.username == "ufrag1:remote" and r.use_candidate is use_candidate
    assert r.transaction_id == aioice_stun.parse_message(data).transaction_id
    assert r.check(KEY) and not r.check(b"another key")


@pytest.mark.parametrize("addr", [("127.0.0.1", 50000), ("203.0.113.7", 1), ("::1", 65535),
                                  ("2001:db8::42", 4242), ("::ffff:192.0.2.1", 9)])
def test_responses_are_what_aioice_expects(addr: tuple[str, int]) -> None:
    tid = os.urandom(12)
    data = stun.binding_success(tid, addr, KEY)
    m = aioice_stun.parse_message(data)  # checks FINGERPRINT
    assert m.message_method == aioice_stun.Method.BINDING and m.message_class == aioice_stun.Class.RESPONSE
    assert m.transaction_id == tid
    assert m.check_message_integrity(KEY) and not m.check_message_integrity(b"x")
    host, port = m.attributes["XOR-MAPPED-ADDRESS"]
    assert (str(host), port) == addr or (addr[0].startswith("::ffff:") and port == addr[1])
    assert "FINGERPRINT" in m.attributes


def test_not_binding_and_malformed_messages_are_told_apart() -> None:
    response = stun.binding_success(os.urandom(12), ("127.0.0.1", 1), KEY)
    with pytest.raises(stun.NotBindingRequest):
        stun.parse_binding_request(response)
    good = request()
    bad_fingerprint = good[:-1] + bytes([good[-1] ^ 1])
    for bad in (b"", good[:19], good[:-4], b"\x00\x01\x00\x00" + b"\x00" * 16, bad_fingerprint,
                good[:2] + struct.pack("!H", 1000) + good[4:]):
        with pytest.raises(ValueError):
            stun.parse_binding_request(bad)
    # no MESSAGE-INTEGRITY / no USERNAME
    m = aioice_stun.Message(message_method=aioice_stun.Method.BINDING, message_class=aioice_stun.Class.REQUEST)
    m.attributes["USERNAME"] = "a:b"
    with pytest.raises(ValueError):
        stun.parse_binding_request(bytes(m))


def test_attributes_after_message_integrity_are_ignored() -> None:
    data = request("real:user", fingerprint=False)
    # append USE-CANDIDATE after MESSAGE-INTEGRITY (and fix the header length): not authenticated
    extra = struct.pack("!HH", stun.ATTR_USE_CANDIDATE, 0)
    forged = data[:2] + struct.pack("!H", len(data) - 20 + len(extra)) + data[4:] + extra
    r = stun.parse_binding_request(forged)
    assert not r.use_candidate and r.check(KEY)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=120), st.binary(min_size=1, max_size=8))
def test_random_and_mutated_input_only_ever_raises_value_error(noise: bytes, at: int, patch: bytes) -> None:
    good = request("u:v", use_candidate=True)
    for data in (noise, good[:at] + patch + good[at + len(patch):], b"\x00\x01" + noise):
        try:
            r = stun.parse_binding_request(data)
        except ValueError:
            continue
        assert isinstance(r.username, str) and len(r.transaction_id) == 12


def test_our_check_is_what_aioice_reads_as_a_controlled_agents_check() -> None:
    tid = os.urandom(12)
    data = stun.binding_request(tid, "remoteufrag:local", KEY, 1862270975, 0xDEADBEEF12345678)
    m = aioice_stun.parse_message(data)  # checks FINGERPRINT
    assert m.message_method == aioice_stun.Method.BINDING and m.message_class == aioice_stun.Class.REQUEST
    assert m.transaction_id == tid and m.attributes["USERNAME"] == "remoteufrag:local"
    assert m.attributes["PRIORITY"] == 1862270975 and m.attributes["ICE-CONTROLLED"] == 0xDEADBEEF12345678
    assert "USE-CANDIDATE" not in m.attributes and "FINGERPRINT" in m.attributes
    assert m.check_message_integrity(KEY) and not m.check_message_integrity(b"x")
    r = stun.parse_binding_request(data)  # and our own parser agrees
    assert r.username == "remoteufrag:local" and r.check(KEY)


@pytest.mark.parametrize("fingerprint", [False, True])
def test_success_responses_from_aioice_parse_and_verify(fingerprint: bool) -> None:
    tid = os.urandom(12)
    m = aioice_stun.Message(message_method=aioice_stun.Method.BINDING, message_class=aioice_stun.Class.RESPONSE,
                            transaction_id=tid)
    m.attributes["XOR-MAPPED-ADDRESS"] = ("192.0.2.1", 4242)
    m.add_message_integrity(KEY)
    data = bytes(m)
    if not fingerprint:
        data = data[:2] + struct.pack("!H", len(data) - 28) + data[4:-8]
    r = stun.parse_binding_success(data)
    assert r.transaction_id == tid and r.check(KEY) and not r.check(b"another key")
    assert stun.parse_binding_success(stun.binding_success(tid, ("127.0.0.1", 1), KEY)).check(KEY)


def test_a_response_without_integrity_or_of_another_type_is_refused() -> None:
    m = aioice_stun.Message(message_method=aioice_stun.Method.BINDING, message_class=aioice_stun.Class.RESPONSE)
    m.attributes["XOR-MAPPED-ADDRESS"] = ("192.0.2.1", 4242)
    with pytest.raises(ValueError):
        stun.parse_binding_success(bytes(m))  # unsigned: proves nothing
    error = aioice_stun.Message(message_method=aioice_stun.Method.BINDING, message_class=aioice_stun.Class.ERROR)
    error.attributes["ERROR-CODE"] = (487, "Role Conflict")
    error.add_message_integrity(KEY)
    with pytest.raises(stun.NotBindingRequest):
        stun.parse_binding_success(bytes(error))
    with pytest.raises(stun.NotBindingRequest):
        stun.parse_binding_success(request())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=120), st.binary(min_size=1, max_size=8))
def test_random_and_mutated_responses_only_ever_raise_value_error(noise: bytes, at: int, patch: bytes) -> None:
    good = stun.binding_success(os.urandom(12), ("2001:db8::1", 5000), KEY)
    for data in (noise, good[:at] + patch + good[at + len(patch):], b"\x01\x01" + noise):
        try:
            r = stun.parse_binding_success(data)
        except ValueError:
            continue
        assert len(r.transaction_id) == 12 and len(r.integrity) == 20
