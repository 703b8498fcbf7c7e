"""The compiled fan-out (``sfu._fastpath``): the forwarding core's steady state in C.

A consumer that forwards steadily (connected, not paused, at a keyframe, offsets known, on its
current simulcast layer) needs nothing from Python per packet: the rewrite (PT, sequence number,
timestamp, SSRC, extension ids), libsrtp's ``srtp_protect`` and the send are the same for every
packet until something changes. So the consumer hands that state to a :class:`~sfu._fastpath.Slot`
in its stream's :class:`~sfu._fastpath.FanOut` (one per producer, or per simulcast layer), and one
C call per incoming packet copies, rewrites, protects and ``sendmmsg``-s it to every such slot;
the publisher's sender reports are translated for them in C as well (``FanOut.sender_report``).
Anything that changes the state (pause, resync, a layer switch, a renegotiation, a new path or
SRTP session, close) takes the consumer back to the Python path first (``Consumer._leave_fast``);
the Python path (``Consumer.on_rtp``) is the reference and the fallback, and it puts the
consumer back on the fast path after its next packet sent.

Off when the extension is not built (not Linux) or pylibsrtp's internals differ from what
:mod:`sfu.aiortc_compat` knows, or with ``WorkerSettings.fast_path = False``. See docs/sfu.md.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import aiortc_compat as compat

try:
    from . import _fastpath, _sendmmsg
except ImportError:  # not built (or not Linux): the pure-Python fan-out
    _fastpath = None  # type: ignore[assignment]
    _sendmmsg = None  # type: ignore[assignment]

if _fastpath is not None:
    from ._fastpath import FanOut, Slot
else:  # pragma: no cover - only without the extension
    FanOut = Slot = None  # type: ignore[misc]

__all__ = ["FanOut", "FastSink", "Slot", "fast_path_available", "make_fanout", "make_sink"]


def fast_path_available() -> bool:
    """Whether the compiled fan-out can run here."""
    return (_fastpath is not None and _sendmmsg is not None and compat.srtp_protect_address("srtp_protect") is not None
            and compat.srtp_protect_address("srtp_protect_rtcp") is not None)


def make_fanout() -> FanOut | None:
    """A new, empty fan-out, or None when the compiled path is not available."""
    if _fastpath is None:
        return None
    rtp = compat.srtp_protect_address("srtp_protect")
    rtcp = compat.srtp_protect_address("srtp_protect_rtcp")
    return FanOut(rtp, rtcp) if rtp is not None and rtcp is not None else None


@dataclass(frozen=True, slots=True)
class FastSink:
    """Where one subscriber transport's packets go on the compiled path: the socket, the packed
    peer address and the outbound SRTP context (``session`` keeps it alive). ``flush`` sends what
    the Python path queued on that socket (called before a consumer joins a fan-out, so that its
    packets keep their order)."""

    fd: int
    addr: bytes
    srtp: int
    session: object
    flush: Callable[[], None]


def make_sink(sock: Any, addr: tuple[str, int], session: Any) -> FastSink | None:
    """The sink for a selected pair and an outbound pylibsrtp session; None when any of it cannot
    be used from C.

    Only a socket that lives as long as the worker qualifies: the shared port's (``sock`` is the
    mux's batch: ``fileno()``, ``family`` and ``flush()``). A per-connection aioice socket (full ICE,
    ``udp_port=None``) is closed by aioice whenever its connection ends, and a slot that still
    held its descriptor number could write into whatever socket reuses it next (a WebSocket, say):
    those transports keep the Python path."""
    if _sendmmsg is None or session is None:
        return None
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return None
    fd, family = fileno(), sock.family
    host = str(addr[0])
    if family == socket.AF_INET6 and ":" not in host:
        host = "::ffff:" + host  # an IPv4 peer on a dual-stack socket
    try:
        packed = _sendmmsg.sockaddr(host, int(addr[1]))
    except (ValueError, TypeError, OverflowError):
        return None  # not a numeric address
    srtp = compat.srtp_context_address(session)
    if srtp is None or fd < 0:
        return None
    return FastSink(fd, packed, srtp, session, sock.flush)
