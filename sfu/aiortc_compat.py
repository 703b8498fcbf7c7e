"""Every access to a private attribute of aiortc or aioice lives in this module.

The forwarding core keeps aiortc's ``RTCPeerConnection`` for SDP, aioice for ICE and
``RTCDtlsTransport`` for DTLS and the SRTP sessions, but moves packets itself. That needs a few of
their private names; ``tests/sfu/test_aiortc_compat.py`` checks each one against the installed
versions and fails loudly when an upgrade moves them. Pin aiortc to a tested version.

Private names used (aiortc 1.16.0, aioice 0.13):
- ``RTCDtlsTransport._handle_rtp_data`` / ``._handle_rtcp_data``: awaited by ``_recv_next`` with the
  decrypted packet; replaced on the instance to receive packets before aiortc parses them.
- ``RTCDtlsTransport._tx_srtp``: the outbound pylibsrtp ``Session`` (set once DTLS is connected).
- ``RTCIceTransport._connection`` (an ``aioice.Connection``) and its ``_nominated`` dict
  (component -> ``CandidatePair``); ``CandidatePair.protocol.transport`` is the asyncio datagram
  transport and ``.remote_addr`` the peer's address: the selected pair to send on.
- ``RTCRtpSender._ssrc`` (the SSRC aiortc announced in ``a=ssrc``), ``._stream_id`` and
  ``._track_id`` (written as ``a=msid``).
- ``aioice.ice.get_host_addresses`` (module function): wrapped once so that
  ``WorkerSettings.host_addresses`` can restrict host candidates (aioice never offers 127.0.0.1
  on its own; tests and a loopback-only dev server need exactly that).
- ``RTCRtpReceiver.receive`` / ``RTCRtpSender.send`` are public, but replaced on the instance with
  no-ops so that aiortc never starts its decoder thread, jitter buffer, encoder or RTCP loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aioice.ice
import aiortc

TESTED_AIORTC_VERSIONS = frozenset({"1.16.0"})
HOOKED_MARK = "_urok_sfu_hooked"

RawHandler = Callable[[bytes], None]


def aiortc_version() -> str:
    return str(getattr(aiortc, "__version__", "unknown"))


_host_addresses: tuple[str, ...] | None = None
_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_addresses is None:
        return list(_original_get_host_addresses(use_ipv4, use_ipv6))
    return [a for a in _host_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def set_host_addresses(addresses: tuple[str, ...] | None) -> None:
    """Gather host candidates only on ``addresses`` (process-wide); None restores aioice's choice."""
    global _host_addresses
    _host_addresses = tuple(addresses) if addresses is not None else None
    aioice.ice.get_host_addresses = _get_host_addresses


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
