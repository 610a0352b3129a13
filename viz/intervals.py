"""What a verdict rests on, drawn: each arm's difference to a reference arm (the seed-paired mean
difference with its 95% t interval, against a zero line), a failure rate's 95% Wilson interval,
and single runs (n = 1) drawn apart from means. Every interval drawn here carries ``gid="ci95"``,
the mark the print tests look for."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ftcore.records.stats import paired_difference, wilson
from .text import t

CI_GID = "ci95"  # every interval artist: error bars, bands, interval lines
SINGLE_GID = "single_run"  # a value from one run (n = 1), drawn apart from means


def mark_interval(container) -> None:
    """Tag an ``errorbar`` container's bars (and caps) as a 95% interval (``gid="ci95"``)."""
    for part in (*container.lines[1], *container.lines[2]):
        part.set_gid(CI_GID)


def paired_differences(finals: pd.DataFrame, reference, *, by: str, order: Sequence | None = None,
                       value: str = "value", pair_by: str = "seed") -> pd.DataFrame:
    """Per arm of ``by`` other than ``reference``: the mean of the per-seed differences arm −
    reference of column ``value`` (:func:`ftcore.records.stats.paired_difference`) with its 95% t
    interval: columns ``arm, estimate, low, high, n`` (n = paired seeds; low/high infinite at n = 1)."""
    order = [o for o in (order if order is not None else pd.unique(finals[by])) if o != reference]
    ref = finals[finals[by] == reference].set_index(pair_by)[value].astype(float).to_dict()
    rows = []
    for arm in order:
        a = finals[finals[by] == arm].set_index(pair_by)[value].astype(float).to_dict()
        iv = paired_difference(a, ref)
        rows.append({"arm": arm, "estimate": iv.estimate, "low": iv.low, "high": iv.high, "n": iv.n})
    return pd.DataFrame(rows, columns=["arm", "estimate", "low", "high", "n"])


def _signed(x: float, digits: int) -> str:
    """A signed difference; one that rounds to zero prints as 0.000, never -0.000 or +0.000."""
    text = f"{x:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text


def plot_paired_differences(finals: pd.DataFrame, reference, *, by: str, order: Sequence | None = None,
                            labels: dict | None = None, value: str = "value", scale: float = 1.0,
                            colors: dict | None = None, digits: int = 3, horizontal: bool = False,
                            values: bool | None = None, ax: Axes | None = None) -> Axes:
    """Each arm minus ``reference``, seed-paired (:func:`paired_differences`), one column per arm in
    ``order``: the mean difference as a dot with its 95% t interval (``gid="ci95"``) and its value
    written beside it; an arm with a single paired seed as a hollow square marked "n = 1" (no
    interval: one run is not a mean); a line at zero (no difference). ``scale`` multiplies the
    values (100: percentage points). ``horizontal``: arms as rows from the top, the difference on x
    (a narrow panel with many arms). ``values``: write each value beside its point (default: up to
    five arms; the verdict lines under the figure give them all). Returns ``ax``."""
    ax = ax or plt.gca()
    d = paired_differences(finals, reference, by=by, order=order, value=value)
    labels = labels or {}
    values = len(d) <= 5 if values is None else values
    for i, r in enumerate(d.itertuples()):
        color = (colors or {}).get(r.arm, "0.2")
        est = r.estimate * scale
        if not np.isfinite(est):
            continue
        xy = (est, i) if horizontal else (i, est)
        if r.n >= 2:
            err = [[est - r.low * scale], [r.high * scale - est]]
            eb = ax.errorbar([xy[0]], [xy[1]], **{("xerr" if horizontal else "yerr"): err}, fmt="o", ms=6,
                             color=color, ecolor=color, elinewidth=1.8, capsize=4, zorder=3)
            mark_interval(eb)
            text = _signed(est, digits)
        else:
            ax.scatter([xy[0]], [xy[1]], marker="s", s=36, facecolors="white", edgecolors=color, linewidths=1.4,
                       zorder=3, gid=SINGLE_GID)
            text = f"{_signed(est, digits)}\n{t('intervals.n1')}" if values else t("intervals.n1")
        if values:
            if horizontal:  # at the right edge of its row, inside the axes
                ax.annotate(text.replace("\n", " "), (1, i), xycoords=("axes fraction", "data"), xytext=(-2, 0),
                            textcoords="offset points", ha="right", va="center", fontsize=7, color="0.2")
            else:
                ax.annotate(text, xy, xytext=(6, 0), textcoords="offset points", ha="left", va="center", fontsize=7,
                            color="0.2", linespacing=1.0)
    if not values and (d["n"] < 2).any():  # the single runs, said once
        ax.text(0.02, 0.97, "□ " + t("intervals.n1"), transform=ax.transAxes, ha="left", va="top", fontsize=7,
                color="0.2")
    names = [labels.get(a, str(a)) for a in d["arm"]]
    if horizontal:
        ax.axvline(0, color="0.25", lw=1, zorder=1, gid="zero")
        ax.set_yticks(range(len(d)), names)
        ax.set_ylim(len(d) - 0.4, -0.6)
        ax.margins(x=0.15)
    else:
        ax.axhline(0, color="0.25", lw=1, zorder=1, gid="zero")
        ax.set_xticks(range(len(d)), names)
        ax.set_xlim(-0.5, len(d) - (0.3 if values else 0.5))  # room right of the last arm for its value
        ax.margins(y=0.15)
    return ax


def plot_wilson(ax: Axes, xs, k, n, *, color="black", horizontal: bool = False) -> None:
    """The 95% Wilson interval of each rate k/n at ``xs`` as an error bar (``gid="ci95"``);
    ``horizontal``: ``xs`` are rows (y) and the rates run along x."""
    ivs = [wilson(int(kk), int(nn)) for kk, nn in zip(k, n)]
    ok = [i for i, iv in enumerate(ivs) if iv.n > 0]
    if not ok:
        return
    x = np.asarray(xs, float)[ok]
    est = np.array([ivs[i].estimate for i in ok])
    lo = np.array([ivs[i].low for i in ok])
    hi = np.array([ivs[i].high for i in ok])
    err = [est - lo, hi - est]
    eb = (ax.errorbar(est, x, xerr=err, fmt="none", ecolor=color, elinewidth=1.4, capsize=4, zorder=3) if horizontal
          else ax.errorbar(x, est, yerr=err, fmt="none", ecolor=color, elinewidth=1.4, capsize=4, zorder=3))
    mark_interval(eb)


__all__ = ["CI_GID", "SINGLE_GID", "mark_interval", "paired_differences", "plot_paired_differences", "plot_wilson"]
