"""How the recording service has its composed video made: through the composer's background jobs
(recordings/compose_jobs.py: each job its own niced process, progress on the loop), or, where only
the composer function exists, through a small process pool of its own.  Without a composer the
runner says so (``available`` false) and recordings stay ``processing``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

Progress = Callable[[float], None]


def _niced(nice: int) -> None:
    with contextlib.suppress(OSError):
        os.nice(nice)


def _compose_in_process(directory: str, out: str, options: dict[str, Any]) -> None:
    composer = importlib.import_module("recordings.composer")
    composer.compose(Path(directory), Path(out), **options)


class CompositionRunner:
    def __init__(self, *, concurrency: int, nice: int, width: int, height: int, fps: int, layout: str) -> None:
        self.concurrency = max(1, concurrency)
        self.nice = nice
        self.options: dict[str, Any] = {"width": width, "height": height, "fps": fps, "layout": layout}
        self._jobs: Any = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._running: dict[Path, Any] = {}
        self._mode = self._find()

    @staticmethod
    def _find() -> str:
        try:
            importlib.import_module("recordings.compose_jobs")
            return "jobs"
        except ImportError:
            pass
        try:
            importlib.import_module("recordings.composer")
            return "pool"
        except ImportError:
            return "none"

    @property
    def available(self) -> bool:
        return self._mode != "none"

    async def compose(self, directory: Path, out: Path, *, progress: Progress | None = None) -> None:
        """Make ``out`` from the recording in ``directory``; raises what the composition raised."""
        if self._mode == "jobs":
            await self._with_jobs(directory, out, progress)
        elif self._mode == "pool":
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(self.concurrency, initializer=_niced,
                                                                    initargs=(self.nice,))
            future = asyncio.get_running_loop().run_in_executor(self._pool, _compose_in_process, str(directory),
                                                                str(out), self.options)
            self._running[directory] = future
            try:
                await future
            finally:
                self._running.pop(directory, None)
            if progress is not None:
                progress(1.0)
        else:
            raise RuntimeError("no composer installed")

    async def _with_jobs(self, directory: Path, out: Path, progress: Progress | None) -> None:
        if self._jobs is None:
            jobs_module = importlib.import_module("recordings.compose_jobs")
            self._jobs = jobs_module.ComposeJobs(self.concurrency, self.nice)
        job = self._jobs.submit(directory, out, progress=progress, **self.options)
        self._running[directory] = job
        try:
            if inspect.isawaitable(job):
                await job
            elif hasattr(job, "wait"):
                await job.wait()
            else:
                await job.result()
        finally:
            self._running.pop(directory, None)

    def cancel(self, directory: Path) -> None:
        job = self._running.pop(directory, None)
        if job is not None and hasattr(job, "cancel"):
            job.cancel()

    async def close(self) -> None:
        for directory in list(self._running):
            self.cancel(directory)
        if self._jobs is not None:
            closing = self._jobs.close()
            if inspect.isawaitable(closing):
                await closing
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
