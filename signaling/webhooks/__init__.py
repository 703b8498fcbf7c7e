"""Webhooks: room and lesson events delivered to the school's systems, at least once, in order."""
