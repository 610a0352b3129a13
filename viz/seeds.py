"""Results over seeds: the mean with its 95% t interval (the interval of the gallery's verdicts),
bars with error bars and every seed as a dot, diverged runs marked, and the majority-class line
a learned run must clear."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from ftcore.records.runset import RunSet
from ftcore.records.stats import mean_interval
from .labels import _sep
from .style import DIVERGED_STYLE
from .text import t


def mean_ci(values) -> tuple[float, float, int]:
    """``(mean, half-width of its 95% t interval, n)`` of the finite ``values``: the interval of
    ``ftcore.records.stats.mean_interval``, the one the gallery's verdicts use. The half-width is
    nan with fewer than 2 values (no interval is drawn for one seed)."""
    iv = mean_interval(values)
    half = iv.high - iv.estimate if iv.n > 1 else np.nan
    return iv.estimate, float(half), iv.n


def mean_ci_table(df: pd.DataFrame, by: str | Sequence[str], value: str = "value") -> pd.DataFrame:
    """Per group of ``by`` (order of first appearance): ``mean``, ``half`` (half-width of the 95% t
    interval, nan where n < 2), ``low``, ``high`` and ``n`` (finite values) of column ``value``."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, sort=False):
        m, half, n = mean_ci(g[value].astype(float))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "mean": m, "half": half, "low": m - half, "high": m + half, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "half", "low", "high", "n"])


def n_text(ns) -> str:
    """Seeds per arm as a reader says it: ``5``, or ``3–5`` when the arms differ."""
    ns = sorted({int(n) for n in ns})
    if not ns:
        return "0"
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"


def seed_note(runs: RunSet, key: str) -> str:
    """``mean ± 95% t interval, n = k seeds`` (k per ``key`` value, a range where the arms differ)
    and what the dots are."""
    ns = [runs.n_seeds(**{key: v}) for v in runs.values(key)]
    return t("seeds_n", n=n_text(ns)) + _sep() + t("problems.dots")


def plot_seed_bars(data: pd.DataFrame, *, x: str, value: str = "value", order: Sequence | None = None,
                   hue: str | None = None, hue_order: Sequence | None = None, x_labels: Sequence[str] | None = None,
                   hue_labels: Sequence[str] | None = None, palette=None, failed: str | None = None,
                   points: bool = False, ax: Axes | None = None) -> Axes:
    """Bars of the mean of ``value`` per ``x`` (and ``hue``), 95% t interval error bars where n > 1
    (:func:`mean_ci`), every run
    as a dot (scatter ``gid="seeds"``). ``points=True`` draws each mean as a marker (``gid="means"``)
    instead of a bar, for an axis that does not start at 0 (a bar's length would mislead there). Runs with ``status == "diverged"`` and no value are drawn as
    red crosses at the bottom (``gid="diverged"``); rows where column ``failed`` is true as red rings."""
    ax = ax or plt.gca()
    order = list(order if order is not None else pd.unique(data[x]))
    hues = list(hue_order if hue_order is not None else (pd.unique(data[hue]) if hue else [None]))
    palette = palette or sns.color_palette(n_colors=max(len(hues), 1))
    width, xs = 0.8, np.arange(len(order))
    w = width / len(hues)
    jitter = np.random.default_rng(0)
    dots, div_x, ring = [], [], []
    for k, h in enumerate(hues):
        sub = data if h is None else data[data[hue] == h]
        pos = xs - width / 2 + w * (k + 0.5)
        means, sds = [], []
        for o, p in zip(order, pos):
            rows = sub[sub[x] == o]
            v = rows[value].astype(float)
            fin = v[np.isfinite(v)]
            mean, half, _ = mean_ci(fin)
            means.append(mean)
            sds.append(half)
            off = (jitter.uniform(-0.25, 0.25, len(rows)) * w) if len(rows) > 1 else np.zeros(len(rows))
            for (_, r), d in zip(rows.iterrows(), off):
                if np.isfinite(float(r[value])):
                    dots.append((p + d, float(r[value])))
                    if failed and bool(r.get(failed, False)):
                        ring.append((p + d, float(r[value])))
                elif r.get("status") == "diverged":
                    div_x.append(p + d)
        label = hue_labels[k] if hue_labels is not None else (None if h is None else str(h))
        color = palette[k % len(palette)]
        if points:
            ax.scatter(pos, np.asarray(means, float), s=48, color=color, edgecolors="black", linewidths=0.6,
                       label=label, zorder=5, gid="means")
        else:
            ax.bar(pos, np.nan_to_num(np.asarray(means, float)), w * 0.9, color=color, alpha=0.75, label=label,
                   edgecolor="none")
        sd = np.asarray(sds, float)
        ok = np.isfinite(sd) & np.isfinite(np.asarray(means, float))
        if ok.any():
            eb = ax.errorbar(pos[ok], np.asarray(means, float)[ok], yerr=sd[ok], fmt="none",
                             ecolor=color if points else "black", elinewidth=1.2, capsize=3, zorder=4)
            for part in (*eb.lines[1], *eb.lines[2]):
                part.set_gid("ci95")  # the mark of an interval (viz.intervals.CI_GID)
    if dots:
        d = np.asarray(dots)
        ax.scatter(d[:, 0], d[:, 1], s=14, color="0.35" if points else "black", alpha=0.6 if points else 1.0,
                   linewidths=0, zorder=3 if points else 4, gid="seeds")
    if ring:
        r = np.asarray(ring)
        ax.scatter(r[:, 0], r[:, 1], s=70, facecolors="none", edgecolors="tab:red", linewidths=1.4, zorder=5,
                   label=t("problems.collapsed_dot"), gid="failed")
    if div_x:
        ax.scatter(div_x, [0.03] * len(div_x), marker="x", s=45, color="tab:red", zorder=5,
                   transform=ax.get_xaxis_transform(), label=t("problems.diverged_dot"), gid="diverged")
    ax.set_xticks(xs, list(x_labels) if x_labels is not None else [str(o) for o in order])
    ax.set_xlim(-0.6, len(order) - 0.4)
    return ax


def _dots(ax: Axes, x, values, statuses, color, *, jitter: float = 0.0, shift: float = 0.0,
          log: bool = False, label: str | None = None) -> None:
    """The individual seeds: dots, with diverged runs as red crosses (at the axis bottom if their
    value is not a number)."""
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    statuses = np.asarray(statuses, dtype=object)
    offs = np.zeros(len(values))
    for u in np.unique(x):  # spread the seeds at each x
        idx = np.flatnonzero(x == u)
        offs[idx] = (np.arange(len(idx)) - (len(idx) - 1) / 2) * jitter
    xs = x * 10 ** (offs + shift) if log else x + offs + shift
    ok = statuses != "diverged"
    if ok.any():
        ax.scatter(xs[ok], values[ok], s=14, color=color, alpha=0.55, edgecolor="none", zorder=4, label=label)
    bad = ~ok
    if bad.any():
        fin = bad & np.isfinite(values)
        if fin.any():
            ax.scatter(xs[fin], values[fin], **DIVERGED_STYLE, label=t("diverged"))
        nan = bad & ~np.isfinite(values)
        if nan.any():
            ax.scatter(xs[nan], np.zeros(nan.sum()), transform=ax.get_xaxis_transform(),
                       clip_on=False, **DIVERGED_STYLE, label=None if fin.any() else t("diverged"))


def plot_majority(ax: Axes, value: float | None, *, orientation: str = "h"):
    """The majority-class accuracy as a labelled dotted line (``gid="majority"``) on an accuracy
    axis; nothing when ``value`` is None or not a number (no fake chance line)."""
    if value is None or not np.isfinite(value):
        return None
    kw = dict(color="0.35", ls=":", lw=1.2, zorder=1, gid="majority", label=t("majority_line", v=value))
    return ax.axhline(value, **kw) if orientation == "h" else ax.axvline(value, **kw)


__all__ = ["mean_ci", "mean_ci_table", "n_text", "plot_majority", "plot_seed_bars", "seed_note"]
