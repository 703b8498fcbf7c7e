"""Running the app: uvloop, the listening site, the dev-mode banner, clean shutdown on signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web

from signaling import logs
from signaling.app import create_app
from signaling.app_keys import ROOMS, TOKENS
from signaling.cluster.node import ClusterConfig
from signaling.rooms import Role, RoomSettings
from signaling.settings import Settings, SettingsError

log = logging.getLogger("urok")


def _where(settings: Settings) -> str:
    if settings.store == "sqlite":
        return f"SQLite file {settings.data_dir}/urok.sqlite3"
    return "PostgreSQL" if settings.store == "postgres" else "in memory, nothing is kept"


async def _dev_banner(app: web.Application, settings: Settings) -> str:
    tokens = app[TOKENS]
    admin = tokens.mint_admin(subject="dev-admin", ttl_s=settings.token_ttl_s)
    lines = [
        "",
        f"urok is running in DEV mode (store: {_where(settings)}; do not use in production)",
        f"  server      {settings.base_url}/",
        f"  API key     {settings.api_key}",
        f"  API secret  {settings.api_secret}",
        f"  admin token {admin}",
    ]
    if settings.demo_room:
        room, _ = await app[ROOMS].create(RoomSettings(name="Demo lesson", external_id="urok-dev-demo",
                                                       guest_policy="ALWAYS_ACCEPT"))  # type: ignore[arg-type]
        base = f"{settings.base_url}/join/{room.room_id}?token="
        teacher = tokens.mint_access(identity="dev-teacher", name="Учитель (Teacher)", room_id=room.room_id,
                                     role=Role.HOST, registered=True, ttl_s=settings.token_ttl_s,
                                     family_name="Teacher", given_name="Demo")
        student = tokens.mint_access(identity="dev-student", name="Ученик (Student)", room_id=room.room_id,
                                     role=Role.PARTICIPANT, registered=True, ttl_s=settings.token_ttl_s,
                                     family_name="Student", given_name="Demo")
        lines += [
            f"  demo room   {room.room_id}",
            f"  join (teacher) {base}{teacher}",
            f"  join (student) {base}{student}",
            "  more links: urok token --dev --room ROOM --identity ID --name NAME --url",
        ]
    return "\n".join(lines) + "\n"


async def serve(settings: Settings, *, ready: asyncio.Event | None = None,
                cluster: ClusterConfig | None = None) -> None:
    """``cluster``: one worker of several (signaling/cluster): the public port is shared with the
    others (SO_REUSEPORT: the kernel spreads the connections), and a private one takes what the
    other workers relay and forward to this one."""
    app = create_app(settings, cluster=cluster)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, reuse_port=cluster is not None)
        await site.start()
        if cluster is not None:
            await web.TCPSite(runner, settings.host, cluster.private_port, reuse_address=True).start()
    except OSError as e:
        await runner.cleanup()
        raise SettingsError(f"cannot start: {e.strerror or e}") from None
    log.info("listening on http://%s:%d%s", settings.host, settings.port,
             "" if cluster is None else f" (worker {cluster.index}, private port {cluster.private_port})")
    # What the start made (modules, the app, the libraries' tables) lives as long as the process: out
    # of the garbage collector's sight, a full collection scans only what the lessons made since. A
    # full collection with everything in sight paused the loop 220 ms with 2000 people in a room
    # (docs/benchmarks.md, "Signalling on each store"; the loop monitor counts the pauses).
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the banner: a stop then still writes the store
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if settings.dev and (cluster is None or cluster.index == 0):  # one banner, one demo room
        print(await _dev_banner(app, settings), flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def run_server(settings: Settings, *, cluster: ClusterConfig | None = None) -> None:
    """Today's single process; with several workers, the supervisor that starts them (each runs
    this again with its ``cluster``); with redis_url and one worker, one worker of a cluster
    (several machines each run one `urok serve`)."""
    logs.configure(settings.log_level, settings.log_format)
    settings.check_can_serve()
    if cluster is None and settings.worker_count > 1:
        from signaling.cluster.supervisor import run_supervisor

        raise SystemExit(run_supervisor(settings))
    if cluster is None and settings.redis_url:
        from signaling.cluster.setup import node_id, worker_config

        cluster = worker_config(settings, 0, node_id())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep running without it
        asyncio.run(serve(settings, cluster=cluster))
        return
    uvloop.run(serve(settings, cluster=cluster))
