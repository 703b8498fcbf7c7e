"""Every access to a private attribute of aiortc or aioice lives in this module.

The forwarding core keeps aiortc's ``RTCPeerConnection`` for SDP, aioice for ICE and
``RTCDtlsTransport`` for DTLS and the SRTP sessions, but moves packets itself. That needs a few of
their private names; ``tests/sfu/test_aiortc_compat.py`` checks each one against the installed
versions and fails loudly when an upgrade moves them. Pin aiortc to a tested version.

Private names used (aiortc 1.16.0, aioice 0.13):
- ``RTCDtlsTransport._handle_rtp_data`` / ``._handle_rtcp_data``: awaited by ``_recv_next`` with the
  decrypted packet; replaced on the instance to receive packets before aiortc parses them.
- ``RTCDtlsTransport._rx_srtp`` and ``aioice.Connection.data_received`` (called synchronously by
  aioice's datagram protocol for every non-STUN datagram): replaced on the instance so SRTP/SRTCP
  is unprotected and handled synchronously, skipping aiortc's queue and a coroutine per packet
  (:func:`install_direct_receive`); DTLS and anything before the SRTP keys exist still take
  aiortc's path.
- ``RTCDtlsTransport._tx_srtp``: the outbound pylibsrtp ``Session`` (set once DTLS is connected).
- ``RTCIceTransport._connection`` (an ``aioice.Connection``) and its ``_nominated`` dict
  (component -> ``CandidatePair``); ``CandidatePair.protocol.transport`` is the asyncio datagram
  transport and ``.remote_addr`` the peer's address: the selected pair to send on.
- ``RTCRtpSender._ssrc`` (the SSRC aiortc announces in ``a=ssrc``; set anew when an m-line is
  reused), ``._stream_id`` and
  ``._track_id`` (written as ``a=msid``).
- pylibsrtp ``Session._srtp`` / ``._cdata`` / ``._buffer`` and its cffi ``lib.srtp_protect``: to
  protect from a ``bytearray`` without the Python wrapper's checks and allocations
  (:func:`fast_protect`); the wrapper's ``protect`` is the fallback. The same ``srtp_protect`` and
  ``Session._srtp[0]`` as plain addresses for the compiled fan-out (:func:`srtp_protect_address`,
  :func:`srtp_context_address`).
- ``aioice.ice.get_host_addresses`` (module function): wrapped once so that
  ``WorkerSettings.host_addresses`` can restrict host candidates (aioice never offers 127.0.0.1
  on its own; tests and a loopback-only dev server need exactly that).
- ``aiortc.rtcrtpreceiver.RemoteBitrateEstimator`` (module global): wrapped once
  (:func:`install_parked_receivers`) so that receivers created inside :func:`parked_receivers`
  get none: the core's receivers never start, and each estimator costs ~1.6 ms and ~100 KB
  (a 1000-bucket rate counter) per video m-line. Receivers created elsewhere are untouched.
- ``RTCPeerConnection.__connect`` (``_RTCPeerConnection__connect``): the ICE/DTLS start task that
  ``setLocalDescription`` / ``setRemoteDescription`` spawn and nobody awaits; wrapped on the
  instance (:func:`guard_connect_task`) so that a transport closed while it connects does not leave
  a failed task ("Task exception was never retrieved ... RTCIceTransport is closed").
- ``RTCRtpReceiver.receive`` / ``RTCRtpSender.send`` are public, but replaced on the instance with
  no-ops so that aiortc never starts its decoder thread, jitter buffer, encoder or RTCP loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver
import pylibsrtp

TESTED_AIORTC_VERSIONS = frozenset({"1.16.0"})
HOOKED_MARK = "_urok_sfu_hooked"

RawHandler = Callable[[bytes], None]

logger = logging.getLogger(__name__)


def aiortc_version() -> str:
    return str(getattr(aiortc, "__version__", "unknown"))


_host_addresses: tuple[str, ...] | None = None
_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_addresses is None:
        return list(_original_get_host_addresses(use_ipv4, use_ipv6))
    return [a for a in _host_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def default_host_addresses() -> list[str]:
    """aioice's own choice of IPv4 host addresses (every interface but loopback)."""
    return list(_original_get_host_addresses(True, False))


def set_host_addresses(addresses: tuple[str, ...] | None) -> None:
    """Gather host candidates only on ``addresses`` (process-wide); None restores aioice's choice."""
    global _host_addresses
    _host_addresses = tuple(addresses) if addresses is not None else None
    aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def host_addresses(addresses: tuple[str, ...] | None) -> Iterator[None]:
    """``set_host_addresses`` for a block, then back to what it was: clients in a network namespace
    must gather on its interfaces even after a loopback worker restricted them in this process."""
    before = _host_addresses
    set_host_addresses(addresses)
    try:
        yield
    finally:
        set_host_addresses(before)


def install_packet_hooks(dtls: Any, on_rtp: RawHandler, on_rtcp: RawHandler) -> bool:
    """Route decrypted RTP/RTCP of ``dtls`` (an ``RTCDtlsTransport``) to the given callables.

    The callables run synchronously inside aiortc's receive loop; they must not raise (the core
    wraps them). Returns False when the transport was already hooked.
    """
    if getattr(dtls, HOOKED_MARK, False):
        return False

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        on_rtp(data)

    async def handle_rtcp_data(data: bytes) -> None:
        on_rtcp(data)

    dtls._handle_rtp_data = handle_rtp_data
    dtls._handle_rtcp_data = handle_rtcp_data
    setattr(dtls, HOOKED_MARK, True)
    return True


DIRECT_MARK = "_urok_sfu_direct"


def install_direct_receive(
    dtls: Any, on_rtp: RawHandler, on_rtcp: RawHandler, on_srtp_error: Callable[[bool], None]
) -> bool:
    """Handle SRTP/SRTCP of ``dtls`` synchronously, straight from aioice's datagram callback.

    ``on_srtp_error(is_rtcp)`` is called when libsrtp rejects a packet. Returns False when the
    ICE connection was already hooked.
    """
    connection = ice_connection(dtls)
    if getattr(connection, DIRECT_MARK, False):
        return False
    original = connection.data_received
    # pylibsrtp raises ValueError("packet is too long") for more than its 1500-byte buffer, not
    # pylibsrtp.Error (issue 10: a long SRTP-looking datagram reached the loop's exception
    # handler); catching both costs nothing on the way through
    srtp_errors = (pylibsrtp.Error, ValueError)

    def data_received(data: bytes, component: int) -> None:
        if len(data) > 1 and 127 < data[0] < 192:
            rx = dtls._rx_srtp
            if rx is not None:
                rtcp = 191 < data[1] < 224
                try:
                    plain = rx.unprotect_rtcp(data) if rtcp else rx.unprotect(data)
                except srtp_errors:
                    on_srtp_error(rtcp)
                    return
                (on_rtcp if rtcp else on_rtp)(plain)
                return
        if data:  # aiortc's DTLS loop reads data[0]: an empty datagram would end it (issue 10)
            original(data, component)

    connection.data_received = data_received
    setattr(connection, DIRECT_MARK, True)
    return True


def guard_connect_task(pc: Any) -> None:
    """Make ``pc``'s connect task end quietly when the connection was closed under it.

    aiortc runs ``RTCPeerConnection.__connect`` as a task it never awaits (``asyncio.ensure_future``
    after each description). When the transport is closed while that task waits for ICE or DTLS,
    the next step raises (``InvalidStateError: RTCIceTransport is closed``) and asyncio logs "Task
    exception was never retrieved" when the task is collected (issue 10: 252 of them in a fuzzing
    run of publish-then-leave). After ``close()`` that failure is the expected end of the task;
    before it, an exception is aiortc's own failure and is left to surface as before.
    """
    original = pc._RTCPeerConnection__connect

    async def connect() -> None:
        try:
            await original()
        except Exception as exc:
            if pc.signalingState != "closed":
                raise
            logger.debug("connect task ended by close: %r", exc)

    pc._RTCPeerConnection__connect = connect


def tx_srtp(dtls: Any) -> Any | None:
    """The outbound pylibsrtp ``Session`` of a connected ``RTCDtlsTransport``, else None."""
    return getattr(dtls, "_tx_srtp", None)


def ice_connection(dtls: Any) -> Any:
    """The ``aioice.Connection`` under an ``RTCDtlsTransport``."""
    return dtls.transport._connection


def selected_pair(dtls: Any) -> tuple[Any, tuple[str, int]] | None:
    """``(asyncio datagram transport, remote address)`` of the nominated RTP pair, or None."""
    pair = ice_connection(dtls)._nominated.get(1)
    if pair is None:
        return None
    transport = pair.protocol.transport
    if transport is None or transport.is_closing():
        return None
    return transport, pair.remote_addr


def disable_receiver(receiver: Any) -> None:
    """Make ``RTCRtpReceiver.receive`` a no-op: no decoder thread, no jitter buffer, no RTCP task."""

    async def receive(parameters: Any) -> None:
        return None

    receiver.receive = receive


def disable_sender(sender: Any) -> None:
    """Make ``RTCRtpSender.send`` a no-op: no encoder, no RTP loop and no sender reports of its own.

    ``stop()`` then finds the sender never started and returns at once.
    """

    async def send(parameters: Any) -> None:
        return None

    sender.send = send


def sender_ssrc(sender: Any) -> int:
    return int(sender._ssrc)


def set_sender_ssrc(sender: Any, ssrc: int) -> None:
    """A new SSRC for a reused sender (its next offer writes it in ``a=ssrc``)."""
    sender._ssrc = ssrc


def set_sender_rtx_ssrc(sender: Any, ssrc: int) -> None:
    """The RTX SSRC aiortc writes for this sender (``a=ssrc-group:FID <ssrc> <rtx ssrc>``) when its
    codec preferences include RTX."""
    sender._rtx_ssrc = ssrc


def set_sender_msid(sender: Any, stream_id: str, track_id: str) -> None:
    """Set the ``a=msid:<stream_id> <track_id>`` aiortc writes for this sender."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def sender_msid(sender: Any) -> tuple[str, str]:
    return str(sender._stream_id), str(sender._track_id)


class ParkedTrack(aiortc.MediaStreamTrack):
    """A track that never yields a frame, for aiortc senders the core drives itself."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] | None = None

    async def recv(self) -> Any:
        self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise aiortc.mediastreams.MediaStreamError  # pragma: no cover


Protector = Callable[[bytes | bytearray], bytes]
_SRTP_MAX_TRAILER = 16 + 128


def fast_protect(session: Any) -> Protector:
    """A ``protect`` for a pylibsrtp ``Session`` that calls libsrtp directly through cffi.

    Same result as ``session.protect(bytes(data))``, minus the wrapper's type check, its per-call
    ``ffi.new`` and the caller's ``bytes()`` copy. Raises ``pylibsrtp.Error`` like the wrapper.
    Falls back to the wrapper when pylibsrtp's internals are not what this was written for.
    """
    try:
        from pylibsrtp._binding import ffi, lib

        srtp = session._srtp[0]
        cdata = session._cdata
        buffer = session._buffer
        protect_fn = lib.srtp_protect
        ok = lib.srtp_err_status_ok
        capacity = len(cdata) - _SRTP_MAX_TRAILER
    except Exception:  # pragma: no cover - only after a pylibsrtp upgrade
        wrapper = session.protect
        return lambda data: bytes(wrapper(bytes(data)))
    len_p = ffi.new("int *")

    def protect(data: bytes | bytearray) -> bytes:
        n = len(data)
        if n > capacity:
            raise ValueError("packet is too long")
        buffer[0:n] = data
        len_p[0] = n
        rc = protect_fn(srtp, cdata, len_p)
        if rc != ok:
            raise pylibsrtp.Error(f"srtp_protect failed ({rc})")
        return bytes(buffer[0 : len_p[0]])

    return protect


def srtp_protect_address(name: str = "srtp_protect") -> int | None:
    """Address of libsrtp's ``srtp_protect`` (or ``srtp_protect_rtcp``) as linked by pylibsrtp's
    cffi module (for ``sfu._fastpath``), or None when pylibsrtp's internals are not what this was
    written for."""
    try:
        from pylibsrtp._binding import ffi, lib

        fn = ffi.addressof(lib, name)
        if ffi.typeof(fn).cname != "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)":
            return None  # pragma: no cover - a libsrtp 3 signature
        return int(ffi.cast("uintptr_t", fn))
    except Exception:  # pragma: no cover - only after a pylibsrtp upgrade
        return None


def srtp_context_address(session: Any) -> int | None:
    """Address of a pylibsrtp ``Session``'s ``srtp_t`` (valid while the session lives), or None."""
    try:
        from pylibsrtp._binding import ffi

        return int(ffi.cast("uintptr_t", session._srtp[0])) or None
    except Exception:  # pragma: no cover - only after a pylibsrtp upgrade
        return None


_parked: ContextVar[bool] = ContextVar("urok_sfu_parked_receivers", default=False)
_real_estimator: Any = getattr(aiortc.rtcrtpreceiver, "RemoteBitrateEstimator")  # noqa: B009 - not exported


def _remote_bitrate_estimator() -> Any:
    return None if _parked.get() else _real_estimator()


def install_parked_receivers() -> None:
    """Idempotent, process-wide; outside :func:`parked_receivers` aiortc behaves as its own."""
    setattr(aiortc.rtcrtpreceiver, "RemoteBitrateEstimator", _remote_bitrate_estimator)  # noqa: B010


@contextlib.contextmanager
def parked_receivers() -> Iterator[None]:
    """Within this block, new ``RTCRtpReceiver`` objects get no remote bitrate estimator (for the
    core's transports, whose receivers are never started: :func:`disable_receiver`)."""
    token = _parked.set(True)
    try:
        yield
    finally:
        _parked.reset(token)
