"""Recovery after kill -9 (issue 19): the time from killing a worker to every participant receiving
media again.

    .venv/bin/python -m benchmarks.failover --participants 50                 # kill the room's owner
    .venv/bin/python -m benchmarks.failover --participants 50 --span-after 25 --kill edge

`urok serve --dev --workers 2` on a throwaway redis-server and SQLite; one room; a teacher (aiortc)
publishes a 320x240 VP8 camera, the other participants (aiortc, in this process) receive it.

``--kill owner``: the worker serving the room is killed.  Every client sees its socket close (1012)
and does what the browser client does: waits its first back-off step (0.25-0.5 s) and joins again
with the same token; the teacher publishes again; each student's subscriber connection is offered
anew.  ``--kill edge`` (with ``--span-after K``: the room spans both workers after K participants):
the other worker is killed; the participants whose subscriber connection it carried are told by
the owner (``media_failed``), those whose WebSocket it relayed see it close; both join again the
same way, while the rest of the lesson goes on.  A participant not cut within 5 s was not affected.

Printed: per participant, the time from the kill to welcomed again, and (students) to the first
decoded video frame again: p50 / p95 / max, and how many were affected.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import aiohttp

from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import Cluster, connect, new_room, token
from tests.e2e.test_workers_failover import percentile, rejoin
from tests.redis_server import redis_server_running

WATCH_S = 5.0  # a participant not cut within this after the kill was not affected


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s"


async def run(participants: int, kill: str, span_after: int) -> None:
    with redis_server_running() as redis, tempfile.TemporaryDirectory(prefix="urok-failover-") as tmp:
        if redis is None:
            raise SystemExit("redis-server is needed (make system-deps installs it)")
        cluster = Cluster(Path(tmp) / "data", redis.url, UROK_SPAN_AFTER=str(span_after))
        clients: dict[str, RtcClient] = {}
        async with aiohttp.ClientSession() as http:
            try:
                await cluster.start(http)
                room = await new_room(http, cluster.base, "Failover")
                names = ["teacher", *(f"s{i:02d}" for i in range(participants - 1))]
                toks = {n: token(room, n, Role.HOST if n == "teacher" else Role.PARTICIPANT) for n in names}
                teacher = RtcClient(await connect(http, cluster.base, toks["teacher"]))
                clients["teacher"] = teacher
                await teacher.ws.event("welcome")
                await teacher.publish(video=True, audio=False)
                for n in names[1:]:
                    c = RtcClient(await connect(http, cluster.base, toks[n]))
                    clients[n] = c
                    await c.ws.event("welcome", timeout=30)
                students = names[1:]
                ok = await wait_until(lambda: all(clients[n].frames("video") >= 5 for n in students), 120)
                print(f"{participants} participants in, everyone receiving: {ok}", flush=True)
                owner = (await cluster.rooms_by_worker(http)).index(1)
                victim = owner if kill == "owner" else 1 - owner
                await asyncio.sleep(1.0)  # the seats are written
                os.kill(cluster.worker_pids()[victim], signal.SIGKILL)  # a child of the supervisor started here
                killed_at = time.monotonic()
                welcomed: dict[str, float] = {}

                def cut(c: RtcClient) -> bool:
                    """What the browser client reconnects on: its socket closed, or media_failed."""
                    return c.ws.closed.is_set() or any(e["event"] == "media_failed" for e in c.ws.events)

                async def back(name: str) -> None:
                    c = clients[name]
                    if not await wait_until(lambda: cut(c), WATCH_S):
                        return  # not affected: its signalling and media went on
                    c.expect_refused_answer = True  # a renegotiation cut by the kill is not what is measured
                    c.negotiation_errors.clear()
                    await c.close()
                    await asyncio.sleep(random.uniform(0.25, 0.5))  # the page's first back-off step
                    ws, _ = await rejoin(http, cluster.base, toks[name], killed_at + 60)
                    welcomed[name] = time.monotonic() - killed_at
                    clients[name] = again = RtcClient(ws)
                    if name == "teacher":
                        await again.publish(video=True, audio=False)
                    elif await wait_until(lambda: again.frames("video") >= 1, 60):
                        media[name] = time.monotonic() - killed_at

                media: dict[str, float] = {}
                await asyncio.gather(*(back(n) for n in names))
                affected = sorted(welcomed)
                print(f"kill -9 of the {kill} worker; {len(affected)} of {participants} participants affected")
                print(f"  welcomed again: {summary(list(welcomed.values()))}")
                print(f"  video again ({len(media)} students): {summary(list(media.values()))}")
                missing = [n for n in affected if n != "teacher" and n not in media]
                if missing:
                    print(f"  no video again within 60 s: {len(missing)} ({missing[:5]})")
            finally:
                for c in clients.values():
                    c.expect_refused_answer = True
                    c.negotiation_errors.clear()
                    await c.close()
                await cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=50, help="the teacher and the students (default 50)")
    ap.add_argument("--kill", choices=("owner", "edge"), default="owner", help="which worker is killed")
    ap.add_argument("--span-after", type=int, default=0,
                    help="span_after (with --kill edge: the participants after this many receive from "
                         "the other worker)")
    args = ap.parse_args()
    if args.kill == "edge" and not 0 < args.span_after < args.participants:
        ap.error("--kill edge needs 0 < --span-after < --participants")
    asyncio.run(run(args.participants, args.kill, args.span_after))


if __name__ == "__main__":
    main()
