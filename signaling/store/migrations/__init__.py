"""Alembic migrations of the durable store (run by signaling.store.migrate)."""
