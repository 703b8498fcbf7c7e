"""The `urok` command: `urok serve`, `urok token`, `urok settings`, `urok db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from signaling.auth import TokenService
from signaling.rooms import Role
from signaling.settings import Settings, SettingsError, describe, load_settings

log = logging.getLogger("urok")


def _load(args: argparse.Namespace, overrides: dict[str, Any]) -> Settings:
    loaded = load_settings(config_file=args.config, overrides=overrides)
    for w in loaded.warnings:
        print(f"urok: warning: {w}", file=sys.stderr)
    return loaded.settings


def _serve(args: argparse.Namespace) -> int:
    from signaling.server import run_server

    overrides = {"host": args.host, "port": args.port, "dev": True if args.dev else None,
                 "log_level": args.log_level, "workers": args.workers}
    settings = _load(args, overrides)
    run_server(settings)
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = _load(args, {"dev": True if args.dev else None})
    if not settings.api_key or not settings.api_secret:
        raise SettingsError("no API key and secret (set UROK_API_KEY / UROK_API_SECRET or pass --dev)")
    tokens = TokenService(settings.api_key, settings.api_secret, max_ttl_s=settings.token_max_ttl_s)
    ttl = args.ttl or settings.token_ttl_s
    if not 60 <= ttl <= settings.token_max_ttl_s:
        raise SettingsError(f"--ttl: between 60 and {settings.token_max_ttl_s} seconds (token_max_ttl_s)")
    if args.admin:
        print(tokens.mint_admin(subject=args.identity or "admin", ttl_s=ttl))
        return 0
    if not args.room or not args.identity:
        raise SettingsError("an access token needs --room and --identity (or pass --admin)")
    token = tokens.mint_access(
        identity=args.identity, name=args.name or args.identity, room_id=args.room, role=Role(args.role),
        registered=args.registered, ttl_s=ttl, family_name=args.family_name or "",
        given_name=args.given_name or "",
    )
    if args.url:
        print(f"{settings.base_url}/join/{args.room}?token={token}")
    else:
        print(token)
    return 0


def _settings(args: argparse.Namespace) -> int:
    for name, type_, default in describe():
        print(f"{name:24} UROK_{name.upper():26} {type_:16} default {default}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    """Bring the database the settings name to this version's schema (what `serve` does on start
    unless migrate_on_start = false, when it refuses an old schema and names this command)."""
    from signaling.store.factory import database_url
    from signaling.store.sql_store import upgrade_database

    settings = _load(args, {})
    url = database_url(settings)
    if url is None:
        print("urok: store = memory: there is no database to upgrade")
        return 0
    before, after = asyncio.run(upgrade_database(url))
    where = f"the SQLite file {settings.data_dir}/urok.sqlite3" if settings.store == "sqlite" else "PostgreSQL"
    if before == after:
        print(f"urok: {where}: the schema is current (revision {after})")
    else:
        print(f"urok: {where}: upgraded the schema from revision {before or 'none (empty)'} to {after}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="urok", description="urok: a video-lesson server (WebRTC SFU)")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config file (also UROK_CONFIG)")
    common.add_argument("--dev", action="store_true", help="dev mode: key devkey, secret devsecret")

    s = sub.add_parser("serve", parents=[common], help="run the server")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="HTTP/WebSocket port (default 8080)")
    s.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING, ERROR")
    s.add_argument("--workers", type=int, help="worker processes (default: 1 without redis_url, the number of "
                                               "cores with it; more than 1 needs redis_url)")
    s.set_defaults(func=_serve)

    t = sub.add_parser("token", parents=[common], help="mint an access token or an admin token")
    t.add_argument("--admin", action="store_true", help="an admin token for the REST API")
    t.add_argument("--room", help="room id")
    t.add_argument("--identity", help="the user's stable id (sub)")
    t.add_argument("--name", help="display name")
    t.add_argument("--family-name", dest="family_name")
    t.add_argument("--given-name", dest="given_name")
    t.add_argument("--role", default="participant", choices=Role.values())
    t.add_argument("--registered", action="store_true", help="a verified school account (not a guest)")
    t.add_argument("--ttl", type=int, help="seconds until it expires")
    t.add_argument("--url", action="store_true", help="print a join link instead of the bare token")
    t.set_defaults(func=_token)

    st = sub.add_parser("settings", help="list every setting with its environment variable")
    st.set_defaults(func=_settings)

    db = sub.add_parser("db", help="the database (store = sqlite or postgres)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", parents=[common], help="create or upgrade the schema to this version's")
    up.set_defaults(func=_db_upgrade)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SettingsError as e:
        print(f"urok: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
