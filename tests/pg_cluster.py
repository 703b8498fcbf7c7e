"""A throwaway PostgreSQL cluster for a test session: initdb + pg_ctl in a temporary directory, on a
free 127.0.0.1 port, as the postgres (or nobody) user when the tests run as root (initdb refuses
root), trust authentication on loopback; stopped (pg_ctl stop, its own PID only) at the end."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

SKIP_REASON = "PostgreSQL is not installed (Debian's postgresql package; make test installs it)"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, root: Path, port: int, as_user: list[str], pg_ctl: str = "pg_ctl") -> None:
        self.root, self.port, self.as_user, self.pg_ctl = root, port, as_user, pg_ctl
        self._names = itertools.count()

    def stop(self) -> None:
        """PostgreSQL goes down (a fast shutdown: sessions are cut off), as a district's server may."""
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True)

    def start(self) -> None:
        """Up again on the same port, with the same data."""
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.root / "data"), "-l", str(self.root / "log"),
                        "-w", "-o", _options(self.root, self.port), "start"], check=True, capture_output=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql://urok@127.0.0.1:{self.port}/postgres"

    async def new_database(self) -> str:
        """A fresh, empty database for one test."""
        name = f"t{os.getpid()}_{next(self._names)}"
        engine = create_async_engine(f"postgresql+asyncpg://urok@127.0.0.1:{self.port}/postgres",
                                     isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()
        return f"postgresql://urok@127.0.0.1:{self.port}/{name}"


def _options(root: Path, port: int) -> str:
    return f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"


@contextmanager
def pg_cluster_running() -> Iterator[PgCluster | None]:
    """The cluster, or None without the PostgreSQL binaries."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="urok-pg-"))
    try:
        with _started(root, initdb, pg_ctl) as cluster:
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _started(root: Path, initdb: str, pg_ctl: str) -> Iterator[PgCluster]:
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            user, pw = "nobody", pwd.getpwnam("nobody")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "urok", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o", _options(root, port),
                    "start"], check=True, capture_output=True)
    try:
        yield PgCluster(root, port, as_user, pg_ctl)
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
