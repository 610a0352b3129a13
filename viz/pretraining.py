"""Figures of seed 003's pretraining system (drawn from records).

``pretraining``: a small RoBERTa pretrained here with MLM (curves from the pretraining study), then
fine-tuned against the same architecture from random init and against the default model.
``continual_pretraining``: the default model continued with MLM on review text: held-out MLM
accuracy, fine-tuning at small sizes with and without it, and the linear probe of general knowledge.
Every number comes from a run record or a stored study; no torch here.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftcore.records.queries import majority_share
from ftcore.records.runset import RunSet
from ftcore.records.studies import Study
from ._common import _name, _palette, fit_texts, legend_below, n_text, plot_seed_bars
from .basics import plot_accuracy_vs_size
from .geometry import figsize
from .layout import place_legends
from .text import t

__all__ = ["continual_pretraining", "plot_mlm_curve", "plot_probe_cost", "plot_sweep", "pretraining", "pretraining_note"]

ARMS = ("here", "scratch", "default")
CONTINUAL = ("none", "low", "high")


def plot_mlm_curve(steps: pd.DataFrame, evals: pd.DataFrame | None = None, *, metric: str = "accuracy",
                   x: str = "step", smooth: int = 25, color=None, label: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """An MLM curve: ``metric`` of the training batches per optimizer step (rolling mean over
    ``smooth`` steps, as a line) and, if given, on held-out blocks (``evals``, as dots)."""
    ax = ax or plt.gca()
    if len(steps):
        y = steps[metric].astype(float).rolling(smooth, min_periods=1).mean()
        ax.plot(steps[x], y, color=color, lw=1.8, label=label or t("pretraining.train_batches"))
    if evals is not None and len(evals):
        ax.plot(evals["step"], evals[metric], ls="none", marker="o", ms=4, color=color, mec="black", mew=0.5,
                label=t("pretraining.held_out") if label is None else None, zorder=3)
    ax.set_xlabel(t("pretraining.step"))
    ax.set_ylabel(t(f"pretraining.mlm_{metric}"))
    return ax


def plot_sweep(finals: pd.DataFrame, *, by: str = "arm", order: Sequence | None = None,
               ax: Axes | None = None) -> Axes:
    """Test accuracy against fine-tuning LR (log x), one line per arm (one seed each)."""
    ax = ax or plt.gca()
    order = list(order or pd.unique(finals[by]))
    pal = _palette(order)
    for name in order:
        d = finals[finals[by] == name].sort_values("lr")
        ax.plot(d["lr"].astype(float), d["value"], marker="o", color=pal[name], lw=1.6, label=_name("pretraining.arm", name))
    ax.set_xscale("log")
    ax.set_xlabel(t("pretraining.lr"))
    ax.set_ylabel(t("test_accuracy"))
    return ax


def pretraining_note(mlm: Study, runs: RunSet) -> str:
    """What the records say under the figure: how much the local pretraining saw and learned (tokens,
    held-out masked-token accuracy) and whether its fine-tuned mean is above random init's at any
    training-set size. Empty without both arms or the pretraining's final evaluation."""
    meta = mlm.meta
    f = runs.finals("accuracy", "test")
    m = f.groupby(["size", "arm"])["value"].mean().unstack() if len(f) else pd.DataFrame()
    if not ({"here", "scratch"} <= set(m.columns) and "final" in meta):
        return ""
    kw = {"tokens": f"{meta.get('tokens_seen', 0) / 1e6:.1f}", "acc": f"{meta['final']['accuracy']:.2f}"}
    ahead = [s for s, r in m.iterrows() if r["here"] > r["scratch"]]
    if not ahead:
        return t("pretraining.too_small", **kw)
    if len(ahead) == len(m):
        return t("pretraining.ahead_all", **kw)
    return t("pretraining.ahead_at", sizes=" / ".join(f"{int(s):,}" for s in ahead), **kw)


def pretraining(mlm: Study, runs: RunSet, sweep: RunSet | None = None, *, show_sweep: bool = False) -> Figure:
    """Figure ``pretraining``: MLM accuracy and loss of the small RoBERTa (left), fine-tuned test
    accuracy by training-set size for the three starting points (right); with ``show_sweep`` the LR
    sweep takes the bottom right (the book's figure states it in the caption instead)."""
    f = runs.finals("accuracy", "test")
    order = [a for a in ARMS if a in set(f["arm"])]
    show_sweep = show_sweep and sweep is not None
    mosaic = [["acc", "size"], ["loss", "sweep"]] if show_sweep else [["acc", "size"], ["loss", "size"]]
    fig, ax = plt.subplot_mosaic(mosaic, figsize=figsize(9.9), layout="constrained", width_ratios=[1, 1.35])
    c = _palette(order)["here"] if "here" in order else None
    plot_mlm_curve(mlm["steps"], mlm["evals"], metric="accuracy", color=c, ax=ax["acc"])
    meta = mlm.meta
    ax["acc"].set_title(t("pretraining.mlm_title", params=f"{meta.get('parameters', 0) / 1e6:.1f}",
                          vocab=f"{meta.get('vocab_size', 0):,}"), fontsize="medium")
    plot_mlm_curve(mlm["steps"], mlm["evals"], metric="loss", color=c, ax=ax["loss"])
    ax["loss"].legend(fontsize="small", loc="upper right")  # the loss panel has room at the top right
    # its cost in optimizer steps and tokens (the record's wall time measured machine load too)
    steps = int(mlm["steps"]["step"].max()) if len(mlm["steps"]) else 0
    ax["loss"].set_title(t("pretraining.loss_title", steps=f"{steps:,}", tokens=f"{meta.get('tokens_seen', 0) / 1e6:.1f}"),
                         fontsize="medium")
    plot_accuracy_vs_size(f, by="arm", order=order, label_prefix="pretraining.arm",
                          majority=majority_share(runs, "test"), ax=ax["size"])
    ax["size"].set_title(t("pretraining.size_title") + f" ({t('n_seeds', n=n_text(f.groupby('arm')['seed'].nunique()))})",
                         fontsize="medium")
    if show_sweep:
        s = sweep.finals("accuracy", "test")
        plot_sweep(s, order=[a for a in ARMS if a in set(s["arm"])], ax=ax["sweep"])
        ax["sweep"].set_title(t("pretraining.sweep_title", n=f"{int(s['size'].iloc[0]):,}",
                                seed=next(iter(sweep))[1].config.get("seed", "?")), fontsize="medium")
        ax["sweep"].legend(fontsize="small", loc="best")
    fig.suptitle(t("pretraining.title"))
    fig = fit_texts(fig)
    if not show_sweep:
        legend_below(ax["size"])  # the three arms' lines fill the panel: their legend goes under it
    note = pretraining_note(mlm, runs)
    if note and (show_sweep or not _note_under(ax["loss"], note)):
        fig.supxlabel(note, fontsize="small", ha="left", x=0.02, multialignment="left")
        fit_texts(fig)
    return fig


def _note_under(ax: Axes, note: str, *, fontsize: float = 7.5, gap_pt: float = 6.0) -> bool:
    """Write ``note`` in the free space under ``ax`` and its legend (the left column, beside the
    taller legend of the right panel), wrapped to the column's width; False (nothing written) where
    it would not fit above the canvas's bottom edge."""
    from .wrap import wrap_text
    fig = ax.figure
    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    px = fig.dpi / 72
    tight = ax.get_tightbbox(r)  # its labels and its legend included
    below, left, right = tight.y0, tight.x0, ax.get_window_extent(r).x1
    cells = int((right - left) / px / (0.55 * fontsize))
    text = "\n".join(wrap_text(par, cells) for par in note.split("\n"))
    x, y = left / fig.bbox.width, (below - gap_pt * px) / fig.bbox.height
    txt = fig.text(x, y, text, ha="left", va="top", fontsize=fontsize, gid="note")
    fig.draw_without_rendering()
    box = txt.get_window_extent(fig.canvas.get_renderer())
    if box.y0 < fig.bbox.y0 + 2 * px or box.x1 > right + 2 * px:
        txt.remove()
        return False
    return True


def plot_probe_cost(probe: pd.DataFrame, *, order: Sequence = CONTINUAL, ax: Axes | None = None) -> Axes:
    """Linear-probe and kNN accuracy (markers: mean over probe subsets, 95% t interval) per encoder:
    the original and each continued one. Markers, not bars: the axis is zoomed on the values, where
    the differences are (a few points), so it does not start at 0."""
    ax = ax or plt.gca()
    order = [o for o in order if o in set(probe["continual"])]
    long = probe.melt(id_vars=["continual", "probe_seed"], value_vars=["linear", "knn"], var_name="probe",
                      value_name="value")
    plot_seed_bars(long, x="continual", hue="probe", order=order, hue_order=["linear", "knn"],
                   x_labels=[_name("continual-pretraining.short", o) for o in order],
                   hue_labels=[t("continual-pretraining.linear"), t("continual-pretraining.knn")], points=True,
                   ax=ax)
    ax.margins(y=0.25)
    ax.set_xlabel(t("continual-pretraining.probe_x"))
    ax.set_ylabel(t("continual-pretraining.probe_axis"))
    ax.legend(fontsize="small", ncols=2)
    return ax


def continual_pretraining(runs: RunSet, probe: Study, mlm_low: Study, mlm_high: Study) -> Figure:
    """Figure ``continual-pretraining``: held-out MLM accuracy while continuing (left), fine-tuned
    test accuracy with and without it by size (middle), the probe of general knowledge (right)."""
    fig, axd = plt.subplot_mosaic([["mlm", "size"], ["probe", "size"]], figsize=figsize(9.9), layout="constrained",
                                  width_ratios=[1, 1.35])
    ax = [axd["mlm"], axd["size"], axd["probe"]]
    pal = _palette(list(CONTINUAL))
    for which, st in (("low", mlm_low), ("high", mlm_high)):
        ev = st["evals"]
        ax[0].plot(ev["step"], ev["accuracy"], marker="o", ms=3.5, lw=1.8, color=pal[which],
                   label=_name("continual-pretraining.mlm", which))
    ax[0].set_xlabel(t("pretraining.step"))
    ax[0].set_ylabel(t("continual-pretraining.mlm_axis"))
    ax[0].set_title(t("continual-pretraining.mlm_title"), fontsize="medium")
    ax[0].legend(fontsize="small", loc="best")
    f = runs.finals("accuracy", "test")
    order = [o for o in CONTINUAL if o in set(f["continual"])]
    plot_accuracy_vs_size(f, by="continual", order=order, label_prefix="continual-pretraining.arm",
                          majority=majority_share(runs, "test"), ax=ax[1])
    ax[1].set_title(t("continual-pretraining.size_title")
                    + f" ({t('n_seeds', n=n_text(f.groupby('continual')['seed'].nunique()))})", fontsize="medium")
    plot_probe_cost(probe["probe"], ax=ax[2])
    ax[2].set_title(t("continual-pretraining.probe_title", task=_name("continual.task", probe.meta.get("probe_task", ""))),
                    fontsize="medium")
    fig.suptitle(t("continual-pretraining.title"))
    fig = fit_texts(fig)
    for a in ax:  # short panels whose lines and markers leave no corner free
        legend_below(a)
    place_legends(fig)  # the layout moved again: the other legends stay off the data
    return fig
