"""Seed-paired intervals and verdicts: the statistics every figure's claim is judged by."""
from __future__ import annotations

import math

import pytest

from ftcore.records.stats import (Interval, mean_interval, paired_difference, rate_verdict, t975, verdict,
                                  wilson)


def test_t_quantiles_match_the_table_and_tend_to_normal():
    assert t975(1) == pytest.approx(12.706)
    assert t975(4) == pytest.approx(2.776)
    assert 2.042 > t975(35) > 2.021  # interpolated between df 30 and 40
    assert t975(10_000) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError, match="at least 2 values"):
        t975(0)


def test_mean_interval_by_hand():
    iv = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: half width t(2) / sqrt(3)
    assert iv.estimate == 2.0 and iv.n == 3
    assert iv.high - 2.0 == pytest.approx(4.303 / math.sqrt(3))
    one = mean_interval([0.7])
    assert one.low == -math.inf and one.high == math.inf  # one seed cannot bound anything


def test_paired_difference_pairs_by_seed_and_drops_unpaired():
    a = {0: 0.80, 1: 0.82, 2: 0.79, 3: 0.90}
    b = {0: 0.70, 1: 0.71, 2: 0.70}  # seed 3 has no partner
    d = paired_difference(a, b)
    assert d.n == 3
    assert d.estimate == pytest.approx((0.10 + 0.11 + 0.09) / 3)
    assert d.low > 0  # consistent gain: pairing removes the between-seed spread
    assert "paired" in d.kind


def test_pairing_is_what_makes_a_consistent_small_gain_visible():
    base = {s: v for s, v in enumerate([0.60, 0.75, 0.68, 0.82, 0.71])}  # seeds differ a lot
    better = {s: v + 0.01 for s, v in base.items()}
    assert verdict(paired_difference(better, base), +1) == "agrees"
    unpaired = mean_interval(better.values()).low - mean_interval(base.values()).high
    assert unpaired < 0  # unpaired intervals overlap: alone they could not tell


def test_verdicts_never_say_differs_when_the_interval_contains_zero():
    assert verdict(Interval(0.05, 0.01, 0.09, 5, "k"), +1) == "agrees"
    assert verdict(Interval(0.05, 0.01, 0.09, 5, "k"), -1) == "differs"
    assert verdict(Interval(-0.05, -0.09, -0.01, 5, "k"), -1) == "agrees"
    assert verdict(Interval(0.02, -0.01, 0.05, 5, "k"), +1) == "undetectable"
    assert verdict(Interval(0.02, -math.inf, math.inf, 1, "k"), +1) == "undetectable"
    with pytest.raises(ValueError):
        verdict(Interval(0, 0, 0, 1, "k"), 0)


def test_wilson_interval_stays_in_bounds_and_is_sensible_at_the_edges():
    zero = wilson(0, 10)
    assert zero.low == 0 and 0.2 < zero.high < 0.35  # 0/10 does not prove a rate of 0
    full = wilson(10, 10)
    assert full.high == 1 and 0.65 < full.low < 0.8
    half = wilson(5, 10)
    assert half.low == pytest.approx(1 - half.high)
    assert rate_verdict(wilson(0, 10), wilson(10, 10), -1) == "agrees"
    assert rate_verdict(wilson(3, 10), wilson(5, 10), -1) == "undetectable"


def test_an_interval_from_one_value_prints_no_infinite_bounds():
    """Quick mode's one seed: the verdict line shows the estimate and n, never "[-inf, +inf]"."""
    one = mean_interval([0.8])
    assert one.format(signed=True) == "+0.800 (n=1)" and "inf" not in str(one)
    assert mean_interval([0.8, 0.82]).format().startswith("0.810 [")
