"""urok's media forwarding core: a packet-level SFU on aiortc (mediasoup's object model).

``Worker`` -> ``Router`` (room) -> ``WebRtcTransport`` (one peer connection) -> ``Producer``
(incoming track) / ``Consumer`` (one outgoing copy). See ``docs/sfu.md``. Never imports
``signaling``.
"""

from .consumer import Consumer
from .errors import (
    ClosedError,
    DuplicateIdError,
    InvalidCandidateError,
    InvalidSdpError,
    InvalidStateError,
    SfuError,
    UnknownMidError,
    UnsupportedCodecError,
)
from .producer import Producer
from .router import Router
from .sdp import CodecInfo, MediaSection
from .stats import WorkerStats
from .webrtc_transport import WebRtcTransport
from .worker import IceServer, Worker, WorkerSettings

__all__ = [
    "ClosedError",
    "CodecInfo",
    "Consumer",
    "DuplicateIdError",
    "IceServer",
    "InvalidCandidateError",
    "InvalidSdpError",
    "InvalidStateError",
    "MediaSection",
    "Producer",
    "Router",
    "SfuError",
    "UnknownMidError",
    "UnsupportedCodecError",
    "WebRtcTransport",
    "Worker",
    "WorkerSettings",
    "WorkerStats",
]
