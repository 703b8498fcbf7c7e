"""Join admission control for one worker process: how many WebSocket joins are being processed at
once, and a FIFO queue for the rest while the process is busy.

Why (issue 19, "Overload never drops the teacher"; docs/benchmarks.md "Webinar load"): a 1500-viewer
join storm held the event loop so long that the host's consent checks went unanswered and the
publisher's connection closed, and with it the whole lesson.  A join is the expensive moment of a
participant's life (the room's state encoded for it, its media endpoints made), an established
participant is cheap; so joins wait, established participants never do.

Rules:
- At most ``max_concurrent`` joins hold a slot at once; while the loop lags more than ``lag_limit_s``
  no new join starts (hosts and reconnects excepted): the loop's time goes to the established
  participants' packets and consent checks first.  A lag caused by the joins in flight passes
  when they are done (their slots are held until their media is up), and the queue moves again; a
  lag with no join in flight is the worker full with what it carries, and then the queue waits
  until it is not, or until ``timeout_s`` (`try_again`): admitting "one at a time" there (this
  gate's first version) kept adding viewers to a worker that could not forward to those it had.
- The same while the process uses more than ``cpu_limit`` of the CPU it may use (cpu_load.py:
  one core, or its container's quota): a worker stops taking new viewers before it is full, not
  once its loop already lags (too late for those in: a viewer admitted stays).
- How many joins hold a slot follows the loop (a window, TCP's AIMD): it halves, at most every
  ``CUT_EVERY_S``, while the loop lags, and grows by one slot a second while it keeps up, up to
  ``max_concurrent``.  A slot is held until the participant's media is up (rtc_endpoint.py: its
  subscriber connected, or MEDIA_HOLD_S), because the ICE and DTLS handshakes and the first offer
  are most of a join's cost: on a worker limited to a quarter of a core (benchmarks/webinar.py
  --worker-cpu 0.25), 800 viewers admitted 64 at a time with the slot freed at the welcome held
  the loop for seconds at a time, the host's consent checks went unanswered and the lesson fell.
- Joins beyond that wait in arrival order.  A waiter hears its position and an estimate at once,
  then when it changed, at most every ``update_interval_s``.
- Hosts and co-hosts, and a participant coming back to a seat it holds (``bypass``), take a slot at
  once, whatever the queue: the teacher is never made to wait behind the class.
- A queue longer than ``max_queue`` refuses at once, a wait longer than ``timeout_s`` ends
  refused: `try_again` with a retry-after hint (the caller answers the client).
- Below ``max_concurrent`` simultaneous joins with a loop that does not lag nothing waits and
  nothing is sent: the gate is invisible to an ordinary lesson.

Plain asyncio, no sockets: the WebSocket endpoint (rtc_endpoint.py) says what a queued client is
told.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from signaling.app_keys import METRICS
from signaling.ws.cpu_load import CpuLoad

if TYPE_CHECKING:
    from signaling.loop_monitor import LoopMonitor
    from signaling.settings import Settings

TICK_S = 0.1  # how often a non-empty queue re-checks the lag, the timeouts and the updates
CPU_HYSTERESIS = 0.15  # over cpu_limit, joins start again only below cpu_limit minus this
CUT_EVERY_S = 0.5  # the window halves at most this often (the lag is a mean over MonitorLag's 0.5 s)
GROW_EVERY_S = 1.0  # the window grows by one at most this often (cpu_load.py reads the CPU every 1 s)
HOLD_PRIOR_S = 0.05  # a slot's assumed hold time before any was measured (for the first estimates)


class JoinRefused(Exception):
    """The queue is full, or the wait was too long: the client should come back after ``retry_after_s``."""

    code = "try_again"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class JoinTicket:
    """One join's place: admitted (holding a slot) or waiting.  ``release`` frees the slot; it is
    idempotent and also takes a waiting ticket out of the queue (the client went away)."""

    def __init__(self, gate: JoinGate, *, on_update: Callable[[int, float], None] | None) -> None:
        self._gate = gate
        self._on_update = on_update
        self.admitted = False
        self.released = False
        self.queued_at = 0.0
        self.admitted_at = 0.0
        self.last_told: tuple[int, float] | None = None  # (position, when) last sent
        self.future: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        """Until admitted; JoinRefused when the wait exceeded the gate's timeout."""
        if self.admitted:
            return
        assert self.future is not None
        await self.future

    def release(self) -> None:
        self._gate._release(self)

    def tell(self, position: int, estimate_s: float, now: float) -> None:
        self.last_told = (position, now)
        if self._on_update is not None:
            self._on_update(position, estimate_s)


class JoinGate:
    def __init__(self, *, max_concurrent: int = 64, lag_limit_s: float = 0.1, max_queue: int = 2000,
                 timeout_s: float = 60.0, update_interval_s: float = 2.0,
                 lag_s: Callable[[], float] = lambda: 0.0, cpu_limit: float = math.inf,
                 cpu: Callable[[], float] = lambda: 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_concurrent < 1 or max_queue < 0 or timeout_s <= 0:
            raise ValueError("max_concurrent >= 1, max_queue >= 0, timeout_s > 0")
        self.max_concurrent = max_concurrent
        self.lag_limit_s = lag_limit_s
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.update_interval_s = update_interval_s
        self._lag_s = lag_s
        self.cpu_limit = cpu_limit
        self._cpu = cpu
        self._cpu_full = False
        self._clock = clock
        self.active = 0  # tickets holding a slot
        self.window = float(max_concurrent)  # slots the loop keeps up with now (see the module's text)
        self._cut_at = -math.inf
        self._grown_at = -math.inf
        self._queue: collections.deque[JoinTicket] = collections.deque()
        self._ticker: asyncio.Task[None] | None = None
        self._hold_s = HOLD_PRIOR_S  # moving average of how long a slot is held (the estimates)
        self._from_queue: collections.deque[float] = collections.deque(maxlen=32)  # when queued joins got in
        # counters for /metrics
        self.admitted_total = 0
        self.queued_total = 0
        self.bypassed_total = 0
        self.refused_total = 0

    # --- state -------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return len(self._queue)

    def busy(self) -> bool:
        """The loop lags, or the process uses more of its CPU than ``cpu_limit`` (cpu_load.py) and
        has not come down below ``cpu_limit - CPU_HYSTERESIS`` since: a full worker's share wavers
        around its limit, and each dip under it let a few more viewers in (measured on a quarter
        core: 555 admitted where it was full at ~310)."""
        cpu = self._cpu()
        if cpu > self.cpu_limit:
            self._cpu_full = True
        elif cpu < self.cpu_limit - CPU_HYSTERESIS:
            self._cpu_full = False
        return self._lag_s() > self.lag_limit_s or self._cpu_full

    def limit(self) -> int:
        """Slots now: the window, or one while the loop lags (the queue keeps moving)."""
        return 1 if self.busy() else max(1, int(self.window))

    def _adapt(self) -> None:
        """Once a tick while joins wait: halve the window while the loop lags, else grow it by one."""
        now = self._clock()
        if self.busy():
            if now - self._cut_at >= CUT_EVERY_S:
                self.window = max(1.0, self.window / 2)
                self._cut_at = now
        elif now - self._grown_at >= GROW_EVERY_S:
            # one slot per CPU reading, not per tick: the viewers just admitted show in the share
            # only a reading later, and each brings its packets for the rest of the lesson
            self.window = min(float(self.max_concurrent), self.window + 1)
            self._grown_at = now

    def estimate_s(self, position: int) -> float:
        """Seconds until the join at ``position`` (1 = next) gets a slot: from the rate at which the
        queue moved lately, or before it moved from the slots' measured hold time."""
        q = self._from_queue
        if len(q) >= 2 and q[-1] > q[0]:
            return round(position * (q[-1] - q[0]) / (len(q) - 1), 1)
        per_slot = max(self._hold_s, TICK_S) if self.busy() else self._hold_s
        return round(math.ceil(position / self.limit()) * per_slot, 1)

    def retry_after_s(self) -> float:
        """A hint for a refused client: about when the queue now waiting will have drained."""
        return float(min(60, max(1, math.ceil(self.estimate_s(len(self._queue) + 1)))))

    # --- entering ----------------------------------------------------------------------------
    def enter(self, *, bypass: bool = False, on_update: Callable[[int, float], None] | None = None) -> JoinTicket:
        """A ticket admitted at once (a free slot and nobody waiting, or ``bypass``) or queued (its
        ``on_update`` called with position 1.. and an estimate in seconds, at once and then on
        changes); JoinRefused at once when the queue is full."""
        ticket = JoinTicket(self, on_update=on_update)
        if bypass:
            self.bypassed_total += 1
            self._admit(ticket)
            return ticket
        if not self._queue and not self.busy() and self.active < self.limit():
            self._admit(ticket)
            return ticket
        if len(self._queue) >= self.max_queue:
            self.refused_total += 1
            raise JoinRefused(f"too many people are joining now ({len(self._queue)} waiting); try again",
                              self.retry_after_s())
        now = self._clock()
        ticket.queued_at = now
        ticket.future = asyncio.get_running_loop().create_future()
        self._queue.append(ticket)
        self.queued_total += 1
        ticket.tell(len(self._queue), self.estimate_s(len(self._queue)), now)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="join-gate")
        return ticket

    def _admit(self, ticket: JoinTicket) -> None:
        ticket.admitted = True
        ticket.admitted_at = self._clock()
        if ticket.future is not None:
            self._from_queue.append(ticket.admitted_at)
        self.active += 1
        self.admitted_total += 1
        if ticket.future is not None and not ticket.future.done():
            ticket.future.set_result(None)

    def _release(self, ticket: JoinTicket) -> None:
        if ticket.released:
            return
        ticket.released = True
        if ticket.admitted:
            self.active -= 1
            held = self._clock() - ticket.admitted_at
            self._hold_s = 0.8 * self._hold_s + 0.2 * held
        else:
            with contextlib.suppress(ValueError):
                self._queue.remove(ticket)
            if ticket.future is not None and not ticket.future.done():
                ticket.future.cancel()
        self._pump(tick=False)

    def _pump(self, *, tick: bool) -> None:
        """Admit from the head while slots are free; nobody while the loop lags (see the module's text)."""
        if not self._queue or self.busy():
            return
        while self._queue and self.active < self.limit():
            self._admit(self._queue.popleft())

    async def _tick(self) -> None:
        """While anyone waits: admit as the lag allows, refuse the too-long waits, tell the others."""
        while self._queue:
            self._adapt()
            self._pump(tick=True)
            now = self._clock()
            for ticket in list(self._queue):
                if now - ticket.queued_at >= self.timeout_s:
                    self._queue.remove(ticket)
                    ticket.released = True
                    self.refused_total += 1
                    assert ticket.future is not None
                    if not ticket.future.done():
                        ticket.future.set_exception(JoinRefused(
                            f"waited {self.timeout_s:.0f} s to join; try again", self.retry_after_s()))
            for position, ticket in enumerate(self._queue, start=1):
                told = ticket.last_told
                if told is not None and told[0] != position and now - told[1] >= self.update_interval_s:
                    ticket.tell(position, self.estimate_s(position), now)
            await asyncio.sleep(TICK_S)

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    def counters(self) -> dict[str, dict[str, float]]:
        return {"join_gate_total": {"outcome=admitted": float(self.admitted_total),
                                    "outcome=queued": float(self.queued_total),
                                    "outcome=bypassed": float(self.bypassed_total),
                                    "outcome=refused": float(self.refused_total)}}

    def gauges(self) -> dict[str, float]:
        return {"join_gate_active": float(self.active), "join_gate_queued": float(len(self._queue)),
                "join_gate_window": self.window, "cpu_load": self._cpu()}


class MonitorLag:
    """The loop's recent lag from a LoopMonitor's running totals: the mean lag of the probes since
    the previous reading, re-read at most every ``window_s`` (a single late wake-up, e.g. one
    collector pause, is smoothed over the window; a loop held for the whole window is not)."""

    def __init__(self, monitor: LoopMonitor, *, window_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._monitor = monitor
        self._window_s = window_s
        self._clock = clock
        self._at = clock()
        self._samples = monitor.stats.samples
        self._total = monitor.stats.lag_total_s
        self._value = 0.0

    def __call__(self) -> float:
        now = self._clock()
        st = self._monitor.stats
        if now - self._at >= self._window_s:
            n = st.samples - self._samples
            if n > 0:  # none: the monitor is not running (yet); the last value stands
                self._value = (st.lag_total_s - self._total) / n
                self._at, self._samples, self._total = now, st.samples, st.lag_total_s
        return self._value


JOIN_GATE = web.AppKey("join_gate", JoinGate)


def install(app: web.Application, settings: Settings, monitor: LoopMonitor) -> JoinGate:
    """This process's gate from the settings, its lag from the app's loop monitor, its figures on /metrics."""
    cpu = CpuLoad()
    gate = JoinGate(max_concurrent=settings.max_concurrent_joins, lag_limit_s=settings.join_lag_limit_ms / 1000,
                    max_queue=settings.join_queue_max, lag_s=MonitorLag(monitor),
                    cpu_limit=settings.join_cpu_limit, cpu=cpu)
    app[JOIN_GATE] = gate
    app[METRICS].add_counters(gate.counters, "urok")
    app[METRICS].add_gauges(gate.gauges, "urok", "joins holding a slot and waiting in this process")

    async def close(_: web.Application) -> None:
        await gate.close()

    app.on_cleanup.append(close)
    return gate
