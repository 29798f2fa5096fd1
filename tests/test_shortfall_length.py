"""The learned time scale of a relay's shortfalls: a censored exponential mean with a
prior weighing as some episodes of its own mean."""

from __future__ import annotations

import pytest

from vzdivert.rtworker.shortfall_length import ShortfallLength


def test_the_running_shortfall_counts_its_time_but_not_as_an_ended_one() -> None:
    s = ShortfallLength(prior_s=60.0, prior_weight=4.0, memory=8.0)
    assert s.mean_s == s.expected_s(0.0) == pytest.approx(60.0)
    # exponential lengths, one still running after 120 s: (4 x 60 + 120) / 4 episodes ended
    assert s.expected_s(120.0) == pytest.approx(90.0)
    s.end(300.0)  # the prior fades by 1/8: (7/8 x 240 + 300) / (7/8 x 4 + 1)
    assert s.mean_s == pytest.approx(510.0 / 4.5)
    assert s.expected_s(45.0) == pytest.approx(555.0 / 4.5)


def test_a_few_long_episodes_outweigh_the_prior() -> None:
    """Slow weather shows only a few shortfalls an hour: three of 10 min must move the mean
    most of the way (a running mean over 8 from the prior stays near 240 s)."""
    s = ShortfallLength(prior_s=60.0, prior_weight=4.0, memory=8.0)
    for _ in range(3):
        s.end(600.0)
    assert s.mean_s > 300.0
    for _ in range(40):  # and the weather changing: the old episodes fade
        s.end(20.0)
    assert s.mean_s < 25.0
