"""Public API: creation by parents, the close cascade, named errors, no import of signaling."""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import AsyncIterator

import pytest

import sfu
from sfu import (
    ClosedError,
    DuplicateIdError,
    InvalidCandidateError,
    InvalidSdpError,
    InvalidStateError,
    SfuError,
    UnknownMidError,
    Worker,
)

from .offline import FAN_OUTS, offline_publisher, offline_subscriber, offline_worker

SFU_DIR = pathlib.Path(sfu.__file__).parent


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


def test_sfu_never_imports_signaling() -> None:
    for path in SFU_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "signaling" for n in names), path


def sfu_import_graph() -> dict[str, set[str]]:
    """module -> the sfu modules it imports, anywhere in the file: ``if TYPE_CHECKING:`` blocks and
    function bodies count (a type-only import is still a dependency a reader has to follow)."""
    modules = {p.stem for p in SFU_DIR.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in SFU_DIR.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    deps.add(node.module.split(".")[0])
                elif node.level == 1:
                    deps.update(a.name for a in node.names)
                elif node.level == 0 and node.module and node.module.split(".")[0] == "sfu":
                    parts = node.module.split(".")
                    deps.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sfu."))
        graph[path.stem] = (deps & modules) - {path.stem}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_import_cycle_finder_sees_type_checking_imports() -> None:
    graph = {"worker": {"router"}, "router": {"webrtc_transport"}, "webrtc_transport": {"router"}}
    assert import_cycle(graph) == ["router", "webrtc_transport", "router"]
    assert import_cycle({"a": {"b"}, "b": set()}) is None
    assert "settings" in sfu_import_graph()["worker"]  # the graph is read from the real files


def test_sfu_modules_import_each_other_without_cycles() -> None:
    """Parents import their children, never the reverse (issue 12): a child calls its parent through
    a Protocol or callbacks given at construction, so no module of sfu/ imports, even for types
    only, a module that imports it back."""
    assert import_cycle(sfu_import_graph()) is None


def test_private_aiortc_access_only_in_compat() -> None:
    # another object's private aiortc/aioice name (a class's own self._x is fine)
    pattern = re.compile(
        r"\b(?!self\b)\w+\._(nominated|tx_srtp|rx_srtp|connection|ssrc|rtx_ssrc|stream_id|track_id|"
        r"handle_rtp_data|handle_rtcp_data|codecs|get_mline_index)\b"
    )
    for path in SFU_DIR.rglob("*.py"):
        if path.name == "aiortc_compat.py":
            continue
        match = pattern.search(path.read_text())
        assert match is None, (path.name, match.group(0) if match else None)


async def test_close_cascade(worker: Worker) -> None:
    router = worker.create_router("room")
    with pytest.raises(DuplicateIdError):
        worker.create_router("room")
    pub, producers, _ = await offline_publisher(router)
    video, audio = producers["video"], producers["audio"]
    assert {p.id for p in router.producers} == {video.id, audio.id} and len(video.id) == 16
    s1, (c1v, c1a), _, _ = await offline_subscriber(router, [video, audio], name="s1")
    s2, (c2v,), _, _ = await offline_subscriber(router, [video], name="s2")
    with pytest.raises(DuplicateIdError):
        router.create_transport("s1")
    events: list[str] = []
    for name, obj in (("video", video), ("audio", audio), ("c1v", c1v), ("c1a", c1a), ("c2v", c2v)):
        obj.on_close = lambda name=name: events.append(name)
    needed: list[str] = []
    s1.on_negotiation_needed = lambda: needed.append("s1")
    s2.on_negotiation_needed = lambda: needed.append("s2")
    assert video.consumers == [c1v, c2v] and c1v.producer is video and c1v.kind == "video"
    assert s1.consumers == [c1v, c1a] and pub.producers == [video, audio]

    # consumer close: only it
    c1a.close()
    c1a.close()
    assert events == ["c1a"] and audio.consumers == [] and s1.consumers == [c1v] and needed == ["s1"]
    # producer close: its consumers in every transport
    video.close()
    assert events == ["c1a", "c1v", "c2v", "video"]
    assert needed == ["s1", "s1", "s2"]
    assert s1.consumers == [] and s2.consumers == [] and router.producers == [audio]
    # transport close: its producers (and their consumers)
    s3, (c3a,), _, _ = await offline_subscriber(router, [audio], name="s3")
    c3a.on_close = lambda: events.append("c3a")
    pub.close()
    assert events[-2:] == ["c3a", "audio"] and pub.closed and router.producers == []
    with pytest.raises(ClosedError):
        pub.produce("0", "camera")
    with pytest.raises(ClosedError):
        s3.consume(audio)
    # router close: every transport; worker close: every router
    states: list[str] = []
    s3.on_state_change = states.append
    router.close()
    assert s1.closed and s2.closed and s3.closed and states == ["closed"]
    assert router.closed and worker.routers == [] and router.transports == []
    with pytest.raises(ClosedError):
        router.create_transport("x")
    r2 = worker.create_router("room")  # the id is free again
    t = r2.create_transport("t")
    await worker.close()
    await worker.close()
    assert r2.closed and t.closed and worker.closed
    st = worker.stats
    assert (st.producers, st.consumers, st.transports) == (0, 0, 0)
    with pytest.raises(ClosedError):
        worker.create_router("again")


async def test_named_errors(worker: Worker) -> None:
    router = worker.create_router("room")
    pub, producers, _ = await offline_publisher(router)
    assert all(issubclass(e, SfuError) for e in (ClosedError, InvalidSdpError, UnknownMidError))
    with pytest.raises(UnknownMidError):
        pub.produce("7", "camera")
    with pytest.raises(UnknownMidError):
        pub.produce("0", "camera")  # already produced
    with pytest.raises(InvalidStateError):
        await pub.accept_answer("v=0\r\n")
    t = router.create_transport("bad")
    with pytest.raises(InvalidSdpError):
        await t.accept_offer("garbage")
    with pytest.raises(InvalidCandidateError):
        await t.add_remote_candidate({"candidate": "candidate:1 1 udp", "sdpMid": "0"})
    with pytest.raises(InvalidCandidateError):
        await t.add_remote_candidate({"candidate": 5})
    await t.add_remote_candidate({"candidate": "", "sdpMid": "0"})  # end of candidates, buffered
    sub = router.create_transport("sub")
    sub.consume(producers["audio"])
    await sub.create_offer()
    with pytest.raises(InvalidStateError):
        await sub.create_offer()  # the previous offer is not answered yet
    with pytest.raises(InvalidStateError):
        await sub.accept_offer("v=0\r\n")


async def test_offered_media_reports_directions(worker: Worker) -> None:
    router = worker.create_router("room")
    pub, _, _ = await offline_publisher(router)
    media = pub.offered_media()
    assert [(m.mid, m.kind, m.direction, m.sending) for m in media] == [
        ("0", "video", "sendonly", True),
        ("1", "audio", "sendonly", True),
    ]
    assert media[0].main_codec is not None and media[0].main_codec.mime_type == "video/VP8"


async def test_initial_offer_without_consumers(worker: Worker) -> None:
    t = worker.create_router("room").create_transport("sub")
    sdp = await t.create_offer()
    assert sdp.startswith("v=0") and "m=" not in sdp and not t.negotiation_needed
