"""Honest comparisons: seed-paired differences with 95% intervals, and a verdict that may say
"we cannot tell".

A figure compares arms run with the same seeds (same training subset, data order and head init per
seed), so the fair effect of arm A over arm B is the mean of the per-seed differences A − B, with a
Student-t interval; where per-example test predictions are stored, the interval also counts the
test items' sampling (:func:`paired_items_test`). A claim ("A beats B") then gets one of four
verdicts, after Holm's correction across the claims of one figure (:func:`holm`, :func:`resolve`):

* ``agrees``: the difference is significant, on the side the claim predicts;
* ``differs``: significant, on the other side (so a "differs" never contains zero);
* ``equivalent``: not significant, and an equivalence test (TOST) puts it within ±margin, the
  figure's stated smallest difference that matters;
* ``undetectable``: neither: we cannot tell at this n.

Failure rates (how many seeds collapsed or diverged) get a Wilson interval, which stays inside
[0, 1] and is sensible at 0/n and n/n; two arms' rates over the same seeds are compared paired
(exact McNemar test, Newcombe's interval of the difference). Torch-free and scipy-free.
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

VERDICTS = ("agrees", "differs", "equivalent", "undetectable")
VERDICT_TEXT = {
    "zh": {"agrees": "与教材一致", "differs": "与教材不同", "equivalent": "在 ±{margin} 内等效",
           "undetectable": "在此样本量下无法判断"},
    "en": {"agrees": "agrees", "differs": "differs", "equivalent": "equivalent within ±{margin}",
           "undetectable": "cannot tell at this n"},
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

        def g(x: float) -> str:  # a value that rounds to zero prints as 0, never -0.000
            text = f.format(x)
            return f.format(0.0) if float(text) == 0 else text
        if not (math.isfinite(self.low) and math.isfinite(self.high)):  # one value (n=1): no interval to print
            return f"{g(self.estimate)} (n={self.n})"
        return f"{g(self.estimate)} [{g(self.low)}, {g(self.high)}] (n={self.n})"

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


# ------------------------------------------------------------------------------------ distributions
# numpy-free special functions (math only): Student's t through the regularized incomplete beta
# function (continued fraction, Lentz's method), the binomial by exact sums.
def _betacf(a: float, b: float, x: float) -> float:
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (one-sided upper tail)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def binom_cdf(k: int, n: int, p: float = 0.5) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p), summed exactly."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(0, min(k, n) + 1))


# ------------------------------------------------------------------------------------ multiplicity
def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at the level they are compared to).

    The i-th smallest p is multiplied by (m − i + 1), made non-decreasing, capped at 1."""
    p = [float(x) for x in pvalues]
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [1.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


# ------------------------------------------------------------------------------------ paired effects
@dataclass(frozen=True)
class Test:
    """One claim's effect with what its verdict rests on: the 95% interval of the effect, the
    two-sided p of "no effect" and the TOST p of "equivalent within ±margin" (before Holm)."""

    effect: Interval
    p: float
    p_equivalent: float
    margin: float
    method: str


def _t_test(d: float, se: float, df: float, margin: float) -> tuple[float, float]:
    """Two-sided p of d = 0 and the TOST p of |d| < margin, from an estimate and its standard error."""
    if not (se > 0 and df >= 1 and math.isfinite(d)):
        same = se == 0 and math.isfinite(d)  # every pair identical: exactly d, no noise
        return (0.0 if same and d != 0 else 1.0), (0.0 if same and abs(d) < margin else 1.0)
    p = min(1.0, 2 * t_sf(abs(d) / se, df))
    p_eq = max(t_sf((d + margin) / se, df), t_sf((margin - d) / se, df)) if margin > 0 else 1.0
    return p, p_eq


def paired_test(a: Mapping, b: Mapping, margin: float = 0.0) -> Test:
    """Seed-paired t test of the mean difference ``a[seed] − b[seed]`` (values per seed), with the
    TOST equivalence p against ±``margin``."""
    iv = paired_difference(a, b)
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds if np.isfinite(a[s]) and np.isfinite(b[s])], float)
    if len(d) < 2:
        return Test(iv, 1.0, 1.0, margin, iv.kind)
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    p, p_eq = _t_test(float(d.mean()), se, len(d) - 1, margin)
    return Test(iv, p, p_eq, margin, iv.kind)


ITEM_KIND = "95% interval of the seed-paired mean difference over seeds and test items"


def paired_items_test(a: Mapping, b: Mapping, margin: float = 0.0) -> Test:
    """The paired difference of two arms' accuracy counting both sources of noise: training seeds
    and the test items the accuracy is averaged over.

    ``a`` and ``b`` map seed → per-item correctness (0/1 arrays over the same test items, in the same
    order). With ``d[s, i] = a[s][i] − b[s][i]`` over S seeds and I items, the effect is the mean of
    d, and its variance is estimated as in a crossed random-effects model (seed × item) by the sum
    of the two marginal components: var over seeds of the seed means / S + var over items of the
    item means / I. Each component also holds the residual's share, so the sum errs wide (a
    conservative interval), and the t quantile uses S − 1 degrees of freedom, the smaller factor.
    A paired two-way bootstrap (resample seeds and items) agrees with it where S is large; with
    five seeds it would be too narrow."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return Test(Interval(math.nan, math.nan, math.nan, 0, ITEM_KIND), 1.0, 1.0, margin, ITEM_KIND)
    d = np.stack([np.asarray(a[s], float) - np.asarray(b[s], float) for s in seeds])
    S, I = d.shape
    est = float(d.mean())
    if S < 2:
        return Test(Interval(est, -math.inf, math.inf, S, ITEM_KIND), 1.0, 1.0, margin, ITEM_KIND)
    var = d.mean(1).var(ddof=1) / S + (d.mean(0).var(ddof=1) / I if I > 1 else 0.0)
    se = math.sqrt(var)
    half = t975(S - 1) * se
    p, p_eq = _t_test(est, se, S - 1, margin)
    return Test(Interval(est, est - half, est + half, S, ITEM_KIND), p, p_eq, margin, ITEM_KIND)


# ------------------------------------------------------------------------------------ paired rates
NEWCOMBE_KIND = "95% Newcombe interval of the paired difference in failure rate"


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p from the discordant pairs: ``b`` seeds where only A failed, ``c``
    where only B failed (a binomial test of b against n = b + c at one half)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * binom_cdf(min(b, c), n))


def newcombe_paired(a_fail, b_fail) -> Interval:
    """The paired difference of two failure rates, rate A − rate B over the same seeds, with
    Newcombe's (1998, method 10) interval: Wilson intervals of both margins combined with the
    pairs' correlation φ. ``a_fail``/``b_fail``: booleans per seed, in the same order."""
    a, b = np.asarray(a_fail, bool), np.asarray(b_fail, bool)
    n = len(a)
    if n == 0 or len(b) != n:
        return Interval(math.nan, math.nan, math.nan, n, NEWCOMBE_KIND)
    p1, p2 = a.mean(), b.mean()
    l1, u1 = (w := wilson(int(a.sum()), n)).low, w.high
    l2, u2 = (w := wilson(int(b.sum()), n)).low, w.high
    # φ from the 2×2 table of pairs; 0 where a margin is empty (Newcombe's convention)
    n11, n10 = int((a & b).sum()), int((a & ~b).sum())
    n01, n00 = int((~a & b).sum()), int((~a & ~b).sum())
    denom = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    phi = 0.0 if denom == 0 else (n11 * n00 - n10 * n01) / math.sqrt(denom)
    d = p1 - p2
    dl = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    du = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return Interval(float(d), float(max(-1.0, d - dl)), float(min(1.0, d + du)), n, NEWCOMBE_KIND)


def paired_rate_test(a_fail, b_fail, margin: float = 0.0) -> Test:
    """Paired failure rates of two arms over the same seeds: the Newcombe interval of rate A − rate B,
    the exact McNemar p, and an equivalence p (1 if the interval reaches beyond ±``margin``, else 0:
    a conservative inclusion rule, since no exact TOST exists for a handful of pairs)."""
    a, b = np.asarray(a_fail, bool), np.asarray(b_fail, bool)
    iv = newcombe_paired(a, b)
    p = mcnemar_exact(int((a & ~b).sum()), int((~a & b).sum()))
    p_eq = 0.0 if margin > 0 and -margin < iv.low and iv.high < margin else 1.0
    return Test(iv, p, p_eq, margin, NEWCOMBE_KIND + "; exact McNemar test")


# ------------------------------------------------------------------------------------ verdicts
ALPHA = 0.05


def resolve(test: Test, expected: int, p_holm: float, p_eq_holm: float) -> str:
    """The verdict on one claim of a figure after Holm's correction across the figure's claims:
    ``agrees``/``differs`` when the difference is significant (its sign decides), else
    ``equivalent`` when the equivalence test passes within ±margin, else ``undetectable``
    (cannot tell at this n)."""
    if expected not in (1, -1):
        raise ValueError(f"expected must be +1 or -1 (the sign the claim predicts), got {expected!r}")
    if p_holm < ALPHA and math.isfinite(test.effect.estimate) and test.effect.estimate != 0:
        return "agrees" if (test.effect.estimate > 0) == (expected > 0) else "differs"
    if test.margin > 0 and p_eq_holm < ALPHA:
        return "equivalent"
    return "undetectable"


__all__ = ["ALPHA", "Interval", "Test", "VERDICTS", "VERDICT_TEXT", "betainc", "binom_cdf", "holm",
           "mcnemar_exact", "mean_interval", "newcombe_paired", "paired_difference", "paired_items_test",
           "paired_rate_test", "paired_test", "rate_verdict", "resolve", "t975", "t_sf", "verdict", "wilson"]
