"""What a participant's subscriber connection is to the room: the interface that both a local
``sfu.WebRtcTransport`` and a remote one (on another worker of a room that spans workers,
signaling/cluster/edge_link.py) satisfy.

The room (MediaFeature, ParticipantMedia) decides what each participant receives; where the
packets leave from is the placer's choice (``SubscriberPlacer``): this worker's own transport, or
a transport of another worker fed over a pipe (mediasoup's pipeToRouter; issue 19: a webinar's
viewers on several workers while the teacher publishes on one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sfu import Producer


class ConsumerHandle(Protocol):
    """One track forwarded to one subscriber (``sfu.Consumer`` or its remote twin)."""

    on_close: Callable[[], None] | None

    @property
    def kind(self) -> str: ...

    @property
    def paused(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def set_quality(self, quality: str) -> None: ...

    def replace_producer(self, producer: Producer) -> None: ...

    def close(self) -> None: ...


class SubscriberConnection(Protocol):
    """The server-offered peer connection that carries everything a participant receives."""

    on_negotiation_needed: Callable[[], None] | None
    on_state_change: Callable[[str], None] | None

    @property
    def ice_lite(self) -> bool: ...

    @property
    def negotiation_needed(self) -> bool: ...

    def consume(self, producer: Producer) -> ConsumerHandle: ...

    async def create_offer(self) -> str: ...

    async def accept_answer(self, answer_sdp: str) -> None: ...

    async def add_remote_candidate(self, candidate: Mapping[str, Any] | None) -> None: ...

    def close(self) -> None: ...


class SubscriberPlacer(Protocol):
    """Where a joining participant's subscriber connection lives: None = on this worker (the
    room's router), else a connection on another worker.  ``local`` is how many participants
    already receive from this worker's router in this room."""

    async def place(self, room_id: str, participant_id: str, connection: int, *,
                    local: int) -> SubscriberConnection | None:
        ...
