"""One worker process of `urok serve --workers N` (started by supervisor.py):
``python -m signaling.cluster.worker INDEX NODE`` with the settings in UROK_CLUSTER_SETTINGS."""

from __future__ import annotations

import os
import sys

from signaling.cluster.setup import worker_config, worker_settings
from signaling.cluster.supervisor import SETTINGS_ENV, settings_from_env
from signaling.server import run_server
from signaling.settings import SettingsError


def main(argv: list[str]) -> int:
    index, node = int(argv[0]), argv[1]
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
