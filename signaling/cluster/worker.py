"""One worker process of `urok serve --workers N` (started by supervisor.py):
``python -m signaling.cluster.worker INDEX NODE`` with the settings in UROK_CLUSTER_SETTINGS."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from signaling.cluster.setup import worker_config, worker_settings
from signaling.cluster.supervisor import SETTINGS_ENV, settings_from_env
from signaling.server import run_server
from signaling.settings import SettingsError

PR_SET_PDEATHSIG = 1


def _stop_with_supervisor() -> None:
    """Linux: SIGTERM when the supervisor dies (kill -9 of `urok serve`), so no orphaned worker
    keeps the ports that the next `urok serve` needs; it stops as on any SIGTERM (store written,
    leases released).  Elsewhere nothing (the worker then runs on until stopped)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the supervisor died before prctl: stop now
            os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    index, node = int(argv[0]), argv[1]
    _stop_with_supervisor()
    settings = worker_settings(settings_from_env(os.environ[SETTINGS_ENV]), index)
    try:
        run_server(settings, cluster=worker_config(settings, index, node))
    except SettingsError as e:
        print(f"urok: worker {index}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
