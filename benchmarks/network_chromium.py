"""A real Chromium publisher for the network benchmark (``--publisher chromium``, issue 12, part 1).

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) runs in the publisher's
network namespace and opens the real web client at ``/join/<room>?token=...`` on the server's
namespace address: it goes through the pre-join screen with the fake camera (a moving test pattern,
640x480 as the client asks) and the fake microphone, and publishes what the client publishes, the
camera in three simulcast layers q/h/f (``web/session.js``: 1/4, 1/2 and full size, at most 150,
500 and 1500 kbit/s).  Its own bandwidth estimate (transport-cc feedback from the server) decides
which layers it sends, so a limited uplink shows the publisher's adaptation.

The client is served over plain HTTP from 198.18.0.1, which is no secure context: the flag
``--unsafely-treat-insecure-origin-as-secure`` gives it getUserMedia there (nothing leaves the
namespaces).  What the publisher sends is read from the page's ``getStats()`` every half second
(per layer: bytes, packets, retransmissions, frame size, the quality limitation; the transport's
available outgoing bitrate).

How Chromium gets into the namespace: the thread enters it while Playwright starts its driver
(a child process: it and the Chromium it launches belong to the namespace the thread was in).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tests.netns import Namespace

RIDS = ("q", "h", "f")  # the client's simulcast layers, lowest first
CHROMIUM = os.environ.get("UROK_CHROMIUM", "/usr/bin/chromium")

STATS_JS = """() => new Promise((resolve) => {
  const pc = window.urok && window.urok.session && window.urok.session.pub;
  if (!pc) { resolve(null); return; }
  pc.getStats().then((report) => {
    const out = {state: pc.connectionState, layers: {}, audio: {bytes: 0, packets: 0, rtx: 0, rtx_bytes: 0},
                 available: null};
    report.forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "video") {
        out.layers[r.rid || "-"] = {width: r.frameWidth || 0, height: r.frameHeight || 0, bytes: r.bytesSent || 0,
          packets: r.packetsSent || 0, rtx: r.retransmittedPacketsSent || 0,
          rtx_bytes: r.retransmittedBytesSent || 0, fps: r.framesPerSecond || 0,
          limit: r.qualityLimitationReason || "", target: r.targetBitrate || 0};
      }
      if (r.type === "outbound-rtp" && r.kind === "audio") {
        out.audio = {bytes: r.bytesSent || 0, packets: r.packetsSent || 0, rtx: r.retransmittedPacketsSent || 0,
                     rtx_bytes: r.retransmittedBytesSent || 0};
      }
      if (r.type === "candidate-pair" && r.nominated && r.availableOutgoingBitrate)
        out.available = r.availableOutgoingBitrate;
    });
    resolve(out);
  }, () => resolve(null));
})"""


# the client asks for {ideal: 640x480}; this asks for another size before its scripts run (the rest of
# its constraints, frame rate and device, stay)
CAMERA_JS = """(() => {
  const md = navigator.mediaDevices;
  if (!md) return;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => {
    if (c && c.video) {
      const v = typeof c.video === "object" ? c.video : {};
      c = {...c, video: {...v, width: {ideal: %(width)d}, height: {ideal: %(height)d}}};
    }
    return gum(c);
  };
})();"""


async def launch(namespace: Namespace, origin: str) -> tuple[Any, Any]:
    """Playwright and a headless Chromium, both in ``namespace`` (the thread enters it while the
    driver starts: the driver and the browser it launches are its children), with the fake camera
    and microphone and ``origin`` (the server's http://198.18.0.1:8080) treated as secure."""
    try:
        from playwright.async_api import async_playwright

        from tests.e2e.browser.conftest import ALLOW, COMMON_FLAGS
    except ImportError as e:  # pragma: no cover - the test extras install it
        raise RuntimeError(f"a Chromium client needs Playwright ({e})") from e
    if not shutil.which(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} not found: run `make system-deps` or set UROK_CHROMIUM")
    flags = ["--use-fake-device-for-media-stream", ALLOW, *COMMON_FLAGS,
             "--autoplay-policy=no-user-gesture-required",
             f"--unsafely-treat-insecure-origin-as-secure={origin}"]
    with namespace.entered():
        pw = await async_playwright().start()
        try:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags, timeout=30_000)
        except BaseException:
            await pw.stop()
            raise
    return pw, browser


class _Timed(Protocol):
    @property
    def t(self) -> float: ...


_S = TypeVar("_S", bound=_Timed)


def _reading_at(samples: Sequence[_S], t: float) -> _S | None:
    """The last reading taken at or before ``t`` (the first one when none); ``samples`` in time order."""
    best = None
    for s in samples:
        if s.t <= t:
            best = s
        else:
            break
    return best or (samples[0] if samples else None)


@dataclass
class PubSample:
    """One reading of the page's getStats (cumulative counters)."""

    t: float
    layers: dict[str, dict[str, Any]]
    audio: dict[str, int]
    available: float | None

    def packets(self, kind: str) -> int:
        """First transmissions of a kind so far (all layers for video)."""
        if kind == "audio":
            return int(self.audio["packets"] - self.audio["rtx"])
        return sum(int(la["packets"] - la["rtx"]) for la in self.layers.values())

    def bytes(self, first_only: bool = False) -> int:
        parts = [*self.layers.values(), self.audio]
        return sum(int(p["bytes"] - (p["rtx_bytes"] if first_only else 0)) for p in parts)

    def retransmitted(self) -> int:
        return int(self.audio["rtx"] + sum(la["rtx"] for la in self.layers.values()))


@dataclass
class ChromiumPublisher:
    """The page, its browser and the readings of its getStats; close() ends the browser."""

    page: Any
    browser: Any
    playwright: Any
    samples: list[PubSample] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    _sampler: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, namespace: Namespace, url: str, origin: str, timeout: float,
                    camera: tuple[int, int] | None = None) -> ChromiumPublisher:
        """Launch Chromium in ``namespace``, open the join link ``url``, join with camera and
        microphone, and wait until it sends video.  ``camera`` (width, height): the size the page's
        getUserMedia asks for instead of the client's 640x480 (an HD webcam)."""
        from tests.e2e.browser.util import join

        pw, browser = await launch(namespace, origin)
        pub = cls(page=None, browser=browser, playwright=pw)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
            ctx.set_default_timeout(int(timeout * 1000))
            if camera is not None:
                await ctx.add_init_script(CAMERA_JS % {"width": camera[0], "height": camera[1]})
            pub.page = await ctx.new_page()
            pub.page.on("console", lambda m: pub.console.append(f"{m.type}: {m.text}"))
            pub.page.on("pageerror", lambda e: pub.console.append(f"pageerror: {e}"))
            await join(pub.page, url, camera=True, microphone=True)
            pub._sampler = asyncio.create_task(pub._sample_forever())
            deadline = time.monotonic() + timeout
            while not (pub.samples and pub.samples[-1].packets("video") > 0
                       and pub.samples[-1].layers and len(pub.samples) > 1):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Chromium sent no video in {timeout:.0f} s "
                                       f"(last stats {pub.samples[-1:]}; console {pub.console[-10:]})")
                await asyncio.sleep(0.2)
        except BaseException:
            await pub.close()
            raise
        return pub

    async def _sample_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                raw = await asyncio.wait_for(self.page.evaluate(STATS_JS), 2)
                if raw:
                    self.samples.append(PubSample(time.monotonic(), raw["layers"], raw["audio"], raw["available"]))
            await asyncio.sleep(0.5)

    # ---- readings ----
    def at(self, t: float) -> PubSample | None:
        """The last reading taken at or before ``t`` (the first one when none)."""
        return _reading_at(self.samples, t)

    def sent_between(self, kind: str, t0: float, t1: float) -> int:
        a, b = self.at(t0), self.at(t1)
        return b.packets(kind) - a.packets(kind) if a and b else 0

    def _kbps(self, t0: float, t1: float, first_only: bool) -> float:
        a, b = self.at(t0), self.at(t1)
        if not a or not b or b.t <= a.t:
            return 0.0
        return (b.bytes(first_only) - a.bytes(first_only)) * 8 / (b.t - a.t) / 1000

    def kbps_between(self, t0: float, t1: float) -> float:
        """RTP payload bytes sent (retransmissions included), kbit/s."""
        return self._kbps(t0, t1, False)

    def media_kbps_between(self, t0: float, t1: float) -> float:
        return self._kbps(t0, t1, True)

    def first_video_at(self) -> float:
        return next((s.t for s in self.samples if s.packets("video") > 0), time.monotonic())

    @property
    def retransmitted(self) -> int:
        return self.samples[-1].retransmitted() if self.samples else 0

    def second(self, t0: float, t1: float) -> dict[str, Any]:
        """What the publisher did in [t0, t1): per layer kbit/s and frame height, the layers it sent,
        its available outgoing bitrate and why its quality was limited."""
        a, b = self.at(t0), self.at(t1)
        if not a or not b or b.t <= a.t:
            return {}
        dt = b.t - a.t
        layers: dict[str, dict[str, Any]] = {}
        for rid, la in b.layers.items():
            prev = a.layers.get(rid, {"bytes": 0})
            kbps = (la["bytes"] - prev["bytes"]) * 8 / dt / 1000
            layers[rid] = {"kbps": round(kbps), "height": la["height"], "limit": la["limit"],
                           "target_kbps": round(la["target"] / 1000)}
        order = sorted(layers, key=lambda rid: RIDS.index(rid) if rid in RIDS else len(RIDS))
        return {"layers": layers, "active": [rid for rid in order if layers[rid]["kbps"] > 5],
                "available_kbps": round(b.available / 1000) if b.available else None}

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sampler
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.browser.close(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.playwright.stop(), 10)


# ---- a Chromium subscriber ---------------------------------------------------------------------------------
# every frame a <video> element presents (requestVideoFrameCallback: its time and height), and the
# subscriber connection's inbound video and audio; drained on each reading
SUB_JS = """() => new Promise((resolve) => {
  if (!window.__frames) {
    window.__frames = [];
    const watch = () => document.querySelectorAll("video").forEach((v) => {
      if (v.__watched || !v.srcObject) return;
      v.__watched = true;
      const cb = (now, meta) => { window.__frames.push([now, meta.height]); v.requestVideoFrameCallback(cb); };
      v.requestVideoFrameCallback(cb);
    });
    watch();
    setInterval(watch, 200);
  }
  const frames = window.__frames;
  window.__frames = [];
  const out = {now: performance.now(), frames, video: null, audio: null};
  const pc = window.urok && window.urok.session && window.urok.session.sub;
  if (!pc) { resolve(out); return; }
  pc.getStats().then((report) => {
    report.forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      const k = {received: r.packetsReceived || 0, lost: Math.max(0, r.packetsLost || 0), bytes: r.bytesReceived || 0,
                 height: r.frameHeight || 0, decoded: r.framesDecoded || 0, freezes: r.freezeCount || 0,
                 freeze_s: r.totalFreezesDuration || 0, nacks: r.nackCount || 0, plis: r.pliCount || 0};
      if (r.kind === "video" && (!out.video || k.received > out.video.received)) out.video = k;
      if (r.kind === "audio" && (!out.audio || k.received > out.audio.received)) out.audio = k;
    });
    resolve(out);
  }, () => resolve(out));
})"""

EMPTY_IN = {"received": 0, "lost": 0, "bytes": 0, "height": 0, "decoded": 0, "freezes": 0, "freeze_s": 0.0,
            "nacks": 0, "plis": 0}


@dataclass
class SubSample:
    t: float
    video: dict[str, Any]
    audio: dict[str, Any]


class InboundWindow:
    """What a Chromium subscriber received of one kind in a window, from its getStats readings:
    (packets received, packets received + lost), as :class:`benchmarks.network.SeqTally.window`."""

    def __init__(self, page: ChromiumSubscriberPage, kind: str) -> None:
        self.page, self.kind = page, kind

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        a, b = self.page.at(t0), self.page.at(t1)
        if a is None or b is None:
            return 0, 0
        x, y = getattr(a, self.kind), getattr(b, self.kind)
        received = y["received"] - x["received"]
        return received, received + max(0, y["lost"] - x["lost"])


@dataclass
class ChromiumSubscriberPage:
    """The real client joined without camera and microphone: what it presents and receives."""

    page: Any
    browser: Any
    playwright: Any
    frames: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, height) per presented frame
    samples: list[SubSample] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    _sampler: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, namespace: Namespace, url: str, origin: str, timeout: float) -> ChromiumSubscriberPage:
        from tests.e2e.browser.util import join

        pw, browser = await launch(namespace, origin)
        sub = cls(page=None, browser=browser, playwright=pw)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
            ctx.set_default_timeout(int(timeout * 1000))
            sub.page = await ctx.new_page()
            sub.page.on("console", lambda m: sub.console.append(f"{m.type}: {m.text}"))
            sub.page.on("pageerror", lambda e: sub.console.append(f"pageerror: {e}"))
            await join(sub.page, url, camera=False, microphone=False)
            sub._sampler = asyncio.create_task(sub._sample_forever())
        except BaseException:
            await sub.close()
            raise
        return sub

    async def _sample_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                raw = await asyncio.wait_for(self.page.evaluate(SUB_JS), 2)
                now = time.monotonic()
                page_now = raw["now"]
                self.frames.extend((now - (page_now - t) / 1000, int(h)) for t, h in raw["frames"])
                self.samples.append(SubSample(now, raw["video"] or EMPTY_IN, raw["audio"] or EMPTY_IN))
            await asyncio.sleep(0.25)

    def at(self, t: float) -> SubSample | None:
        return _reading_at(self.samples, t)

    def kbps_between(self, t0: float, t1: float) -> float:
        a, b = self.at(t0), self.at(t1)
        if a is None or b is None or b.t <= a.t:
            return 0.0
        octets = b.video["bytes"] + b.audio["bytes"] - a.video["bytes"] - a.audio["bytes"]
        return float(octets * 8 / (b.t - a.t) / 1000)

    def receiving_video(self) -> bool:
        return bool(self.samples and self.samples[-1].video["received"] > 0)

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sampler
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.browser.close(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.playwright.stop(), 10)
