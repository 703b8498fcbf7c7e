"""Named errors raised by the forwarding core.

Every error the public API raises derives from :class:`SfuError`, so the signalling layer can map
them to protocol errors with one ``except``. Errors in the per-packet path are never raised: they
are counted in :class:`sfu.stats.WorkerStats` and the packet is dropped.
"""

from __future__ import annotations


class SfuError(Exception):
    """Base class of every error raised by :mod:`sfu`.

    ``str(error)`` is the core's own fixed wording, safe to show a remote peer; ``detail`` is what
    a library underneath said (aiortc's exception text, which names its internals): for logs only.
    """

    code = "sfu_error"

    def __init__(self, message: str = "", *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class ClosedError(SfuError):
    """The object (worker, router, transport, producer or consumer) is closed."""

    code = "closed"


class DuplicateIdError(SfuError):
    """A router or transport with this id already exists in its parent."""

    code = "duplicate_id"


class InvalidSdpError(SfuError):
    """An SDP offer or answer could not be parsed or applied."""

    code = "invalid_sdp"


class SdpTooLargeError(InvalidSdpError):
    """An SDP text is over a size limit of :func:`sfu.sdp.check_limits` (checked before parsing)."""

    code = "sdp_too_large"


class TooManySectionsError(SdpTooLargeError):
    """An SDP text has more m-lines than the caller accepts."""

    code = "too_many_sections"


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


class TooManyCandidatesError(SfuError):
    """A transport already holds as many remote candidates as it accepts
    (:data:`sfu.webrtc_transport.MAX_REMOTE_CANDIDATES`)."""

    code = "too_many_candidates"
