"""The workers and redis_url settings: one process without Redis (`make run`), several only with
Redis and a shared store, the worker count automatic by default."""

from __future__ import annotations

import os

import pytest

from signaling.cluster.supervisor import settings_from_env, settings_to_env
from signaling.settings import Settings, SettingsError


def test_default_is_one_process_without_redis() -> None:
    s = Settings()
    assert s.redis_url == "" and s.worker_count == 1


def test_redis_makes_a_worker_per_core_by_default() -> None:
    s = Settings(redis_url="redis://127.0.0.1:6379/0")
    assert s.worker_count == (os.cpu_count() or 1)
    assert Settings(redis_url="redis://127.0.0.1:6379/0", workers=3).worker_count == 3


@pytest.mark.parametrize(("values", "says"), [
    ({"workers": 2}, "needs redis_url"),
    ({"workers": -1}, "workers"),
    ({"redis_url": "http://x"}, "redis_url"),
    ({"redis_url": "redis://h:6379/0", "store": "memory"}, "store they share"),
    ({"redis_url": "redis://h:6379/0", "workers": 4, "port": 65533}, "private ports"),
    ({"span_after": -1}, "span_after"),
])
def test_combinations_that_cannot_serve_are_refused(values: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings(**values)  # type: ignore[arg-type]


def test_settings_travel_to_the_workers() -> None:
    s = Settings(redis_url="redis://127.0.0.1:6379/0", workers=2, ice_servers=("stun:stun.example.org:3478",),
                 dev=True, span_after=7)
    assert settings_from_env(settings_to_env(s)) == s


def test_where_the_other_workers_reach_this_one() -> None:
    from signaling.cluster.setup import worker_config

    redis = "redis://127.0.0.1:6379/0"
    assert worker_config(Settings(redis_url=redis, port=9000), 2, "n").url == "http://127.0.0.1:9003"
    assert worker_config(Settings(redis_url=redis, host="0.0.0.0"), 0, "n").private_host == "127.0.0.1"
    assert worker_config(Settings(redis_url=redis, host="10.0.0.5"), 0, "n").private_host == "10.0.0.5"
    on_lan = Settings(redis_url=redis, host="0.0.0.0", cluster_address="10.0.0.7")
    assert worker_config(on_lan, 1, "n").url == "http://10.0.0.7:8082"
