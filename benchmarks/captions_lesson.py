"""Captions while the same server forwards a lesson: N participants unmuted at once.

A real server (``urok serve --dev`` in a subprocess, :class:`benchmarks.forwarding.ServerProcess`,
with ``transcription_workers`` / ``transcription_max_speakers`` from the config), a host who starts
captions, and N aiortc participants who each publish a microphone: Korean espeak-ng speech
(tests/speech_audio.py) with pauses, looped, Opus-encoded **once** before the run and sent as
prepared packets (each participant starts at another point of the loop).  ``loud`` of them speak
18 dB louder than the others (``quiet_db``).  With ``forward`` every participant receives everybody:
30 participants receive ~43,500 packets a second, more than aiortc's receive path (or a Python
datagram handler) reads in one process on a small machine, so each participant's subscriber socket
is read in C once its ICE and DTLS are up, as the webinar viewers do
(:class:`benchmarks.webinar.BatchDrainer`, ``benchmarks._rxbatch``: recvmmsg, SRTP packets counted
per SSRC from their clear header, nothing decrypted; STUN, DTLS and SRTCP handed back to aioice and
aiortc).  The host counts in Python before SRTP (:class:`benchmarks.breakouts.Student`).  Without
``forward`` the participants only publish and the host alone receives (the small form the test uses).

What comes out (a dict): who was captioned after ``settle_s`` (the loudest should be), the pool's
counters from /metrics (phrases, dropped_phrases, evicted_phrases, dropped_chunks, speaking at
most), the server's RSS (its process and the recogniser processes) sampled each second, the delay
from a phrase's end of voice to its final caption, the recognisers' RTF, the forwarding loss
(packets the receivers got against what the publishers sent and against what the server says it
sent, kernel UDP receive-buffer drops) and the time a chat message took.
Used by ``python -m benchmarks.captions --lesson N`` and tests/e2e/test_captions_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import aiohttp
import numpy as np

from benchmarks.breakouts import Student, wait_for
from benchmarks.forwarding import (
    PacketTrack,
    Rest,
    ServerProcess,
    _status_value,
    admin_token,
    loopback_ice,
    process_tree,
    sample_tree,
    udp_receive_drops,
)
from benchmarks.webinar import BatchDrainer, Viewer, ViewerCounter, tolerant_consent
from media.opus_codec import OpusEncoder
from tests.speech_audio import STUDENT, TEACHER, speech48k

RATE = 48000
PTIME = 960  # samples: 20 ms
PAUSES_S = (1.6, 2.2)  # after the first and the second sentence of the loop


@dataclass(frozen=True)
class LessonConfig:
    participants: int = 30
    loud: int = 4
    seconds: float = 30.0  # captioned, after everyone publishes
    workers: int = 1
    max_speakers: int = 2
    forward: bool = False
    quiet_db: float = -18.0
    settle_s: float = 8.0  # the loud speakers' phrases have taken the slots by then
    timeout: float = 90.0


@cache
def speech_loop(quiet_db: float) -> tuple[list[bytes], list[bytes], list[int]]:
    """One speaker's loop (two sentences, each followed by a pause) as 20 ms Opus packets, loud
    and ``quiet_db`` quieter, and the packet index at which each sentence's voice ends."""
    parts, ends, n = [], [], 0
    for text, pause in zip((TEACHER, STUDENT), PAUSES_S, strict=True):
        voice = speech48k(text, pad_s=0.0)
        n += voice.size
        ends.append(n // PTIME)
        silence = np.zeros(round(pause * RATE), dtype=np.int16)
        parts += [voice, silence]
        n += silence.size
    pcm = np.concatenate(parts)
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % PTIME, dtype=np.int16)])

    def encode(gain: float) -> list[bytes]:
        scaled = np.clip(np.round(pcm.astype(np.float64) * gain), -32768, 32767).astype(np.int16)
        enc = OpusEncoder()
        try:
            return [enc.encode(np.ascontiguousarray(scaled[i:i + PTIME])) for i in range(0, scaled.size, PTIME)]
        finally:
            enc.close()

    return encode(1.0), encode(10 ** (quiet_db / 20)), ends


class Listener(Student):
    """The host: receives every microphone (counted before SRTP), records captions and chat."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.captions: list[tuple[float, dict[str, Any]]] = []
        self.chat: list[tuple[float, dict[str, Any]]] = []
        super().__init__(ws)

    def _on_event(self, event: str, m: dict[str, Any]) -> None:
        super()._on_event(event, m)
        if event == "caption":
            self.captions.append((time.monotonic(), m))
        elif event == "chat_message":
            self.chat.append((time.monotonic(), m))


RCVBUF = 1 << 20  # each receiving socket: ~0.7 s of a 30-person mesh if the generator stalls


class Talker(Viewer):
    """A participant with its microphone on; it receives the others only with ``forward``: its
    subscriber socket read and counted in C by ``batch`` once the connection is up (until then,
    and where the take-over fails (``tap_error``), counted in Python: :class:`Viewer`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, forward: bool, batch: BatchDrainer | None) -> None:
        self.forward = forward
        self.track: PacketTrack | None = None
        self.shift = 0  # packets: where in the loop it starts
        super().__init__(ws, counter=ViewerCounter(), count="batch", batch=batch)

    def _batch_take_over(self) -> bool:
        # a larger receive buffer first (the same socket the drainer reads through its dup): a
        # generator stall of a few hundred ms then costs no datagram
        with contextlib.suppress(AttributeError, OSError):
            for dtls, _profile, _tag in self._secured_transports():
                for pair in dtls.transport._connection._nominated.values():
                    sock = pair.protocol.transport.get_extra_info("socket")
                    if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < RCVBUF:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        return super()._batch_take_over()

    @property
    def packets(self) -> int:
        """RTP packets received so far (call the drainer's ``sync_all`` first)."""
        return self.vcounter.rtp

    async def _answer_offers(self) -> None:
        if self.forward:
            await super()._answer_offers()
            return
        while True:  # offers are left unanswered: nothing is forwarded to it
            await self._offers.get()


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _metrics(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> dict[str, float]:
    async with http.get(base + "/metrics", headers=headers) as r:
        text = await r.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name.startswith("urok_transcription_"):
            out[name.removeprefix("urok_transcription_")] = v
        elif name in ("urok_media_rtp_in_total", "urok_media_rtp_out_total"):
            out[name.removeprefix("urok_media_").removesuffix("_total")] = v
        elif name.startswith("urok_media_rtp_dropped_total"):  # one series per reason
            out["rtp_dropped"] = out.get("rtp_dropped", 0.0) + v
    return out


def _socket_inodes(pids: list[int]) -> set[int]:
    """The inodes of the sockets the processes ``pids`` hold open."""
    out: set[int] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        out.add(int(target[8:-1]))
    return out


def udp_drops_by_inode() -> dict[int, int]:
    """Each UDP socket's count of datagrams the kernel dropped (full receive buffer), by inode: the
    machine-wide RcvbufErrors split into the server's sockets and the generator's."""
    out: dict[int, int] = {}
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(path) as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) >= 13:
                    out[int(cols[9])] = int(cols[12])
    return out


def _drops_of(before: dict[int, int], after: dict[int, int], inodes: set[int]) -> int:
    return sum(after.get(i, 0) - before.get(i, 0) for i in inodes if i in after)


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, round(q * (len(xs) - 1)))], 3)


async def run_lesson(cfg: LessonConfig) -> dict[str, Any]:
    loud_packets, quiet_packets, ends = speech_loop(cfg.quiet_db)
    loop_len = len(loud_packets)
    env = {"UROK_TRANSCRIPTION_WORKERS": str(cfg.workers), "UROK_TRANSCRIPTION_MAX_SPEAKERS": str(cfg.max_speakers),
           "UROK_WS_MAX_MESSAGE_BYTES": os.environ.get("UROK_WS_MAX_MESSAGE_BYTES", str(256 * 1024))}
    with _environ(**env):
        server = await ServerProcess.start()
    talkers: list[Talker] = []
    host: Listener | None = None
    out: dict[str, Any] = {"config": asdict(cfg), "load_average": round(os.getloadavg()[0], 2)}
    # with forward, the participants' subscriber sockets are read in C (ImportError: _rxbatch unbuilt)
    batch = BatchDrainer() if cfg.forward else None
    try:
        # consent checks as tolerant as a browser's (7.5 s): a generator stall must not end a connection
        with loopback_ice(), tolerant_consent():
            async with aiohttp.ClientSession() as http:
                admin = admin_token()
                auth = {"Authorization": f"Bearer {admin}"}
                rest = Rest(http, server.base, admin)
                room = await rest.create_room()

                async def join(identity: str, role: str, forward: bool) -> Any:
                    token = await rest.token(room, identity, role)
                    ws = await http.ws_connect(server.base.replace("http", "ws", 1) + f"/v1/rtc?token={token}",
                                               heartbeat=None, max_msg_size=0)
                    p = Listener(ws) if role == "host" else Talker(ws, forward=forward, batch=batch)
                    await p.wait(p.joined.is_set, cfg.timeout, "welcome")
                    return p

                host = await join("teacher", "host", True)

                async def talker(i: int) -> Talker:
                    t: Talker = await join(f"s{i:02d}", "participant", cfg.forward)
                    t.shift = (i * 37) % loop_len  # 0.74 s apart: they do not all speak in step
                    packets = loud_packets if i < cfg.loud else quiet_packets
                    t.track = PacketTrack("audio", packets[t.shift:] + packets[:t.shift], 0.02, RATE)
                    await t.publish([t.track], cfg.timeout)
                    return t

                began = time.monotonic()
                for i in range(0, cfg.participants, 5):  # a few at a time: each publish renegotiates the listeners
                    talkers.extend(await asyncio.gather(*(talker(j) for j in range(i, min(i + 5, cfg.participants)))))
                n = cfg.participants
                await wait_for(lambda: len(host.active(time.monotonic(), audio_only=True)) >= n, cfg.timeout,
                               f"the host receiving {n} microphones", step=0.1)
                if batch is not None:  # every subscriber socket read by the drainer (or counted in Python)
                    await wait_for(lambda: all(t.batch_slot >= 0 or t.tap_error for t in talkers), cfg.timeout,
                                   "every participant's subscriber connection up", step=0.1)
                    out["tap_errors"] = sorted({t.tap_error for t in talkers if t.tap_error})
                out["join_publish_s"] = round(time.monotonic() - began, 1)
                index = {t.participant_id: i for i, t in enumerate(talkers)}

                began = time.monotonic()
                r = await host.request("transcription_start", 180.0)
                if not r.get("ok"):
                    raise RuntimeError(f"transcription_start: {r}")
                started = time.monotonic()
                out["captions_start_s"] = round(started - began, 1)
                before = await _metrics(http, server.base, auth)
                cpu0 = sample_tree(server.pid).cpu_s
                rss: list[int] = []  # the server and its recognisers, kB
                rss_each: list[list[int]] = []  # each process of the tree (the server first), kB
                speaking_max = 0.0
                backlog: list[float] = []  # chunks waiting for the recognisers, each second
                window: dict[str, tuple[int, int, int]] = {}  # sent, got by the host, got by the participants

                def counts() -> tuple[int, int, int]:
                    assert host is not None
                    if batch is not None:
                        batch.drain()  # what has arrived so far, not what had at the last tick
                        batch.sync_all()
                    got = sum(t.packets for t in talkers) if cfg.forward else 0
                    return sum(t.sent_rtp for t in talkers), host.packets, got

                gen0 = os.times()
                drops0: dict[int, int] = {}
                media: dict[str, dict[str, float]] = {}
                udp0 = udp_receive_drops()
                while time.monotonic() - started < cfg.seconds:
                    await asyncio.sleep(1.0)
                    rss.append(sample_tree(server.pid).rss_kb)
                    with contextlib.suppress(OSError):
                        rss_each.append([_status_value(pid, "VmRSS") for pid in process_tree(server.pid)])
                    now = await _metrics(http, server.base, auth)
                    speaking_max = max(speaking_max, now.get("speaking", 0.0))
                    backlog.append(now.get("backlog_chunks", 0.0))
                    if "a" not in window and time.monotonic() - started >= cfg.settle_s:
                        window["a"] = counts()
                        media["a"] = now
                        drops0 = udp_drops_by_inode()
                # the server's counters first, then ours at once (as at "a"): one window for both
                after = media["b"] = await _metrics(http, server.base, auth)
                window["b"] = counts()
                if drops0:  # after the settle: the kernel's drops at the server's and at our sockets
                    drops1 = udp_drops_by_inode()
                    mine, theirs = _socket_inodes([os.getpid()]), _socket_inodes(process_tree(server.pid))
                    out["udp_drops_server_sockets"] = _drops_of(drops0, drops1, theirs)
                    out["udp_drops_generator_sockets"] = _drops_of(drops0, drops1, mine)
                gen1 = os.times()
                out["generator_cpu_per_s"] = round((gen1.user + gen1.system - gen0.user - gen0.system)
                                                   / max(1e-9, time.monotonic() - started), 2)
                out["generator_rss_mb"] = round(_status_value(os.getpid(), "VmRSS") / 1024, 1)
                if batch is not None:
                    out["drainer_forward_errors"] = batch.forward_errors
                    out["connections_lost"] = sum(1 for t in talkers if t.lost_at)
                out["kernel_udp_drops"] = udp_receive_drops() - udp0  # whole run, every socket of the machine
                cpu = (cpu0, sample_tree(server.pid).cpu_s, time.monotonic() - started)  # with the recognisers

                # the lesson goes on: a chat message from a student reaches the host
                sent = time.monotonic()
                r = await talkers[-1].request("chat_send", 10.0, text="можно вопрос?")
                if not r.get("ok"):
                    raise RuntimeError(f"chat_send: {r}")
                await wait_for(lambda: bool(host.chat), 10.0, "the chat message at the host")
                out["chat_ms"] = round((host.chat[0][0] - sent) * 1000, 1)
    finally:
        for p in [*talkers, *([host] if host is not None else [])]:
            with contextlib.suppress(Exception):
                await p.close()
        if batch is not None:
            batch.close()
        server.stop()

    assert host is not None
    settled = started + cfg.settle_s
    captions = [(t, m) for t, m in host.captions if m["participant_id"] in index]
    late = [(t, m) for t, m in captions if t >= settled]
    finals_by = {i: sum(1 for _, m in late if m["final"] and index[m["participant_id"]] == i) for i in range(n)}
    latencies = []
    captioned_s = dict.fromkeys(range(n), 0.0)
    for t, m in late:
        if not m["final"]:
            continue
        captioned_s[index[m["participant_id"]]] += m["end_s"] - m["start_s"]
        if index[m["participant_id"]] >= cfg.loud:
            continue  # a quiet phrase's final may come early, when a louder one takes its slot
        tk = talkers[index[m["participant_id"]]]
        assert tk.track is not None and tk.track._t0 is not None
        packet = (t - tk.track._t0) / 0.02  # the packet being sent when the final came
        _, at = divmod(packet + tk.shift, loop_len)
        ended = max((e for e in ends if e <= at), default=ends[-1] - loop_len)
        latencies.append(round((at - ended) * 0.02, 3))
    settled_dropped = (media["b"].get("dropped_chunks", 0.0) - media["a"].get("dropped_chunks", 0.0)
                       if "a" in media else None)
    counters = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in
                ("phrases", "dropped_phrases", "evicted_phrases", "dropped_chunks", "finals", "partials",
                 "busy_seconds", "audio_seconds")}
    a = window.get("a", window["b"])
    sent_packets = window["b"][0] - a[0]
    host_got = window["b"][1] - a[1]
    talkers_got = window["b"][2] - a[2]
    got_packets = host_got + talkers_got
    # each packet is due at the host and, with forward, at every other talker
    fanout = n if cfg.forward else 1
    expected = sent_packets * fanout
    span = max(1e-9, cfg.seconds - cfg.settle_s)
    if "a" in media:
        rtp_in = media["b"].get("rtp_in", 0.0) - media["a"].get("rtp_in", 0.0)
        rtp_out = media["b"].get("rtp_out", 0.0) - media["a"].get("rtp_out", 0.0)
        out["server_rtp_in_pps"] = round(rtp_in / span, 1)
        out["server_rtp_out_pps"] = round(rtp_out / span, 1)
        out["server_forwarded_ratio"] = round(rtp_out / (rtp_in * fanout), 4) if rtp_in else None
        out["server_rtp_dropped"] = media["b"].get("rtp_dropped", 0.0) - media["a"].get("rtp_dropped", 0.0)
        # what the receivers read of what the server says it sent (the rest: lost on the way, the
        # kernel's drops at full receive buffers)
        out["received_of_server_sent"] = round(got_packets / rtp_out, 4) if rtp_out else None
        # what the server read of what the publishers sent (the rest: the kernel's drops at its socket)
        out["server_in_loss"] = round(1 - rtp_in / sent_packets, 4) if sent_packets else None
    out["host_loss"] = round(1 - host_got / sent_packets, 4) if sent_packets else None
    if cfg.forward:
        due = sent_packets * (n - 1)
        out["participants_loss"] = round(1 - talkers_got / due, 4) if due else None
    out.update({
        "captioned_after_settle": sorted({index[m["participant_id"]] for _, m in late}),
        "loud": list(range(cfg.loud)),
        "finals_after_settle": finals_by,
        "captioned_s_after_settle": {i: round(v, 1) for i, v in captioned_s.items()},
        "captioned_ever": sorted({index[m["participant_id"]] for _, m in captions}),
        "speaking_max": speaking_max,
        "backlog_chunks": backlog,
        "counters": {k: round(v, 3) for k, v in counters.items()},
        "rtf": round(counters["busy_seconds"] / counters["audio_seconds"], 3) if counters["audio_seconds"] else None,
        "latency_p50_s": _pct(latencies, 0.5), "latency_p95_s": _pct(latencies, 0.95),
        "latency_max_s": max(latencies, default=None),
        # after the settle (the start's burst over): chunks the recognisers dropped for being behind,
        # and the most that waited; held in real time as benchmarks.captions counts it (nothing
        # dropped, p95 from the end of a phrase to its final under 2 s)
        "dropped_chunks_after_settle": settled_dropped,
        "backlog_chunks_max_after_settle": max(backlog[round(cfg.settle_s):], default=None),
        "held_in_real_time": bool(latencies) and settled_dropped == 0 and (_pct(latencies, 0.95) or 0.0) < 2.0,
        "rss_mb": [round(x / 1024, 1) for x in rss],
        # the server's own process (the event loop, the taps' queues, the pool's inboxes) and its
        # children (the recogniser processes: the model and one recogniser per phrase at once)
        "rss_server_mb": [round(x[0] / 1024, 1) for x in rss_each],
        "rss_children_mb": [round(sum(x[1:]) / 1024, 1) for x in rss_each],
        "rss_growth_mb": round((max(rss[len(rss) // 2:]) - rss[len(rss) // 4]) / 1024, 1) if len(rss) >= 4 else None,
        # at the receivers (the host and, with forward, every participant) against what the
        # publishers sent: the server's inbound loss and the receivers' together (a packet sent
        # just before a window's edge and read after it counts on the other side: a few 1e-4)
        "forward_loss": round(1 - got_packets / expected, 4) if expected else None,
        "forwarded_pps": round(got_packets / span, 1),
        "server_cpu_per_s": round((cpu[1] - cpu[0]) / max(1e-9, cpu[2]), 2),
    })
    out["partial_gap_median_s"] = _partial_gap(late)
    return out


def _partial_gap(events: list[tuple[float, dict[str, Any]]]) -> float | None:
    last: dict[str, float] = {}
    gaps = []
    for t, m in events:
        pid = m["participant_id"]
        if m["final"]:
            last.pop(pid, None)
            continue
        if pid in last:
            gaps.append(t - last[pid])
        last[pid] = t
    return round(statistics.median(gaps), 3) if gaps else None
