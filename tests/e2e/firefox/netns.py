"""A network namespace of the test's own for the Firefox tests.

Firefox gathers no loopback ICE candidates (and a host has no other address a test may send to),
so the server, Chromium and Firefox all run in a namespace this test creates and deletes: ``lo``
plus a veth pair whose both ends stay inside, one with a benchmark-range address (198.18.0.0/15,
RFC 2544) that the server announces (``rtc_host_addresses``). Nothing can leave the namespace: it
has no route out and no interface outside.

How everything gets inside: the test thread enters the namespace with ``setns(2)`` (what
``ip netns exec`` does), so every socket it opens (the server's HTTP and shared UDP port) and every
process it starts (Playwright's driver and its Chromium, the Firefox driver and its Firefox)
belongs to it; it leaves before the namespace is deleted. A namespace is a property of the thread,
so the test's event loop must run in the thread that entered (pytest-asyncio's loop does).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
TEST_ADDRESS = "198.18.0.1"  # the server's ICE address, inside the namespace only
PEER_ADDRESS = "198.18.0.2"  # the veth pair's other end


def missing() -> str | None:
    """Why the test cannot make a namespace (not root, no ``ip``); None when it can."""
    if os.geteuid() != 0:
        return "the Firefox tests create a network namespace: run them as root (make test in the CI container)"
    if not shutil.which("ip"):
        return "`ip` not found: install iproute2"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def test_namespace() -> Iterator[str]:
    """Create ``urok-ff-<pid>``, enter it (this thread), yield its name; leave and delete it after."""
    name = f"urok-ff-{os.getpid()}"
    _ip("netns", "add", name)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "urokff0", "type", "veth", "peer", "name", "urokff1")
        _ip("-n", name, "addr", "add", f"{TEST_ADDRESS}/24", "dev", "urokff0")
        _ip("-n", name, "addr", "add", f"{PEER_ADDRESS}/24", "dev", "urokff1")
        _ip("-n", name, "link", "set", "urokff0", "up")
        _ip("-n", name, "link", "set", "urokff1", "up")
        # without a default route Firefox gathers no host candidate at all (measured: no local
        # candidate, "ICE failed"); this one ends in the namespace (the veth's peer is here too and
        # forwards nothing), so it gives Firefox its address and takes nothing anywhere
        _ip("-n", name, "route", "add", "default", "dev", "urokff0", "src", TEST_ADDRESS)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            yield name
        finally:
            _setns(own)
    finally:
        os.close(own)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
