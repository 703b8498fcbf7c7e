"""Puts aiortc's peer connections on the shared ICE-lite port (:mod:`sfu.udp_mux`).

aiortc creates one ``RTCIceGatherer`` per peer connection (``max-bundle``), and its ICE and DTLS
transports only use the gatherer's ``_connection`` through a small interface. A gatherer created
while :func:`using_mux` is active gets a :class:`~sfu.udp_mux.LiteConnection` of that mux instead
of an ``aioice.Connection`` (no sockets of its own, no gathering, no checks), and reports
``iceLite`` so the SDP carries ``a=ice-lite``. Peer connections created outside (tests' clients,
other code in the process) are untouched: the choice travels in a context variable.

This module and :mod:`sfu.aiortc_compat` are the only places that touch aiortc's private names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, cast

import aiortc.rtcpeerconnection as _aiortc_pc
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceParameters

from .udp_mux import UdpMux

_current_mux: ContextVar[UdpMux | None] = ContextVar("urok_sfu_udp_mux", default=None)


class MuxIceGatherer(RTCIceGatherer):
    """aiortc's gatherer, on the shared port when a mux is current."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mux = _current_mux.get()
        self._urok_lite = mux is not None
        if mux is not None:
            self._connection = cast(Any, mux.connection())  # aioice.Connection's shape

    def getLocalParameters(self) -> RTCIceParameters:
        params = super().getLocalParameters()
        if self._urok_lite:
            params.iceLite = True
        return params


def install() -> None:
    """Make aiortc's peer connections create :class:`MuxIceGatherer` (idempotent, process-wide;
    without a current mux it behaves exactly as aiortc's own)."""
    if not installed():
        setattr(_aiortc_pc, "RTCIceGatherer", MuxIceGatherer)  # noqa: B010 - a private name of aiortc


def installed() -> bool:
    return getattr(_aiortc_pc, "RTCIceGatherer", None) is MuxIceGatherer


@contextlib.contextmanager
def using_mux(mux: UdpMux | None) -> Iterator[None]:
    """Within this block (and the coroutines awaited in it), new peer-connection gatherers use ``mux``."""
    token = _current_mux.set(mux)
    try:
        yield
    finally:
        _current_mux.reset(token)


def is_lite(pc: Any) -> bool:
    """Whether a peer connection's (first) ICE transport is on a mux."""
    for t in pc.getTransceivers():
        gatherer = t.receiver.transport.transport.iceGatherer
        return bool(getattr(gatherer, "_urok_lite", False))
    return False
