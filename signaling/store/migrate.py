"""Alembic migrations, run from code: ``urok serve`` upgrades the database to this version's schema
before it serves (``migrate_on_start``, the default), or ``urok db upgrade`` does and ``serve``
refuses an older schema with a message that says to run it (``migrate_on_start = false``: several
processes on one PostgreSQL, where one upgrade should run before any of them starts).  A database
made by a newer urok is refused either way."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from signaling.settings import SettingsError

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreUnavailable(SettingsError):
    """The database cannot be opened (unreachable, corrupt, read-only): the server does not start
    (``urok`` prints the message and exits with 2, as for a bad setting)."""


class SchemaError(StoreUnavailable):
    """The database's schema cannot be used by this version of urok."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (run with ``AsyncConnection.run_sync``, in a transaction)."""
    cfg = alembic_config(connection)
    _refuse_unknown(connection, ScriptDirectory.from_config(cfg))
    command.upgrade(cfg, revision)


def check_current(connection: sa.Connection) -> None:
    """``serve`` without ``migrate_on_start``: the schema must be this version's already."""
    script = ScriptDirectory.from_config(alembic_config(connection))
    _refuse_unknown(connection, script)
    current, head = current_revision(connection), script.get_current_head()
    if current != head:
        raise SchemaError(
            f"the database's schema is at revision {current or 'none (empty)'!r}, this urok needs {head!r}: "
            "run `urok db upgrade` (with the same settings) first, or set migrate_on_start = true")


def _refuse_unknown(connection: sa.Connection, script: ScriptDirectory) -> None:
    current = current_revision(connection)
    if current is not None:
        try:
            known = script.get_revision(current)
        except CommandError:
            known = None
        if known is None:
            raise SchemaError(
                f"the database has schema revision {current!r}, which this version of urok does not know "
                f"(it knows up to {script.get_current_head()!r}): it was made by a newer urok; run that "
                "version, or restore a backup made for this one")
