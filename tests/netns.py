"""Impaired networks for tests and benchmarks: network namespaces joined by veth pairs, with loss,
delay, jitter and rate limits on each client's link, in either direction.

    with Network() as net:                      # urok-net-<pid>-srv, the server's address 198.18.0.1
        pub = net.add_client("pub")             # urok-net-<pid>-pub: 198.18.1.2, its own veth pair
        pub.uplink.apply(Impairment(loss_pct=5, delay_ms=20))
        pub.downlink.apply(Impairment(delay_ms=20))
        server = net.server.popen([...])        # a process in the server's namespace (killed at the end)
        with pub.namespace.entered():           # this thread's new sockets belong to the client's namespace
            ...
        pub.uplink.apply(Impairment())          # lift it

Topology: the server's namespace holds the server's address on ``lo`` (``SERVER_ADDRESS``, from the
benchmark range 198.18.0.0/15, RFC 2544) and one veth end per client; each client namespace holds the
other end (``198.18.<i>.2/24``, its server-side peer ``198.18.<i>.1``) and a route to the server through
it.  The uplink is the egress of the client's veth end, the downlink the egress of the server-side
end: impairments sit where a home router or a mobile cell would put them, on the client's own link,
and the other clients' links stay clean.  Nothing leaves the namespaces: they have no interface
outside.

Two ways to impair a direction, chosen once per :class:`Network`:

* ``netem`` (a kernel with ``sch_netem``, e.g. CI): ``tc qdisc netem`` (random loss, delay, jitter)
  at the root of the veth end, with ``tc tbf`` (rate) as its child; ``tbf`` alone for a rate only.
* ``userspace`` (a kernel without ``sch_netem``, this project's development VMs): the direction's
  traffic is routed into a TUN device read by a small delay line (``python -m tests.netns delayline``,
  in the same namespace) that drops packets at random (Bernoulli, as netem's ``loss random``) and
  holds them for the delay +- jitter (kept in order, unlike netem), then writes them as Ethernet
  frames to the veth end (``AF_PACKET``), so a ``tbf`` rate limit on that end still applies.  Lifted
  (no loss, no delay), the route goes back to the veth and the delay line sees nothing.

``UROK_NETNS_BACKEND=netem|userspace`` forces one.  Everything this module made is removed when the
:class:`Network` closes, also after a failure: the processes it started (by their PID, nothing
else), then the namespaces (their veths and TUNs go with them).  Needs root; :func:`missing` says
why not, and ``Network`` raises :class:`NetnsUnavailable` (a test skips with its message) when the
kernel refuses a namespace, a veth or both ways of impairing a link.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import heapq
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

CLONE_NEWNET = 0x40000000
SERVER_ADDRESS = "198.18.0.1"  # the server's address, on lo in the server's namespace
PREFIX = "urok-net"
CHECKOUT = Path(__file__).resolve().parent.parent

Backend = Literal["netem", "userspace"]


class NetnsUnavailable(RuntimeError):
    """The kernel (or the user) refuses what a network test needs: skip with this message."""


def missing() -> str | None:
    """Why this process cannot make namespaces (not root, no ``ip``/``tc``); None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (the CI container runs the tests as root)"
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            return f"`{tool}` not found: install iproute2"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, ["ip", *args], r.stdout, r.stderr)
    return r


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, list(argv), r.stdout, r.stderr)
    return r


def setns(fd: int) -> None:
    """Move this thread into the network namespace open at ``fd`` (what ``ip netns exec`` does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def namespaces() -> list[str]:
    """The names of the namespaces ``ip netns`` knows."""
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def leftovers(pid: int | None = None) -> list[str]:
    """This process's namespaces still there (or another process's, by its PID)."""
    prefix = f"{PREFIX}-{os.getpid() if pid is None else pid}-"
    return [n for n in namespaces() if n.startswith(prefix)]


class Namespace:
    """One network namespace: commands and processes in it, this thread in it for a while."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen[bytes]] = []

    @classmethod
    def create(cls, name: str) -> Namespace:
        r = ip("netns", "add", name, check=False)
        if r.returncode != 0:
            raise NetnsUnavailable(f"the kernel refused a network namespace (`ip netns add {name}`): "
                                   f"{r.stderr.strip()}")
        ns = cls(name)
        ns.ip("link", "set", "lo", "up")
        return ns

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ip("-n", self.name, *args, check=check)

    def tc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["tc", "-n", self.name, *args], check=check)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside and wait for it."""
        return _run(self.exec_argv(argv), check=check)

    def sysctl(self, key: str, value: str) -> None:
        self.run(["sh", "-c", f"echo {value} > /proc/sys/{key.replace('.', '/')}"])

    def popen(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        """Start a process inside (``ip netns exec`` execs it: the PID is the command's); it is
        killed when the namespace is deleted, if still running."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.exec_argv(argv), **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def entered(self) -> Iterator[str]:
        """This thread in the namespace: every socket it opens meanwhile (and every process it starts
        without ``popen``) belongs to it; back in its own namespace after.  A namespace is a property
        of the thread: an asyncio loop must run in the thread that entered."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                setns(fd)
            finally:
                os.close(fd)
            try:
                yield self.name
            finally:
                setns(own)
        finally:
            os.close(own)

    def pids(self) -> list[int]:
        """Every process in the namespace now (``ip netns pids``), also those this module did not
        start (a browser launched from a thread that had entered it)."""
        return [int(x) for x in ip("netns", "pids", self.name, check=False).stdout.split() if x.isdigit()]

    def stop_processes(self) -> None:
        """SIGTERM the processes ``popen`` started (by PID), SIGKILL after 5 s."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)

    def delete(self) -> None:
        self.stop_processes()
        ip("netns", "del", self.name, check=False)


def netem_available(ns: Namespace) -> bool:
    """Whether the kernel has ``sch_netem`` (tried on the namespace's ``lo``, then removed)."""
    r = ns.tc("qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
    if r.returncode != 0:
        return False
    ns.tc("qdisc", "del", "dev", "lo", "root", check=False)
    return True


@dataclass(frozen=True, slots=True)
class Impairment:
    """What one direction of a link does to packets; the default is a clean link."""

    loss_pct: float = 0.0  # random loss, each packet independently
    delay_ms: float = 0.0
    jitter_ms: float = 0.0  # delay +- jitter, uniformly
    rate_kbit: int | None = None  # tbf rate limit (None: unlimited)
    queue_ms: int = 200  # tbf: how long a packet may wait for tokens before it is dropped (a router's buffer)

    @property
    def shapes(self) -> bool:
        """Loss, delay or jitter (what netem or the delay line does; the rate is tbf's)."""
        return self.loss_pct > 0 or self.delay_ms > 0 or self.jitter_ms > 0

    def describe(self) -> str:
        parts = []
        if self.loss_pct:
            parts.append(f"{self.loss_pct:g}% loss")
        if self.delay_ms or self.jitter_ms:
            parts.append(f"{self.delay_ms:g} ms" + (f" +-{self.jitter_ms:g} ms" if self.jitter_ms else ""))
        if self.rate_kbit:
            parts.append(f"{self.rate_kbit} kbit/s")
        return ", ".join(parts) or "clean"


def _tbf_args(imp: Impairment) -> list[str]:
    assert imp.rate_kbit is not None
    rate_bytes = imp.rate_kbit * 1000 // 8
    burst = max(4000, rate_bytes // 50)  # 20 ms of tokens, at least two full packets
    return ["tbf", "rate", f"{imp.rate_kbit}kbit", "burst", str(burst), "latency", f"{imp.queue_ms}ms"]


class Direction:
    """One direction of a client's link: the egress of ``dev`` in ``ns``, towards ``dst``."""

    def __init__(self, net: Network, ns: Namespace, dev: str, tun: str, dst: str, src: str,
                 normal_route: list[str], peer_ns: Namespace, peer_dev: str) -> None:
        self.net, self.ns, self.dev, self.tun = net, ns, dev, tun
        self.dst, self.src, self.normal_route = dst, src, normal_route
        self.peer_ns, self.peer_dev = peer_ns, peer_dev
        self.current = Impairment()
        self._line: subprocess.Popen[bytes] | None = None  # the delay line (userspace backend)

    def apply(self, imp: Impairment) -> None:
        """Replace what this direction does (``Impairment()`` lifts everything)."""
        cur = self.current
        if cur.rate_kbit and not imp.rate_kbit and (cur.loss_pct, cur.delay_ms, cur.jitter_ms) == (
            imp.loss_pct, imp.delay_ms, imp.jitter_ms
        ):
            # only the rate limit goes: raise it to 10 Gbit/s in place. Deleting the qdisc would
            # drop the ~200 ms it holds in one burst (a link that grows does not lose its queue),
            # which the server then took for congestion at the very moment the link recovered.
            parent = ["parent", "1:1"] if self.net.backend == "netem" and imp.shapes else ["root"]
            self.ns.tc("qdisc", "change", "dev", self.dev, *parent, "handle", "10:",
                       *_tbf_args(Impairment(rate_kbit=10_000_000, queue_ms=cur.queue_ms)))
            self.current = imp
            return
        if self.net.backend == "netem":
            self._apply_netem(imp)
        else:
            self._apply_userspace(imp)
        self.current = imp

    def _apply_netem(self, imp: Impairment) -> None:
        self.ns.tc("qdisc", "del", "dev", self.dev, "root", check=False)
        if imp.shapes:
            netem = ["netem", "limit", "10000"]
            if imp.delay_ms or imp.jitter_ms:
                netem += ["delay", f"{imp.delay_ms:g}ms"] + ([f"{imp.jitter_ms:g}ms"] if imp.jitter_ms else [])
            if imp.loss_pct:
                netem += ["loss", "random", f"{imp.loss_pct:g}%"]
            self.ns.tc("qdisc", "add", "dev", self.dev, "root", "handle", "1:", *netem)
            if imp.rate_kbit:
                self.ns.tc("qdisc", "add", "dev", self.dev, "parent", "1:1", "handle", "10:", *_tbf_args(imp))
        elif imp.rate_kbit:
            self.ns.tc("qdisc", "add", "dev", self.dev, "root", "handle", "10:", *_tbf_args(imp))

    def _apply_userspace(self, imp: Impairment) -> None:
        self.ns.tc("qdisc", "del", "dev", self.dev, "root", check=False)
        if imp.rate_kbit:
            self.ns.tc("qdisc", "add", "dev", self.dev, "root", "handle", "10:", *_tbf_args(imp))
        if imp.shapes:
            line = self._delay_line()
            assert line.stdin is not None
            line.stdin.write(f"{imp.loss_pct} {imp.delay_ms} {imp.jitter_ms}\n".encode())
            line.stdin.flush()
            self.ns.ip("route", "replace", f"{self.dst}/32", "dev", self.tun, "src", self.src)
        elif self._line is not None:
            self.ns.ip("route", "replace", f"{self.dst}/32", *self.normal_route)

    def _delay_line(self) -> subprocess.Popen[bytes]:
        if self._line is not None and self._line.poll() is None:
            return self._line
        peer_mac = self.peer_ns.run(["cat", f"/sys/class/net/{self.peer_dev}/address"]).stdout.strip()
        seed = str(self.net.seed + len(self.ns.procs))
        line = self.ns.popen([sys.executable, "-m", "tests.netns", "delayline", "--tun", self.tun, "--dev", self.dev,
                              "--dst-mac", peer_mac, "--seed", seed],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=CHECKOUT)
        assert line.stdout is not None
        ready = line.stdout.readline().decode().strip()  # after its TUN exists
        if ready != "ready":
            raise NetnsUnavailable(f"the delay line did not start in {self.ns.name} ({ready!r}): "
                                   "no /dev/net/tun or AF_PACKET?")
        self.ns.ip("link", "set", self.tun, "up")
        self._line = line
        return line


@dataclass
class ClientLink:
    """A client's namespace and its link to the server."""

    index: int
    namespace: Namespace
    address: str
    uplink: Direction  # client -> server (the egress of the client's veth end)
    downlink: Direction  # server -> client (the egress of the server-side veth end)


class Network:
    """The server's namespace and client namespaces on their own links; removed by close()."""

    def __init__(self, *, backend: Backend | None = None, seed: int = 1) -> None:
        why = missing()
        if why:
            raise NetnsUnavailable(why)
        self.pid = os.getpid()
        self.seed = seed
        self.clients: dict[str, ClientLink] = {}
        self._all: list[Namespace] = []
        try:
            self.server = self._namespace("srv")
            self.server.ip("addr", "add", f"{SERVER_ADDRESS}/32", "dev", "lo")
            self.server.sysctl("net.ipv4.conf.all.rp_filter", "0")
            self.server.sysctl("net.ipv4.conf.default.rp_filter", "0")
            self.backend: Backend = backend or self._choose_backend()
        except BaseException:
            self.close()
            raise

    def _namespace(self, label: str) -> Namespace:
        ns = Namespace.create(f"{PREFIX}-{self.pid}-{label}")
        self._all.append(ns)
        return ns

    def _choose_backend(self) -> Backend:
        forced = os.environ.get("UROK_NETNS_BACKEND", "")
        if forced in ("netem", "userspace"):
            return "netem" if forced == "netem" else "userspace"
        if netem_available(self.server):
            return "netem"
        if not os.path.exists("/dev/net/tun"):
            raise NetnsUnavailable("the kernel has no sch_netem (tc netem) and no /dev/net/tun for the userspace "
                                   "delay line: cannot impair a link")
        return "userspace"

    def add_client(self, label: str) -> ClientLink:
        """A namespace ``urok-net-<pid>-<label>`` with its own veth pair to the server's namespace."""
        index = len(self.clients) + 1
        if index > 250:
            raise ValueError("at most 250 clients")
        ns = self._namespace(label)
        address, gateway = f"198.18.{index}.2", f"198.18.{index}.1"
        cdev, sdev = f"uk{index}c", f"uk{index}s"
        try:
            ns.ip("link", "add", cdev, "type", "veth", "peer", "name", sdev, "netns", self.server.name)
        except subprocess.CalledProcessError as e:
            raise NetnsUnavailable(f"the kernel refused a veth pair: {e.stderr.strip()}") from e
        for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
            ns.sysctl(key, "0")
        ns.ip("addr", "add", f"{address}/24", "dev", cdev)
        ns.ip("link", "set", cdev, "up")
        self.server.ip("addr", "add", f"{gateway}/24", "dev", sdev)
        self.server.ip("link", "set", sdev, "up")
        # the server answers from its own address (an unconnected socket on 0.0.0.0 would answer
        # from the veth's 198.18.<i>.1, and ICE would not match the answer to its check)
        self.server.ip("route", "add", f"{address}/32", "dev", sdev, "src", SERVER_ADDRESS)
        ns.ip("route", "add", f"{SERVER_ADDRESS}/32", "via", gateway, "dev", cdev, "src", address)
        # browsers gather no host candidate without a default route; this one ends at the server
        ns.ip("route", "add", "default", "via", gateway, "dev", cdev)
        link = ClientLink(
            index=index, namespace=ns, address=address,
            uplink=Direction(self, ns, cdev, f"uk{index}up", SERVER_ADDRESS, address,
                             ["via", gateway, "dev", cdev, "src", address], self.server, sdev),
            downlink=Direction(self, self.server, sdev, f"uk{index}dn", address, SERVER_ADDRESS,
                               ["dev", sdev, "src", SERVER_ADDRESS], ns, cdev))
        self.clients[label] = link
        return link

    def close(self) -> None:
        """Stop what was started in the namespaces (clients first), then delete them."""
        for ns in reversed(self._all):
            ns.stop_processes()
        for ns in reversed(self._all):
            ns.delete()
        self._all.clear()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the delay line (userspace backend), run inside a namespace ------------------------------------------
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
ETH_P_IP = 0x0800


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def delay_line(tun: str, dev: str, dst_mac: str, seed: int, control: IO[bytes], out: IO[bytes]) -> None:
    """Read IP packets from the TUN ``tun``, drop or hold them as the last control line says
    (``loss_pct delay_ms jitter_ms``), write them to ``dev`` as Ethernet frames for ``dst_mac``.
    Ends when the control stream closes."""
    fd = open_tun(tun)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((dev, ETH_P_IP))
    src_mac = sock.getsockname()[4]
    header = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + struct.pack("!H", ETH_P_IP)
    rng = random.Random(seed)
    loss, delay, jitter = 0.0, 0.0, 0.0
    queue: list[tuple[float, int, bytes]] = []
    last_due, n = 0.0, 0
    pending = b""
    out.write(b"ready\n")
    out.flush()
    ctl = control.fileno()
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([fd, ctl], [], [], timeout)
        if ctl in readable:
            chunk = os.read(ctl, 4096)
            if not chunk:
                return
            pending += chunk
            if b"\n" in pending:
                *lines, pending = pending.split(b"\n")
                loss, delay, jitter = (float(x) for x in lines[-1].split()[:3])
        if fd in readable:
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if loss and rng.random() * 100 < loss:
                    continue
                due = time.monotonic() + (delay + (rng.uniform(-jitter, jitter) if jitter else 0.0)) / 1000
                due = max(due, last_due)  # in order
                last_due = due
                n += 1
                heapq.heappush(queue, (due, n, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, packet = heapq.heappop(queue)
            with contextlib.suppress(OSError):  # ENOBUFS: the tbf queue is full, a tail drop
                sock.send(header + packet)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.netns")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("delayline", help="the userspace delay line of one direction (run inside its namespace)")
    d.add_argument("--tun", required=True)
    d.add_argument("--dev", required=True)
    d.add_argument("--dst-mac", required=True)
    d.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    try:
        delay_line(args.tun, args.dev, args.dst_mac, args.seed, sys.stdin.buffer, sys.stdout.buffer)
    except OSError as e:
        sys.stdout.write(f"error: {e}\n")
        sys.stdout.flush()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
