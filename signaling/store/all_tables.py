"""The whole schema: the store's own tables (schema.py) and those that live beside their features.

A feature's tables are defined in its own package on the store's ``metadata`` (recordings/tables.py,
transcription/tables.py, whiteboard/tables.py, breakout_tables.py here), so that a feature stays one
package; they are imported here, late, for what needs the whole schema at once (the test that
compares the migrated database with the code).
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa

from signaling.store import schema

FEATURE_TABLE_MODULES = ("recordings.tables", "transcription.tables", "whiteboard.tables",
                         "signaling.store.breakout_tables")


def full_metadata() -> sa.MetaData:
    for name in FEATURE_TABLE_MODULES:
        importlib.import_module(name)
    return schema.metadata
