"""This feature's tables, on the store's metadata (signaling/store/schema.py; see all_tables.py)."""

from __future__ import annotations

from signaling.store.schema import metadata

__all__ = ["metadata"]
