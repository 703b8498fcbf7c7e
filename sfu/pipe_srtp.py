"""SRTP between the two ends of a pipe transport (mediasoup's PipeTransport ``enableSrtp``).

Each end makes its own master key and salt when it is created with ``srtp=True`` and publishes it
as :class:`SrtpParameters` (``PipeTransport.srtp_parameters``); the other end hands those to its
``connect``. An end protects what it sends with its own key and unprotects what it receives with
the peer's, so no handshake is needed: the keys travel over the signalling (which, between
machines, must itself be private: TLS or a private network). AEAD_AES_256_GCM as mediasoup's
pipes use (confidentiality and authentication in one pass); AES_CM_128_HMAC_SHA1_80 is accepted
from a peer that asks for it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pylibsrtp import Policy, Session

from . import aiortc_compat as compat
from .errors import SfuError

__all__ = ["DEFAULT_CRYPTO_SUITE", "InvalidSrtpParametersError", "SrtpPair", "SrtpParameters"]

DEFAULT_CRYPTO_SUITE = "AEAD_AES_256_GCM"
# crypto suite -> (pylibsrtp profile, master key + salt length in bytes)
_SUITES = {
    "AEAD_AES_256_GCM": (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44),
    "AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
    "AES_CM_128_HMAC_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
}
# the receive replay window (packets): a retransmission answered from the origin after a round
# trip must still be inside it (libsrtp's default, 128, is under half a second of 720p video)
REPLAY_WINDOW = 1024


class InvalidSrtpParametersError(SfuError):
    """SRTP parameters that cannot be used: an unknown crypto suite, a key of the wrong length or
    not base64, parameters for a pipe without SRTP or none for one with it."""

    code = "invalid_srtp_parameters"


@dataclass(frozen=True, slots=True)
class SrtpParameters:
    """One end's SRTP master key and salt (``key_base64``) for ``crypto_suite``."""

    crypto_suite: str
    key_base64: str

    @classmethod
    def generate(cls, crypto_suite: str = DEFAULT_CRYPTO_SUITE) -> SrtpParameters:
        if crypto_suite not in _SUITES:
            raise InvalidSrtpParametersError(f"unsupported crypto suite {crypto_suite!r}")
        return cls(crypto_suite, base64.b64encode(os.urandom(_SUITES[crypto_suite][1])).decode("ascii"))

    def to_dict(self) -> dict[str, str]:
        return {"crypto_suite": self.crypto_suite, "key_base64": self.key_base64}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SrtpParameters:
        try:
            return cls(str(data["crypto_suite"]), str(data["key_base64"]))
        except (KeyError, TypeError) as exc:
            raise InvalidSrtpParametersError("srtp_parameters need crypto_suite and key_base64") from exc

    def key(self) -> tuple[int, bytes]:
        """(pylibsrtp profile, master key + salt); raises :class:`InvalidSrtpParametersError`."""
        suite = _SUITES.get(self.crypto_suite)
        if suite is None:
            raise InvalidSrtpParametersError(f"unsupported crypto suite {self.crypto_suite!r}")
        try:
            key = base64.b64decode(self.key_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSrtpParametersError("key_base64 is not base64") from exc
        if len(key) != suite[1]:
            raise InvalidSrtpParametersError(f"{self.crypto_suite} needs a {suite[1]}-byte key, not {len(key)}")
        return suite[0], key


class SrtpPair:
    """The send session (our key) and the receive session (the peer's key) of one pipe end."""

    def __init__(self, local: SrtpParameters, remote: SrtpParameters) -> None:
        profile, key = local.key()
        remote_profile, remote_key = remote.key()
        tx_policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        tx_policy.allow_repeat_tx = True  # a NACKed packet goes again with the same index
        rx_policy = Policy(key=remote_key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=remote_profile)
        rx_policy.window_size = REPLAY_WINDOW
        self.tx = Session(tx_policy)
        self.rx = Session(rx_policy)
        self.protect = compat.fast_protect(self.tx)  # cffi direct: no wrapper, no extra copy
        self.protect_rtcp = self.tx.protect_rtcp
        self.unprotect = self.rx.unprotect
        self.unprotect_rtcp = self.rx.unprotect_rtcp
