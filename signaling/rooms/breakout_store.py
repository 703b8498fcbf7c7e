"""Where breakout templates (per class) and breakout attendance live: memory, SQLite or PostgreSQL
(tables in signaling/store/breakout_tables.py, revision r0008), on the room store's engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from signaling.rooms.errors import InvalidInput
from signaling.store import breakout_tables as t

MAX_TEMPLATES_PER_CLASS = 100


@dataclass(frozen=True, slots=True)
class TemplateGroup:
    name: str
    identities: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "identities": list(self.identities)}


@dataclass(frozen=True, slots=True)
class BreakoutTemplate:
    template_id: str
    class_id: str
    name: str
    groups: tuple[TemplateGroup, ...]
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "class_id": self.class_id, "name": self.name,
                "groups": [g.to_json() for g in self.groups], "created_at": self.created_at,
                "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class StintRecord:
    """One stay of one participant in one breakout group (attendance)."""

    room_id: str
    session_id: str
    breakout_id: str
    breakout_name: str
    participant_id: str
    identity: str
    name: str
    joined_at: float
    left_at: float | None
    visitor: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "breakout_id": self.breakout_id, "breakout_name": self.breakout_name,
                "participant_id": self.participant_id, "identity": self.identity, "name": self.name,
                "joined_at": self.joined_at, "left_at": self.left_at, "visitor": self.visitor}


class BreakoutStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def save_template(self, template: BreakoutTemplate) -> BreakoutTemplate:
        """Create, or replace the one of that class with the same name (keeping its id and creation)."""

    async def templates(self, class_id: str) -> list[BreakoutTemplate]: ...

    async def template(self, template_id: str) -> BreakoutTemplate | None: ...

    async def delete_template(self, template_id: str) -> bool: ...

    async def save_stints(self, room_id: str, session_id: str, stints: Sequence[StintRecord]) -> None:
        """The whole attendance of one breakout session (replaces what was written before)."""

    async def stints(self, room_id: str) -> list[StintRecord]: ...


@dataclass
class MemoryBreakoutStore:
    _templates: dict[str, BreakoutTemplate] = field(default_factory=dict)
    _stints: dict[tuple[str, str], list[StintRecord]] = field(default_factory=dict)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def save_template(self, template: BreakoutTemplate) -> BreakoutTemplate:
        same = next((x for x in self._templates.values()
                     if x.class_id == template.class_id and x.name == template.name), None)
        if same is not None:
            template = BreakoutTemplate(same.template_id, template.class_id, template.name, template.groups,
                                        same.created_at, template.updated_at)
        elif sum(x.class_id == template.class_id for x in self._templates.values()) >= MAX_TEMPLATES_PER_CLASS:
            raise InvalidInput(f"a class keeps at most {MAX_TEMPLATES_PER_CLASS} templates")
        self._templates[template.template_id] = template
        return template

    async def templates(self, class_id: str) -> list[BreakoutTemplate]:
        return sorted((x for x in self._templates.values() if x.class_id == class_id), key=lambda x: x.name)

    async def template(self, template_id: str) -> BreakoutTemplate | None:
        return self._templates.get(template_id)

    async def delete_template(self, template_id: str) -> bool:
        return self._templates.pop(template_id, None) is not None

    async def save_stints(self, room_id: str, session_id: str, stints: Sequence[StintRecord]) -> None:
        self._stints[(room_id, session_id)] = list(stints)

    async def stints(self, room_id: str) -> list[StintRecord]:
        out = [s for (rid, _), rows in self._stints.items() if rid == room_id for s in rows]
        return sorted(out, key=lambda s: (s.joined_at, s.participant_id))


def _template(row: Any) -> BreakoutTemplate:
    groups = tuple(TemplateGroup(str(g["name"]), tuple(str(i) for i in g.get("identities", ())))
                   for g in row.groups)
    return BreakoutTemplate(row.template_id, row.class_id, row.name, groups, row.created_at, row.updated_at)


def _stint_row(s: StintRecord) -> dict[str, Any]:
    return {"room_id": s.room_id, "session_id": s.session_id, "breakout_id": s.breakout_id,
            "breakout_name": s.breakout_name, "participant_id": s.participant_id, "identity": s.identity,
            "name": s.name, "joined_at": s.joined_at, "left_at": s.left_at, "visitor": s.visitor}


class SqlBreakoutStore:
    """``engine``: the room store's, asked for on each call (it exists once that store is open).
    Each call is one short transaction."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def open(self) -> None:
        self._engine()

    async def close(self) -> None:
        return None

    async def save_template(self, template: BreakoutTemplate) -> BreakoutTemplate:
        tt = t.breakout_templates
        groups = [g.to_json() for g in template.groups]
        for _ in range(3):  # two saves of the same new name at once: the loser updates the winner's
            async with self._engine().begin() as conn:
                row = (await conn.execute(sa.select(tt).where(tt.c.class_id == template.class_id,
                                                              tt.c.name == template.name))).first()
                if row is not None:
                    await conn.execute(sa.update(tt).where(tt.c.template_id == row.template_id)
                                       .values(groups=groups, updated_at=template.updated_at))
                    return BreakoutTemplate(row.template_id, template.class_id, template.name, template.groups,
                                            row.created_at, template.updated_at)
                n = await conn.scalar(sa.select(sa.func.count()).select_from(tt)
                                      .where(tt.c.class_id == template.class_id))
                if int(n or 0) >= MAX_TEMPLATES_PER_CLASS:
                    raise InvalidInput(f"a class keeps at most {MAX_TEMPLATES_PER_CLASS} templates")
                try:
                    await conn.execute(sa.insert(tt), [{
                        "template_id": template.template_id, "class_id": template.class_id, "name": template.name,
                        "groups": groups, "created_at": template.created_at, "updated_at": template.updated_at}])
                    return template
                except IntegrityError:
                    await conn.rollback()
        raise RuntimeError("saving a breakout template kept colliding")

    async def templates(self, class_id: str) -> list[BreakoutTemplate]:
        tt = t.breakout_templates
        async with self._engine().connect() as conn:
            rows = (await conn.execute(sa.select(tt).where(tt.c.class_id == class_id).order_by(tt.c.name))).all()
        return [_template(r) for r in rows]

    async def template(self, template_id: str) -> BreakoutTemplate | None:
        tt = t.breakout_templates
        async with self._engine().connect() as conn:
            row = (await conn.execute(sa.select(tt).where(tt.c.template_id == template_id))).first()
        return None if row is None else _template(row)

    async def delete_template(self, template_id: str) -> bool:
        tt = t.breakout_templates
        async with self._engine().begin() as conn:
            done = await conn.execute(sa.delete(tt).where(tt.c.template_id == template_id))
        return bool(done.rowcount)

    async def save_stints(self, room_id: str, session_id: str, stints: Sequence[StintRecord]) -> None:
        st = t.breakout_stints
        async with self._engine().begin() as conn:
            await conn.execute(sa.delete(st).where(st.c.room_id == room_id, st.c.session_id == session_id))
            if stints:
                await conn.execute(sa.insert(st), [_stint_row(s) for s in stints])

    async def stints(self, room_id: str) -> list[StintRecord]:
        st = t.breakout_stints
        async with self._engine().connect() as conn:
            rows = (await conn.execute(sa.select(st).where(st.c.room_id == room_id)
                                       .order_by(st.c.joined_at, st.c.participant_id))).all()
        return [StintRecord(r.room_id, r.session_id, r.breakout_id, r.breakout_name, r.participant_id, r.identity,
                            r.name, r.joined_at, r.left_at, r.visitor) for r in rows]
