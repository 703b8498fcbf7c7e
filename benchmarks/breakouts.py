"""Breakout benchmark: N students with audio (and video at a low layer) split into G groups.

    .venv/bin/python -m benchmarks.breakouts [--students 30] [--groups 6] [--moves 10] [--no-video]

A fresh server (``urok serve --dev`` in a subprocess, as in :mod:`benchmarks.forwarding`) gets a
room; a host joins (it publishes nothing) and N students join and publish pre-encoded Opus 20 ms
and, unless ``--no-video``, VP8 320x180 15 fps ~300 kbit/s (the low layer; encoded once and cached,
:mod:`benchmarks.media_prep`).  The students count what they receive before SRTP, by SSRC (the RTP
header is in the clear): each packet's arrival time, and when an SSRC starts again after 300 ms of
silence.  Nothing is decrypted or decoded, so the generator costs little next to the server.

Phases, each timed from the host's request:

- one room: everybody receives everybody ((N-1) x kinds streams each); the server's CPU over
  ``--window`` seconds;
- open: ``breakouts_start`` with even lists; the time until the last packet of another group
  reached any student (after it, each one receives only its group); the server's CPU over the window;
- moves (``--moves``, one at a time, 1.5 s apart): a student into the next group; the time until
  it hears every member of the new group (their audio SSRCs start) and sees them (video), and the
  time of the last packet from the old group; percentiles over the moves;
- close: ``breakouts_end`` with no countdown: the time until every student receives everybody again.

The whole run is one room on one server; the figures are printed and, with ``--json``, written.
See docs/benchmarks.md ("Breakout rooms").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.forwarding import (
    Participant,
    Rest,
    ServerProcess,
    admin_token,
    checkout_version,
    loopback_ice,
    media_tracks,
    sample_tree,
)
from benchmarks.media_prep import EncodedMedia, MediaSpec, load_media
from benchmarks.webinar import tolerant_consent

LOW_LAYER = MediaSpec(width=320, height=180, fps=15, video_bitrate=300_000, gop=30, seconds=4.0)
GAP_S = 0.3  # an SSRC silent this long and then receiving again "starts" (a new consumer)
STOPPED_S = 0.6  # an SSRC silent this long has stopped
OPUS = re.compile(r"a=rtpmap:(\d+) opus/", re.IGNORECASE)


class Student(Participant):
    """A participant that counts RTP by SSRC before SRTP (and drops it: nothing is decrypted)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.last: dict[int, float] = {}  # SSRC -> last arrival (time.monotonic)
        self.starts: dict[int, list[float]] = {}  # SSRC -> each time it started (after GAP_S of silence)
        self.pts: dict[int, int] = {}  # SSRC -> RTP payload type
        self.audio_pts: set[int] = set()
        self.packets = 0
        self.failed = ""
        self._tapped = False
        super().__init__(ws)

    def _on_event(self, event: str, m: dict[str, Any]) -> None:
        if event == "media_failed":  # the server lost this student's path (a generator too busy to answer)
            self.failed = f"media_failed {m.get('target')}"
        if event == "subscriber_offer":
            self.audio_pts.update(int(pt) for pt in OPUS.findall(str(m.get("sdp", ""))))

    def _hook_counters(self) -> None:
        if self._tapped:
            return
        transceivers = self.sub.getTransceivers()
        if not transceivers:
            return
        connection = transceivers[0].receiver.transport.transport._connection
        original = connection.data_received

        def tap(data: bytes, component: int) -> None:
            if len(data) > 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:  # RTP (SRTP)
                now = time.monotonic()
                ssrc = int.from_bytes(data[8:12], "big")
                prev = self.last.get(ssrc)
                if prev is None or now - prev > GAP_S:
                    self.starts.setdefault(ssrc, []).append(now)
                self.last[ssrc] = now
                self.pts[ssrc] = data[1] & 0x7F
                self.packets += 1
                return
            original(data, component)  # STUN, DTLS, SRTCP: aioice and aiortc as usual

        connection.data_received = tap
        self._tapped = True

    def active(self, now: float, *, audio_only: bool = False) -> set[int]:
        return {s for s, t in self.last.items() if now - t < STOPPED_S
                and (not audio_only or self.pts.get(s) in self.audio_pts)}

    def is_audio(self, ssrc: int) -> bool:
        return self.pts.get(ssrc) in self.audio_pts

    def started_after(self, t0: float, *, audio: bool | None = None) -> dict[int, float]:
        """SSRCs that started after ``t0`` (the first start after it), of one kind or both."""
        out = {}
        for ssrc, starts in self.starts.items():
            if audio is not None and self.is_audio(ssrc) != audio:
                continue
            later = [t for t in starts if t >= t0]
            if later:
                out[ssrc] = later[0]
        return out


@dataclass
class Result:
    students: int
    groups: int
    video: bool
    version: str = ""
    one_room_cpu: float = 0.0  # server CPU-seconds per second, everybody in one room
    groups_cpu: float = 0.0  # the same, in groups
    one_room_pps: float = 0.0  # packets per second all the students received
    groups_pps: float = 0.0
    open_reply_ms: float = 0.0  # breakouts_start answered
    open_isolated_ms: float = 0.0  # the last packet of another group reached a student
    move_heard_ms: list[float] = field(default_factory=list)  # the moved student hears every new member
    move_seen_ms: list[float] = field(default_factory=list)  # ... and receives their video
    move_old_stopped_ms: list[float] = field(default_factory=list)  # the last packet from the old group
    move_reply_ms: list[float] = field(default_factory=list)
    close_ms: float = 0.0  # every student receives everybody again
    media_failed: int = 0  # students whose media the server tore down during the run (left out after)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def wait_for(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} in {timeout:.0f} s")
        await asyncio.sleep(step)
    return time.monotonic()


async def cpu_window(pid: int, students: Sequence[Student], seconds: float) -> tuple[float, float]:
    """The server's CPU-seconds per second and the packets per second the students received."""
    c0, p0, t0 = sample_tree(pid).cpu_s, sum(s.packets for s in students), time.monotonic()
    await asyncio.sleep(seconds)
    dt = time.monotonic() - t0
    return (sample_tree(pid).cpu_s - c0) / dt, (sum(s.packets for s in students) - p0) / dt


def _nth_start(mover: Student, t0: float, audio: bool, n: int) -> float | None:
    """When the ``n``-th SSRC of a kind started after ``t0`` (None: fewer have)."""
    starts = sorted(mover.started_after(t0, audio=audio).values())
    return starts[n - 1] if len(starts) >= n else None


async def one_move(host: Participant, mover: Student, group_id: str, new_members: int, video: bool,
                   timeout: float, res: Result) -> None:
    """Moves ``mover`` into a group of ``new_members`` and records the times."""
    before_active = mover.active(time.monotonic())
    t0 = time.monotonic()
    await host.request("breakouts_move", timeout, participant_id=mover.participant_id, breakout_id=group_id)
    res.move_reply_ms.append((time.monotonic() - t0) * 1000)
    try:
        await wait_for(lambda: _nth_start(mover, t0, True, new_members) is not None, timeout,
                       "the moved student hearing its new group")
    except RuntimeError as e:
        now = time.monotonic()
        state = (await host.request("breakouts_state", timeout))["breakouts"]
        rooms = {g["breakout_id"]: g["participant_ids"] for g in state["rooms"]}
        raise RuntimeError(f"{e}: mover {mover.participant_id} into {group_id} ({new_members} there before): "
                           f"{rooms}; {mover.describe()}; audio started {mover.started_after(t0, audio=True)}, "
                           f"active {len(mover.active(now))} (audio {len(mover.active(now, audio_only=True))}), "
                           f"audio PTs {mover.audio_pts}, PTs {set(mover.pts.values())}") from None
    res.move_heard_ms.append(((_nth_start(mover, t0, True, new_members) or t0) - t0) * 1000)
    if video:
        await wait_for(lambda: _nth_start(mover, t0, False, new_members) is not None, timeout,
                       "the moved student receiving its new group's video")
        res.move_seen_ms.append(((_nth_start(mover, t0, False, new_members) or t0) - t0) * 1000)
    await asyncio.sleep(1.5)
    gone = [mover.last[ssrc] for ssrc in before_active if ssrc not in mover.active(time.monotonic())]
    res.move_old_stopped_ms.append((max(gone, default=t0) - t0) * 1000)


async def run(n: int, g: int, moves: int, video: bool, window: float, timeout: float,
              ws_max_bytes: int = 256 * 1024) -> Result:
    media: EncodedMedia = load_media(LOW_LAYER)
    kinds = 2 if video else 1
    res = Result(n, g, video, checkout_version())
    # an aiortc answer for (N-1) x 2 m-lines is ~1 KiB each: 30 students' answers pass 64 KiB
    os.environ.setdefault("UROK_WS_MAX_MESSAGE_BYTES", str(ws_max_bytes))
    server = await ServerProcess.start()
    students: list[Student] = []
    host: Participant | None = None
    try:
        async with aiohttp.ClientSession() as http:
            rest = Rest(http, server.base, admin_token())
            room = await rest.create_room()
            host = await Participant.join(http, server.base, await rest.token(room, "teacher", "host"), timeout)
            tokens = [await rest.token(room, f"s{i:02d}", "participant") for i in range(n)]

            async def student(token: str) -> Student:
                ws = await http.ws_connect(server.base.replace("http", "ws", 1) + f"/v1/rtc?token={token}",
                                           heartbeat=None, max_msg_size=0)
                s = Student(ws)
                await s.wait(s.joined.is_set, timeout, "welcome")
                audio_track, video_track = media_tracks(media)
                await s.publish([audio_track, video_track] if video else [audio_track], timeout)
                return s

            for i in range(0, n, 5):  # a few at a time: each publish renegotiates every listener
                students.extend(await asyncio.gather(*(student(t) for t in tokens[i:i + 5])))
            all_streams = (n - 1) * kinds
            try:
                await wait_for(lambda: all(len(s.active(time.monotonic())) >= all_streams for s in students),
                               timeout, f"every student receiving {all_streams} streams", step=0.1)
            except RuntimeError as e:
                now = time.monotonic()
                counts = sorted(len(s.active(now)) for s in students)
                raise RuntimeError(f"{e}: streams received now {counts}; {[s.error for s in students if s.error]}"
                                   ) from None
            res.one_room_cpu, res.one_room_pps = await cpu_window(server.pid, students, window)

            # open: even lists, in the order they joined
            place = {s.participant_id: i % g for i, s in enumerate(students)}
            members: list[list[Student]] = [[s for s in students if place[s.participant_id] == k] for k in range(g)]
            rooms = [{"name": f"Группа {k + 1}", "participant_ids": [s.participant_id for s in m]}
                     for k, m in enumerate(members)]
            t0 = time.monotonic()
            r = await host.request("breakouts_start", timeout, rooms=rooms)
            res.open_reply_ms = (time.monotonic() - t0) * 1000
            gids = [str(x["breakout_id"]) for x in r["breakouts"]["rooms"]]

            def isolated() -> bool:
                now = time.monotonic()
                return all(len(s.active(now)) == (sum(not x.failed for x in members[place[s.participant_id]]) - 1)
                           * kinds for s in students if not s.failed)

            await wait_for(isolated, timeout, "every student receiving only its group", step=0.05)
            await asyncio.sleep(STOPPED_S)
            stopped = [t for s in students for ssrc, t in s.last.items()
                       if ssrc not in s.active(time.monotonic()) and t >= t0]
            res.open_isolated_ms = (max(stopped, default=t0) - t0) * 1000
            res.groups_cpu, res.groups_pps = await cpu_window(server.pid, students, window)

            for k in range(moves):
                src = k % g
                dst = (src + 1) % g
                # a student whose media the server tore down (its path lost consent: a generator too
                # busy to answer in time) publishes nothing any more: it neither moves nor is heard
                live = [s for s in members[src] if not s.failed]
                if not live:
                    continue
                mover = live[0]
                await one_move(host, mover, gids[dst], sum(not s.failed for s in members[dst]), video, timeout, res)
                members[src].remove(mover)
                members[dst].append(mover)
                place[mover.participant_id] = dst

            t0 = time.monotonic()
            await host.request("breakouts_end", timeout, countdown_s=0)
            alive = [s for s in students if not s.failed]
            res.media_failed = len(students) - len(alive)
            back_streams = (len(alive) - 1) * kinds
            await wait_for(lambda: all(len(s.active(time.monotonic())) >= back_streams for s in alive),
                           timeout, "every student receiving everybody again", step=0.05)
            back = [max(s.started_after(t0).values(), default=t0) for s in alive]
            res.close_ms = (max(back) - t0) * 1000
    except RuntimeError as e:
        now = time.monotonic()
        errors = sorted({s.error or s.failed for s in students if s.error or s.failed})
        raise RuntimeError(f"{e}; streams each student receives {sorted(len(s.active(now)) for s in students)}; "
                           f"errors: {errors[:5]}") from None
    finally:
        for p in [*students, *([host] if host is not None else [])]:
            with contextlib.suppress(Exception):
                await p.close()
        server.stop()
    return res


def report(r: Result) -> str:
    def ms(values: Sequence[float]) -> str:
        if not values:
            return "-"
        return (f"p50 {pct(values, 0.5):.0f} ms, p90 {pct(values, 0.9):.0f} ms, max {max(values):.0f} ms "
                f"(mean {statistics.fmean(values):.0f}, n={len(values)})")

    kinds = "audio + video 320x180 15 fps" if r.video else "audio"
    return "\n".join([
        f"breakouts: {r.students} students ({kinds}) in {r.groups} groups, server {r.version}",
        f"  one room : server CPU {r.one_room_cpu:.2f} s/s, students received {r.one_room_pps:.0f} packets/s",
        f"  in groups: server CPU {r.groups_cpu:.2f} s/s, students received {r.groups_pps:.0f} packets/s",
        f"  open     : answered in {r.open_reply_ms:.0f} ms; "
        f"the last packet of another group {r.open_isolated_ms:.0f} ms",
        f"  move     : heard the new group {ms(r.move_heard_ms)}",
        f"             its video          {ms(r.move_seen_ms)}",
        f"             old group's last   {ms(r.move_old_stopped_ms)}",
        f"             request answered   {ms(r.move_reply_ms)}",
        f"  close    : everybody receives everybody again after {r.close_ms:.0f} ms",
        f"  media torn down during the run (a path without consent): {r.media_failed} students",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--groups", type=int, default=6)
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--no-video", action="store_true", help="audio only")
    ap.add_argument("--window", type=float, default=5.0, help="seconds of each CPU window")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", type=Path, help="write the result here")
    ap.add_argument("--tolerant-consent", action="store_true",
                    help="benchmarks.webinar's retransmitted consent checks (here, with students that publish and "
                         "subscribe, runs with them lost every early joiner's media after 30 s; aioice's own are "
                         "the default)")
    args = ap.parse_args(argv)
    if args.groups < 2 or args.students < 2 * args.groups:
        ap.error("at least 2 groups and 2 students per group")
    with loopback_ice(), tolerant_consent(args.tolerant_consent):
        result = asyncio.run(run(args.students, args.groups, args.moves, not args.no_video, args.window,
                                 args.timeout))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
