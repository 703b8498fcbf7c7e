"""Composition jobs, each in its own process (``python -m recordings.composer``), niced, at most
``concurrency`` at once: a lesson's loop never composes, a composition can be cancelled (its process
is killed) and reports its progress line by line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # so the job finds recordings/ however the server runs


class ComposeFailed(Exception):
    """The composer said why (``code``: a ComposeError code, or ``crashed``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ComposeJobs:
    def __init__(self, concurrency: int, nice: int) -> None:
        self.concurrency = max(1, concurrency)
        self.nice = max(0, nice)
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()

    def submit(self, directory: Path, out: Path, *, progress: Callable[[float], None] | None = None,
               **options: Any) -> asyncio.Task[dict[str, Any]]:
        """The job as a task: await it for the composer's result; cancel it to kill the process."""
        task = asyncio.get_running_loop().create_task(self._run(directory, out, progress, options),
                                                      name=f"compose-{directory.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, directory: Path, out: Path, progress: Callable[[float], None] | None,
                   options: dict[str, Any]) -> dict[str, Any]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            args = [sys.executable, "-m", "recordings.composer", str(directory), str(out), "--nice", str(self.nice)]
            for key in ("width", "height", "fps", "layout"):
                if key in options:
                    args += [f"--{key}", str(options[key])]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.DEVNULL, env=env)
            try:
                return await self._follow(proc, progress)
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()  # cancelled: the process this job started
                    await proc.wait()

    @staticmethod
    async def _follow(proc: asyncio.subprocess.Process, progress: Callable[[float], None] | None) -> dict[str, Any]:
        assert proc.stdout is not None
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        async for raw in proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            if "progress" in line and progress is not None:
                progress(float(line["progress"]))
            elif "result" in line:
                result = line["result"]
            elif "error" in line:
                error = line["error"]
        status = await proc.wait()
        if error is not None:
            raise ComposeFailed(str(error.get("code", "failed")), str(error.get("message", "")))
        if result is None or status != 0:
            raise ComposeFailed("crashed", f"the composer exited with status {status}")
        return result

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
