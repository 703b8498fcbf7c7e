"""The lesson's public chat as a WebVTT track of the recording (chat.vtt).

Only public messages sent while recording, never a deleted one (a tombstone): the file is written
again, from the room's chat log, whenever a message is deleted later, so a deleted text leaves the
recording too.  Private messages are not part of the lesson's record."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from signaling.rooms.chat_log import ChatMessage

CUE_S = 6.0  # how long a message stays on screen (a later message ends it earlier)


def _ts(s: float) -> str:
    ms = round(max(0.0, s) * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    sec, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{sec:02d}.{ms:03d}"


def _escape(text: str) -> str:
    # WebVTT cue text: & < > are markup ("-->" cannot survive: its ">" is escaped); a blank line
    # would end the cue, so line breaks inside a message become spaces
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def chat_vtt(messages: Iterable[ChatMessage], *, started_at: float, ended_at: float | None) -> str:
    kept = sorted((m for m in messages
                   if not m.deleted and not m.private and m.sent_at >= started_at
                   and (ended_at is None or m.sent_at <= ended_at)),
                  key=lambda m: (m.sent_at, m.message_id))
    out = ["WEBVTT", ""]
    for i, m in enumerate(kept):
        start = m.sent_at - started_at
        end = start + CUE_S
        if i + 1 < len(kept):
            end = min(end, max(start + 1.0, kept[i + 1].sent_at - started_at))
        out += [m.message_id, f"{_ts(start)} --> {_ts(end)}", f"<v {_escape(m.from_name) or '?'}>{_escape(m.text)}", ""]
    return "\n".join(out)


def write_chat_vtt(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
