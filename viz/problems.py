"""3.2.5 Problems and remedies: fitting regimes, regularization, instability and stability fixes.

Axes-level functions draw one panel from a record or a long-form frame; the figure-level functions
``fitting``, ``regularization``, ``instability`` and ``stability_fixes`` compose them. Every number
is read from the run records (``viz.RunSet``); nothing is typed in.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator, PercentFormatter

from ftcore.records.queries import COLLAPSE_FRAC, collapse_table, curve, global_grad_norm, run_failed
from ftcore.records.record import RunRecord
from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import fit_texts, legend_below, plot_majority, _legend_dedup, _lr, _name, _rotate, _sep, plot_seed_bars, seed_note
from ftcore.records.stats import mean_interval, newcombe_paired, wilson
from .geometry import figsize
from .intervals import mark_interval, plot_paired_differences, plot_wilson
from .text import has, t


# ------------------------------------------------------------------------------------ helpers
def _run_info(rec: RunRecord) -> str:
    """Training examples, the epochs the run actually trained (the record's, not the configured
    number: early stopping or divergence ends a run sooner) and its LR."""
    c = rec.config
    done = rec.summary.get("epochs")
    epochs = (f"{float(done):.3g}" if done is not None and np.isfinite(float(done)) else c.get("epochs", "?"))
    n = c.get("train_size")
    return t("problems.run_info", n=f"{n:,}" if isinstance(n, int) else "?", epochs=epochs, lr=_lr(c.get("lr")))


def _trajectory_and_restored(record: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The record's evaluations split in two: the trajectory (each step's first evaluation per
    metric and split) and, where early stopping restored earlier weights (``summary["restored_step"]``),
    the final evaluation of those restored weights, recorded again at the last step."""
    ev = record.evals
    if not record.summary.get("restored_step") or not len(ev):
        return ev, ev.iloc[:0]
    dup = ev.duplicated(["step", "metric", "split"], keep="first")
    return ev[~dup], ev[dup]


def diverged_step(rec: RunRecord) -> int | None:
    """The step of the ``diverged`` event, else the last step of a run whose status is diverged."""
    ev = rec.events
    d = ev.loc[ev["kind"] == "diverged", "step"]
    if len(d):
        return int(d.iloc[0])
    if rec.status == "diverged":
        return int(rec.steps["step"].max()) if len(rec.steps) else 0
    return None


# ------------------------------------------------------------------------------------ fitting
def plot_fit_curves(record: RunRecord, *, ax: Axes | None = None, show_legend: bool = True,
                    short_legend: bool = False) -> Axes:
    """Per-step training loss (faint), training and validation loss at each evaluation, and the
    step of the lowest validation loss (the early-stopping point) marked. With ``short_legend``
    the panel's legend lists the early-stopping point only (the figure explains the curves once)."""
    ax = ax or plt.gca()
    c_train, c_val = sns.color_palette()[0], sns.color_palette()[1]
    st = record.steps
    ax.plot(st["step"], st["loss"], color=c_train, alpha=0.3, lw=1, label=t("fitting.step_loss"))
    # the curves end on the trajectory's own evaluations; the restored weights' final evaluation
    # (early stopping) is a point of its own
    traj, restored = _trajectory_and_restored(record)
    plot_eval_curve(traj, metric="loss", split="train", color=c_train, label=t("fitting.train_eval"), ax=ax)
    plot_eval_curve(traj, metric="loss", split="validation", color=c_val, label=t("fitting.val_eval"), ax=ax)
    rv = curve(restored, "loss", "validation") if len(restored) else restored
    if len(rv):
        ax.scatter(rv["step"], rv["value"], marker="D", s=36, facecolors="white", edgecolors=c_val, linewidths=1.4,
                   zorder=5, gid="restored",
                   label=t("fitting.restored", step=int(record.summary["restored_step"])))
    va = curve(traj, "loss", "validation")
    fin = va[np.isfinite(va["value"])]
    if len(fin):
        best = fin.loc[fin["value"].idxmin()]
        ax.axvline(best["step"], color="0.4", ls="--", lw=1)
        ax.scatter([best["step"]], [best["value"]], marker="*", s=180, color=c_val, edgecolors="black",
                   linewidths=0.6, zorder=5, label=t("fitting.best", step=int(best["step"])))
    stop = diverged_step(record)
    if stop is not None:
        ax.axvline(stop, color="tab:red", lw=1.5, label=t("diverged"))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # a narrow panel: few step labels
    ax.set_ylabel(t("loss"))
    if show_legend and short_legend:
        if len(fin):
            handles = [Line2D([], [], marker="*", ms=9, ls="none", color=c_val, markeredgecolor="black",
                              markeredgewidth=0.6, label=t("fitting.best_short", step=int(best["step"])))]
            if len(rv):
                handles.append(Line2D([], [], marker="D", ms=5, ls="none", mfc="white", mec=c_val, mew=1.4,
                                      label=t("fitting.restored_short")))
            ax.legend(handles=handles, fontsize="small", loc="best")
    elif show_legend:
        ax.legend(fontsize="small", loc="best")
    return ax


def fitting(runs: RunSet) -> Figure:
    regimes = runs.values("regime")
    fig, axes = plt.subplots(1, len(regimes), figsize=figsize(8.5), layout="constrained", squeeze=False)
    for j, (ax, regime) in enumerate(zip(axes[0], regimes)):
        rec = runs.one(regime=regime)
        plot_fit_curves(rec, ax=ax, short_legend=True)
        # the regime as the title, the run's settings in small type under it (one title of three
        # or four wrapped lines took the panels' height)
        ax.set_title(_name("fitting.regime", regime), fontsize="medium", pad=22)
        ax.text(0.5, 1.02, _run_info(rec), transform=ax.transAxes, ha="center", va="bottom", fontsize=7,
                color="0.25", gid="run_info")
        if j:
            ax.set_ylabel("")
    c_train, c_val = sns.color_palette()[0], sns.color_palette()[1]
    handles = [Line2D([], [], color=c_train, alpha=0.3, lw=1, label=t("fitting.step_loss")),
               Line2D([], [], color=c_train, marker="o", ms=3, lw=1.8, label=t("fitting.train_eval")),
               Line2D([], [], color=c_val, marker="o", ms=3, lw=1.8, label=t("fitting.val_eval")),
               Line2D([], [], color="0.4", ls="--", lw=1, marker="*", ms=9, markerfacecolor=c_val,
                      markeredgecolor="black", markeredgewidth=0.6, label=t("fitting.best_generic"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    fig.suptitle(t("fitting.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ regularization
def regularization_frame(runs: RunSet) -> pd.DataFrame:
    """One row per run: method, seed, status, final train/validation/test accuracy, the gap
    (train − validation) and the step whose weights were restored by early stopping (if any)."""
    rows = []
    for labels, rec in runs:
        tr, va = rec.metric("accuracy", "train"), rec.metric("accuracy", "validation")
        rows.append({**labels, "status": rec.status, "train": tr, "validation": va,
                     "test": rec.metric("accuracy", "test"), "gap": tr - va,
                     "restored_step": rec.summary.get("restored_step")})
    return pd.DataFrame(rows)


def plot_train_val_accuracy(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """Grouped bars: final training and validation accuracy per method (mean ± 95% t interval, seed dots)."""
    ax = ax or plt.gca()
    long = data.melt(id_vars=[c for c in data.columns if c not in ("train", "validation")],
                     value_vars=["train", "validation"], var_name="split", value_name="acc")
    plot_seed_bars(long, x="method", value="acc", order=order, hue="split", hue_order=["train", "validation"],
                   hue_labels=[t("train_accuracy"), t("val_accuracy")],
                   x_labels=[_name("regularization.method", m) for m in order], ax=ax)
    ax.set_ylabel(t("accuracy"))
    ax.set_title(t("regularization.train_val"))
    ax.set_ylim(0, 1.7)  # the legend sits above the bars (accuracies ≤ 1), in a short panel too
    ax.set_yticks([0, 0.5, 1])
    _legend_dedup(ax, fontsize="small", loc="upper center", ncols=4)
    return ax


def plot_generalization_gap(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """The gap, training − validation accuracy, per method in percentage points."""
    ax = ax or plt.gca()
    d = data.assign(gap_pts=100 * data["gap"])
    plot_seed_bars(d, x="method", value="gap_pts", order=order, palette=[sns.color_palette()[2]],
                   x_labels=[_name("regularization.method", m) for m in order], ax=ax)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(t("regularization.gap_axis"))
    ax.set_title(t("regularization.gap"))
    return ax


def regularization(runs: RunSet) -> Figure:
    order = runs.values("method")
    data = regularization_frame(runs)
    fig, ax = plt.subplot_mosaic([["tv", "tv"], ["gap", "test"]], figsize=figsize(9.9), layout="constrained")
    axes = [ax["tv"], ax["gap"], ax["test"]]
    plot_train_val_accuracy(data, order=order, ax=axes[0])
    plot_majority(axes[0], majority_share(runs, "validation"))
    _legend_dedup(axes[0], loc="upper center", ncols=4)
    plot_generalization_gap(data, order=order, ax=axes[1])
    # the verdicts judge test-accuracy effects of a few points: drawn as each method minus none,
    # seed-paired, with its interval against zero (bars from 0 would hide them)
    ref = "none" if "none" in order else order[0]
    plot_paired_differences(data, ref, by="method", order=order, value="test", scale=100, digits=1,
                            labels={m: _name("regularization.method", m) for m in order}, ax=axes[2])
    ref_name = t("regularization.ref") if ref == "none" else _name("regularization.method", ref)
    axes[2].set_ylabel(t("intervals.diff_axis"))
    axes[2].set_title(t("regularization.test_diff", ref=ref_name))
    _rotate(axes[0], 20)  # the top panel is wide: a gentle slope is enough
    for a in axes[1:]:
        _rotate(a, 35)
    note = seed_note(runs, "method")
    if data["restored_step"].notna().any():
        note += _sep()
        note += t("regularization.restored")
    fig.supxlabel(note, fontsize="small")
    fig.suptitle(t("regularization.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ instability
def _mark_divergence(ax: Axes, record: RunRecord):
    """A red vertical line at the step where the run diverged (returned; None if it did not)."""
    stop = diverged_step(record)
    if stop is not None:
        return ax.axvline(stop, color="tab:red", lw=1.5, ls="-", label=t("instability.stopped", step=stop))
    return None


def plot_training_loss(steps: pd.DataFrame, *, color=None, label: str | None = None,
                       ax: Axes | None = None) -> Axes:
    """Training loss per step (a record's ``steps`` table, or a record), log y when it spans more
    than a factor 30."""
    ax = ax or plt.gca()
    st = steps.steps if hasattr(steps, "steps") else steps
    loss = st["loss"].astype(float)
    ax.plot(st["step"], loss, color=color or sns.color_palette()[0], lw=1.4, label=label)
    fin = loss[np.isfinite(loss) & (loss > 0)]
    if len(fin) and fin.max() / fin.min() > 30:
        ax.set_yscale("log")
        _few_log_ticks(ax, float(fin.max() / fin.min()))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # a narrow panel: few step labels
    ax.set_ylabel(t("train_loss"))
    return ax


class _PositiveMaxNLocator(MaxNLocator):
    """Evenly spaced plain ticks for a log axis that spans less than a decade (positive ones only)."""

    def tick_values(self, vmin, vmax):
        return np.asarray([v for v in super().tick_values(vmin, vmax) if v > 0])


def _few_log_ticks(ax: Axes, span: float) -> None:
    """At most a few labelled ticks on a log y axis whose data span a factor ``span``: under a
    decade, 3 evenly spaced plain numbers (1, 1.5, 2); under two decades, 1-2-5 steps as plain
    numbers; more than that, the decades (at most 4 labels). Minor ticks are never labelled."""
    plain = FuncFormatter(lambda v, _: f"{v:.2g}")
    if span < 10:
        ax.yaxis.set_major_locator(_PositiveMaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_locator(NullLocator())
    elif span < 100:
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if span < 30 else (1.0, 3.0)))
        ax.yaxis.set_major_formatter(plain)
    else:
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, 10: not 10⁻¹
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_global_grad_norm(grad_norms: pd.DataFrame, *, color=None, label: str | None = None,
                          ax: Axes | None = None) -> Axes:
    """The global gradient norm per step (before clipping) from the per-group ``grad_norms`` table
    (or a record): ``ftcore.records.queries.global_grad_norm``, finite steps only, log y."""
    ax = ax or plt.gca()
    g = global_grad_norm(grad_norms).sort_values("step", kind="stable")
    g = g[np.isfinite(g["norm"]) & (g["norm"] > 0)]
    ax.plot(g["step"], g["norm"], color=color or sns.color_palette()[4], lw=1.4, label=label)
    if len(g):
        ax.set_yscale("log")
        _few_log_ticks(ax, float(g["norm"].max() / g["norm"].min()))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # a narrow panel: few step labels
    ax.set_ylabel(t("instability.grad_axis"))
    return ax


def plot_eval_curve(evals: pd.DataFrame, *, metric: str = "accuracy", split: str = "validation", color=None,
                    label: str | None = None, ax: Axes | None = None) -> Axes:
    """One metric on one split at each evaluation step (``ftcore.records.queries.curve`` of an
    ``evals`` table or a record), as dots joined by a line."""
    ax = ax or plt.gca()
    c = curve(evals, metric, split)
    ax.plot(c["step"], c["value"], color=color or sns.color_palette()[1], marker="o", ms=3, lw=1.8, label=label)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # a narrow panel: few step labels
    key = f"{'val' if split == 'validation' else split}_{metric}"  # val_accuracy, train_loss, ...
    ax.set_ylabel(t(key) if has(key) else metric)
    return ax


def plot_instability_loss(record: RunRecord, *, ax: Axes | None = None, color=None) -> Axes:
    """Training loss per step; where the run diverged (red line) and the evaluations at which the
    validation predictions collapsed to one class (red triangles on the x axis)."""
    ax = plot_training_loss(record.steps, color=color, label=t("instability.step_loss"), ax=ax)
    _mark_divergence(ax, record)
    evals = collapse_table(record, ("validation",))
    col = evals[evals["collapsed"].astype(bool)]
    if len(col):
        ax.scatter(col["step"], [0.04] * len(col), transform=ax.get_xaxis_transform(), marker="^", s=40,
                   color="tab:red", zorder=5, clip_on=False, gid="collapse",
                   label=t("instability.collapse", pct=round(100 * COLLAPSE_FRAC)))
    return ax


def plot_instability_grad_norm(record: RunRecord, *, ax: Axes | None = None, color=None) -> Axes:
    """The global gradient norm per step (before clipping), log y, with the divergence marked."""
    ax = plot_global_grad_norm(record.grad_norms, color=color, label=t("instability.global_norm"), ax=ax)
    _mark_divergence(ax, record)
    return ax


def instability(runs: RunSet) -> Figure:
    settings = runs.values("setting")
    n = len(settings)
    fig, axes = plt.subplots(2, n, figsize=figsize(9.9), layout="constrained", squeeze=False,
                             sharex="col")
    for j, s in enumerate(settings):
        rec = runs.one(setting=s)
        plot_instability_loss(rec, ax=axes[0, j])
        plot_instability_grad_norm(rec, ax=axes[1, j])
        axes[0, j].set_title(f"{_name('instability.setting', s)}\n{t('lr_short')} {_lr(rec.config.get('lr'))}",
                             fontsize="medium")
        axes[0, j].set_xlabel("")
        axes[1, j].xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # narrow panels: few step ticks
        if j:
            axes[0, j].set_ylabel("")
            axes[1, j].set_ylabel("")
        stop = diverged_step(rec)
        if stop is not None:  # the red line is explained in the figure legend; here only its step
            axes[1, j].annotate(t("instability.stopped_short", step=stop), (stop, 0), xycoords=("data", "axes fraction"),
                                xytext=(-3, 3), textcoords="offset points", ha="right", va="bottom",
                                color="tab:red", fontsize="small", gid="diverged_step")
    handles = [Line2D([], [], color=sns.color_palette()[0], lw=1.4, label=t("instability.step_loss")),
               Line2D([], [], color=sns.color_palette()[4], lw=1.4, label=t("instability.global_norm")),
               Line2D([], [], color="tab:red", lw=1.5, label=t("instability.stopped_legend")),
               Line2D([], [], color="tab:red", marker="^", ls="none", label=t("instability.collapse",
                                                                           pct=round(100 * COLLAPSE_FRAC)))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    fig.suptitle(t("instability.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ stability fixes
def fixes_frame(runs: RunSet) -> pd.DataFrame:
    """One row per run: fix, seed, status, test accuracy, test max_class_frac and ``failed``
    (``ftcore.records.queries.run_failed``)."""
    rows = []
    for labels, rec in runs:
        mcf = rec.metric("max_class_frac", "test")
        rows.append({**labels, "status": rec.status, "test": rec.metric("accuracy", "test"), "max_class_frac": mcf,
                     "failed": run_failed(rec)})
    return pd.DataFrame(rows)


def plot_fixes_failure_rate(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """Share of failed runs per fix (``failed``: diverged, or the final test evaluation collapsed to
    one class, ``ftcore.records.queries.run_failed``) as horizontal bars, one row per fix from the
    top, with its 95% Wilson interval (``gid="ci95"``) and k/n written right of it."""
    ax = ax or plt.gca()
    g = data.groupby("fix", sort=False)["failed"]
    k = g.sum().reindex(order).fillna(0).astype(int)
    n = g.count().reindex(order).fillna(0).astype(int)
    rate = (k / n.replace(0, np.nan)).fillna(0)
    ys = np.arange(len(order))
    colors = [sns.color_palette()[3] if v > 0 else sns.color_palette()[2] for v in rate]
    ax.barh(ys, rate.to_numpy(), 0.6, color=colors, alpha=0.8)
    plot_wilson(ax, ys, k, n, horizontal=True)
    for y, kk, nn in zip(ys, k, n):
        right = wilson(int(kk), int(nn)).high if nn else 0.0
        ax.annotate(t("stability-fixes.k_of_n", k=kk, n=nn), (right, y), xytext=(3, 0), textcoords="offset points",
                    ha="left", va="center", fontsize="small")
    ax.set_yticks(ys, [_name("stability-fixes.fix", f) for f in order])
    ax.set_ylim(len(order) - 0.4, -0.6)  # the first fix (the baseline) on top
    ax.set_xlim(0, 1.25)  # room for k/n right of a wide interval
    ax.set_xticks([0, 0.5, 1])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(t("stability-fixes.failure_axis"))
    ax.set_title(t("stability-fixes.failure"), fontsize="medium")
    return ax


def fixes_rate_differences(data: pd.DataFrame, *, order: Sequence, reference: str = "baseline") -> pd.DataFrame:
    """Per fix other than ``reference``: its failure rate minus the reference's over the seeds both
    ran, with Newcombe's paired 95% interval (``ftcore.records.stats.newcombe_paired``, the interval
    the figure's verdicts test): columns ``fix, estimate, low, high, n``."""
    ref = data[data["fix"] == reference].set_index("seed")["failed"].astype(bool)
    rows = []
    for fix in order:
        if fix == reference:
            continue
        a = data[data["fix"] == fix].set_index("seed")["failed"].astype(bool)
        seeds = sorted(set(a.index) & set(ref.index))
        iv = newcombe_paired(a.loc[seeds].to_numpy(), ref.loc[seeds].to_numpy())
        rows.append({"fix": fix, "estimate": iv.estimate, "low": iv.low, "high": iv.high, "n": iv.n})
    return pd.DataFrame(rows, columns=["fix", "estimate", "low", "high", "n"])


def plot_fixes_rate_difference(data: pd.DataFrame, *, order: Sequence, reference: str = "baseline",
                               ax: Axes | None = None) -> Axes:
    """Each fix's failure rate minus the baseline's, seed-paired (:func:`fixes_rate_differences`):
    a dot with its Newcombe 95% interval (``gid="ci95"``) against a zero line, rows as in
    :func:`plot_fixes_failure_rate`; the reference row says it is the reference."""
    ax = ax or plt.gca()
    d = fixes_rate_differences(data, order=order, reference=reference).set_index("fix")
    for y, fix in enumerate(order):
        if fix == reference:
            ax.text(0, y, t("stability-fixes.reference"), ha="center", va="center", fontsize="small", color="0.35")
            continue
        r = d.loc[fix]
        if not np.isfinite(r["estimate"]):
            continue
        color = "0.2"  # one colour: whether a difference counts is the Holm-corrected verdict's to say
        eb = ax.errorbar([r["estimate"]], [y], xerr=[[r["estimate"] - r["low"]], [r["high"] - r["estimate"]]],
                         fmt="o", ms=5, color=color, ecolor=color, elinewidth=1.6, capsize=3, zorder=3)
        mark_interval(eb)
    ax.axvline(0, color="0.25", lw=1, zorder=1, gid="zero")
    ax.set_xlim(-1.05, 1.05)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:+.0f}" if v else "0"))
    ax.set_xlabel(t("stability-fixes.diff_axis"))
    ax.set_title(t("stability-fixes.diff"), fontsize="medium")
    return ax


def plot_fixes_accuracy(data: pd.DataFrame, *, order: Sequence, majority: float | None = None,
                        ax: Axes | None = None) -> Axes:
    """Final test accuracy per fix, rows as in :func:`plot_fixes_failure_rate`: every seed a dot
    (a failed run a red ring), the mean with its 95% t interval (``gid="ci95"``). No bars from 0:
    the spread across seeds is what this panel shows."""
    ax = ax or plt.gca()
    rng = np.random.default_rng(0)  # a fixed jitter: the same figure every build
    for y, fix in enumerate(order):
        d = data[data["fix"] == fix]
        vals = d["test"].astype(float).to_numpy()
        jitter = y + rng.uniform(-0.18, 0.18, len(vals))
        ax.scatter(vals, jitter, s=9, color="0.15", alpha=0.7, linewidths=0, zorder=2)
        bad = d["failed"].astype(bool).to_numpy()
        ax.scatter(vals[bad], jitter[bad], s=34, facecolors="none", edgecolors="tab:red", linewidths=1.1, zorder=3)
        if len(vals) >= 2:
            iv = mean_interval(vals)
            eb = ax.errorbar([iv.estimate], [y - 0.32], xerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]],
                             fmt="D", ms=4, color=sns.color_palette()[0], elinewidth=1.6, capsize=3, zorder=4)
            mark_interval(eb)
    plot_majority(ax, majority, orientation="v")  # the accuracy runs along x here
    ax.set_xlabel(t("test_accuracy"))
    ax.set_title(t("stability-fixes.accuracy"), fontsize="medium")
    return ax


def stability_fixes(runs: RunSet) -> Figure:
    """``stability-fixes``: per fix (rows), the failure rate with its Wilson interval, the paired
    difference to the fragile baseline with Newcombe's interval (what the verdicts test) and every
    seed's final test accuracy."""
    order = runs.values("fix")
    data = fixes_frame(runs)
    fig, axes = plt.subplots(1, 3, figsize=figsize(8.5), layout="constrained", sharey=True,
                             width_ratios=(1, 1, 1.1))
    plot_fixes_failure_rate(data, order=order, ax=axes[0])
    plot_fixes_rate_difference(data, order=order, ax=axes[1])
    majority = majority_share(runs, "test")
    plot_fixes_accuracy(data, order=order, majority=majority, ax=axes[2])
    handles = [Line2D([], [], marker="o", ls="none", mfc="none", mec="tab:red", ms=6, label=t("stability-fixes.failed_ring")),
               *[ln for ln in axes[2].get_lines() if ln.get_gid() == "majority"]]
    axes[2].legend(handles=handles, loc="upper left", fontsize="small")
    fig.supxlabel(seed_note(runs, "fix") + _sep() + t("stability-fixes.failed_def", pct=round(100 * COLLAPSE_FRAC)),
                  fontsize="small")
    fig.suptitle(t("stability-fixes.title"))
    fit_texts(fig)
    legend_below(axes[2])  # the seeds fill the accuracy panel
    return fig


def plot_confusion_matrix(record: RunRecord, *, split: str = "test", normalize: bool = True,
                          ax: Axes | None = None) -> Axes:
    """The record's last confusion matrix on ``split`` (rows: true class, columns: predicted), as a
    heatmap of row shares (``normalize``: each true class sums to 1, i.e. recall on the diagonal)
    annotated with the counts. Records made before per-class metrics were recorded say so."""
    from ftcore.records.queries import confusion_matrix
    ax = ax or plt.gca()
    cm = confusion_matrix(record.evals, split, record.summary.get("label_names"))
    if cm.empty:
        ax.text(0.5, 0.5, t("confusion.none"), ha="center", va="center", transform=ax.transAxes, wrap=True)
        ax.set_axis_off()
        return ax
    shares = cm.div(cm.sum(axis=1).clip(lower=1), axis=0) if normalize else cm
    sns.heatmap(shares, annot=cm.to_numpy(), fmt="d", cmap="Blues", vmin=0, vmax=1 if normalize else None,
                cbar_kws={"label": t("confusion.share") if normalize else t("confusion.count")}, ax=ax)
    ax.set_xlabel(t("confusion.predicted"))
    ax.set_ylabel(t("confusion.true"))
    ax.set_title(t("confusion.title"))
    return ax


__all__ = ["fitting", "instability", "plot_confusion_matrix", "plot_eval_curve", "plot_fit_curves", "fixes_rate_differences", "plot_fixes_accuracy", "plot_fixes_failure_rate", "plot_fixes_rate_difference",
           "plot_generalization_gap", "plot_global_grad_norm", "plot_instability_grad_norm", "plot_instability_loss",
           "plot_train_val_accuracy", "plot_training_loss", "regularization", "stability_fixes"]
