"""Named errors raised by the forwarding core.

Every error the public API raises derives from :class:`SfuError`, so the signalling layer can map
them to protocol errors with one ``except``. Errors in the per-packet path are never raised: they
are counted in :class:`sfu.stats.WorkerStats` and the packet is dropped.
"""

from __future__ import annotations


class SfuError(Exception):
    """Base class of every error raised by :mod:`sfu`."""

    code = "sfu_error"


class ClosedError(SfuError):
    """The object (worker, router, transport, producer or consumer) is closed."""

    code = "closed"


class DuplicateIdError(SfuError):
    """A router or transport with this id already exists in its parent."""

    code = "duplicate_id"


class InvalidSdpError(SfuError):
    """An SDP offer or answer could not be parsed or applied."""

    code = "invalid_sdp"


class InvalidStateError(SfuError):
    """The call does not fit the transport's negotiation state (e.g. answer without offer)."""

    code = "invalid_state"


class UnknownMidError(SfuError):
    """``produce(mid=...)`` named an m-line that the last offer does not have or does not send."""

    code = "unknown_mid"


class UnsupportedCodecError(SfuError):
    """The producer's codec cannot be forwarded (or cannot be offered to this subscriber)."""

    code = "unsupported_codec"


class InvalidCandidateError(SfuError):
    """A trickled ICE candidate could not be parsed."""

    code = "invalid_candidate"
