"""urok's media forwarding core: a packet-level SFU on aiortc (mediasoup's object model).

``Worker`` -> ``Router`` (room) -> ``WebRtcTransport`` (one peer connection) -> ``Producer``
(incoming track) / ``Consumer`` (one outgoing copy). See ``docs/sfu.md``. Features (recording,
noise suppression, bots, playback) use only what this module exports: ``Router.create_direct_transport``
-> ``DirectTransport`` (``consume`` -> ``DirectConsumer``, ``produce`` -> ``DirectProducer``),
``Consumer.replace_producer``; see ``docs/sfu_features.md``. Between routers (workers, processes,
machines): ``Router.create_pipe_transport`` -> ``PipeTransport`` (``consume`` -> ``PipeConsumer``,
``produce(description)``), ``Router.pipe_to_router``; see docs/sfu.md. Never imports ``signaling``.
"""

from .consumer import Consumer
from .direct_consumer import DirectConsumer, RtpCallback
from .direct_producer import DirectProducer
from .direct_transport import DirectTransport
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
from .pipe_consumer import InvalidPipeDescriptionError, PipeConsumer, PipeProducerDescription
from .pipe_srtp import InvalidSrtpParametersError, SrtpParameters
from .pipe_transport import PipeAddressError, PipeStats, PipeTransport
from .producer import Producer
from .router import Router
from .rtp import RtpHeader, parse_header
from .rtp_packetizer import OpusPacketizer, RtpPacketizer
from .sdp import CodecInfo, MediaSection
from .stats import WorkerStats
from .webrtc_transport import WebRtcTransport
from .worker import IceServer, Worker, WorkerSettings

__all__ = [
    "ClosedError",
    "CodecInfo",
    "Consumer",
    "DirectConsumer",
    "DirectProducer",
    "DirectTransport",
    "DuplicateIdError",
    "IceServer",
    "InvalidCandidateError",
    "InvalidPipeDescriptionError",
    "InvalidSdpError",
    "InvalidSrtpParametersError",
    "InvalidStateError",
    "MediaSection",
    "OpusPacketizer",
    "PipeAddressError",
    "PipeConsumer",
    "PipeProducerDescription",
    "PipeStats",
    "PipeTransport",
    "Producer",
    "Router",
    "RtpCallback",
    "RtpHeader",
    "RtpPacketizer",
    "SfuError",
    "SrtpParameters",
    "UnknownMidError",
    "UnsupportedCodecError",
    "WebRtcTransport",
    "Worker",
    "WorkerSettings",
    "WorkerStats",
    "parse_header",
]
