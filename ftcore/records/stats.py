"""Honest comparisons: seed-paired differences with 95% intervals, and a verdict that may say
"we cannot tell".

A figure compares arms run with the same seeds (same training subset, data order and head init per
seed), so the fair effect of arm A over arm B is the mean of the per-seed differences A − B, with a
Student-t interval. A claim ("A beats B") then gets one of three verdicts:

* ``agrees``: the interval lies entirely on the side the claim predicts;
* ``differs``: it lies entirely on the other side (so a "differs" never contains zero);
* ``undetectable``: it contains zero: no difference detectable at this n.

Failure rates (how many seeds collapsed or diverged) get a Wilson interval, which stays inside
[0, 1] and is sensible at 0/n and n/n. Torch-free and scipy-free (numpy only).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Two-sided 95% critical values of Student's t by degrees of freedom (standard tables).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
Z975 = 1.959964

VERDICTS = ("agrees", "differs", "undetectable")
VERDICT_TEXT = {
    "zh": {"agrees": "与教材一致", "differs": "与教材不同", "undetectable": "在此样本量下无法分辨"},
    "en": {"agrees": "agrees", "differs": "differs", "undetectable": "no difference detectable at this n"},
}


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (95% two-sided)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 2 values (df ≥ 1), got df={df}")
    if df in _T975:
        return _T975[df]
    if df > 120:
        return Z975
    lo = max(k for k in _T975 if k < df)
    hi = min(k for k in _T975 if k > df)
    # interpolate in 1/df, which is close to linear for the tail of the table
    w = (1 / df - 1 / hi) / (1 / lo - 1 / hi)
    return _T975[hi] + w * (_T975[lo] - _T975[hi])


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval. ``kind`` names the interval for captions."""

    estimate: float
    low: float
    high: float
    n: int
    kind: str

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def format(self, digits: int = 3, *, signed: bool = False) -> str:
        f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
        return f"{f.format(self.estimate)} [{f.format(self.low)}, {f.format(self.high)}] (n={self.n})"

    def __str__(self) -> str:
        return self.format()


def mean_interval(values) -> Interval:
    """Mean with a 95% Student-t interval (a single value has an unbounded interval)."""
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "95% t interval of the mean")
    m = float(x.mean())
    if n == 1:
        return Interval(m, -math.inf, math.inf, 1, "95% t interval of the mean")
    half = t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(m, m - half, m + half, n, "95% t interval of the mean")


def paired_difference(a: Mapping, b: Mapping) -> Interval:
    """Mean of the per-seed differences ``a[seed] - b[seed]`` over the seeds both arms ran, with a
    95% t interval. Seeds present in only one arm are left out (that is what pairing means)."""
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds if np.isfinite(a[s]) and np.isfinite(b[s])]
    iv = mean_interval(d)
    return Interval(iv.estimate, iv.low, iv.high, iv.n, "95% t interval of the seed-paired mean difference")


def wilson(k: int, n: int) -> Interval:
    """A proportion k/n with its 95% Wilson score interval."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0, "95% Wilson interval")
    p = k / n
    z2 = Z975 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the edges (no rounding residue)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, low, high, n, "95% Wilson interval")


def verdict(effect: Interval, expected: int) -> str:
    """The verdict on a claim that predicts the sign ``expected`` (+1: A > B, −1: A < B) of an
    effect A − B: ``agrees``, ``differs`` or ``undetectable`` (the interval contains zero)."""
    if expected not in (1, -1):
        raise ValueError(f"expected must be +1 or -1 (the sign the claim predicts), got {expected!r}")
    if not (np.isfinite(effect.low) and np.isfinite(effect.high)):
        return "undetectable"
    if effect.low > 0:
        return "agrees" if expected > 0 else "differs"
    if effect.high < 0:
        return "agrees" if expected < 0 else "differs"
    return "undetectable"


def rate_verdict(a: Interval, b: Interval, expected: int) -> str:
    """Verdict on "rate A < rate B" (expected −1) or "A > B" (+1) from two Wilson intervals: a
    side is taken only when the intervals do not overlap (conservative)."""
    if a.high < b.low:
        return "agrees" if expected < 0 else "differs"
    if a.low > b.high:
        return "agrees" if expected > 0 else "differs"
    return "undetectable"


__all__ = ["Interval", "VERDICTS", "VERDICT_TEXT", "mean_interval", "paired_difference",
           "rate_verdict", "t975", "verdict", "wilson"]
