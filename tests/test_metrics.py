"""/metrics output, read back with prometheus_client's own parser."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vzdivert.webui.metrics import render_metrics

STATE = {
    "ts": 1000.0, "seq": 7, "grid_w": -480.5, "target_w": -15.0, "duty": 0.42,
    "fraction": 0.4, "power_w": 640.0, "energy_wh": 1234.5, "energy_today_wh": 12.0,
    "stale": False, "stale_reason": "", "saturated": True, "error": "",
    "reading_age_s": 0.8,
    "loop": {"samples": 900, "missed": 3, "dropped_old": 2, "latency_p50_ms": 1.5,
             "latency_p99_ms": 4.0, "latency_max_ms": 9.0, "jitter_ms": 8.0,
             "step_p50_us": 40.0, "step_max_us": 120.0},
}
HEALTH = {
    "ts": 1000.0,
    "processes": {"rtworker": {"alive": True, "pid": 10, "restarts": 2, "last_exit": ""},
                  "ingest": {"alive": False, "pid": None, "restarts": 5, "last_exit": "x"},
                  "webui": {"alive": True, "pid": 12, "restarts": 0, "last_exit": ""}},
    "settings": {"target_w": -15.0, "deadband_w": 5.0, "curve": "pfc", "rating_w": 2000.0,
                 "curve_points": [[0.0, 0.0], [1.0, 1.0]]},
}
INGEST = {"requests": 100, "lines": 120, "points": 98, "unmatched": 1,
          "rejects": {"parse": 3, "auth": 1, "old": 4},
          "channels": {"mqtt#0": {"source": "mqtt", "age_s": 0.4, "errors": 3,
                                  "error": "lost broker", "rejects": {"bad_json": 2}},
                       "grid": {"age_s": None, "rejects": {}, "error": ""}},
          "last_reading_age_s": 0.7}


def feed(state: dict | None = None, health: dict | None = None,
         ingest_stats: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(state=state or {}, health=health or {},
                           ingest_stats=ingest_stats or {})


def scrape(f: Any, now: float = 1002.5) -> dict[str, Any]:
    body, content_type = render_metrics(f, now=now)
    assert content_type.startswith("text/plain")
    assert isinstance(body, bytes)
    return {fam.name: fam for fam in text_string_to_metric_families(body.decode())}


def value(fams: dict, name: str, sample: str | None = None, **labels: str) -> float:
    fam = fams[name]
    sample = sample or name
    matches = [s.value for s in fam.samples if s.name == sample and s.labels == labels]
    assert len(matches) == 1, f"{sample}{labels}: {fam.samples}"
    return matches[0]


@pytest.fixture(scope="module")
def fams() -> dict[str, Any]:
    return scrape(feed(STATE, HEALTH, INGEST))


def test_controller_gauges(fams: dict) -> None:
    assert value(fams, "vzdivert_grid_power_watts") == -480.5
    assert value(fams, "vzdivert_diverted_power_watts") == 640.0
    assert value(fams, "vzdivert_target_power_watts") == -15.0
    assert value(fams, "vzdivert_duty_ratio") == 0.42
    assert value(fams, "vzdivert_stale") == 0.0
    assert value(fams, "vzdivert_saturated") == 1.0
    assert value(fams, "vzdivert_reading_age_seconds") == 0.8
    assert value(fams, "vzdivert_state_age_seconds") == 2.5
    for name in ("vzdivert_grid_power_watts", "vzdivert_duty_ratio", "vzdivert_stale"):
        assert fams[name].type == "gauge"


def test_energy_is_a_counter(fams: dict) -> None:
    fam = fams["vzdivert_diverted_energy_wh"]
    assert fam.type == "counter"
    assert value(fams, "vzdivert_diverted_energy_wh", "vzdivert_diverted_energy_wh_total") \
        == 1234.5


def test_processes_alive_and_restarts_by_process(fams: dict) -> None:
    assert fams["vzdivert_process_restarts"].type == "counter"
    restarts = {s.labels["process"]: s.value for s in fams["vzdivert_process_restarts"].samples
                if s.name == "vzdivert_process_restarts_total"}
    assert restarts == {"rtworker": 2.0, "ingest": 5.0, "webui": 0.0}
    up = {s.labels["process"]: s.value for s in fams["vzdivert_process_up"].samples}
    assert up == {"rtworker": 1.0, "ingest": 0.0, "webui": 1.0}


def test_numeric_settings_only(fams: dict) -> None:
    settings = {s.labels["name"]: s.value for s in fams["vzdivert_setting"].samples}
    assert settings == {"target_w": -15.0, "deadband_w": 5.0, "rating_w": 2000.0}


def test_ingest_rejects_by_reason(fams: dict) -> None:
    fam = fams["vzdivert_ingest_rejects"]
    assert fam.type == "counter"
    rejects = {s.labels["reason"]: s.value for s in fam.samples
               if s.name == "vzdivert_ingest_rejects_total"}
    assert rejects == {"parse": 3.0, "auth": 1.0, "old": 4.0}
    assert value(fams, "vzdivert_ingest_requests", "vzdivert_ingest_requests_total") == 100
    assert value(fams, "vzdivert_ingest_points", "vzdivert_ingest_points_total") == 98
    assert value(fams, "vzdivert_ingest_last_reading_age_seconds") == 0.7


def test_ingest_channels(fams: dict) -> None:
    mqtt, grid = {"channel": "mqtt#0", "source": "mqtt"}, {"channel": "grid", "source": "influx"}
    assert value(fams, "vzdivert_ingest_channel_age_seconds", **mqtt) == 0.4
    assert not [s for s in fams["vzdivert_ingest_channel_age_seconds"].samples
                if s.labels == grid]  # no value yet: no sample
    assert value(fams, "vzdivert_ingest_channel_down", **mqtt) == 1.0
    assert value(fams, "vzdivert_ingest_channel_down", **grid) == 0.0
    assert value(fams, "vzdivert_ingest_channel_errors",
                 "vzdivert_ingest_channel_errors_total", **mqtt) == 3.0
    assert value(fams, "vzdivert_ingest_channel_rejects", "vzdivert_ingest_channel_rejects_total",
                 reason="bad_json", **mqtt) == 2.0


def test_loop_latency_quantiles_and_counters(fams: dict) -> None:
    fam = fams["vzdivert_loop_latency_recent_seconds"]
    got = {s.labels["quantile"]: s.value for s in fam.samples}
    assert got == pytest.approx({"0.5": 0.0015, "0.99": 0.004, "1": 0.009})
    assert value(fams, "vzdivert_loop_samples", "vzdivert_loop_samples_total") == 900
    assert value(fams, "vzdivert_loop_deadline_missed",
                 "vzdivert_loop_deadline_missed_total") == 3
    assert value(fams, "vzdivert_loop_step_max_seconds") == pytest.approx(120e-6)
    assert "vzdivert_loop_latency_seconds" not in fams  # no buckets published


def test_loop_latency_histogram_when_the_worker_publishes_buckets() -> None:
    loop = {**STATE["loop"], "latency_hist": {"le_ms": [1.0, 5.0, 10.0],
                                              "counts": [4, 10, 1, 2], "sum_s": 0.25}}
    fams = scrape(feed({**STATE, "loop": loop}))
    fam = fams["vzdivert_loop_latency_seconds"]
    assert fam.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in fam.samples
               if s.name == "vzdivert_loop_latency_seconds_bucket"}
    assert buckets == {"0.001": 4, "0.005": 14, "0.01": 15, "+Inf": 17}
    assert value(fams, "vzdivert_loop_latency_seconds", "vzdivert_loop_latency_seconds_count") \
        == 17
    assert value(fams, "vzdivert_loop_latency_seconds", "vzdivert_loop_latency_seconds_sum") \
        == 0.25


def test_stale_state_before_the_first_reading() -> None:
    fams = scrape(feed({**STATE, "grid_w": None, "stale": True, "loop": {"samples": 0,
                                                                          "missed": 0,
                                                                          "dropped_old": 0}}))
    assert "vzdivert_grid_power_watts" not in fams  # unknown, not 0
    assert value(fams, "vzdivert_stale") == 1.0
    assert "vzdivert_loop_latency_recent_seconds" not in fams


def test_empty_feed_is_a_valid_empty_scrape() -> None:
    body, _ = render_metrics(feed())
    assert list(text_string_to_metric_families(body.decode())) == []


def test_non_finite_values_are_left_out() -> None:
    fams = scrape(feed({**STATE, "grid_w": math.nan, "power_w": math.inf}))
    assert "vzdivert_grid_power_watts" not in fams
    assert "vzdivert_diverted_power_watts" not in fams
    assert value(fams, "vzdivert_duty_ratio") == 0.42


# -- the real system -----------------------------------------------------------------------
@pytest.fixture
def system(tmp_path):
    from syshelp import System

    sys_ = System(tmp_path, 'driver = "sim"', "\n[rtworker]\npriority = 0\nlock_memory = false\n")
    try:
        yield sys_.start(60)
    finally:
        sys_.kill_all()


def test_metrics_endpoint_of_the_running_system(system) -> None:
    import http.client

    from syshelp import wait_for

    def scrape_http() -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", system.ui_port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body[:200]
            assert resp.getheader("Content-Type").startswith("text/plain")
        finally:
            conn.close()
        return {fam.name: fam for fam in text_string_to_metric_families(body.decode())}

    def grid_seen() -> dict[str, Any] | None:
        assert system.post(-1234.0) == 204
        fams = scrape_http()
        grid = fams.get("vzdivert_grid_power_watts")
        points = fams.get("vzdivert_ingest_points")  # ingest_stats come once a second
        if grid and grid.samples[0].value == -1234.0 and points and points.samples[0].value:
            return fams
        return None

    fams = wait_for(grid_seen, 30, interval_s=0.3,
                    what="the posted grid power and ingest counts in /metrics")

    def histogram_counts() -> dict[str, Any] | None:  # the worker's summary: once a second
        assert system.post(-1234.0) == 204
        fams = scrape_http()
        hist = fams.get("vzdivert_loop_latency_seconds")
        return fams if hist and value(fams, "vzdivert_loop_latency_seconds",
                                      "vzdivert_loop_latency_seconds_count") >= 2 else None

    fams = wait_for(histogram_counts, 30, interval_s=0.3,
                    what="the loop latency histogram counting readings")
    hist = fams["vzdivert_loop_latency_seconds"]
    assert hist.type == "histogram"  # issue 7: a loop latency histogram, not only quantiles
    buckets = [(s.labels["le"], s.value) for s in hist.samples
               if s.name == "vzdivert_loop_latency_seconds_bucket"]
    assert buckets[-1][0] == "+Inf"
    assert buckets[-1][1] == value(fams, "vzdivert_loop_latency_seconds",
                                   "vzdivert_loop_latency_seconds_count")
    assert [c for _, c in buckets] == sorted(c for _, c in buckets)  # cumulative
    assert 0 < value(fams, "vzdivert_loop_latency_seconds",
                     "vzdivert_loop_latency_seconds_sum") < buckets[-1][1]  # < 1 s each
    assert "vzdivert_loop_latency_recent_seconds" in fams  # the ring's quantiles stay
    up = {s.labels["process"]: s.value for s in fams["vzdivert_process_up"].samples}
    assert up["rtworker"] == 1.0 and up["ingest"] == 1.0 and up["webui"] == 1.0
    assert fams["vzdivert_diverted_energy_wh"].type == "counter"
    assert value(fams, "vzdivert_stale") == 0.0


def test_loop_stats_buckets_grow_with_every_reading() -> None:
    """The worker's cumulative buckets (a ring would forget, and a Prometheus histogram's
    counts must only grow): a reading lands in the first bucket whose bound it does not
    exceed, and readings past the ring still count."""
    from vzdivert.rtworker.stats import HIST_LE_MS, RING, LoopStats

    stats = LoopStats()
    for latency_ms in (0.1, 0.2, 0.3, 3.0, 5000.0):
        stats.record(100.0, 100.0 + latency_ms / 1000.0, 1000)
    hist = stats.summary(0.0)["latency_hist"]
    assert hist["le_ms"] == list(HIST_LE_MS)
    assert hist["counts"][:2] == [2, 1] and hist["counts"][HIST_LE_MS.index(5.0)] == 1
    assert hist["counts"][-1] == 1 and sum(hist["counts"]) == 5  # 5 s: above every bound
    assert hist["sum_s"] == pytest.approx(5.0036)
    for _ in range(RING + 10):
        stats.record(100.0, 100.0005, 1000)
    assert sum(stats.summary(2.0)["latency_hist"]["counts"]) == RING + 15
