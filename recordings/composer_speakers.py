"""Who the active speaker is at each instant of a recording (issue 13): from speakers.jsonl when the
recording has it, else from the recorded audio levels. Plain Python + numpy, no media."""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

LEVEL_STEP = 0.1  # s per level window
SPEECH_FLOOR = 0.01  # RMS (full scale 1.0) below which a window is silence (~ -40 dBFS)
HOLD = 0.8  # s someone must be the loudest before the picture switches to them (no flicker)


class SpeakerTimeline:
    """Changes (t, participant_id) in time order; `at(t)` is the speaker at t (None before the first)."""

    def __init__(self, changes: Sequence[tuple[float, str]]) -> None:
        ordered = sorted(changes, key=lambda c: c[0])
        self.changes: list[tuple[float, str]] = []
        for t, p in ordered:
            if not self.changes or self.changes[-1][1] != p:
                self.changes.append((t, p))
        self._times = [t for t, _ in self.changes]

    def at(self, t: float) -> str | None:
        i = bisect.bisect_right(self._times, t) - 1
        return self.changes[i][1] if i >= 0 else None

    @classmethod
    def from_jsonl(cls, path: Path) -> SpeakerTimeline:
        """Lines {"t": s, "participant_id": ...}; a malformed line (a crash mid-write) is skipped."""
        changes = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                d = json.loads(line)
                changes.append((float(d["t"]), str(d["participant_id"])))
            except (ValueError, KeyError, TypeError):
                continue
        return cls(changes)

    @classmethod
    def from_levels(cls, levels: Mapping[str, np.ndarray], *, step: float = LEVEL_STEP,
                    floor: float = SPEECH_FLOOR, hold: float = HOLD) -> SpeakerTimeline:
        """`levels[pid][i]` = RMS of pid's audio over [i * step, (i + 1) * step) on the shared timeline.
        The loudest participant above `floor` becomes the speaker once they have been the loudest for
        `hold` seconds; silence keeps the last speaker."""
        if not levels:
            return cls([])
        pids = list(levels)
        n = max(len(v) for v in levels.values())
        grid = np.zeros((len(pids), n), dtype=np.float32)
        for i, p in enumerate(pids):
            grid[i, :len(levels[p])] = levels[p]
        loudest = np.argmax(grid, axis=0)
        loud = grid[loudest, np.arange(n)] >= floor
        need = max(1, round(hold / step))
        changes: list[tuple[float, str]] = []
        current: int | None = None
        candidate, run = -1, 0
        for i in range(n):
            if not loud[i]:
                candidate, run = -1, 0
                continue
            c = int(loudest[i])
            run = run + 1 if c == candidate else 1
            candidate = c
            if c != current and (run >= need or current is None):
                current = c
                # the switch shows from where this person started talking (the recording is known
                # in advance, unlike a live detector)
                changes.append((max(0.0, (i - run + 1) * step), pids[c]))
        return cls(changes)
