"""REST for transcripts (WebVTT, SRT, text, JSON) and file transcription jobs."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()
