"""Typed handlers of WebSocket requests, one module per feature; each exports ROUTES."""
