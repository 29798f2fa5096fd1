"""Which points become the grid reading, and the freshness rules (pure, with a fake clock)."""

from __future__ import annotations

import pytest

from vzdivert.config import validate
from vzdivert.ingest.channels import Channels, ChannelSpec, specs_from_config
from vzdivert.ingest.lineproto import parse
from vzdivert.ingest.stats import IngestStats

NOW = 1_795_475_164.0  # a fixed "arrival" time


def ms(t: float) -> int:
    return int(t * 1000)


def accept(channels: Channels, body: str, stats: IngestStats | None = None) -> list[dict]:
    points, errors = parse(body, "ms")
    assert not errors
    return channels.accept(points, stats or IngestStats())


def single(**kw) -> Channels:
    return Channels([ChannelSpec("grid", "leistung", "value", **kw)], stale_after_s=10,
                    clock=lambda: NOW)


def test_newest_point_of_a_batch_wins_whatever_the_order() -> None:
    stats = IngestStats()
    body = (f"leistung value=-100 {ms(NOW - 2)}\n"
            f"leistung value=-300 {ms(NOW - 0.5)}\n"
            f"leistung value=-200 {ms(NOW - 1)}\n")
    [r] = accept(single(), body, stats)
    assert r["grid_w"] == -300 and r["ts"] == pytest.approx(NOW - 0.5) and r["rx"] == NOW
    assert stats.counts["superseded"] == 2


def test_replayed_old_batch_never_reaches_the_controller() -> None:
    stats = IngestStats()
    lines = "".join(f"leistung value={-i} {ms(NOW - 7200 + i)}\n" for i in range(5000))
    assert accept(single(), lines, stats) == []
    assert stats.rejects["stale"] == 1


def test_wrong_clock_falls_back_to_arrival_time() -> None:
    stats = IngestStats()
    [r] = accept(single(), f"leistung value=-50 {ms(NOW + 7200)}\n", stats)
    assert r["ts"] == NOW and stats.counts["clock_fallback"] == 1
    [r] = accept(single(), "leistung value=-60 1000\n", stats)  # 1970: clock never set
    assert r["ts"] == NOW and r["grid_w"] == -60


def test_no_timestamp_uses_arrival_time() -> None:
    [r] = accept(single(), "leistung value=-70\n")
    assert r["ts"] == NOW


def test_tag_match_and_unmatched_counted() -> None:
    stats = IngestStats()
    ch = single(tags=(("uuid", "abc"),))
    body = (f"leistung,uuid=other value=-1 {ms(NOW)}\n"
            f"temperatur value=20 {ms(NOW)}\n"
            f"leistung,uuid=abc value=-500 {ms(NOW)}\n")
    [r] = accept(ch, body, stats)
    assert r["grid_w"] == -500
    assert stats.counts["unmatched"] == 2


def test_non_numeric_field_rejected_with_reason() -> None:
    stats = IngestStats()
    assert accept(single(), f'leistung value="high" {ms(NOW)}\n', stats) == []
    assert stats.rejects["not_numeric"] == 1


def test_import_minus_export_needs_both_fresh() -> None:
    cfg = validate({"ingest": {"channels": [
        {"name": "import", "measurement": "bezug", "scale": 1},
        {"name": "export", "measurement": "einspeisung", "scale": -1}]}})
    ch = Channels(specs_from_config(cfg), stale_after_s=10, clock=lambda: NOW)
    assert accept(ch, f"bezug value=0 {ms(NOW)}\n") == []  # export not known yet
    [r] = accept(ch, f"einspeisung value=700 {ms(NOW - 1)}\n")
    assert r["grid_w"] == -700 and r["ts"] == pytest.approx(NOW - 1)


def test_three_phases_summed() -> None:
    specs = [ChannelSpec(f"L{i}", "power", "value", (("phase", f"L{i}"),)) for i in (1, 2, 3)]
    ch = Channels(specs, stale_after_s=10, clock=lambda: NOW)
    body = "".join(f"power,phase=L{i} value={-100 * i} {ms(NOW)}\n" for i in (1, 2, 3))
    [r] = accept(ch, body)
    assert r["grid_w"] == -600


def test_default_spec_from_config() -> None:
    cfg = validate({"ingest": {"measurement": "m", "field": "f", "tags": {"uuid": "u"}}})
    assert specs_from_config(cfg) == [ChannelSpec("grid", "m", "f", (("uuid", "u"),))]


def test_one_future_stamp_never_holds_back_later_readings() -> None:
    """Issue 16 item 5: a point stamped 55 s ahead (inside clock_skew_s) used to reach the
    worker with that stamp, so it dropped every real reading as out of order for ~45 s.
    Readings now carry at most their arrival time: their order is the arrival order."""
    now = [NOW]
    channels = Channels([ChannelSpec("grid", "leistung", "value")], stale_after_s=10,
                        clock_skew_s=60, clock=lambda: now[0])
    stats = IngestStats()
    [ahead] = accept(channels, f"leistung value=-900 {ms(NOW + 55)}\n", stats)
    assert ahead["ts"] == NOW and stats.counts["clock_ahead"] == 1
    assert stats.counts["clock_fallback"] == 0  # inside the skew: no clock warning
    last_ts = ahead["ts"]
    for i in range(1, 4):
        now[0] = NOW + i
        [r] = accept(channels, f"leistung value={-100 * i} {ms(NOW + i - 0.2)}\n", stats)
        assert r["ts"] > last_ts and r["grid_w"] == -100 * i  # what the worker requires
        last_ts = r["ts"]
