"""One participant's two peer connections (LiveKit's model): the publisher (client offers) and the
subscriber (server offers).  Owns the subscriber's renegotiation: one offer in flight at a time,
changes that arrive meanwhile are folded into the next offer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sfu import Producer, Router, SfuError, WebRtcTransport
from sfu.errors import TooManyCandidatesError
from sfu.webrtc_transport import MAX_REMOTE_CANDIDATES, check_candidate
from signaling.media.subscriber_connection import ConsumerHandle, SubscriberConnection
from signaling.rooms import InvalidState

log = logging.getLogger("urok.media")


class ParticipantMedia:
    def __init__(self, router: Router, participant_id: str, *, connection: int,
                 send_event: Callable[..., None], negotiation: asyncio.Lock | None = None,
                 on_failed: Callable[[ParticipantMedia, str], None] | None = None,
                 subscriber: SubscriberConnection | None = None) -> None:
        self.router = router
        self.participant_id = participant_id
        self._conn = connection
        self.send_event = send_event  # to this participant's socket
        self.publisher: WebRtcTransport | None = None
        # what it receives: this worker's transport, or (``subscriber``) one on another worker of a
        # room spanning workers (signaling/cluster/edge_link.py); it publishes here either way
        self.subscriber: SubscriberConnection = (
            subscriber if subscriber is not None else router.create_transport(f"{participant_id}:{connection}:sub"))
        self.remote = subscriber is not None
        self.subscriber.on_negotiation_needed = self.schedule_offer
        # a transport whose path failed (ICE consent lost, RFC 7675: the client stopped answering)
        # sends nothing more: the owner tears the media down and tells the client (issue 20)
        self._on_failed = on_failed
        self.subscriber.on_state_change = lambda state: self._state_changed("subscriber", state)
        self.consumers: dict[str, ConsumerHandle] = {}  # producer id -> consumer
        # both keyed by tracks of the room only, forgotten when the track goes (forget_track)
        self.unsubscribed: set[str] = set()  # producer ids this participant asked not to receive
        self.quality: dict[str, str] = {}  # producer id -> low | medium | high (simulcast)
        # publisher candidates before its first offer, at most as many as a transport takes
        self._early_candidates: list[dict[str, Any] | None] = []
        self._offer_in_flight = False
        self._offer_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # the room's: one SDP step of the room at a time (see MediaFeature.negotiation)
        self.negotiation = negotiation or asyncio.Lock()
        self.closed = False
        self.subscriber_up = asyncio.Event()  # its subscriber connection connected once (the join gate waits for it)

    # --- publisher ---------------------------------------------------------------------------
    def publisher_transport(self) -> WebRtcTransport:
        if self.publisher is None:
            self.publisher = self.router.create_transport(f"{self.participant_id}:{self._conn}:pub")
            self.publisher.stream_id = self.participant_id  # a=msid:<participant_id> <track_id>
            self.publisher.on_state_change = lambda state: self._state_changed("publisher", state)
        return self.publisher

    async def add_candidate(self, target: str, candidate: dict[str, Any] | None) -> None:
        if target == "subscriber":
            await self.subscriber.add_remote_candidate(candidate)
        elif self.publisher is None:
            check_candidate(candidate)
            if len(self._early_candidates) >= MAX_REMOTE_CANDIDATES:
                raise TooManyCandidatesError(f"at most {MAX_REMOTE_CANDIDATES} candidates before the first offer")
            self._early_candidates.append(candidate)
        else:
            await self.publisher.add_remote_candidate(candidate)

    async def flush_early_candidates(self) -> None:
        early, self._early_candidates = self._early_candidates, []
        if self.publisher is not None:
            for c in early:
                try:
                    await self.publisher.add_remote_candidate(c)
                except SfuError as e:  # checked when buffered; a closed transport ends here
                    log.debug("early candidate dropped: %s (%s)", e, e.detail,
                              extra={"participant_id": self.participant_id})

    def forget_track(self, producer_id: str) -> None:
        """The track is gone from the room: nothing of it stays in this participant's state."""
        self.unsubscribed.discard(producer_id)
        self.quality.pop(producer_id, None)

    # --- subscriber --------------------------------------------------------------------------
    def consume(self, producer: Producer) -> ConsumerHandle | None:
        if self.closed or producer.id in self.consumers or producer.id in self.unsubscribed:
            return None
        try:
            consumer = self.subscriber.consume(producer)
        except SfuError as e:
            log.warning("cannot consume %s: %s", producer.id, e, extra={"participant_id": self.participant_id})
            return None
        self.consumers[producer.id] = consumer
        pid = producer.id

        def forget() -> None:
            if self.consumers.get(pid) is consumer:
                del self.consumers[pid]

        consumer.on_close = forget
        return consumer

    def stop_consuming(self, producer_id: str) -> bool:
        consumer = self.consumers.pop(producer_id, None)
        if consumer is None:
            return False
        consumer.close()
        return True

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """The room's turn for a subscriber negotiation; none with full ICE, whose steps can wait
        for the network (gathering, an mDNS name), which must not hold the room."""
        return self.negotiation if self.subscriber.ice_lite else contextlib.nullcontext()

    def schedule_offer(self) -> None:
        """Called by the transport when its consumers changed: offer soon (coalescing changes)."""
        if self.closed or self._offer_in_flight:
            return
        if self._offer_task is None or self._offer_task.done():
            self._offer_task = asyncio.get_running_loop().create_task(self._offer())

    async def _offer(self) -> None:
        await asyncio.sleep(0)  # let a burst of consume() calls land in one offer
        async with self._lock:
            if self.closed or self._offer_in_flight or not self.subscriber.negotiation_needed:
                return
            try:
                async with self._turn():
                    if self.closed:
                        return
                    sdp = await self.subscriber.create_offer()
            except SfuError as e:
                log.warning("subscriber offer failed: %s", e, extra={"participant_id": self.participant_id})
                return
            self._offer_in_flight = True
        self.send_event("subscriber_offer", sdp=sdp)

    async def accept_answer(self, sdp: str) -> None:
        async with self._lock:
            if not self._offer_in_flight:
                raise InvalidState("no subscriber_offer is waiting for an answer")
            async with self._turn():
                await self.subscriber.accept_answer(sdp)
            self._offer_in_flight = False
        if self.subscriber.negotiation_needed:
            self.schedule_offer()

    def _state_changed(self, target: str, state: str) -> None:
        if target == "subscriber" and state == "connected":
            self.subscriber_up.set()
        if state == "failed" and not self.closed and self._on_failed is not None:
            self._on_failed(self, target)

    # --- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close both peer connections; producers close with them (and their consumers elsewhere)."""
        if self.closed:
            return
        self.closed = True
        if self._offer_task is not None and not self._offer_task.done():
            self._offer_task.cancel()
        with contextlib.suppress(Exception):
            self.subscriber.close()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                self.publisher.close()
