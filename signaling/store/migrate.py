"""Alembic migrations, run from code: ``urok serve`` upgrades the database to this version's schema
before it serves (a database made by a newer urok is refused with a clear message)."""

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
    script = ScriptDirectory.from_config(cfg)
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
    command.upgrade(cfg, revision)
