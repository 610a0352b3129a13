"""Figures of seed 003's quantization system (drawn from records).

Figure ``quantization``: the fine-tuned classifier in fp32, bf16, int8 after training (with and
without its embeddings in 8 bits) and int8 from quantization-aware fine-tuning, from the stored
studies of :func:`ftcore.analysis.quantization.quantization_study` (one per seed): test accuracy
(seed-paired), bytes on disk, CPU latency per review, and the training loss with and without fake
quantization. No torch here.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftcore.records.queries import smooth_losses
from ._common import _name, _rotate, fit_texts, keep_texts_inside, mean_ci, n_text
from .layout import legend_below
from .geometry import figsize
from .text import t

ARMS = ("fp32", "bf16", "int8_ptq", "int8_ptq_emb", "int8_qat")  # as ftcore.analysis.quantization
MB = 1e6


def _arm(name: str) -> str:
    return _name("quantization.arm", name)


def _short(name: str) -> str:
    """An arm's tick label (two short lines); the full names are in the note and the caption."""
    return _name("quantization.short", name)


def _colors(order: Sequence[str]) -> dict:
    pal = sns.color_palette("colorblind")
    base = {"fp32": pal[7], "bf16": pal[0], "int8_ptq": pal[1], "int8_ptq_emb": pal[3], "int8_qat": pal[2]}
    return {a: base.get(a, pal[4]) for a in order}


def _studies(studies) -> list:
    return list(studies.values()) if isinstance(studies, dict) else list(studies)


def quantization_frame(studies) -> pd.DataFrame:
    """One row per (seed, arm): the study's ``arms`` table with the seed."""
    return pd.concat([st["arms"].assign(seed=int(st.meta["seed"])) for st in _studies(studies)], ignore_index=True)


def latency_frame(studies) -> pd.DataFrame:
    """Every timed repeat of every seed's study: arm, batch_size, repeat, ms_per_example, cpu_share, seed."""
    return pd.concat([st["latency"].assign(seed=int(st.meta["seed"])) for st in _studies(studies)], ignore_index=True)


def quantization_summary(studies) -> pd.DataFrame:
    """Per arm (index, in ``ARMS`` order): test accuracy ``acc`` with its 95% t interval (``lo``,
    ``hi``, ``n`` seeds), ``agree`` (share of test predictions equal to fp32's, mean), ``size_mb``
    (state dict, MB = 10⁶ bytes), ``lat1`` / ``lat32`` (median ms per review at batch 1 / 32 over all
    repeats of all seeds) and their interquartile ranges ``lat1_q1``… ``lat32_q3``."""
    f, lat = quantization_frame(studies), latency_frame(studies)
    rows = {}
    for arm in [a for a in ARMS if a in set(f["arm"])] + [a for a in pd.unique(f["arm"]) if a not in ARMS]:
        g = f[f["arm"] == arm]
        m, half, n = mean_ci(g["accuracy"].astype(float))
        row = {"acc": m, "lo": m - half, "hi": m + half, "n": n, "agree": float(g["agree_fp32"].mean()),
               "size_mb": float(g["size_bytes"].mean()) / MB}
        for b in sorted(set(lat["batch_size"])):
            v = lat[(lat["arm"] == arm) & (lat["batch_size"] == b)]["ms_per_example"]
            row[f"lat{b}"], row[f"lat{b}_q1"], row[f"lat{b}_q3"] = v.median(), v.quantile(0.25), v.quantile(0.75)
        rows[arm] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------ panels
def plot_paired_accuracy(data: pd.DataFrame, *, order: Sequence[str] | None = None, value: str = "accuracy",
                         ax: Axes | None = None) -> Axes:
    """Each seed's accuracy across the arms as a thin grey line (the pairing the claims use), the mean
    of each arm with its 95% t interval on top."""
    ax = ax or plt.gca()
    order = list(order or pd.unique(data["arm"]))
    colors = _colors(order)
    xs = np.arange(len(order))
    for _, g in data.groupby("seed"):
        v = g.set_index("arm").reindex(order)[value].astype(float)
        ax.plot(xs, v.values, color="0.75", lw=0.8, zorder=1, gid="seeds")
    for x, arm in zip(xs, order):
        m, half, _ = mean_ci(data.loc[data["arm"] == arm, value].astype(float))
        ax.errorbar([x], [m], yerr=None if not np.isfinite(half) else [[half], [half]], fmt="o", ms=5,
                    color=colors[arm], ecolor="black", elinewidth=1.2, capsize=3, zorder=3)
    ax.set_xticks(xs, [_short(a) for a in order])
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylabel(t("test_accuracy"))
    return ax


def plot_size(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bytes of each arm's saved state dict (MB), the value written on each bar."""
    ax = ax or plt.gca()
    order = list(summary.index)
    colors = _colors(order)
    xs = np.arange(len(order))
    ax.bar(xs, summary["size_mb"], color=[colors[a] for a in order], width=0.7)
    for x, v in zip(xs, summary["size_mb"]):
        ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize="small")
    ax.set_xticks(xs, [_short(a) for a in order])
    ax.set_ylabel(t("quantization.size_label"))
    ax.margins(y=0.15)
    return ax


def plot_latency(latency: pd.DataFrame, *, order: Sequence[str] | None = None, ax: Axes | None = None) -> Axes:
    """Median wall-clock ms per review for each arm, one bar per batch size (hatched: batch > 1),
    interquartile range of all repeats as error bars; a black diamond marks the median CPU time of
    the timing thread itself (wall time × ``cpu_share``), which other processes do not inflate."""
    ax = ax or plt.gca()
    order = list(order or pd.unique(latency["arm"]))
    colors = _colors(order)
    sizes = sorted(set(latency["batch_size"]))
    w = 0.8 / len(sizes)
    xs = np.arange(len(order))
    for k, b in enumerate(sizes):
        pos = xs - 0.4 + w * (k + 0.5)
        g = latency[latency["batch_size"] == b].groupby("arm")["ms_per_example"]
        med = g.median().reindex(order)
        q1, q3 = g.quantile(0.25).reindex(order), g.quantile(0.75).reindex(order)
        ax.bar(pos, med, w * 0.9, color=[colors[a] for a in order], hatch=None if k == 0 else "///",
               edgecolor="white", label=t("quantization.batch", b=b))
        ax.errorbar(pos, med, yerr=[med - q1, q3 - med], fmt="none", ecolor="black", elinewidth=1, capsize=2)
        if "cpu_share" in latency:  # the thread's own CPU time: what the pass costs without other processes
            sub = latency[latency["batch_size"] == b]
            cpu = (sub["ms_per_example"] * sub["cpu_share"]).groupby(sub["arm"]).median().reindex(order)
            ax.scatter(pos, cpu, marker="D", s=14, color="black", zorder=4, gid="cpu_time",
                       label=t("quantization.cpu_time") if k == 0 else None)
    ax.set_xticks(xs, [_short(a) for a in order])
    ax.set_ylabel(t("quantization.latency_label"))
    ax.set_ylim(0, float(latency.groupby(["arm", "batch_size"])["ms_per_example"].quantile(0.75).max()) * 1.15)
    handles, labels = ax.get_legend_handles_labels()
    # the figure moves it under the panel (viz.layout.legend_below): above the bars it crowded the ticks
    leg = ax.legend(handles, labels, fontsize="small", loc="upper center", ncols=len(handles),
                    handlelength=1.2, columnspacing=1.0, borderaxespad=0.2)
    for h, lab in zip(leg.legend_handles, labels):  # the batch sizes, not an arm's colour
        if lab != t("quantization.cpu_time"):
            h.set_facecolor("0.6")
    return ax


def _precision_name(precision: str) -> str:
    """How the recipe's precision is named in the theme's language."""
    return {"bf16": t("stability-fixes.fix.bf16")}.get(precision, precision)


def plot_qat_loss(steps: pd.DataFrame, *, precision: str = "fp32", ax: Axes | None = None) -> Axes:
    """Training loss per step (smoothed, mean over seeds): the recipe (trained in ``precision``, as
    its study records it) and the same recipe with fake quantization."""
    ax = ax or plt.gca()
    pal = _colors(["fp32", "int8_qat"])
    for training, color in (("fp32", pal["fp32"]), ("qat", pal["int8_qat"])):
        g = steps[steps["training"] == training]
        if g.empty:
            continue
        mean = g.groupby("step")["loss"].mean()
        ax.plot(mean.index, smooth_losses(mean.values.tolist()), color=color, lw=1.4,
                label=t(f"quantization.training.{training}", precision=_precision_name(precision)))
    ax.set_xlabel(t("step"))
    ax.set_ylabel(t("train_loss"))
    ax.legend(fontsize="small")
    return ax


# ------------------------------------------------------------------------------------ the figure
def quantization(**studies) -> Figure:
    """Figure ``quantization`` from the per-seed studies (inputs ``study_<seed>``): test accuracy per
    arm (seed-paired), size on disk, CPU latency per review at batch 1 and 32, and the training
    loss of the fp32 recipe vs quantization-aware training."""
    sts = _studies(studies)
    f, lat, s = quantization_frame(sts), latency_frame(sts), quantization_summary(sts)
    order = list(s.index)
    steps = pd.concat([st["train_loss"].assign(seed=int(st.meta["seed"])) for st in sts], ignore_index=True)
    fig, ax = plt.subplot_mosaic([["acc", "size"], ["lat", "loss"]], figsize=figsize(9.9), layout="constrained")
    plot_paired_accuracy(f, order=order, ax=ax["acc"])
    ax["acc"].set_title(t("quantization.acc_title"), fontsize="medium")
    plot_size(s, ax=ax["size"])
    ax["size"].set_title(t("quantization.size_title"), fontsize="medium")
    plot_latency(lat, order=order, ax=ax["lat"])
    ax["lat"].set_title(t("quantization.lat_title"), fontsize="medium")
    plot_qat_loss(steps, precision=sts[0].meta.get("qconfig", {}).get("qat_recipe", {}).get("precision", "fp32"),
                  ax=ax["loss"])
    ax["loss"].set_title(t("quantization.loss_title"), fontsize="medium")
    for k in ("acc", "size", "lat"):  # five two-line arm names side by side: smaller, so they never touch
        ax[k].tick_params(axis="x", labelsize="small")
    meta = sts[0].meta
    cpu = meta.get("machine", {}).get("cpu", "?")
    share = float(np.median(lat["cpu_share"])) if "cpu_share" in lat else float("nan")
    fig.supxlabel(t("quantization.arms_note") + "\n" + t("seeds_n", n=n_text([len(sts)])) + "; " +
                  t("quantization.machine", cpu=cpu, threads=meta.get("threads", "?"), share=f"{share:.0%}"),
                  fontsize="small")
    fig.suptitle(t("quantization.title"))
    fit_texts(fig)
    keep_texts_inside(ax["size"])
    legend_below(ax["lat"])
    return fig


__all__ = ["latency_frame", "plot_latency", "plot_paired_accuracy", "plot_qat_loss", "plot_size", "quantization",
           "quantization_frame", "quantization_summary"]
