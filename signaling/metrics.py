"""Prometheus metrics, one registry per app (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _CallbackCollector(Collector):
    """Reads counts at scrape time (rooms, participants, and the media plane's plain counters)."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ws_messages = Counter(
            "urok_ws_messages_total", "WebSocket requests received, by type", ["type"], registry=self.registry
        )
        # counted once the frame's outcome is known (the reply is queued): what a handler really
        # served, by request type and outcome ("ok" or the error code); <malformed>, <unknown> and
        # <rate_limited> frames never reach a handler but are counted here too, so the sum over
        # every series is the number of text frames read (issue 20: a fuzz test counts these)
        self.ws_handled = Counter(
            "urok_ws_handled_total", "WebSocket requests handled, by type and outcome (ok or error code)",
            ["type", "outcome"], registry=self.registry,
        )
        self.errors = Counter(
            "urok_errors_total", "Errors returned to clients, by code", ["code"], registry=self.registry
        )
        self.ws_connections = Counter(
            "urok_ws_connections_total", "WebSocket connections accepted", registry=self.registry
        )
        self.ws_refused = Counter(
            "urok_ws_refused_total", "WebSocket connections refused, by close code", ["code"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "urok_http_requests_total", "REST requests, by route and status", ["route", "status"],
            registry=self.registry,
        )
        self.up = Gauge("urok_up", "1 while the server runs", registry=self.registry)
        self.up.set(1)

    def add_gauges(self, read: Callable[[], Mapping[str, float]], prefix: str, help_: str) -> None:
        """Gauges read at scrape time, e.g. {"rooms": 3, "participants": 40}."""

        def collect() -> Iterable[Metric]:
            for name, value in read().items():
                g = GaugeMetricFamily(f"{prefix}_{name}", f"{help_}: {name}")
                g.add_metric([], value)
                yield g

        self.registry.register(_CallbackCollector(collect))

    def add_counters(self, read: Callable[[], Mapping[str, Mapping[str, float]]], prefix: str) -> None:
        """Labelled counters read at scrape time: {"rtp_dropped": {"reason=parse": 3}}."""

        def collect() -> Iterable[Metric]:
            for name, series in read().items():
                labels = sorted({k.split("=", 1)[0] for k in series if "=" in k})
                c = CounterMetricFamily(f"{prefix}_{name}", f"{name}", labels=labels)
                for key, value in series.items():
                    c.add_metric([key.split("=", 1)[1]] if "=" in key else [], value)
                yield c

        self.registry.register(_CallbackCollector(collect))

    def render(self) -> bytes:
        return generate_latest(self.registry)
