"""/metrics across workers: counters and counts add up, the up flag and the worst lag are the
largest, creation times the earliest; labels are kept apart; the result parses again."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from signaling.cluster.forward import merge_metrics
from signaling.metrics import Metrics


def _worker(rooms: float, lag: float, refused: int) -> str:
    m = Metrics()
    m.add_gauges(lambda: {"rooms": rooms, "loop_lag_max_s": lag}, "urok", "x")
    for _ in range(refused):
        m.ws_refused.labels(code="4401").inc()
    m.ws_refused.labels(code="1013").inc()
    return m.render().decode()


def test_samples_combine_by_kind() -> None:
    text = merge_metrics([_worker(2, 0.05, 1), _worker(3, 0.25, 2)])
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("urok_rooms", ())] == 5
    assert samples[("urok_loop_lag_max_s", ())] == 0.25
    assert samples[("urok_up", ())] == 1
    assert samples[("urok_ws_refused_total", (("code", "4401"),))] == 3
    assert samples[("urok_ws_refused_total", (("code", "1013"),))] == 2


def test_one_worker_is_itself() -> None:
    text = _worker(1, 0.01, 0)
    merged = merge_metrics([text])
    assert ({(s.name, s.value) for f in text_string_to_metric_families(merged) for s in f.samples}
            == {(s.name, s.value) for f in text_string_to_metric_families(text) for s in f.samples})
