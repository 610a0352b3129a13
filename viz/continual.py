"""Forgetting, continual learning and parameter-efficient fine-tuning.

Figures ``forgetting`` (accuracy matrices of real task sequences), ``forgetting_pretrained``
(probes of the encoder before and after fine-tuning), ``peft`` (LoRA, prompt tuning, BitFit vs
full fine-tuning) and ``continual_table`` (the chapter's table, measured). Every number comes
from a record (``ftcore.records.record``) or a stored study (``ftcore.records.studies``); no torch here.
"""
from __future__ import annotations

import textwrap

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
from ftcore.records.record import RunRecord

from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import (MEMORY_PARTS, fit_texts, wrap_text, keep_texts_inside, legend_below, plot_majority, _legend_dedup, _lr, _name, _rotate, mean_ci, memory_legend,
                      memory_note, n_text, plot_seed_bars, plot_training_memory, seed_note)
from .cost import cost_kind, cost_label, run_cost
from .layout import figure_legend
from .geometry import figsize
from .intervals import plot_paired_differences
from .theme import current_lang, strong
from .text import has, t



# ------------------------------------------------------------------------------------ helpers
def _task(name: str) -> str:
    return _name("continual.task", name)


def _task_short(name: str) -> str:
    """A task's short name (tick labels of the accuracy matrices), its full name if none is registered."""
    return _name("continual.short", name) if has(f"continual.short.{name}") else _task(name)


def _method(method: str, rec: RunRecord | None = None) -> str:
    """A continual-learning method's label (replay with its memory share, read from the config)."""
    from .text import STRINGS
    if "{pct}" in STRINGS[current_lang()].get(f"continual.method.{method}", ""):  # replay variants: their memory share
        mem = (rec.config.get("continual", {}) if rec is not None else {}).get("replay_memory")
        pct = f"{100 * float(mem):g}" if mem is not None else "?"
        return t(f"continual.method.{method}", pct=pct)
    return _name("continual.method", method)


def _fmt(v: float, spec: str = ".2f") -> str:
    return format(v, spec) if np.isfinite(v) else t("continual.na")


def sequence_cost(rec: RunRecord, n_tasks: int | None = None, kind: str = "steps") -> float:
    """What a task sequence cost over its first ``n_tasks`` tasks (from ``summary["per_task"]``) or
    the whole sequence, as ``kind`` (:mod:`viz.cost`: CPU seconds, optimizer steps or examples seen;
    never the wall time, which measures the machine's load as much as the method)."""
    return run_cost(rec, kind, n_tasks)


# ------------------------------------------------------------------------------------ forgetting
def plot_accuracy_matrix(matrix: pd.DataFrame, *, ax: Axes | None = None, vmin: float = 0.0, vmax: float = 1.0,
                         cmap: str = "viridis", numbered: bool = False, percent: bool = False) -> Axes:
    """Heatmap of an accuracy matrix (rows: after training task i; columns: evaluated on task j),
    NaN cells blank, each value written in its cell. Ticks name the tasks (short names), or with
    ``numbered=True`` number them 1 … T (a key elsewhere names them: small panels side by side);
    ``percent=True`` writes each value as a whole percentage (narrow panels)."""
    ax = ax or plt.gca()
    a = matrix.to_numpy(dtype=float)
    cm = plt.get_cmap(cmap).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(a), cmap=cm, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if np.isfinite(a[i, j]):
                r, g, b, _ = cm((a[i, j] - vmin) / (vmax - vmin))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, f"{100 * a[i, j]:.0f}" if percent else f"{a[i, j]:.2f}", ha="center", va="center",
                        fontsize="small",
                        color="white" if dark else "black")
    if numbered:
        ax.set_xticks(range(a.shape[1]), [str(j + 1) for j in range(a.shape[1])])
        ax.set_yticks(range(a.shape[0]), [str(i + 1) for i in range(a.shape[0])])
    else:
        ax.set_xticks(range(a.shape[1]), [_task_short(c) for c in matrix.columns])
        ax.set_yticks(range(a.shape[0]), [_task_short(r) for r in matrix.index])
    ax.set_xlabel(t("forgetting.cols"))
    ax.set_ylabel(t("forgetting.rows"))
    ax.grid(False)
    return ax


METHOD_MARKERS = "osD^vP*X"


def _method_short(method: str) -> str:
    """A method's short name (tick labels), its full label if none is registered."""
    return _name("continual.method_short", method) if has(f"continual.method_short.{method}") else _method(method)


def _method_rows(data: pd.DataFrame, value: str, half: str, ax: Axes, seeds: pd.DataFrame | None,
                 labels: bool = False) -> None:
    """One row per method from the top: the mean ``value`` in the method's colour and marker, its
    95% t interval (column ``half``) as a horizontal error bar (``gid="ci95"``), with ``seeds`` each
    sequence as a faint dot just below; the methods' short names on the y axis."""
    pal = sns.color_palette(n_colors=max(len(data), 1))
    for k, (_, r) in enumerate(data.iterrows()):
        h = float(r.get(half, np.nan))
        if np.isfinite(h):
            eb = ax.errorbar([r[value]], [k], xerr=[h], fmt="none", ecolor=pal[k], elinewidth=1.4, capsize=3, zorder=2)
            eb.lines[2][0].set_gid("ci95")
        if seeds is not None and "method" in r:
            v = seeds.loc[seeds["method"] == r["method"], value].astype(float)
            ax.scatter(v, np.full(len(v), k + 0.22), s=10, color=pal[k], alpha=0.45, linewidths=0, zorder=2)
        ax.scatter([r[value]], [k], s=55, color=pal[k], marker=METHOD_MARKERS[k % len(METHOD_MARKERS)],
                   edgecolors="black", linewidths=0.5, label=r["label"] if labels else None, zorder=3)
    ax.set_yticks(range(len(data)), [_method_short(m) for m in data["method"]] if "method" in data
                  else list(data["label"]))
    ax.set_ylim(len(data) - 0.4, -0.6)
    ax.margins(x=0.15)


def plot_cost_vs_accuracy(data: pd.DataFrame, *, ax: Axes | None = None, legend: bool = True,
                          seeds: pd.DataFrame | None = None) -> Axes:
    """Final average accuracy per method, one row each from the top (columns ``label``,
    ``average_accuracy``; with ``average_half``, the half-width of its 95% t interval over seeds, as a
    horizontal error bar, ``gid="ci95"``), in the colours and markers of
    :func:`plot_mean_forgetting`, and each method's measured cost (``cost_s``, of ``cost_kind``)
    printed in a column at the right (``gid="cost"``): sequential methods all take the same optimizer
    steps, so a scatter against cost stacks them on one point. With ``seeds`` (one row per sequence:
    ``method``, ``average_accuracy``) each sequence as a faint dot."""
    ax = ax or plt.gca()
    _method_rows(data, "average_accuracy", "average_half", ax, seeds, labels=True)
    right = blended_transform_factory(ax.transAxes, ax.transData)
    for k, cost in enumerate(data["cost_s"].astype(float) if "cost_s" in data else []):
        if np.isfinite(cost):
            ax.text(1.03, k, f"{cost:,.0f}" if cost >= 100 else f"{cost:.3g}", transform=right, ha="left",
                    va="center", fontsize="small", gid="cost")
    kind = data["cost_kind"].iloc[0] if "cost_kind" in data and len(data) else None
    if kind:  # the column's header: what the cost is
        ax.text(1.03, -0.6, cost_label(kind), transform=right, ha="left", va="bottom", fontsize="small",
                gid="cost")
    ax.set_xlabel(t("forgetting.avg_axis"))
    if legend:
        ax.legend(fontsize="small", loc="best")
    return ax


def plot_mean_forgetting(data: pd.DataFrame, *, ax: Axes | None = None, seeds: pd.DataFrame | None = None) -> Axes:
    """Mean forgetting per method, one row each from the top (``mean_forgetting``; with
    ``forgetting_half`` its 95% t interval as a horizontal error bar, ``gid="ci95"``), in the
    colours and markers of :func:`plot_cost_vs_accuracy`'s rows; with ``seeds`` each sequence's value as a
    faint dot. Zero (nothing forgotten) as a line."""
    ax = ax or plt.gca()
    _method_rows(data, "mean_forgetting", "forgetting_half", ax, seeds)
    ax.axvline(0, color="0.3", lw=0.8, zorder=1)
    ax.set_xlabel(t("forgetting.forg_axis"))
    ax.xaxis.set_major_locator(MaxNLocator(3))  # a narrow panel: three ticks at most
    return ax


def forgetting_frame(runs: RunSet) -> pd.DataFrame:
    """One row per task sequence: method, its label, accuracy matrix, forgetting metrics and cost."""
    rows = []
    kind = cost_kind(runs.records)
    for labels, rec in runs:
        m = accuracy_matrix(rec)
        fm = forgetting_metrics(m)
        rows.append({**labels, "label": _method(labels["method"], rec), "matrix": m, "status": rec.status,
                     "average_accuracy": fm["average_accuracy"], "mean_forgetting": fm["mean_forgetting"],
                     "cost_s": sequence_cost(rec, kind=kind) if kind else np.nan})
    return pd.DataFrame(rows).assign(cost_kind=kind) if rows else pd.DataFrame(rows)


def forgetting_summary(data: pd.DataFrame) -> pd.DataFrame:
    """One row per method (order of first appearance) from :func:`forgetting_frame`'s sequences:
    ``n`` sequences, the mean accuracy matrix (cell by cell over the sequences that measured it),
    mean forgetting and final average accuracy (the means of the sequences' own values) with the
    half-widths of their 95% t intervals (``forgetting_half``, ``average_half``; nan for one
    sequence), the mean measured cost and how many sequences diverged."""
    rows = []
    for method, g in data.groupby("method", sort=False):
        mats = list(g["matrix"])
        mean = pd.concat(mats).groupby(level=0, sort=False).mean().reindex(index=mats[0].index,
                                                                          columns=mats[0].columns)
        forg, forg_half, n = mean_ci(g["mean_forgetting"])
        avg, avg_half, _ = mean_ci(g["average_accuracy"])
        rows.append({"method": method, "label": g["label"].iloc[0], "n": len(g), "matrix": mean,
                     "mean_forgetting": forg, "forgetting_half": forg_half, "average_accuracy": avg,
                     "average_half": avg_half, "cost_s": float(np.nanmean(g["cost_s"].astype(float))),
                     "cost_kind": g["cost_kind"].iloc[0] if "cost_kind" in g else None,
                     "diverged": int((g["status"] == "diverged").sum())})
    return pd.DataFrame(rows)


def _forgetting_mosaic(n: int) -> list[list[str]]:
    """Matrices ``m0`` … first, then the forgetting panel ``forg``, then the cost panel ``cost``.

    Up to five methods: four columns, the panels after the matrices, ``cost`` filling the rest of
    the last row (a row of its own if none is left). More: every matrix in one row, and ``forg`` and
    ``cost`` sharing the row below (the matrices then carry short titles, the legend the full names)."""
    if n > 5:
        k = round(0.4 * n)
        return [[f"m{j}" for j in range(n)], ["forg"] * k + ["cost"] * (n - k)]
    ncols = 4 if n + 3 > 5 else n + 3
    cells = [f"m{k}" for k in range(n)] + ["forg"]
    rows = [cells[i:i + ncols] for i in range(0, len(cells), ncols)]
    if len(rows[-1]) == ncols:
        rows.append([])
    rows[-1] += ["cost"] * (ncols - len(rows[-1]))
    return rows


def forgetting(runs: RunSet) -> Figure:
    """Figure ``forgetting``: each method's accuracy matrix, the mean over its task sequences (the
    seeds), tasks numbered (the key heads the legend; the row label on the first column only, the
    tasks being the same in every matrix); mean forgetting per method and final average accuracy
    against mean measured cost, each with its 95% t interval over the sequences as error bars and
    every sequence as a faint dot, and the tasks' mean majority-class accuracy as the floor of the
    average. The legend under the figure names the methods, headed by the task key, n and what the
    error bars are."""
    seqs = forgetting_frame(runs)
    data = forgetting_summary(seqs)
    mosaic = _forgetting_mosaic(len(data))
    one_row = len(mosaic[0]) == len(data) and len(data) > 5
    fig, ax = plt.subplot_mosaic(mosaic, figsize=figsize(11.0 if one_row else 9.9), layout="constrained",
                                 height_ratios=[1, 1.6] if one_row else None)
    where = {name: (i, j) for i, row in enumerate(mosaic) for j, name in enumerate(row)}
    for k, (_, r) in enumerate(data.iterrows()):
        a = ax[f"m{k}"]
        plot_accuracy_matrix(r["matrix"], ax=a, numbered=True, percent=one_row)
        title = _method_short(r["method"]) if one_row else r["label"]
        if r["diverged"]:
            title += f" ({t('diverged')} {r['diverged']}/{r['n']})"
        a.set_title(title, fontsize="small" if one_row else "medium")  # one row: narrow matrices
        i, j = where[f"m{k}"]
        if j:  # the rows are the same tasks in every matrix: named in the first column only
            a.set_ylabel("")
            if one_row:
                a.tick_params(labelleft=False)
        elif one_row:
            a.set_xlabel(t("forgetting.cols") + " (%)")
            a.set_ylabel(wrap_text(a.get_ylabel(), 14))  # one row of small matrices: a short label
        below = mosaic[i + 1][j] if i + 1 < len(mosaic) else None
        if (below is not None and below.startswith("m")) or (one_row and j):  # named once per row
            a.set_xlabel("")
    plot_mean_forgetting(data, ax=ax["forg"], seeds=seqs)
    ax["forg"].set_title(t("forgetting.forg_title"), fontsize="medium")
    cost_ax = ax["cost"]
    plot_cost_vs_accuracy(data, ax=cost_ax, legend=False, seeds=seqs)
    tasks = list(data["matrix"].iloc[0].columns) if len(data) else []
    shares = [majority_share(runs, "test", task=task) for task in tasks]
    if tasks and all(v is not None for v in shares):  # the average accuracy's floor: the tasks' mean majority share
        line = plot_majority(cost_ax, float(np.mean(shares)), orientation="v")
        line.set_label(t("forgetting.majority_avg", v=float(np.mean(shares))))
    cost_ax.set_title(t("forgetting.cost_title"), fontsize="medium")
    cost_ax.sharey(ax["forg"])  # the same methods, row by row: named once, on the forgetting panel
    cost_ax.tick_params(labelleft=False)
    ns = list(data["n"]) if len(data) else [0]
    sep = "，" if current_lang() == "zh" else ", "
    key = t("forgetting.key", tasks=sep.join(f"{j + 1} = {_task(c)}" for j, c in enumerate(tasks)))
    note = key + "\n" + t("forgetting.note" if max(ns) > 1 else "forgetting.note_one", n=n_text(ns))
    # the note heads the legend under the figure (the methods, and the majority line of the cost
    # panel): constrained layout gives a figure legend and a supxlabel the same bottom margin
    leg = fig.legend(*cost_ax.get_legend_handles_labels(), loc="outside lower center", ncols=3,
                     fontsize="small", title=note, title_fontsize="small")
    leg.set_gid("note")
    fig.suptitle(t("forgetting.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ pretrained probes
def probe_frame(probes: dict) -> pd.DataFrame:
    """One row per probe study (keys like ``full_0.001``): method, lr, before/after accuracies."""
    rows = []
    for key, st in probes.items():
        row = st.tables["probe"].iloc[0].to_dict()
        method, _, lr_key = key.rpartition("_")
        lr = float(row.get("lr", lr_key))
        rows.append({**row, "key": key, "method": method or key, "lr": lr,
                     "n_train": st.params.get("n_train"), "n_test": st.params.get("n_test")})
    df = pd.DataFrame(rows)
    if len(df):
        order = list(pd.unique(df["method"]))
        df = df.assign(_m=df["method"].map(order.index)).sort_values(["_m", "lr"]).drop(columns="_m")
    return df.reset_index(drop=True)


def _probe_run_name(r) -> str:
    """A fine-tuning run's tick label: the method's short name and its learning rate."""
    m = r["method"]
    key = f"forgetting-pretrained.short.{m}"
    name = t(key) if has(key) else _name("forgetting-pretrained.method", m)
    return t("forgetting-pretrained.run", method=name, lr=_lr(r["lr"]))


def _run_ticks(ax: Axes, data: pd.DataFrame) -> None:
    ax.set_xticks(np.arange(len(data)), [_probe_run_name(r) for _, r in data.iterrows()])
    _rotate(ax, 30)
    ax.set_xlabel(t("forgetting-pretrained.run_axis"))


def plot_probe_before_after(data: pd.DataFrame, *, probe: str = "linear", ax: Axes | None = None) -> Axes:
    """Dumbbells: ``{probe}_before`` (hollow) and ``{probe}_after`` (filled) accuracy per run, joined
    by a line, coloured by method."""
    ax = ax or plt.gca()
    methods = list(pd.unique(data["method"]))
    pal = dict(zip(methods, sns.color_palette(n_colors=max(len(methods), 1))))
    xs = np.arange(len(data))
    before, after = data[f"{probe}_before"].astype(float), data[f"{probe}_after"].astype(float)
    colors = [pal[m] for m in data["method"]]
    ax.vlines(xs, before, after, colors=colors, lw=2.5, alpha=0.7)
    ax.scatter(xs, before, s=60, facecolors="white", edgecolors=colors, linewidths=1.8, zorder=3,
               label=t("forgetting-pretrained.before"), gid="before")
    ax.scatter(xs, after, s=60, color=colors, edgecolors="black", linewidths=0.5, zorder=4,
               label=t("forgetting-pretrained.after"), gid="after")
    _run_ticks(ax, data)
    ax.set_xlim(-0.6, len(data) - 0.4)
    ax.set_ylabel(t("forgetting-pretrained.probe_axis"))
    ax.legend(handles=[Line2D([], [], marker="o", ls="none", mfc="white", mec="0.3", mew=1.5,
                              label=t("forgetting-pretrained.before")),
                       Line2D([], [], marker="o", ls="none", color="0.3", label=t("forgetting-pretrained.after"))],
              fontsize="small", loc="lower left")
    return ax


def forgetting_pretrained(**probes) -> Figure:
    data = probe_frame(probes)
    has_ft = "finetune_test_accuracy" in data.columns
    fig, axes = plt.subplots(1, 3 if has_ft else 2, figsize=figsize(9.9), layout="constrained", sharey=False)
    probe_task = _task(data["probe_task"].iloc[0]) if len(data) else ""
    ft_task = _task(data["task"].iloc[0]) if len(data) else ""
    for ax, probe in zip(axes, ("linear", "knn")):
        plot_probe_before_after(data, probe=probe, ax=ax)
        ax.set_title(t(f"forgetting-pretrained.{probe}", task=probe_task), fontsize="medium")
    if has_ft:
        ax = axes[2]
        methods = list(pd.unique(data["method"]))
        pal = dict(zip(methods, sns.color_palette(n_colors=max(len(methods), 1))))
        xs = np.arange(len(data))
        # one run each: a point, not a bar from 0 (a bar would hide differences of a few points)
        ax.scatter(xs, data["finetune_test_accuracy"].astype(float), s=60, color=[pal[m] for m in data["method"]],
                   edgecolors="black", linewidths=0.5, zorder=3, gid="finetune")
        ax.set_xlim(-0.6, len(data) - 0.4)
        ax.margins(y=0.25)
        _run_ticks(ax, data)
        ax.set_ylabel(t("test_accuracy"))
        ax.set_title(t("forgetting-pretrained.finetune", task=ft_task), fontsize="medium")
    # before/after once for both probe panels, under the figure (in a panel it crossed the dumbbells),
    # titled with the figure's note
    r0 = data.iloc[0] if len(data) else {}
    note = t("forgetting-pretrained.note", task=ft_task, n_train=r0.get("n_train", "?"), n_test=r0.get("n_test", "?"))
    figure_legend(fig, axes[:2], ncols=2, title=note, title_fontsize="small", handlelength=None)
    fig.suptitle(t("forgetting-pretrained.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ PEFT
def plot_trainable_share(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """Trainable parameters (% of the model) per method, log y, each bar labelled with its value."""
    ax = ax or plt.gca()
    pct = data.groupby("method", sort=False)["trainable_pct_at_end"].mean().reindex(order).astype(float)
    xs = np.arange(len(order))
    ax.bar(xs, pct.to_numpy(), 0.7, color=sns.color_palette()[0], alpha=0.8)
    for x, v in zip(xs, pct):
        if np.isfinite(v):
            ax.text(x, v * 1.15, f"{v:.3g}%", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.01 and 100 (%), not 10⁻² and 10²
    fin = pct[np.isfinite(pct) & (pct > 0)]
    if len(fin):
        ax.set_ylim(fin.min() / 3, fin.max() * 6)
    ax.set_xticks(xs, [_name("peft.method", m) for m in order])
    ax.set_ylabel(t("trainable_pct"))
    return ax


def plot_probe_drop(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Grouped bars: probe accuracy drop (before − after, points) per run, linear and kNN."""
    ax = ax or plt.gca()
    xs = np.arange(len(data))
    w = 0.38
    for k, probe in enumerate(("linear", "knn")):
        drop = 100 * (data[f"{probe}_before"].astype(float) - data[f"{probe}_after"].astype(float))
        pos = xs - w / 2 + k * w
        ax.bar(pos, drop.to_numpy(), w * 0.95, color=sns.color_palette()[(0, 4)[k]], alpha=0.85,
               label=t(f"peft.{probe}"))
        for x, v in zip(pos, drop):
            if np.isfinite(v):
                ax.annotate(f"{v:.1f}", (x, v), xytext=(0, 3 if v >= 0 else -3), textcoords="offset points",
                            ha="center", va="bottom" if v >= 0 else "top", fontsize="small")
    ax.axhline(0, color="black", lw=0.8)
    ax.margins(y=0.25)  # room for the values written above the bars
    ax.set_xticks(xs, [_probe_run_name(r) for _, r in data.iterrows()])
    ax.set_xlabel(t("forgetting-pretrained.run_axis"))
    ax.set_ylabel(t("peft.drop_axis"))
    ax.legend(fontsize="small", loc="best")
    return ax


def peft(runs: RunSet, memory=None, **probes) -> Figure:
    """Figure ``peft``: trainable share, test accuracy, training time, what training keeps in memory
    and the probes' accuracy drop per method. ``memory`` is a study whose ``tables["memory"]`` has
    one row per method (``arm``) from ``figure_studies.memory``; without it the figure has no memory
    panel (process RSS, the only memory older records hold, barely moves between methods)."""
    order = runs.values("method")
    f = runs.finals("accuracy", "test")
    labels = [_name("peft.method", m) for m in order]
    # the narrow panels name the methods briefly (LoRA's rank as a number); the share panel in full
    short = [_name("peft.method_short", m) if has(f"peft.method_short.{m}") else lab for m, lab in zip(order, labels)]
    # the share panel is wide enough for its values written above the bars; the probe drop (two runs) is narrow
    bottom_row = ["time", "mem", "drop"] if memory is not None else ["time", "time", "drop"]
    fig, ax = plt.subplot_mosaic([["pct", "pct", "acc"], bottom_row], figsize=figsize(9.9),
                                 layout="constrained")
    plot_trainable_share(f, order=order, ax=ax["pct"])
    ax["pct"].set_title(t("peft.pct_title"), fontsize="medium")
    # the verdicts judge differences of a few points: each method minus full fine-tuning, seed-paired,
    # with its interval against zero (bars of accuracy from 0 would hide them)
    ref = "full" if "full" in order else order[0]
    plot_paired_differences(f, ref, by="method", order=order, scale=100, digits=1,
                            labels=dict(zip(order, short)), ax=ax["acc"])
    ax["acc"].set_ylabel(t("intervals.diff_short"))
    ax["acc"].set_title(t("peft.diff_title"), fontsize="medium")
    # cost: what each method costs (CPU seconds, else optimizer steps), not the machine's wall time
    kind = cost_kind(rec for _, rec in runs)
    f["cost"] = [run_cost(rec, kind) if kind else np.nan for _, rec in runs]
    plot_seed_bars(f, x="method", value="cost", order=order, x_labels=short, palette=[sns.color_palette()[1]],
                   ax=ax["time"])
    ax["time"].set_ylabel(cost_label(kind))
    ax["time"].set_title(t("peft.cost_title"), fontsize="medium")
    if memory is not None:
        plot_training_memory(memory.tables["memory"], order=order, labels=short, ax=ax["mem"], legend=False)
        ax["mem"].set_title(t("peft.mem_title"), fontsize="medium")
    plot_probe_drop(probe_frame(probes), ax=ax["drop"])
    ax["drop"].set_title(t("peft.drop_title"), fontsize="medium")
    for name in ("pct", "acc", "time", "mem"):
        if name in ax:
            _rotate(ax[name], 50 if name != "pct" else 30)  # the narrow panels: steep, so names stay apart
    _legend_dedup(ax["time"], fontsize="small", loc="lower right")  # diverged runs, if any
    if memory is None:
        fig.supxlabel(seed_note(runs, "method"), fontsize="small")
    else:  # the memory panel is too small for its legend: under the figure, headed by the notes (a figure
        # legend and a supxlabel would share the bottom margin and overlap)
        note = memory_note(getattr(memory, "meta", None))
        leg = fig.legend(*memory_legend(ax["mem"], top_first=False), loc="outside lower center",
                         ncols=len(MEMORY_PARTS), fontsize="small", title_fontsize="small",
                         title=seed_note(runs, "method") + ("\n" + note if note else ""))
        leg.set_gid("note")
    fig.suptitle(t("peft.title"))
    fit_texts(fig)
    keep_texts_inside(ax["drop"])  # the values written on the bars
    legend_below(ax["drop"])  # inside, it would cover the values written on the bars: the panel is too small
    return fig


# ------------------------------------------------------------------------------------ continual table
def continual_frame(runs: RunSet) -> tuple[pd.DataFrame, bool]:
    """Per method: accuracy on task 1 and task 2 after training task 2, training cost up to task 2
    (or of the whole sequence when the records lack per-task times) and its ratio to naive.
    Returns the frame and whether per-task times were used."""
    per_task = all(rec.summary.get("per_task") for rec in runs.records)
    kind = cost_kind(runs.records, 2 if per_task else None)
    rows = []
    for labels, rec in runs:
        m = accuracy_matrix(rec)
        ok = m.shape[0] > 1 and m.shape[1] > 1
        rows.append({**labels, "label": _method(labels["method"], rec),
                     "old": float(m.iloc[1, 0]) if ok else np.nan, "new": float(m.iloc[1, 1]) if ok else np.nan,
                     "cost_s": sequence_cost(rec, 2 if per_task else None, kind=kind) if kind else np.nan,
                     "cost_kind": kind, "tasks": list(m.columns)})
    df = pd.DataFrame(rows)
    naive = df.loc[df["method"] == "naive", "cost_s"]
    base = float(naive.mean()) if len(naive) else np.nan
    df["ratio"] = df["cost_s"] / base
    return df, per_task


def continual_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per method (order of first appearance) from :func:`continual_frame`'s sequences: ``n``,
    the mean old-task and new-task accuracy with the half-widths of their 95% t intervals
    (``old_half``, ``new_half``; nan for one sequence), the mean cost and its ratio to naive's mean
    cost, and the task names."""
    rows = []
    for method, g in df.groupby("method", sort=False):
        old, old_half, _ = mean_ci(g["old"])
        new, new_half, _ = mean_ci(g["new"])
        rows.append({"method": method, "label": g["label"].iloc[0], "n": len(g), "old": old, "old_half": old_half,
                     "new": new, "new_half": new_half, "cost_s": float(np.nanmean(g["cost_s"].astype(float))),
                     "cost_kind": g["cost_kind"].iloc[0] if "cost_kind" in g else None, "tasks": g["tasks"].iloc[0]})
    out = pd.DataFrame(rows, columns=["method", "label", "n", "old", "old_half", "new", "new_half", "cost_s",
                                      "cost_kind", "tasks"])
    naive = out.loc[out["method"] == "naive", "cost_s"]
    out["ratio"] = out["cost_s"] / (float(naive.iloc[0]) if len(naive) else np.nan)
    return out


def _pct_ci(mean: float, half: float) -> str:
    """An accuracy in per cent, with the half-width of its interval where there is one: 81.2 ± 3.4%."""
    if not np.isfinite(mean):
        return t("continual.na")
    if np.isfinite(half):
        return f"{100 * mean:.1f} ± {100 * half:.1f}%"
    return f"{100 * mean:.1f}%"


def plot_method_table(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The table: one row per method, old-task accuracy, new-task accuracy (with ``old_half`` /
    ``new_half``, the half-widths of their 95% t intervals, written as ± where present), time and
    time ratio."""
    ax = ax or plt.gca()
    tasks = data["tasks"].iloc[0] if len(data) else ["?", "?"]
    old, new = _task(tasks[0]), _task(tasks[1]) if len(tasks) > 1 else "?"
    cols = [t("continual-table.method"), t("continual-table.old", old=old, new=new), t("continual-table.new", new=new),
            textwrap.fill(cost_label(data["cost_kind"].iloc[0] if "cost_kind" in data and len(data) else "steps"), 11),
            t("continual-table.ratio")]
    cells = [[r["label"], _pct_ci(r["old"], r.get("old_half", np.nan)), _pct_ci(r["new"], r.get("new_half", np.nan)),
              _fmt(r["cost_s"], ".1f" if r.get("cost_kind") == "cpu_s" else ".0f"),
              t("continual-table.ratio_fmt", r=r["ratio"]) if np.isfinite(r["ratio"]) else t("continual.na")]
             for _, r in data.iterrows()]
    ax.axis("off")
    tab = ax.table(cellText=cells, colLabels=cols, loc="center", cellLoc="center",
                   colWidths=[0.28, 0.23, 0.19, 0.12, 0.18])
    tab.auto_set_font_size(False)
    tab.set_fontsize(7.5)
    for (i, j), cell in tab.get_celld().items():
        cell.set_height(0.24 if i == 0 else 0.11)
        cell.set_edgecolor("0.75")
        if i == 0:
            cell.set_facecolor("0.92")
            cell.get_text().set_fontweight(strong())  # bold where the font has it (not Noto Sans SC)
    return ax


def continual_table(runs: RunSet) -> Figure:
    """Figure ``continual-table``: per method, after the second task, the mean old-task and new-task
    accuracy over the task sequences (± the half-width of the 95% t interval where there are ≥ 2),
    the mean measured time and its ratio to naive's."""
    seqs, per_task = continual_frame(runs)
    data = continual_summary(seqs)
    fig, ax = plt.subplots(figsize=figsize(1.2 + 0.7 * (len(data) + 2)), layout="constrained")
    plot_method_table(data, ax=ax)
    ns = list(data["n"]) if len(data) else [0]
    kind = data["cost_kind"].iloc[0] if "cost_kind" in data and len(data) else None
    note = t("continual-table.note_two" if per_task else "continual-table.note_all", n=n_text(ns),
             cost=cost_label(kind).lower() if current_lang() == "en" else cost_label(kind))
    if max(ns) > 1:
        note += t("continual-table.ci")
    fig.supxlabel(note, fontsize="small")
    fig.suptitle(t("continual-table.title"))
    return fit_texts(fig)


__all__ = ["continual_summary", "continual_table", "forgetting", "forgetting_pretrained", "forgetting_summary", "peft",
           "plot_accuracy_matrix", "plot_cost_vs_accuracy", "plot_mean_forgetting", "plot_method_table",
           "plot_probe_before_after", "plot_probe_drop", "plot_trainable_share"]
