"""One board: its Yjs document (pycrdt), its pages, who may draw, and the limits on what a client may
add.  Plain Python, no sockets: the room feature (board_feature.py) feeds it clients' updates and
relays what it accepts; the write-behind (board_feature.py) takes what changed since the last save.

The document's layout, shared with web/board.js and the renderer (board_render.py): one root map
``elements``, id -> map {type, page, color, width, pts (flat [x0, y0, x1, y1, ...]; a live pen stroke
grows by pushes), t ([sx, sy, tx, ty]: x' = x * sx + tx), text, size, by}.  Pages are not in the
document: the server keeps them (so their number has a limit a client cannot go around)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pycrdt

from whiteboard.draw_rights import DrawRights
from whiteboard.errors import BoardFull, BoardRateLimited, InvalidUpdate, PageNotFound, TooManyPages, UpdateTooLarge

PAGE_W = 1600  # a page's logical size (the client scales it to the screen; a PDF page keeps its ratio)
PAGE_H = 1000
FOLLOW_LOG = 2000  # follow changes kept per board (a lesson has tens)
UPDATES_PER_S = 40.0  # per participant: a pen sends ~15 merged updates a second (web/board.js)
UPDATES_BURST = 120
BYTES_PER_S = 128 * 1024.0  # per participant, sustained
SERVER_ORIGIN = "urok-server"


@dataclass(frozen=True, slots=True)
class BoardKey:
    room_id: str
    group_id: str | None = None  # a breakout group's board; None: the room's own

    @property
    def group(self) -> str:
        """The stored form ('' for the room's own board)."""
        return self.group_id or ""


@dataclass(frozen=True, slots=True)
class BoardLimits:
    max_update_bytes: int = 256 * 1024
    max_bytes: int = 16 * 1024 * 1024
    max_pages: int = 50


@dataclass(slots=True)
class Page:
    page_id: str
    background: str | None = None  # an asset id (a rendered PDF page or a picture)
    width: int = PAGE_W
    height: int = PAGE_H

    def to_json(self) -> dict[str, Any]:
        return {"page_id": self.page_id, "background": self.background, "width": self.width, "height": self.height}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Page:
        return cls(str(d["page_id"]), d.get("background"), int(d.get("width", PAGE_W)), int(d.get("height", PAGE_H)))


@dataclass(slots=True)
class BoardMeta:
    """What the server keeps beside the document (stored as JSON with it)."""

    pages: list[Page] = field(default_factory=lambda: [Page("p1")])
    rights: DrawRights = field(default_factory=DrawRights)
    follow: str | None = None  # the page the host makes everyone show; None: each picks
    # when which page was shown to everyone ([at (epoch s), page_id | None], oldest first, the last
    # FOLLOW_LOG kept): the recording's composer shows the board at those times (shown_at())
    follow_log: list[tuple[float, str | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"pages": [p.to_json() for p in self.pages], "rights": self.rights.to_json(), "follow": self.follow,
                "follow_log": [[at, pid] for at, pid in self.follow_log]}

    @classmethod
    def from_json(cls, d: Any) -> BoardMeta:
        if not isinstance(d, dict) or not d.get("pages"):
            return cls()
        log = [(float(e[0]), e[1] if isinstance(e[1], str) else None) for e in d.get("follow_log") or []
               if isinstance(e, list) and len(e) == 2 and isinstance(e[0], (int, float))]
        return cls([Page.from_json(p) for p in d["pages"]], DrawRights.from_json(d.get("rights")), d.get("follow"),
                   log)

    def shown_at(self, at: float) -> str | None:
        """The page everyone was made to follow at ``at`` (None: the board was not shown then)."""
        shown: str | None = None
        for when, page_id in self.follow_log:
            if when > at:
                break
            shown = page_id
        return shown


class Bucket:
    """A token bucket that takes n tokens at once (bytes, or 1 per update); the clock is passed in."""

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float]) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._last = clock()

    def take(self, n: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._last) * self._rate)
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


class Board:
    def __init__(self, key: BoardKey, limits: BoardLimits, *, clock: Callable[[], float],
                 meta: BoardMeta | None = None) -> None:
        self.key = key
        self.limits = limits
        self.meta = meta if meta is not None else BoardMeta()
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.elements = self.doc.get("elements", type=pycrdt.Map)
        self._clock = clock
        self.size = 0  # the encoded state's size in bytes, estimated between exact counts (recount())
        self._saved_sv = self.doc.get_state()
        self.dirty = False  # the document changed since the last take_pending()
        self.meta_dirty = False
        self._updates: dict[str, Bucket] = {}
        self._bytes: dict[str, Bucket] = {}

    # --- loading ------------------------------------------------------------------------------
    def load(self, updates: list[bytes]) -> None:
        """The stored snapshot and updates (already saved: nothing pending after this)."""
        for u in updates:
            self.doc.apply_update(u)
        self._saved_sv = self.doc.get_state()
        self.recount()

    def recount(self) -> int:
        self.size = len(self.doc.get_update())
        return self.size

    # --- clients' updates ---------------------------------------------------------------------
    def check_rate(self, participant_id: str, nbytes: int) -> None:
        ub = self._updates.get(participant_id)
        if ub is None:
            ub = self._updates[participant_id] = Bucket(UPDATES_PER_S, UPDATES_BURST, self._clock)
            # a second's worth, and at least two largest updates: a burst of big pastes waits for a refill
            burst = max(BYTES_PER_S, 2.0 * self.limits.max_update_bytes)
            self._bytes[participant_id] = Bucket(BYTES_PER_S, burst, self._clock)
        bb = self._bytes[participant_id]
        if not ub.take():
            raise BoardRateLimited("too many board updates; slow down")
        if not bb.take(float(nbytes)):
            raise BoardRateLimited("too much board data per second; slow down")

    def apply(self, update: bytes, participant_id: str) -> None:
        """Apply a client's update, or refuse it (a named error) and change nothing."""
        n = len(update)
        if n > self.limits.max_update_bytes:
            raise UpdateTooLarge(f"a board update may have at most {self.limits.max_update_bytes} bytes ({n} sent)")
        if self.size + n > self.limits.max_bytes:
            raise BoardFull(f"the board is full ({self.limits.max_bytes} bytes): clear a page or start a new board")
        if n < 2:
            raise InvalidUpdate("an empty board update")
        self.check_rate(participant_id, n)
        try:
            self.doc.apply_update(update)
        except Exception as e:  # pycrdt raises a plain ValueError/RuntimeError on bytes it cannot decode
            raise InvalidUpdate("the board update is not a Yjs update") from e
        self.size += n
        self.dirty = True

    def forget(self, participant_id: str) -> None:
        """The participant left: its rate buckets go (memory bounded by who is present)."""
        self._updates.pop(participant_id, None)
        self._bytes.pop(participant_id, None)

    # --- server-side changes ------------------------------------------------------------------
    def clear(self, page_id: str | None) -> bytes:
        """Delete the page's elements (every page's with None); returns the update to relay."""
        before = self.doc.get_state()
        with self.doc.transaction(origin=SERVER_ORIGIN):
            for eid in [k for k, v in self.elements.items() if page_id is None or _page_of(v) == page_id]:
                del self.elements[eid]
        self.dirty = True
        self.recount()
        # a deletion does not move the state vector: the diff carries the whole delete set, which holds it
        return self.doc.get_update(before)

    def import_elements(self, by_page: dict[str, list[dict[str, Any]]]) -> bytes:
        """Copies of elements (plain, as elements_json() gives them) onto this board's pages, under
        new ids: a group's board shown to the class.  Refused (BoardFull) before anything changes if
        the board would pass its size.  Returns the update to relay."""
        before = self.doc.get_state()
        doc: pycrdt.Doc[Any] = pycrdt.Doc()  # built apart first, to know its size
        staged = doc.get("elements", type=pycrdt.Map)
        with doc.transaction():
            for page_id, els in by_page.items():
                for el in els:
                    fields = {k: v for k, v in el.items() if k not in ("id", "pts", "page")}
                    pts = el.get("pts") if isinstance(el.get("pts"), list) else []
                    staged[new_id("e")] = pycrdt.Map({**fields, "page": page_id, "pts": pycrdt.Array(pts)})
        n = len(doc.get_update())
        if self.size + n > self.limits.max_bytes:
            raise BoardFull(f"the board is full ({self.limits.max_bytes} bytes): clear a page first")
        with self.doc.transaction(origin=SERVER_ORIGIN):
            for eid, m in staged.items():
                self.elements[eid] = pycrdt.Map(m.to_py() | {"pts": pycrdt.Array(m["pts"].to_py())})
        self.size += n
        self.dirty = True
        return self.doc.get_update(before)

    def page(self, page_id: str) -> Page:
        for p in self.meta.pages:
            if p.page_id == page_id:
                return p
        raise PageNotFound(f"no page {page_id!r} on this board")

    def add_pages(self, pages: list[Page]) -> list[Page]:
        if len(self.meta.pages) + len(pages) > self.limits.max_pages:
            raise TooManyPages(f"a board has at most {self.limits.max_pages} pages "
                               f"({len(self.meta.pages)} now, {len(pages)} more asked)")
        self.meta.pages.extend(pages)
        self.meta_dirty = True
        return pages

    def set_follow(self, page_id: str | None, at: float | None = None) -> None:
        if page_id is not None:
            self.page(page_id)
        self.meta.follow = page_id
        self.meta.follow_log.append((self._clock() if at is None else at, page_id))
        del self.meta.follow_log[:-FOLLOW_LOG]
        self.meta_dirty = True

    # --- state for clients and the store ------------------------------------------------------
    def state(self) -> bytes:
        return self.doc.get_update()

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def diff(self, state_vector: bytes) -> bytes:
        try:
            return self.doc.get_update(state_vector)
        except Exception as e:
            raise InvalidUpdate("not a Yjs state vector") from e

    def take_pending(self) -> bytes | None:
        """What changed since the last call (one update), for the write-behind; None if nothing."""
        if not self.dirty:
            return None
        update = self.doc.get_update(self._saved_sv)
        self._saved_sv = self.doc.get_state()
        self.dirty = False
        return update

    def elements_json(self, page_id: str | None = None) -> list[dict[str, Any]]:
        """Plain elements (for rendering), in a stable order (id)."""
        return elements_of(self.elements, page_id)


def _page_of(v: Any) -> Any:
    return v.get("page") if isinstance(v, pycrdt.Map) else None


def elements_of(elements: pycrdt.Map[Any], page_id: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for eid, v in sorted(elements.items(), key=lambda kv: (_order(kv[1]), kv[0])):
        if not isinstance(v, pycrdt.Map):
            continue  # only maps are elements; anything else a client wrote is ignored
        d = v.to_py()
        if not isinstance(d, dict) or (page_id is not None and d.get("page") != page_id):
            continue
        d["id"] = eid
        out.append(d)
    return out


def _order(v: Any) -> float:
    """Elements draw in the order they were made (their ``z``, a creation time the client sets)."""
    return element_order(v.get("z") if isinstance(v, pycrdt.Map) else None)


def element_order(z: Any) -> float:
    """The sort key of an element's ``z`` (anything but a number draws first)."""
    return float(z) if isinstance(z, (int, float)) else 0.0
