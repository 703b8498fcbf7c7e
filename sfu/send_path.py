"""The send path of one transport: SRTP protect and send on the selected ICE pair.

What mediasoup's WebRtcTransport does in ``SendRtpPacket`` / ``SendRtcpPacket`` (protect with the
SRTP send session, write to the selected tuple), and aiortc's ``RTCDtlsTransport._send_rtp``,
without a coroutine or a queue: aiortc's DTLS transport negotiates the SRTP session, this object
reads it (:func:`sfu.aiortc_compat.tx_srtp`) with the selected pair's datagram transport, and
:meth:`send_rtp` protects a packet through pylibsrtp's cffi function and ``sendto``\\ s it (on the
shared port: into the pending ``sendmmsg`` batch). It also keeps the compiled fan-out's sink
(:class:`sfu.fast_path.FastSink`) in step with that pair and session.

The transport owns one and reads :attr:`connected`; consumers send through the transport's
``_send_rtp`` / ``_send_rtcp``, which are this object's bound methods (no extra call per packet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import aiortc_compat as compat
from .fast_path import FastSink, make_sink
from .stats import RTP_NOT_CONNECTED, RTP_SEND_ERROR, RTP_SRTP_ERROR, WorkerStats


class SendPath:
    """SRTP protect + send for one transport. ``on_sink`` is called with the new compiled-fan-out
    sink (or None) whenever the path or the SRTP session changes, so that the transport's consumers
    leave the compiled fan-out (the Python path puts them back on the new sink)."""

    def __init__(self, stats: WorkerStats, fast_path: bool, on_sink: Callable[[FastSink | None], None]) -> None:
        self._stats = stats
        self._fast_path = fast_path
        self._on_sink = on_sink
        self.tx: Any = None  # pylibsrtp Session (aiortc's SRTP send session)
        self.protect: compat.Protector | None = None  # fast protect bound to self.tx
        self.sock: Any = None  # asyncio datagram transport of the selected pair
        self.addr: tuple[str, int] | None = None
        # the compiled fan-out's view of (tx, sock, addr); None: Python path only
        self.fast_sink: FastSink | None = None

    @property
    def connected(self) -> bool:
        """An SRTP session and a selected pair: packets can go."""
        return self.protect is not None and self.sock is not None

    def refresh(self, dtls: Any) -> bool:
        """Pick up the SRTP session and the selected ICE pair of ``dtls`` (aiortc's
        ``RTCDtlsTransport``); without both (DTLS not up, ICE failed) the path is dropped.
        Returns :attr:`connected`."""
        tx = compat.tx_srtp(dtls) if dtls.state == "connected" else None
        pair = compat.selected_pair(dtls) if tx is not None else None
        if tx is None or pair is None:
            self.drop()
            return False
        sock, addr = pair
        self.use(sock, addr, tx)
        return True

    def use(self, sock: Any, addr: tuple[str, int], tx: Any) -> None:
        """Send with SRTP session ``tx`` on datagram transport ``sock`` to ``addr`` (what
        :meth:`refresh` found; tests hand in a capture)."""
        if tx is not self.tx or self.protect is None:
            self.tx = tx
            self.protect = compat.fast_protect(tx)
            self.set_fast_sink(None)
        if sock is not self.sock or addr != self.addr:
            self.sock, self.addr = sock, addr
            self.set_fast_sink(None)
        if self.fast_sink is None and self._fast_path:
            self.set_fast_sink(make_sink(sock, addr, tx))

    def drop(self) -> None:
        """No path (DTLS down, ICE failed, the transport closed): sends are counted as dropped."""
        self.tx = self.sock = self.protect = self.addr = None
        self.set_fast_sink(None)

    def set_fast_sink(self, sink: FastSink | None) -> None:
        if sink is self.fast_sink:
            return
        self.fast_sink = sink
        self._on_sink(sink)

    # ---- per packet --------------------------------------------------------------------------
    def send_rtp(self, data: bytes | bytearray) -> bool:
        """Protect and send one RTP packet; False (and counted) when it could not go."""
        protect = self.protect
        sock = self.sock
        stats = self._stats
        if protect is None or sock is None:
            stats.drop_rtp(RTP_NOT_CONNECTED)
            return False
        try:
            out = protect(data)
        except Exception:
            stats.drop_rtp(RTP_SRTP_ERROR)
            return False
        try:
            sock.sendto(out, self.addr)
        except Exception:
            stats.drop_rtp(RTP_SEND_ERROR)
            return False
        stats.rtp_out += 1
        stats.rtp_out_bytes += len(out)
        return True

    def send_rtcp(self, data: bytes) -> bool:
        """Protect and send one RTCP compound; False when there is no path or it failed."""
        tx = self.tx
        sock = self.sock
        if tx is None or sock is None:
            return False
        try:
            sock.sendto(tx.protect_rtcp(data), self.addr)
        except Exception:
            return False
        self._stats.rtcp_out += 1
        return True


__all__ = ["SendPath"]
