"""3.2.4 学习率调度: warmup, decay, adaptive schedules and the LR range test.

Figure-level functions (one per figure id): :func:`warmup`, :func:`decay`, :func:`adaptive`,
:func:`lr_finder`. Axes-level functions draw one panel each: :func:`plot_lr_curves`,
:func:`plot_grad_norms`, :func:`plot_final_points`, :func:`plot_val_curves`,
:func:`plot_steps_to_target`, :func:`plot_plateau`, :func:`plot_lr_range`.

Every LR drawn is the one recorded from the optimizer's param groups during training (the ``lrs``
table; the head group is shown, as every group follows the same shape under a uniform LR).
The LR range test's smoothing and suggestion are ``ftcore.records.queries``' (``smooth_losses``,
``suggest_lr``, ``range_curve``), the same functions ``ftcore.analysis.lr_finder`` uses.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ftcore.records.queries import SMOOTHING, global_grad_norm, range_curve, smooth_losses, suggest_lr
from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import fit_texts, _lr, _name, _palette, _rotate, mean_ci, mean_ci_table, n_text, plot_majority
from .geometry import figsize
from .intervals import SINGLE_GID, mark_interval
from .layout import figure_legend, keep_texts_inside, legend_below, place_legends, rotate_if_crowded
from .text import has, t


LR_TITLE_PAD = 16  # room above an LR axis for its "1e-4" multiplier
TARGET_FRACTION = 0.95  # decay: target = this share of the best mean final validation accuracy


def _tick(prefix: str, value, width: int = 10) -> str:
    """A condition's name for a tick label (its short label where one is registered, e.g.
    ``warmup.short.exponential``), wrapped onto lines of about ``width`` characters."""
    key = f"{prefix}.short.{value}"
    name = t(key) if has(key) else _name(prefix, value, spaces=True)
    return textwrap.fill(name, width, break_long_words=False)


def _step_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(t("step"))


def _lr_axis(ax) -> None:
    ax.set_ylim(bottom=0)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2), useOffset=False)
    ax.set_ylabel(t("schedules.lr_head"))


def _markers(n_steps: int) -> dict:
    return {"marker": "o", "markersize": 3} if n_steps <= 40 else {}


def head_lrs(runs: RunSet) -> pd.DataFrame:
    """The recorded LR of the head's parameter group (with weight decay), per run and step."""
    lrs = runs.table("lrs")
    head = lrs[lrs["layer"] == "head"]
    main = head[~head["group"].str.contains(":", regex=False)]
    return (main if len(main) else head).drop_duplicates(
        [c for c in head.columns if c not in ("group", "lr")])


# ------------------------------------------------------------------------------ axes-level
def plot_lr_schedule(lrs, *, color=None, label: str | None = None, ax=None):
    """One learning-rate schedule: a ``step, lr`` frame, or the LR of each step from step 1 (a
    sequence, e.g. ``ftcore.engine.schedules.preview``'s), as a line."""
    ax = ax or plt.gca()
    if not isinstance(lrs, pd.DataFrame):
        lrs = pd.DataFrame({"step": range(1, len(lrs) + 1), "lr": list(lrs)})
    ax.plot(lrs["step"], lrs["lr"], color=color or sns.color_palette("colorblind")[0], label=label)
    _step_axis(ax)
    ax.set_ylabel(t("lr"))
    return ax


def plot_lr_curves(lrs: pd.DataFrame, *, hue: str, order=None, prefix: str | None = None, ax=None,
                   colors: dict | None = None):
    """LR vs step, one line per value of ``hue`` (named by the registered ``prefix.value`` text)."""
    ax = ax or plt.gca()
    order = order or list(dict.fromkeys(lrs[hue]))
    colors = colors or _palette(order)
    for name in order:
        d = lrs[lrs[hue] == name].sort_values("step")
        ax.plot(d["step"], d["lr"], color=colors[name], label=_name(prefix or hue, name, spaces=True),
                **_markers(len(d)))
    _step_axis(ax)
    _lr_axis(ax)
    ax.legend(loc="best")
    return ax


def plot_grad_norms(norms: pd.DataFrame, *, hue: str, order=None, prefix: str | None = None,
                    max_step: int | None = None, warmup_steps: int | None = None, ax=None,
                    colors: dict | None = None):
    """Global gradient norm per step (``ftcore.records.queries.global_grad_norm``), the mean over seeds
    with a band of its 95% t interval (``gid="ci95"``), one line per value of ``hue``; the warmup
    window shaded if ``warmup_steps``."""
    ax = ax or plt.gca()
    order = order or list(dict.fromkeys(norms[hue]))
    colors = colors or _palette(order)
    if max_step is not None:
        norms = norms[norms["step"] <= max_step]
    for name in order:
        m = mean_ci_table(norms[norms[hue] == name], "step", "norm").sort_values("step")
        n = int(m["n"].max()) if len(m) else 0
        ax.plot(m["step"], m["mean"], color=colors[name], **_markers(len(m)),
                label=f"{_name(prefix or hue, name, spaces=True)} ({t('n_seeds', n=n)})")
        band = m[m["n"] > 1]
        if len(band):
            ax.fill_between(band["step"], band["low"], band["high"], color=colors[name], alpha=0.2, linewidth=0,
                            gid="ci95")
    if warmup_steps:
        ax.axvspan(0.5, warmup_steps + 0.5, color="grey", alpha=0.12, label=t("schedules.warmup_window"))
    v = norms["norm"]
    if len(v) and v.min() > 0 and v.max() / v.min() > 20:
        ax.set_yscale("log")
    _step_axis(ax)
    ax.set_ylabel(t("grad_norm"))
    ax.legend(loc="best")
    return ax


def plot_final_points(finals: pd.DataFrame, *, by: str, order=None, prefix: str | None = None, ax=None,
                      colors: dict | None = None, ylabel: str | None = None, majority: float | None = None,
                      n_in_ticks: bool = True, legend: bool = True, notes: dict | None = None):
    """One column per value of ``by``: the mean over seeds with its 95% t interval (error bar,
    ``gid="ci95"``), each seed as a dot, diverged runs as red crosses; the tick labels say n (unless
    ``n_in_ticks=False``, when the figure says it once) and how many diverged. Arms with a single
    finished run are not means: they stand apart, right of a dashed line under the heading "single
    runs (n = 1)", as hollow squares without an interval. The majority-class line's legend goes under
    the axes (``legend=False``: none, the caller places it). ``notes``: a line per arm written under
    its mean (e.g. the s.d. across seeds)."""
    ax = ax or plt.gca()
    order = order or list(dict.fromkeys(finals[by]))
    colors = colors or _palette(order)
    rng = np.random.default_rng(0)

    def finite(name):
        v = finals.loc[finals[by] == name, "value"].astype(float)
        return v[np.isfinite(v)]
    multi = [o for o in order if len(finite(o)) >= 2]
    single = [o for o in order if len(finite(o)) < 2]
    apart = bool(multi) and bool(single)
    xpos = {o: i for i, o in enumerate(multi)}
    xpos.update({o: len(multi) + (0.4 if apart else 0) + i for i, o in enumerate(single)})
    ticks, xs_all = [], []
    for name in multi + single:
        i = xpos[name]
        d = finals[finals[by] == name]
        v = d["value"].astype(float)
        ok = v[np.isfinite(v)]
        good = (d["status"] != "diverged").to_numpy()
        if name in multi:
            mean, half, _ = mean_ci(ok)
            eb = ax.errorbar([i], [mean], yerr=[half], fmt="o", markersize=8, capsize=6, color=colors[name],
                             elinewidth=2, zorder=3)
            mark_interval(eb)
            top = mean + half
            x = i + rng.uniform(-0.18, 0.18, len(d))
            ax.scatter(x[good], v[good], color=colors[name], s=14, alpha=0.55, linewidths=0, zorder=2)
            text = f"{mean:.3f}"
        else:
            x = np.full(len(d), float(i))
            if len(ok):
                ax.scatter([i], [float(ok.iloc[0])], marker="s", s=40, facecolors="white", edgecolors=colors[name],
                           linewidths=1.6, zorder=3, gid=SINGLE_GID)
            top = float(ok.iloc[0]) if len(ok) else np.nan
            text = f"{top:.3f}" if len(ok) else ""
        if notes and notes.get(name):
            text += "\n" + notes[name]
        if np.isfinite(top):
            ax.annotate(text, (i, max(top, float(ok.max()))), xytext=(0, 7), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        if (~good).any():
            ax.scatter(x[~good], v[~good], color="red", marker="x", s=30, zorder=4)
        label = f"{_tick(prefix or by, name)}\n{t('n_seeds', n=len(d))}" if n_in_ticks else _tick(prefix or by, name)
        if (~good).any():
            label += f"\n{t('diverged')} {int((~good).sum())}"
        ticks.append(label)
        xs_all.append(i)
    ax.set_xticks(xs_all, ticks, fontsize=7)
    if len(order) > 4 and not n_in_ticks:
        _rotate(ax, 35)
    ax.set_xlim(-0.6, (xs_all[-1] if xs_all else 0) + 0.6)
    if apart:  # the single runs, apart from the means
        sep = len(multi) - 0.5 + 0.2
        ax.axvline(sep, color="0.45", ls="--", lw=0.9, zorder=1)
        ax.annotate(t("intervals.single"), (sep, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", ha="left", va="top", fontsize=7, color="0.3")
    if plot_majority(ax, majority) is not None and legend:
        ax.legend(loc="lower left")
    ax.margins(y=0.25)  # room for the means written above the points
    ax.set_ylabel(ylabel or t("test_accuracy"))
    ax.grid(axis="x", visible=False)
    return ax


def plot_val_curves(evals: pd.DataFrame, *, hue: str, order=None, prefix: str | None = None, ax=None,
                    colors: dict | None = None, target: float | None = None, target_label: str | None = None,
                    legend: bool = True, majority: float | None = None):
    """Validation accuracy vs step, mean over seeds (a band of its 95% t interval, ``gid="ci95"``,
    where n > 1), one line per ``hue``;
    an optional horizontal ``target``. ``legend=False`` lists only the target (when the colours
    are explained by a neighbouring panel)."""
    ax = ax or plt.gca()
    order = order or list(dict.fromkeys(evals[hue]))
    colors = colors or _palette(order)
    for name in order:
        m = mean_ci_table(evals[evals[hue] == name], "step").sort_values("step")
        ax.plot(m["step"], m["mean"], color=colors[name], label=_name(prefix or hue, name, spaces=True),
                **_markers(len(m)))
        band = m[m["n"] > 1]
        if len(band):
            ax.fill_between(band["step"], band["low"], band["high"], color=colors[name], alpha=0.12, linewidth=0,
                            gid="ci95")
    maj_line = plot_majority(ax, majority)
    target_line = None
    if target is not None:
        target_line = ax.axhline(target, color="black", linestyle="--", linewidth=1, label=target_label)
    _step_axis(ax)
    ax.set_ylabel(t("val_accuracy"))
    if legend:
        ax.legend(ncol=2, loc="best")
    elif (target_line is not None and target_label) or maj_line is not None:
        ax.legend(handles=[h for h in (target_line if target_label else None, maj_line) if h is not None], loc="best")
    return ax


def steps_to_target(evals: pd.DataFrame, *, hue: str, fraction: float = TARGET_FRACTION,
                    target: float | None = None) -> tuple[pd.DataFrame, float]:
    """The target (a given ``target``, else ``fraction`` × the best, over ``hue`` values, of the mean
    final validation accuracy) and, per run (``hue``, seed), the first step whose validation accuracy
    reaches it (NaN: never reached)."""
    ev = evals.sort_values("step", kind="stable")
    if target is None:
        final = ev.groupby([hue, "seed"], sort=False)["value"].last().reset_index()
        target = fraction * float(final.groupby(hue, sort=False)["value"].mean().max())
    rows = []
    for (name, seed), g in ev.groupby([hue, "seed"], sort=False):
        hit = g.loc[g["value"] >= target - 1e-12, "step"]
        rows.append({hue: name, "seed": seed, "step": float(hit.iloc[0]) if len(hit) else np.nan})
    return pd.DataFrame(rows), target


def plot_steps_to_target(reached: pd.DataFrame, *, hue: str, order=None, prefix: str | None = None, ax=None,
                         colors: dict | None = None):
    """Steps to reach the target per ``hue`` value, over the seeds that reached it: the mean with its
    95% t interval (``gid="ci95"``) where ≥ 2 did, each seed a dot; where a single seed did, that
    run alone as a hollow square marked "n = 1" (not a mean); "not reached" written where none did.
    Above each column, how many seeds reached it (k/n)."""
    ax = ax or plt.gca()
    order = order or list(dict.fromkeys(reached[hue]))
    colors = colors or _palette(order)
    ticks, top = [], np.nanmax(reached["step"]) if reached["step"].notna().any() else 1.0
    bottom = 0.0  # an interval of few seeds can reach below 0 steps: drawn whole, not cut at the axis
    if not reached["step"].notna().any():  # no seed of any arm reached it: said once, across the panel
        ax.text(0.5, 0.5, t("decay.not_reached"), transform=ax.transAxes, ha="center", va="center", fontsize=7,
                color="#555555")
    for i, name in enumerate(order):
        d = reached[reached[hue] == name]
        ok = d["step"].dropna()
        if len(ok) >= 2:
            mean, half, _ = mean_ci(ok)
            top, bottom = max(top, mean + half), min(bottom, mean - half)
            eb = ax.errorbar([i], [mean], yerr=[half], fmt="o", ms=7, color=colors[name], elinewidth=2, capsize=5,
                             zorder=3)
            mark_interval(eb)
            ax.scatter(np.full(len(ok), i + 0.22), ok, color=colors[name], s=10, alpha=0.6, zorder=2, linewidths=0)
        elif len(ok) == 1:
            ax.scatter([i], ok, marker="s", s=40, facecolors="white", edgecolors=colors[name], linewidths=1.6,
                       zorder=3, gid=SINGLE_GID)
            ax.annotate(t("intervals.n1"), (i, float(ok.iloc[0])), xytext=(0, -5), textcoords="offset points",
                        ha="center", va="top", fontsize=7, color="0.3")
        elif reached["step"].notna().any():
            ax.text(i, 0.02 * top, t("decay.not_reached"), rotation=90, ha="center", va="bottom", fontsize=7,
                    color="#555555")
        if len(ok):  # how many seeds reached it ("not reached" says it for none): along the panel's top,
            # boxed, so a wide interval of two seeds runs under it rather than through it
            ax.text(i, 0.97, f"{len(ok)}/{len(d)}", transform=ax.get_xaxis_transform(), ha="center", va="top",
                    fontsize=7, color="#444444", zorder=5,
                    bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"))
        ticks.append(_tick(prefix or hue, name))
    ax.set_xticks(range(len(order)), ticks, fontsize=7)
    if len(order) > 4:
        _rotate(ax, 35)
    ax.set_xlim(-0.6, len(order) - 0.4)
    if bottom < 0:  # below 0 steps is outside what a run can take: the zero line shows where that starts
        ax.axhline(0, color="0.4", lw=0.8, zorder=1)
        bottom -= 0.05 * (top - bottom)
    ax.set_ylim(bottom, top * 1.35 - 0.35 * bottom)  # headroom for the k/n labels along the top
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.set_ylabel(t("decay.steps"))
    ax.grid(axis="x", visible=False)
    return ax


def plot_plateau(lrs: pd.DataFrame, val_loss: pd.DataFrame, events: pd.DataFrame, *, ax=None, color=None):
    """A reduce-on-plateau run: its LR per step, its recorded LR reductions (events whose kind
    contains ``lr_reduced``) as dotted verticals, and its validation loss on a twin axis.
    Returns the twin axis."""
    ax = ax or plt.gca()
    color = color or sns.color_palette("colorblind")[0]
    lrs = lrs.sort_values("step")
    ax.plot(lrs["step"], lrs["lr"], color=color, label=t("lr"), **_markers(len(lrs)))
    red = events[events["kind"].astype(str).str.contains("lr_reduced")]
    for s in red["step"]:
        ax.axvline(s, color="red", linestyle=":", linewidth=1.2, gid="lr_reduced")
    twin = ax.twinx()
    vl = val_loss.sort_values("step")
    twin.plot(vl["step"], vl["value"], color="black", linestyle="--", linewidth=1.2, label=t("val_loss"),
              **_markers(len(vl)))
    twin.set_ylabel(t("val_loss"))
    twin.grid(False)
    _step_axis(ax)
    _lr_axis(ax)
    handles = [*ax.get_lines()[:1], Line2D([], [], color="red", linestyle=":"), *twin.get_lines()[:1]]
    labels = [t("lr"), t("adaptive.reductions", n=len(red)), t("val_loss")]
    ax.legend(handles, labels, loc="lower left")
    return twin


# ------------------------------------------------------------------------------ LR range test
def plot_lr_range(curve: pd.DataFrame, *, ax=None, stopped_factor: float | None = None):
    """Loss vs LR (log x): raw and smoothed, the suggested LR (steepest descent) and the
    minimum / 10 marked; if ``stopped_factor``, the last step is marked as where the test stopped."""
    ax = ax or plt.gca()
    pal = sns.color_palette("colorblind")
    fin = curve[np.isfinite(curve["loss"])]
    ax.plot(fin["lr"], fin["loss"], color="grey", alpha=0.6, linewidth=1, marker=".", label=t("lr-finder.raw"))
    sm = smooth_losses(fin["loss"].tolist())
    ax.plot(fin["lr"], sm, color=pal[0], linewidth=2.2, label=t("lr-finder.smoothed", beta=SMOOTHING))
    steep, valley = suggest_lr(curve["lr"].tolist(), curve["loss"].tolist())
    ax.axvline(steep, color=pal[3], linewidth=1.5, label=t("lr-finder.suggestion", lr=steep))
    ax.plot([steep], [sm[int(np.argmin(np.abs(fin["lr"].to_numpy() - steep)))]], "o", color=pal[3], markersize=8)
    ax.axvline(valley, color=pal[2], linestyle="--", linewidth=1.2, label=t("lr-finder.valley", lr=valley))
    if stopped_factor is not None and len(fin):
        last = fin.iloc[-1]
        ax.plot([last["lr"]], [last["loss"]], "x", color="red", markersize=9, mew=2,
                label=t("lr-finder.stopped", factor=stopped_factor))
    ax.set_xscale("log")
    v = fin["loss"]
    if len(v) and v.min() > 0 and v.max() / v.min() > 10:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))  # 0.2 and 4, not 2×10⁻¹
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "235" else ""))
        ax.set_ylabel(t("lr-finder.loss"))
    else:
        ax.set_ylabel(t("train_loss"))
    ax.set_xlabel(t("lr-finder.lr"))
    ax.legend(loc="upper left")
    return ax


# ------------------------------------------------------------------------------ figures
def _first_seed(runs: RunSet):
    seeds = runs.values("seed")
    return (min(seeds) if seeds else None), (runs.select(seed=min(seeds)) if seeds else runs)


def _two_and_one(left: float = 1.0):
    """Two panels stacked on the left, a tall one on the right (fig.axes in that order); ``left``:
    the left column's width relative to the right one's."""
    fig = plt.figure(figsize=figsize(9.9), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(left, 1))
    return fig, (fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[:, 1]))


def warmup(runs: RunSet) -> Figure:
    """``warmup``: recorded warmup curves, the early global gradient norm without and with linear
    warmup (mean over seeds, 95% t band) and final test accuracy per warmup kind (n differs)."""
    order = runs.values("warmup")
    colors = _palette(order)
    seed, first = _first_seed(runs)
    fig, (a, b, c) = _two_and_one()
    w_steps = None
    ref = "linear" if "linear" in order else order[-1]
    if ref != "none":
        w_steps = int(runs.select(warmup=ref).records[0].summary.get("warmup_steps") or 0) or None
    plot_lr_curves(head_lrs(first), hue="warmup", order=order, prefix="warmup", ax=a, colors=colors)
    if w_steps:
        a.axvspan(0.5, w_steps + 0.5, color="grey", alpha=0.12)
    a.set_title(t("warmup.curves", seed=seed), pad=LR_TITLE_PAD)
    pair = [k for k in ("none", "linear") if k in order]
    norms = global_grad_norm(runs.table("grad_norms"), ["warmup", "seed"])
    norms = norms[norms["warmup"].isin(pair)]
    total = int(norms["step"].max()) if len(norms) else 0
    n_show = min(total, max(2 * (w_steps or 0), 4))
    plot_grad_norms(norms, hue="warmup", order=pair, prefix="warmup", max_step=n_show, warmup_steps=w_steps,
                    ax=b, colors=colors)
    b.set_title(t("warmup.grad_title", n=n_show))
    plot_final_points(runs.finals(), by="warmup", order=order, prefix="warmup", ax=c, colors=colors,
                      majority=majority_share(runs, "test"))
    c.set_title(t("schedules.final_title"))
    lr = runs.records[0].config.get("lr", float("nan"))
    fig.suptitle(t("warmup.title", lr=_lr(lr)) + "\n" + t("seeds_n", n=n_text(runs.n_seeds(warmup=o) for o in order)))
    # one colour per warmup kind in every panel: one legend under the figure (the kinds, the warmup
    # period, the majority class) instead of one under each small panel, which left them no height;
    # the gradient panel's kinds repeat the LR curves' with n (the accuracy panel's ticks say n)
    figure_legend(fig, (a, b, c), skip=lambda ax, text: ax is b and any(text.startswith(_name("warmup", k))
                                                                         for k in pair))
    fit_texts(fig)
    keep_texts_inside(c)  # the values written above the points
    return fig


def decay(runs: RunSet, target: float | None = None) -> Figure:
    """``decay``: recorded decay curves, validation accuracy over steps, final test accuracy and
    steps to reach a target validation accuracy per schedule (``target``, e.g. the one a claim
    tests; default: computed from the data, :data:`TARGET_FRACTION` of the best)."""
    order = runs.values("schedule")
    colors = _palette(order)
    seed, first = _first_seed(runs)
    fig, axes = plt.subplots(2, 2, figsize=figsize(9.9), layout="constrained")
    (a, b), (c, d) = axes
    plot_lr_curves(head_lrs(first), hue="schedule", order=order, prefix="decay", ax=a, colors=colors)
    a.set_title(t("decay.curves", seed=seed), pad=LR_TITLE_PAD)
    a.legend(loc="upper right", ncols=2, fontsize="small", frameon=True, framealpha=0.85, edgecolor="none")
    ev = runs.evals("accuracy", "validation")
    given = target is not None
    reached, target = steps_to_target(ev, hue="schedule", target=target)
    label = (t("decay.target_given", target=target) if given
             else t("decay.target", target=target, pct=100 * TARGET_FRACTION))
    plot_val_curves(ev, hue="schedule", order=order, prefix="decay", ax=b, colors=colors, target=target,
                    legend=False, target_label=label,
                    majority=majority_share(runs, "validation"))
    b.set_title(t("decay.val_title"))
    plot_final_points(runs.finals(), by="schedule", order=order, prefix="decay", ax=c, colors=colors,
                      majority=majority_share(runs, "test"), n_in_ticks=False)  # n is in the title
    c.set_title(t("schedules.final_title"))
    plot_steps_to_target(reached, hue="schedule", order=order, prefix="decay", ax=d, colors=colors)
    d.set_title(t("decay.steps_title"))
    fig.suptitle(t("decay.title") + "\n" + t("seeds_n", n=n_text(runs.n_seeds(schedule=o) for o in order)))
    # the schedules (one colour in every panel), the target and the validation majority class in one
    # legend under the figure: under each top panel they took the panels' height; the test majority
    # class stays in its panel
    figure_legend(fig, (a, b))
    fit_texts(fig)
    keep_texts_inside(c)  # the values written above the points
    place_legends(fig)
    return fig


def adaptive(runs: RunSet) -> Figure:
    """``adaptive``: reduce-on-plateau with its reductions and validation loss, the recorded LR of
    each schedule, and final test accuracy per schedule."""
    order = runs.values("schedule")
    colors = _palette(order)
    seed, first = _first_seed(runs)
    lrs = head_lrs(first)
    # the left column wider: its two legends (under the panels) fit two columns, so the stacked LR
    # panels keep their height; the right panel holds four points
    fig, (a, b, c) = _two_and_one(left=1.4)
    if "plateau" in order:
        rec = first.one(schedule="plateau")
        ev = rec.evals
        plot_plateau(lrs[lrs["schedule"] == "plateau"], ev[(ev["metric"] == "loss") & (ev["split"] == "validation")],
                     rec.events, ax=a, color=colors["plateau"])
        a.set_title(t("adaptive.plateau_title", seed=seed), pad=LR_TITLE_PAD)
        a.set_xlabel("")  # the panel under it has the same step axis, labelled
    else:
        a.set_visible(False)
    plot_lr_curves(lrs, hue="schedule", order=order, prefix="adaptive", ax=b, colors=colors)
    b.set_title(t("adaptive.curves", seed=seed), pad=LR_TITLE_PAD)
    plot_final_points(runs.finals(), by="schedule", order=order, prefix="adaptive", ax=c, colors=colors,
                      majority=majority_share(runs, "test"))
    c.set_title(t("schedules.final_title"))
    fig.suptitle(t("adaptive.title") + "\n" + t("seeds_n", n=n_text(runs.n_seeds(schedule=o) for o in order)))
    fit_texts(fig)
    keep_texts_inside(c)  # the values written above the points
    if "plateau" in order:  # its legend would cover the validation loss drawn on the twin axis
        legend_below(a)
    place_legends(fig)
    # last: the legends placed above narrow this panel, and Chinese schedule names do not wrap
    if rotate_if_crowded(c):
        place_legends(fig)
    return fig


def lr_finder(runs: RunSet) -> Figure:
    """``lr-finder``: loss vs LR of the range test (raw and smoothed), the suggestion marked."""
    rec = runs.one(test="range") if "test" in {k for lab, _ in runs for k in lab} else runs.records[0]
    fig, ax = plt.subplots(figsize=figsize(7.5), layout="constrained")
    factor = rec.config.get("divergence_factor") if rec.status == "diverged" else None
    plot_lr_range(range_curve(rec), ax=ax, stopped_factor=factor)
    fig.suptitle(t("lr-finder.title"))
    fit_texts(fig)
    legend_below(ax)  # the marked LRs run the axes' full height: no corner is free
    return fig


__all__ = ["adaptive", "decay", "head_lrs", "lr_finder", "plot_final_points", "plot_lr_schedule",
           "plot_grad_norms", "plot_lr_curves", "plot_lr_range", "plot_plateau", "plot_steps_to_target",
           "plot_val_curves", "steps_to_target", "warmup"]
