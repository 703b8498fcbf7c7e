"""Router: one room on one worker; owns the room's transports."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .active_speaker_observer import ActiveSpeakerObserver
from .direct_transport import DirectTransport
from .errors import ClosedError, DuplicateIdError
from .pipe_transport import PipeTransport, pipe_to_router
from .webrtc_transport import WebRtcTransport

if TYPE_CHECKING:
    from .pipe_consumer import PipeConsumer
    from .producer import Producer
    from .settings import WorkerContext

logger = logging.getLogger(__name__)


class RouterOwner(Protocol):
    """The worker, as its routers see it (``router.worker``): they call it only through the
    ``on_closed`` callback and the :class:`~sfu.settings.WorkerContext` it gave them."""

    @property
    def closed(self) -> bool: ...


class Router:
    """A room. Created only by :meth:`Worker.create_router`."""

    def __init__(
        self, router_id: str, context: WorkerContext, *, owner: RouterOwner,
        on_closed: Callable[[Router], None],
    ) -> None:
        self.id = router_id
        self.on_close: Callable[[], None] | None = None
        self._context = context
        self._owner = owner
        self._on_closed = on_closed  # the worker forgets the router
        self._closed = False
        self._transports: dict[str, WebRtcTransport] = {}
        self._producers: dict[str, Producer] = {}
        self._observers: list[ActiveSpeakerObserver] = []
        self._direct: dict[str, DirectTransport] = {}  # features' transports (sfu.direct_transport)
        self._pipes: dict[str, PipeTransport] = {}  # to other routers (sfu.pipe_transport)
        self._pipe_pairs: dict[int, tuple[PipeTransport, PipeTransport]] = {}  # pipe_to_router's, by id(other)

    @property
    def worker(self) -> RouterOwner:
        return self._owner

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def transports(self) -> list[WebRtcTransport]:
        return list(self._transports.values())

    @property
    def producers(self) -> list[Producer]:
        """Every open producer of every transport of this router."""
        return list(self._producers.values())

    @property
    def direct_transports(self) -> list[DirectTransport]:
        return list(self._direct.values())

    @property
    def pipe_transports(self) -> list[PipeTransport]:
        return list(self._pipes.values())

    def get_transport(self, transport_id: str) -> WebRtcTransport | None:
        return self._transports.get(transport_id)

    def get_producer(self, producer_id: str) -> Producer | None:
        return self._producers.get(producer_id)

    def create_transport(self, transport_id: str) -> WebRtcTransport:
        """A new transport (one ``RTCPeerConnection``); ids are unique within the router."""
        if self._closed:
            raise ClosedError(f"router {self.id!r} is closed")
        if transport_id in self._transports:
            raise DuplicateIdError(f"transport {transport_id!r} exists")
        transport = WebRtcTransport(
            transport_id, self._context, owner=self, on_closed=self._transport_closed,
            on_producer_added=self._producer_added, on_producer_removed=self._producer_removed,
        )
        self._transports[transport_id] = transport
        self._context.stats.transports += 1
        self._context.ensure_ticker()
        return transport

    def create_direct_transport(self, transport_id: str | None = None) -> DirectTransport:
        """A transport with no network, for features (docs/sfu_features.md): ``consume`` hands a
        producer's packets to a callback, ``produce`` makes a producer fed from Python. Ids are
        unique among the router's direct transports (default: a new random one)."""
        if self._closed:
            raise ClosedError(f"router {self.id!r} is closed")
        if transport_id is None:
            transport_id = f"direct-{uuid.uuid4().hex[:12]}"
        if transport_id in self._direct:
            raise DuplicateIdError(f"direct transport {transport_id!r} exists")
        transport = DirectTransport(
            transport_id, self._context, owner=self, on_closed=self._direct_closed,
            on_producer_added=self._producer_added, on_producer_removed=self._producer_removed,
        )
        self._direct[transport_id] = transport
        self._context.ensure_ticker()
        return transport

    def create_pipe_transport(
        self, listen_ip: str = "127.0.0.1", port: int = 0, *, srtp: bool = False, transport_id: str | None = None
    ) -> PipeTransport:
        """One end of a pipe to another router (another worker, process or machine): plain RTP/RTCP
        on one UDP socket bound to ``listen_ip``:``port`` (0: any free port), SRTP with ``srtp``.
        See :mod:`sfu.pipe_transport` and docs/sfu.md. Raises :class:`~sfu.PipeAddressError`."""
        if self._closed:
            raise ClosedError(f"router {self.id!r} is closed")
        if transport_id is None:
            transport_id = f"pipe-{uuid.uuid4().hex[:12]}"
        if transport_id in self._pipes:
            raise DuplicateIdError(f"pipe transport {transport_id!r} exists")
        pipe = PipeTransport(
            transport_id, self._context, owner=self, listen_ip=listen_ip, port=port, srtp=srtp,
            on_closed=self._pipe_closed, on_producer_added=self._producer_added,
            on_producer_removed=self._producer_removed,
        )
        self._pipes[transport_id] = pipe
        self._context.ensure_ticker()
        return pipe

    def pipe_to_router(self, producer: Producer, other: Router, *, srtp: bool = False) -> tuple[PipeConsumer, Producer]:
        """Make ``producer`` (of this router) a producer of ``other`` too, in this process
        (mediasoup's ``pipeToRouter``): a pipe pair on 127.0.0.1, made at the first call for this
        pair of routers and reused, then consume here and produce there. Returns (the pipe
        consumer, the producer of ``other``, which has ``producer``'s id). Closing ``producer``
        closes both; closing the one of ``other`` closes the pipe consumer. Idempotent per producer."""
        return pipe_to_router(producer, self, other, srtp=srtp)

    def create_active_speaker_observer(self, decision_interval: float = 0.3) -> ActiveSpeakerObserver:
        """An observer of the audio levels of the producers added to it (``observer.add_producer``);
        it decides the dominant speaker on the worker's ticker."""
        if self._closed:
            raise ClosedError(f"router {self.id!r} is closed")
        observer = ActiveSpeakerObserver(decision_interval)
        self._observers.append(observer)
        self._context.ensure_ticker()
        return observer

    def close(self) -> None:
        """Close every transport (which closes their producers and consumers). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for transport in list(self._transports.values()):
            transport.close()
        for direct in list(self._direct.values()):
            direct.close()
        for pipe in list(self._pipes.values()):
            pipe.close()
        self._pipe_pairs.clear()
        for observer in self._observers:
            observer.close()
        self._observers.clear()
        self._on_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("router on_close callback failed")

    def __repr__(self) -> str:
        return f"Router(id={self.id!r}, transports={len(self._transports)})"

    # ---- internal: the worker's ticker and the transports' callbacks ------------------------------
    def _tick(self, now: float) -> None:
        """Periodic work (from the worker's ticker): the observers' decisions, then each transport's
        tick. Never raises (one failing transport does not stop the others)."""
        try:
            for observer in self._observers:
                observer.tick(now)
        except Exception:
            logger.exception("router %s: active speaker observer failed", self.id)
        for transport in list(self._transports.values()):
            try:
                transport._tick(now)
            except Exception:
                logger.exception("transport %s: periodic work failed", transport.id)
        for direct in list(self._direct.values()):
            try:
                direct._tick(now)
            except Exception:
                logger.exception("direct transport %s: periodic work failed", direct.id)
        for pipe in list(self._pipes.values()):
            try:
                pipe._tick(now)
            except Exception:
                logger.exception("pipe transport %s: periodic work failed", pipe.id)

    def _transport_closed(self, transport: WebRtcTransport) -> None:
        if self._transports.get(transport.id) is transport:
            del self._transports[transport.id]

    def _direct_closed(self, transport: DirectTransport) -> None:
        if self._direct.get(transport.id) is transport:
            del self._direct[transport.id]

    def _pipe_closed(self, transport: PipeTransport) -> None:
        if self._pipes.get(transport.id) is transport:
            del self._pipes[transport.id]

    def _producer_added(self, producer: Producer) -> None:
        self._producers[producer.id] = producer

    def _producer_removed(self, producer: Producer) -> None:
        self._producers.pop(producer.id, None)
