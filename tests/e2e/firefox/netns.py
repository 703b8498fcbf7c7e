"""A network namespace of the test's own for the Firefox tests.

Firefox gathers no loopback ICE candidates (and a host has no other address a test may send to),
so the server, Chromium and Firefox all run in a namespace this test creates and deletes: ``lo``
plus a veth pair whose both ends stay inside, one with a benchmark-range address (198.18.0.0/15,
RFC 2544) that the server announces (``rtc_host_addresses``). Nothing can leave the namespace: it
has no route out and no interface outside.

How everything gets inside: the test thread enters the namespace with ``setns(2)`` (what
``ip netns exec`` does), so every socket it opens (the server's HTTP and shared UDP port) and every
process it starts (Playwright's driver and its Chromium, the Firefox driver and its Firefox)
belongs to it; it leaves before the namespace is deleted. The namespace primitives are
tests/netns.py's (shared with the impaired-network tests). A namespace is a property of the thread,
so the test's event loop must run in the thread that entered (pytest-asyncio's loop does).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.netns import Namespace, NetnsUnavailable

TEST_ADDRESS = "198.18.0.1"  # the server's ICE address, inside the namespace only
PEER_ADDRESS = "198.18.0.2"  # the veth pair's other end


def missing() -> str | None:
    """Why the test cannot make a namespace (not root, no ``ip``); None when it can."""
    if os.geteuid() != 0:
        return "the Firefox tests create a network namespace: run them as root (make test in the CI container)"
    if not shutil.which("ip"):
        return "`ip` not found: install iproute2"
    return None


@contextmanager
def test_namespace() -> Iterator[str]:
    """Create ``urok-ff-<pid>``, enter it (this thread), yield its name; leave and delete it after."""
    try:
        ns = Namespace.create(f"urok-ff-{os.getpid()}")
    except NetnsUnavailable as e:
        raise RuntimeError(str(e)) from e  # a failure here, never a skip (see conftest.py)
    try:
        ns.ip("link", "add", "urokff0", "type", "veth", "peer", "name", "urokff1")
        ns.ip("addr", "add", f"{TEST_ADDRESS}/24", "dev", "urokff0")
        ns.ip("addr", "add", f"{PEER_ADDRESS}/24", "dev", "urokff1")
        ns.ip("link", "set", "urokff0", "up")
        ns.ip("link", "set", "urokff1", "up")
        # without a default route Firefox gathers no host candidate at all (measured: no local
        # candidate, "ICE failed"); this one ends in the namespace (the veth's peer is here too and
        # forwards nothing), so it gives Firefox its address and takes nothing anywhere
        ns.ip("route", "add", "default", "dev", "urokff0", "src", TEST_ADDRESS)
        with ns.entered() as name:
            yield name
    finally:
        ns.delete()
