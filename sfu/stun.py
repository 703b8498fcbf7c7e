"""STUN for the ICE-lite port: binding requests and responses, in and out.

An ICE-lite agent answers connectivity checks (RFC 8445 section 2.5), so this reads exactly what a
check carries (RFC 8489 / RFC 8445 section 7): the transaction id, USERNAME, USE-CANDIDATE,
MESSAGE-INTEGRITY (HMAC-SHA1 with our ICE password, checked by the caller once it knows the
connection) and FINGERPRINT when present; and writes exactly what a success response needs:
XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT. No objects per attribute, the HMAC and the
CRC in C (:mod:`hmac`, :mod:`zlib`): about a quarter of what aioice's general parser and builder
cost per check, which matters with 2000 browsers checking consent every few seconds.

The port also sends one check of its own to every new address of a peer before it sends media
there (the address must prove it answers, RFC 7675; see :mod:`sfu.udp_mux`): :func:`binding_request`
writes it, :func:`parse_binding_success` reads the answer.

Everything malformed raises ``ValueError`` (:class:`NotBindingRequest` for well-formed STUN of
another kind than the parser reads).
"""

from __future__ import annotations

import hmac
import socket
import struct
import zlib
from dataclasses import dataclass

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_PRIORITY = 0x0024
ATTR_USE_CANDIDATE = 0x0025
ATTR_ICE_CONTROLLED = 0x8029
ATTR_FINGERPRINT = 0x8028
FINGERPRINT_XOR = 0x5354554E

_HEADER = struct.Struct("!HHI")
_ATTR = struct.Struct("!HH")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")


class NotBindingRequest(ValueError):
    """Well-formed STUN, but not the kind asked for (a response, an indication, an error)."""


@dataclass(frozen=True, slots=True)
class BindingRequest:
    transaction_id: bytes
    username: str
    use_candidate: bool
    signed: bytes  # what MESSAGE-INTEGRITY covers, with the header length as RFC 8489 14.5 says
    integrity: bytes

    def check(self, key: bytes) -> bool:
        """Whether MESSAGE-INTEGRITY is the HMAC-SHA1 of the message with ``key``."""
        return hmac.compare_digest(hmac.digest(key, self.signed, "sha1"), self.integrity)


@dataclass(frozen=True, slots=True)
class BindingSuccess:
    transaction_id: bytes
    signed: bytes
    integrity: bytes

    def check(self, key: bytes) -> bool:
        """Whether MESSAGE-INTEGRITY is the HMAC-SHA1 of the message with ``key``."""
        return hmac.compare_digest(hmac.digest(key, self.signed, "sha1"), self.integrity)


def _integrity(data: bytes, expected_type: int) -> tuple[int, str | None, bool]:
    """Walk a STUN message: ``(offset of MESSAGE-INTEGRITY, USERNAME, USE-CANDIDATE)``; checks the
    framing, FINGERPRINT when present, and that MESSAGE-INTEGRITY is there."""
    n = len(data)
    if n < 20:
        raise ValueError("STUN message shorter than 20 bytes")
    msg_type, length, cookie = _HEADER.unpack_from(data, 0)
    if cookie != MAGIC_COOKIE or msg_type & 0xC000 or length & 3 or length + 20 != n:
        raise ValueError("not a STUN message")
    if msg_type != expected_type:
        raise NotBindingRequest(f"STUN message type {msg_type:#06x}")
    username: str | None = None
    use_candidate = False
    integrity_at = -1
    pos = 20
    while pos < n:
        if pos + 4 > n:
            raise ValueError("STUN attribute header truncated")
        attr_type, attr_len = _ATTR.unpack_from(data, pos)
        start = pos + 4
        end = start + attr_len
        if end > n:
            raise ValueError("STUN attribute truncated")
        if attr_type == ATTR_FINGERPRINT:
            if attr_len != 4 or end != n:
                raise ValueError("STUN FINGERPRINT is not the last 4-byte attribute")
            if _U32.unpack_from(data, start)[0] != (zlib.crc32(data[:pos]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF:
                raise ValueError("STUN fingerprint does not match")
        elif integrity_at < 0:  # attributes after MESSAGE-INTEGRITY are not authenticated: ignored
            if attr_type == ATTR_MESSAGE_INTEGRITY:
                if attr_len != 20:
                    raise ValueError("STUN MESSAGE-INTEGRITY is not 20 bytes")
                integrity_at = pos
            elif attr_type == ATTR_USERNAME:
                username = data[start:end].decode("utf-8")  # UnicodeDecodeError is a ValueError
            elif attr_type == ATTR_USE_CANDIDATE:
                use_candidate = True
        pos = start + ((attr_len + 3) & ~3)
    if integrity_at < 0:
        raise ValueError("STUN message without MESSAGE-INTEGRITY")
    return integrity_at, username, use_candidate


def _signed(data: bytes, integrity_at: int) -> bytes:
    """What MESSAGE-INTEGRITY covers, with the header length as RFC 8489 14.5 says."""
    return data[:2] + (integrity_at + 24 - 20).to_bytes(2, "big") + data[4:integrity_at]


def parse_binding_request(data: bytes) -> BindingRequest:
    """Parse a binding request; raises ``ValueError`` (or :class:`NotBindingRequest`)."""
    integrity_at, username, use_candidate = _integrity(data, BINDING_REQUEST)
    if username is None:
        raise ValueError("STUN binding request without USERNAME")
    return BindingRequest(bytes(data[8:20]), username, use_candidate, _signed(data, integrity_at),
                          bytes(data[integrity_at + 4 : integrity_at + 24]))


def parse_binding_success(data: bytes) -> BindingSuccess:
    """Parse a binding success response (the answer to :func:`binding_request`); raises
    ``ValueError`` (:class:`NotBindingRequest` for well-formed STUN of another type). A response
    must carry MESSAGE-INTEGRITY (RFC 8445 section 7.2.5.1: the caller checks it with the peer's
    password); its other attributes are not needed to prove the address answers."""
    integrity_at, _, _ = _integrity(data, BINDING_SUCCESS)
    return BindingSuccess(bytes(data[8:20]), _signed(data, integrity_at),
                          bytes(data[integrity_at + 4 : integrity_at + 24]))


def binding_success(transaction_id: bytes, addr: tuple[str, int], key: bytes) -> bytes:
    """A binding success response to ``addr`` (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY with ``key``,
    FINGERPRINT). ``addr`` is numeric (IPv4, IPv6 or IPv4-mapped IPv6)."""
    host, port = addr
    if ":" in host:
        family, raw = 2, socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        mask = _COOKIE + transaction_id
    else:
        family, raw = 1, socket.inet_aton(host)
        mask = _COOKIE
    xored = (int.from_bytes(raw, "big") ^ int.from_bytes(mask[: len(raw)], "big")).to_bytes(len(raw), "big")
    mapped = struct.pack("!HHBBH", ATTR_XOR_MAPPED_ADDRESS, 4 + len(raw), 0, family, port ^ (MAGIC_COOKIE >> 16))
    mapped += xored
    head = _HEADER.pack(BINDING_SUCCESS, len(mapped) + 24, MAGIC_COOKIE) + transaction_id
    body = mapped + _ATTR.pack(ATTR_MESSAGE_INTEGRITY, 20) + hmac.digest(key, head + mapped, "sha1")
    head = _HEADER.pack(BINDING_SUCCESS, len(body) + 8, MAGIC_COOKIE) + transaction_id
    crc = (zlib.crc32(head + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + body + _ATTR.pack(ATTR_FINGERPRINT, 4) + _U32.pack(crc)


def binding_request(transaction_id: bytes, username: str, key: bytes, priority: int, tie_breaker: int) -> bytes:
    """A connectivity check from the controlled side (RFC 8445 section 7.1.1): USERNAME
    (``"remote_ufrag:local_ufrag"``), PRIORITY, ICE-CONTROLLED with ``tie_breaker``,
    MESSAGE-INTEGRITY with ``key`` (the peer's ICE password) and FINGERPRINT."""
    user = username.encode()
    padded = user + b"\x00" * (-len(user) & 3)
    body = (_ATTR.pack(ATTR_USERNAME, len(user)) + padded
            + _ATTR.pack(ATTR_PRIORITY, 4) + _U32.pack(priority)
            + _ATTR.pack(ATTR_ICE_CONTROLLED, 8) + _U64.pack(tie_breaker))
    head = _HEADER.pack(BINDING_REQUEST, len(body) + 24, MAGIC_COOKIE) + transaction_id
    body += _ATTR.pack(ATTR_MESSAGE_INTEGRITY, 20) + hmac.digest(key, head + body, "sha1")
    head = _HEADER.pack(BINDING_REQUEST, len(body) + 8, MAGIC_COOKIE) + transaction_id
    crc = (zlib.crc32(head + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + body + _ATTR.pack(ATTR_FINGERPRINT, 4) + _U32.pack(crc)
