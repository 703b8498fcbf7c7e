"""The WebSocket side of the signalling: sessions, rooms as live objects, close codes."""
