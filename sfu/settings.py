"""Settings of a worker, and what a worker lends its routers and their transports.

Kept apart from :mod:`sfu.worker` so that routers and transports read them without importing the
worker (which imports them): the objects' modules import only downwards, parents to children.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stats import WorkerStats
    from .udp_mux import UdpMux


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN/TURN server handed to every peer connection."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Settings of a worker.

    ``ice_servers``: STUN/TURN servers (``IceServer`` or a plain URL string); empty means none,
    which is right on loopback and for a server with a public address. A public STUN server is
    never used by default.
    """

    ice_servers: tuple[IceServer | str, ...] = ()
    remb_bitrate: int = 3_000_000  # bits/s announced to publishers in REMB
    remb_interval: float = 1.0  # seconds
    # Congestion control (sfu.congestion): transport-cc feedback to publishers that offer it, else
    # a receive-side estimate as their REMB (capped by remb_bitrate); a downlink estimate per
    # subscriber that its simulcast layers follow. False: the fixed REMB, layers by REMB alone.
    bandwidth_estimation: bool = True
    # RTX (RFC 4588) offered to subscribers for video: NACKed packets go back on an RTX SSRC of
    # their own, and padding-only RTX packets probe a subscriber's downlink (padding_probes, with
    # bandwidth_estimation) so that its simulcast layer goes back up soon after the link recovers
    subscriber_rtx: bool = True
    padding_probes: bool = True
    tick_interval: float = 0.25  # seconds between periodic checks (PLI retries, REMB, paths)
    history_size: int = 1024  # packets kept per producer for NACKs (power of two)
    history_age: float = 2.0  # seconds a packet stays answerable
    # NACK answering limits per consumer (sfu.nack, issue 10): retransmitted RTP bytes per second
    # and at once (a token bucket; 64 kB/s is about 17% of a 3 Mbit/s stream), and how far behind
    # the newest sent packet a NACKed sequence number may be (further ones are ignored)
    retransmit_rate: int = 64_000
    retransmit_burst: int = 64_000
    nack_window: int = 512
    # Receive SRTP synchronously from aioice's datagram callback (faster); False: from aiortc's
    # DTLS transport receive loop (one queue hop and one coroutine per packet more).
    direct_receive: bool = True
    # Host candidate addresses to gather on (process-wide, applied when the Worker is created);
    # None: every interface aioice finds (which never includes 127.0.0.1). ("127.0.0.1",) for a
    # loopback-only dev server and for tests.
    host_addresses: tuple[str, ...] | None = None
    # One UDP port for every transport (ICE-lite, sfu.udp_mux): None = each peer connection gathers
    # its own sockets with aioice (full ICE). 0 = any free port. Bound by ``await worker.start()``.
    udp_port: int | None = None
    udp_listen_address: str = "0.0.0.0"
    # addresses put in the shared port's host candidates; () = host_addresses, else every interface
    announced_addresses: tuple[str, ...] = ()
    # ICE consent on the shared port (RFC 7675): a path without a valid check from the peer, or without
    # an answer to the port's own check, for this long loses consent; a transport left without a
    # verified path is failed. See docs/sfu.md, "One UDP port for every transport".
    ice_consent_timeout: float = 30.0
    # Sends on the shared port in sendmmsg batches (the C extension sfu._sendmmsg): None = when the
    # extension is built, False = one sendto per datagram. See docs/sfu.md, "Batched sends".
    batch_send: bool | None = None
    # The compiled fan-out (sfu._fastpath): None = when it is built, False = the Python fan-out
    # only, True = required (a warning when it is not built). See docs/sfu.md, "The compiled fan-out".
    fast_path: bool | None = None

    def normalized_ice_servers(self) -> list[IceServer]:
        return [IceServer(urls=(s,)) if isinstance(s, str) else s for s in self.ice_servers]


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What a worker lends each router and, through it, each transport (given at construction, as
    mediasoup hands its objects a listener): the settings, the shared stats, and the worker's few
    services. Nothing here reaches back into the worker's fields."""

    settings: WorkerSettings
    stats: WorkerStats
    fast_path: bool  # the compiled fan-out runs (sfu.fast_path)
    mux: Callable[[], UdpMux | None]  # the shared ICE-lite port, once bound (None: full ICE)
    spawn: Callable[[Coroutine[Any, Any, Any]], None]  # a background task the worker's close awaits
    ensure_ticker: Callable[[], None]  # start the periodic work (ticks) if it does not run yet


__all__ = ["IceServer", "WorkerContext", "WorkerSettings"]
