"""3.2.1 微调的基本概念: the fine-tuning pipeline, starting points (from scratch, fine-tuning,
frozen encoder), per-layer learning rates, the basic schedules and the loss landscape.

Axes-level functions (``plot_*``) draw one panel from tidy data (a RunSet's tables or a record);
figure-level functions, one per figure id (``concept``, ``strategies``, ``layer_lr``,
``schedules_basic``, ``landscape``), compose them. Every number drawn is read from the inputs.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from ftcore.records.record import RunRecord
from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import (fit_texts, _categories, _count, _dots, _fam, _fam_latin, _group_label, _group_order, _layer_lr_table,
                      _legend_dedup, _name, _ordered, _palette, _pct, _rotate, _sep, _short, mean_ci, mean_ci_table, n_text,
                      plot_majority)
from .cost import cost_kind, cost_label, run_cost
from .layout import figure_legend
from .geometry import figsize
from .text import has, t
from .theme import current_lang, strong

STRATEGY_ORDER = ("full", "frozen", "random")


# ------------------------------------------------------------------------------------ concept
def _box(ax: Axes, x, y, w, h, lines: list[str], *, face, edge, title_weight=None, fontsize=7.5,
         pad=0.012) -> FancyBboxPatch:
    box = FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad={pad}", facecolor=face, edgecolor=edge,
                         linewidth=1.4, transform=ax.transAxes, zorder=2)
    ax.add_patch(box)
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    # the drawn box is the rectangle plus its pad on each side
    room = ax.transAxes.transform((w + 2 * pad, 0))[0] - ax.transAxes.transform((0, 0))[0]
    texts = [ax.text(x + w / 2, 0, line, ha="center", va="center", transform=ax.transAxes, zorder=3,
                     fontsize=fontsize + (1 if i == 0 else 0), linespacing=1.1,
                     fontweight=(title_weight or strong()) if i == 0 else "normal")
             for i, line in enumerate(lines)]

    def too_wide(txt) -> bool:
        return txt.get_window_extent(renderer).width > 0.9 * room
    # one size for the box's lines: smaller until each fits (down to the print minimum), then a line
    # still too wide is split at its middle " · " (else its middle space)
    size = fontsize
    while any(too_wide(txt) for txt in texts) and size > 7:
        size = max(7, size - 0.25)
        for i, txt in enumerate(texts):
            txt.set_fontsize(size + (1 if i == 0 else 0))
    for txt in texts:
        line = txt.get_text()
        if too_wide(txt):
            sep = " · " if " · " in line else " "
            parts = line.split(sep)
            if len(parts) > 1:
                k = min(range(1, len(parts)), key=lambda j: abs(len(sep.join(parts[:j])) - len(line) / 2))
                txt.set_text(sep.join(parts[:k]) + "\n" + sep.join(parts[k:]))
    # each item gets a slot in proportion to its text lines, so a two-line item is not squeezed
    weights = [1 + 0.8 * txt.get_text().count("\n") for txt in texts]
    unit, used = h / sum(weights), 0.0
    for txt, wt in zip(texts, weights):
        txt.set_y(y + h - (used + wt / 2) * unit)
        used += wt
    return box


def _arrow(ax: Axes, start, end, text: str | None = None, *, rad=0.0, text_offset=(0, 0.03)):
    arr = FancyArrowPatch(start, end, transform=ax.transAxes, arrowstyle="-|>", mutation_scale=16,
                          linewidth=1.6, color="0.3", connectionstyle=f"arc3,rad={rad}", zorder=1)
    ax.add_patch(arr)
    if text:
        if len(text) > 10 and " " in text:  # two short lines fit between the boxes
            words = text.split(" ")
            k = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(text) / 2))
            text = " ".join(words[:k]) + "\n" + " ".join(words[k:])
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", transform=ax.transAxes, fontsize=7, color="0.25")
    return arr


def plot_concept_diagram(meta: dict, *, record: RunRecord, ax: Axes | None = None) -> Axes:
    """The fine-tuning pipeline as boxes and arrows: the pretrained model (``meta``: model, layers,
    hidden, vocab; total parameters from the record), its layer groups with their parameter counts
    (the record's ``layer_state``), the task dataset (name, labels, split sizes), the new head and
    the run's test accuracy."""
    ax = ax or plt.gca()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    miss = t("concept.missing")
    s = record.summary

    def num(v):
        return f"{v:,}" if isinstance(v, (int, np.integer)) else (miss if v is None else str(v))

    # left column: model (top) and data (bottom)
    model_lines = [t("concept.model"), str(meta.get("model") or miss),
                   t("concept.model_arch", layers=num(meta.get("layers"))),
                   t("concept.model_dims", hidden=num(meta.get("hidden")), vocab=num(meta.get("vocab"))),
                   t("concept.model_params", params=_count(s.get("total_params", np.nan)))]
    _box(ax, 0.02, 0.56, 0.25, 0.38, model_lines, face="#e8f0fa", edge="#4c72b0")
    sizes = dict(meta.get("sizes") or {})  # split -> examples
    split_text = " · ".join(t(f"concept.split.{k}", n=f"{v:,}") if has(f"concept.split.{k}") else f"{k} {v:,}"
                            for k, v in sizes.items())
    labels = meta.get("labels") or s.get("label_names") or []
    task = meta.get("task") or record.config.get("task")
    shown_task = (_name("continual.task", task) if current_lang() == "zh" else str(task)) if task else miss
    data_lines = [t("concept.data"), shown_task,  # no dataset identifier in the Chinese figure
                  t("concept.data_labels", labels=" / ".join(map(str, labels)) or miss),
                  t("concept.data_sizes", splits=split_text or miss)]
    if "train_examples" in s:
        data_lines.append(t("concept.data_used", n=f"{s['train_examples']:,}"))
    _box(ax, 0.02, 0.06, 0.25, 0.38, data_lines, face="#eaf5ea", edge="#55a868")

    # middle: the layer groups as a tower, embeddings at the bottom, the new head on top
    ls = record.layer_state
    first = ls.sort_values("step", kind="stable").drop_duplicates("group", keep="first").set_index("group")
    groups = _group_order(first.index)
    x0, w, top, bottom = 0.40, 0.26, 0.90, 0.06  # narrow enough for the label of the arrow out
    gap = 0.008
    h = (top - bottom - gap * (len(groups) - 1)) / max(len(groups), 1)
    ax.text(x0 + w / 2, top + 0.035, t("concept.tower"), ha="center", va="bottom", transform=ax.transAxes,
            fontsize=8, fontweight=strong())
    for i, g in enumerate(groups):
        y = bottom + i * (h + gap)
        is_head = g == "head"
        face, edge = ("#fde9d9", "#dd8452") if is_head else ("#f2f2f2", "0.45")
        label = (t("concept.new_head", k=s.get("num_labels", len(labels) or miss)).replace(" (", "\n(")
                 .replace("（", "\n（") if is_head else _group_label(g))
        box = FancyBboxPatch((x0, y), w, h, boxstyle="round,pad=0.002", facecolor=face, edgecolor=edge,
                             linewidth=1.2, transform=ax.transAxes, zorder=2)
        ax.add_patch(box)
        ax.text(x0 + 0.01, y + h / 2, label, ha="left", va="center", transform=ax.transAxes, fontsize=7, zorder=3)
        ax.text(x0 + w - 0.01, y + h / 2, _count(first.loc[g, "n_params"]), ha="right", va="center",
                transform=ax.transAxes, fontsize=7, zorder=3, family="DejaVu Sans")

    # right: the result of the base run
    acc = record.metric("accuracy", "test")
    n_test = (s.get("eval_examples") or {}).get("test")
    res_lines = [t("concept.result"), t("concept.result_acc", acc=f"{acc:.3f}" if np.isfinite(acc) else miss)]
    if n_test:
        res_lines.append(t("concept.result_n", n=f"{n_test:,}"))
    if "steps" in s:  # the cost as CPU time, which machine load does not change (never wall time)
        cpu = s.get("cpu_s")
        res_lines.append(t("concept.result_steps", steps=s["steps"]) if cpu is None else
                         t("concept.result_cost", steps=s["steps"], cpu=f"{cpu:.0f}"))
    if "trainable_pct_at_end" in s:
        res_lines.append(t("concept.result_trainable", pct=_pct(s["trainable_pct_at_end"])))
    _box(ax, 0.76, 0.30, 0.22, 0.40, res_lines, face="#f4eefa", edge="#8172b3")

    _arrow(ax, (0.285, 0.75), (x0 - 0.01, 0.75), t("concept.arrow_init"), text_offset=(0, 0.012))
    _arrow(ax, (0.285, 0.25), (x0 - 0.01, 0.25), t("concept.arrow_data"), text_offset=(0, 0.012))
    _arrow(ax, (x0 + w + 0.01, 0.5), (0.745, 0.5), t("concept.arrow_out"), text_offset=(0, 0.012))
    return ax


def concept(runs: RunSet, meta: dict) -> Figure:
    """Figure ``concept``: the fine-tuning pipeline drawn from real metadata and the base run."""
    record = runs.records[0]
    fig, ax = plt.subplots(figsize=figsize(8.5), layout="constrained")
    fig.suptitle(t("concept.title"))
    ax.set_axis_off()
    fig.get_layout_engine().execute(fig)  # the boxes measure their text against the laid-out axes
    plot_concept_diagram(meta, record=record, ax=ax)
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ strategies
def plot_accuracy_vs_size(finals: pd.DataFrame, *, by: str = "strategy", x: str = "size",
                          order: Sequence | None = None, label_prefix: str = "strategies",
                          majority: float | None = None, chance: float | None = None,
                          ax: Axes | None = None) -> Axes:
    """Test accuracy (``value``) against training-set size (log x, a tick at each size present,
    labelled 1,000), one line per ``by``: the mean over that arm's own seeds with its 95% t interval
    (:func:`mean_ci`; none for one seed), each seed a dot, diverged runs as red crosses; the
    majority-class accuracy (``majority``, as recorded) as a labelled dotted line; ``chance`` (a
    given level) likewise. Where the arms have different numbers of seeds, each arm's label says
    its n."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or STRATEGY_ORDER)
    pal = _palette(order)
    has_seed = "seed" in finals
    # seeds per arm and size: an arm with fewer seeds at one size (from scratch on the whole split) says so
    per = {name: (finals[finals[by] == name].groupby(x)["seed"].nunique().tolist() if has_seed else [1])
           for name in order}
    ns = {name: n_text(v) for name, v in per.items()}
    n = n_text([k for v in per.values() for k in v])
    dodge = 0.02  # decades between the strategies at one size, so their bars and dots stay apart
    for i, name in enumerate(order):
        shift = (i - (len(order) - 1) / 2) * dodge
        df = finals[finals[by] == name]
        ok = df[np.isfinite(df["value"].astype(float))]
        st = mean_ci_table(ok, x).sort_values(x)
        label = _name(label_prefix, name)
        if len(set(ns.values())) > 1:
            label += f" ({t('n_seeds', n=ns[name])})"
        ax.errorbar(st[x].astype(float) * 10 ** shift, st["mean"], yerr=st["half"], color=pal[name], marker="o",
                    ms=6, lw=2, capsize=4, label=label, zorder=3)
        _dots(ax, df[x], df["value"], df["status"], pal[name], jitter=0.006, shift=shift, log=True)
    plot_majority(ax, majority)
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, color="0.4", ls=":", lw=1.3, label=t("chance"), zorder=1)
    sizes = sorted(finals[x].unique())
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{int(s):,}" for s in sizes])
    _rotate(ax, 30) if len(sizes) > 4 else None
    ax.minorticks_off()
    ax.set_xlabel(t("strategies.size"))
    ax.set_ylabel(t("test_accuracy"))
    ax.set_title(t("strategies.acc_title"))
    seed_handle = Line2D([], [], ls="none", marker="o", ms=4, color="0.5", alpha=0.6)
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels) if lab]
    keep = list(dict((lab, h) for h, lab in keep).items())
    ax.legend([h for _, h in keep] + [seed_handle], [lab for lab, _ in keep] + [t("strategies.seed_dots")],
              title=t("seeds_n", n=n), loc="best")
    ax.margins(y=0.15)
    return ax


def plot_metric_by_strategy(finals: pd.DataFrame, value: str, *, by: str = "strategy",
                            order: Sequence | None = None, label_prefix: str = "freeze-map",
                            ylabel: str | None = None, title: str | None = None,
                            ax: Axes | None = None) -> Axes:
    """One bar per ``by`` value: the mean of column ``value`` over seeds, the 95% t interval of the
    mean as its error bar (:func:`mean_ci`), seeds as dots (diverged runs as red crosses)."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or [])
    pal = _palette(order)
    for i, name in enumerate(order):
        df = finals[finals[by] == name]
        vals = df[value].astype(float)
        mean, half, _ = mean_ci(vals)
        ax.bar(i, mean, color=pal[name], alpha=0.75, width=0.65, zorder=2)
        if np.isfinite(half) and half > 0:
            ax.errorbar(i, mean, yerr=half, color="0.15", capsize=5, lw=1.4, zorder=3)
        _dots(ax, np.full(len(df), i, dtype=float), vals, df["status"], "0.15", jitter=0.08)
    _categories(ax, order, label_prefix, ylabel=ylabel, title=title)
    if (finals["status"] == "diverged").any():
        _legend_dedup(ax)
    return ax


def plot_trainable_params(finals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                          label_prefix: str = "strategies", ax: Axes | None = None) -> Axes:
    """Trainable parameters at the end of training per ``by`` value (log y), each bar labelled with
    its count and its share of all parameters (so no separate line for the total)."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or STRATEGY_ORDER)
    pal = _palette(order)
    for i, name in enumerate(order):
        df = finals[finals[by] == name]
        n = float(df["trainable_params_at_end"].median())
        pct = float(df["trainable_pct_at_end"].median())
        ax.bar(i, n, color=pal[name], alpha=0.8, width=0.65, zorder=2)
    ax.set_yscale("log")
    lo, hi = float(finals["trainable_params_at_end"].min()), float(finals["trainable_params_at_end"].max())
    bottom = max(lo / 5, 0.5)
    ax.set_ylim(bottom, hi * 30)  # headroom for a short bar's value above it
    for i, name in enumerate(order):  # the value inside a tall bar, above a short one (log heights)
        df = finals[finals[by] == name]
        n = float(df["trainable_params_at_end"].median())
        pct = float(df["trainable_pct_at_end"].median())
        tall = np.log(n / bottom) > 0.5 * np.log(hi * 30 / bottom)
        ax.text(i, n / 1.6 if tall else n * 1.6, f"{_count(n)}\n({_pct(pct)})", ha="center",
                va="top" if tall else "bottom", fontsize=7, color="white" if tall else "0.15", zorder=3)
    return _categories(ax, order, label_prefix, ylabel=t("strategies.params_axis"), title=t("strategies.params_title"))


def strategies(runs: RunSet) -> Figure:
    """Figure ``strategies``: from scratch vs fine-tuning vs frozen encoder, accuracy vs size
    (left), training time (middle) and trainable parameters (right)."""
    f = runs.finals("accuracy", "test")
    order = _ordered(f["strategy"], STRATEGY_ORDER)
    fig, ax = plt.subplot_mosaic([["acc", "time"], ["acc", "params"]], figsize=figsize(9.9), layout="constrained",
                                 width_ratios=[1.55, 1])
    plot_accuracy_vs_size(f, order=order, majority=majority_share(runs, "test"), ax=ax["acc"])
    largest = f["size"].max()
    # what each strategy costs (CPU seconds, else optimizer steps), not the wall time of a busy machine
    big = [rec for lab, rec in runs if lab.get("size") == largest]
    kind = cost_kind(big)
    f["cost"] = [run_cost(rec, kind) if kind else np.nan for _, rec in runs]
    plot_metric_by_strategy(f[f["size"] == largest], "cost", order=order, label_prefix="strategies",
                            ylabel=cost_label(kind), title=t("strategies.cost_title", n=f"{largest:,}"), ax=ax["time"])

    plot_trainable_params(f[f["size"] == largest], order=order, ax=ax["params"])
    for k in ("time", "params"):  # the colours name the strategies; short labels under the bars
        ax[k].set_xticklabels([_short("strategies", o) for o in order])
        ax[k].set_ylabel(ax[k].get_ylabel(), fontsize=7.5)  # two short panels stacked: their labels stay apart
    # the accuracy panel's lines fill it: their legend goes under the whole figure, in columns
    leg = ax["acc"].get_legend()
    title = leg.get_title().get_text()
    if kind == "steps":  # steps are not equal work: said in the note under the figure
        title += _sep() + t("strategies.cost_steps")
    fig.legend(leg.legend_handles, [x.get_text() for x in leg.get_texts()], loc="outside lower center", ncols=3,
               title=title or None, fontsize="small", title_fontsize="small")
    leg.remove()
    fig.suptitle(t("strategies.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ layer-lr
def _lr_strategy_label(name: str, config: dict | None = None) -> str:
    config = config or {}
    if name.startswith("layerwise"):
        a = config.get("layer_decay")
        if a is None:
            m = re.search(r"_([\d.]+)$", name)
            a = m.group(1) if m else "?"
        return t("layer-lr.layerwise", a=f"{float(a):g}" if a != "?" else a)
    if name.startswith("discriminative"):
        f = config.get("discriminative_factor")
        return t("layer-lr.discriminative", f=f"{float(f):g}" if f is not None else "?")
    return _name("layer-lr", name)


def plot_layer_lrs(lrs: pd.DataFrame, *, by: str = "strategy", step: int = 1,
                   labels: dict | None = None, ax: Axes | None = None) -> Axes:
    """The learning rate of each layer group (max over its param groups) at ``step``, one line
    per ``by`` value, groups in depth order, log y."""
    ax = ax or plt.gca()
    df = lrs[lrs["step"] == step]
    per = _layer_lr_table(df[[by, "step", "layer", "group", "lr"]])
    groups = _group_order(per["layer"])
    pos = {g: i for i, g in enumerate(groups)}
    names = list(dict.fromkeys(per[by]))
    pal = _palette(names)
    markers = "osD^vP*"
    for k, name in enumerate(names):
        d = per[per[by] == name].copy()
        d["x"] = d["layer"].map(pos)
        d = d.sort_values("x")
        ax.plot(d["x"], d["lr"], marker=markers[k % len(markers)], color=pal[name], lw=2, ms=7,
                label=(labels or {}).get(name, _lr_strategy_label(name)))
    ax.set_yscale("log")
    ax.margins(y=0.08)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([_group_label(g) for g in groups])
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-lr.axis"))
    ax.set_title(t("layer-lr.panel", step=step))
    ax.legend(loc="best")
    return ax


def layer_lr(runs: RunSet) -> Figure:
    """Figure ``layer-lr``: each layer group's LR at step 1, read from the optimizer's groups."""
    labels = {lab["strategy"]: _lr_strategy_label(lab["strategy"], rec.config) for lab, rec in runs}
    lrs = runs.table("lrs")
    step = int(lrs["step"].min())
    fig, ax = plt.subplots(figsize=figsize(7.5), layout="constrained")
    plot_layer_lrs(lrs, step=step, labels=labels, ax=ax)
    fig.suptitle(t("layer-lr.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ schedules-basic
def plot_head_lr_schedules(lrs: pd.DataFrame, *, by: str = "schedule", layer: str = "head",
                           warmup_steps: int | None = None, ax: Axes | None = None) -> Axes:
    """LR of one layer group (default the head) per step, one line per ``by`` value; the end of
    warmup (if given) as a dotted line."""
    ax = ax or plt.gca()
    d = _layer_lr_table(lrs[lrs["layer"] == layer][[by, "step", "layer", "group", "lr"]])
    names = list(dict.fromkeys(d[by]))
    pal = _palette(names)
    styles = ["-", "--", "-.", ":"]
    for k, name in enumerate(names):
        s = d[d[by] == name].sort_values("step")
        ax.plot(s["step"], s["lr"], color=pal[name], ls=styles[k % len(styles)], lw=2.2,
                marker="o" if len(s) <= 12 else None, ms=5, label=_name("schedules-basic", name))
    if warmup_steps:
        ax.axvline(warmup_steps, color="0.4", ls=":", lw=1.2, label=t("schedules-basic.warmup", n=warmup_steps))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("lr"))
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_ylim(bottom=0)
    ax.set_title(t("schedules-basic.panel"))
    ax.legend(loc="best")
    return ax


def schedules_basic(runs: RunSet) -> Figure:
    """Figure ``schedules-basic``: the head group's recorded LR per step for four schedules."""
    warm = [rec.summary.get("warmup_steps") for rec in runs.records]
    warm = [w for w in warm if w]
    fig, ax = plt.subplots(figsize=figsize(7), layout="constrained")
    plot_head_lr_schedules(runs.table("lrs"), warmup_steps=max(warm) if warm else None, ax=ax)
    fig.suptitle(t("schedules-basic.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ landscape
def _split_name(meta: dict) -> str:
    split = (meta or {}).get("eval_split", "validation")
    return _name("landscape.split", split)


def plot_loss_surface(surface: pd.DataFrame, *, path: pd.DataFrame | None = None, meta: dict | None = None,
                      colorbar: bool = True, ax: Axes | None = None) -> Axes:
    """Filled contours of ``loss`` over (alpha, beta), the projected optimization path, θ₀ at (0, 0)
    and θ₁ at (1, 0)."""
    ax = ax or plt.gca()
    meta = meta or {}
    grid = surface.pivot_table(index="beta", columns="alpha", values="loss")
    A, B = np.meshgrid(grid.columns.to_numpy(float), grid.index.to_numpy(float))
    cs = ax.contourf(A, B, grid.to_numpy(float), levels=14, cmap="viridis")
    ax.contour(A, B, grid.to_numpy(float), levels=cs.levels, colors="white", linewidths=0.4, alpha=0.5)
    if colorbar:
        cb = ax.figure.colorbar(cs, ax=ax, shrink=0.9, pad=0.02)
        cb.ax.yaxis.set_major_locator(MaxNLocator(5))
        cb.set_label(t("landscape.loss_split", split=_split_name(meta)), fontfamily=_fam())
    if path is not None and len(path):
        ax.plot(path["alpha"], path["beta"], color="#c44e52", lw=2, marker="o", ms=4, mec="white", mew=0.6, zorder=3,
                label=t("landscape.path"))
    ax.scatter([0], [0], marker="o", s=90, color="#4c72b0", edgecolor="white", zorder=5, label=t("landscape.theta0"))
    ax.scatter([1], [0], marker="*", s=220, color="#dd8452", edgecolor="white", zorder=5, label=t("landscape.theta1"))
    notes = []
    if "d1_norm" in meta:
        notes.append(t("landscape.norm", d=f"{meta['d1_norm']:.3g}"))
    if path is not None and "off_plane" in path and len(path):
        notes.append(t("landscape.off_plane", d=f"{path['off_plane'].max():.2g}"))
    ax.set_xlabel(t("landscape.alpha"), fontfamily=_fam())
    ax.set_ylabel(t("landscape.beta"), fontfamily=_fam())
    ax.set_title(t("landscape.surface", split=_split_name(meta)), fontfamily=_fam())
    leg = ax.legend(loc="upper left", bbox_to_anchor=(-0.25, -0.2), prop={"family": _fam()}, ncols=1,
                    title="\n".join(notes) or None, alignment="left")
    leg.get_title().set_fontfamily(_fam_latin())
    ax.grid(False)
    return ax


def plot_loss_line(line: pd.DataFrame, *, meta: dict | None = None, ax: Axes | None = None) -> Axes:
    """Loss along θ₀ → θ₁ (alpha) and accuracy on a twin axis; θ₀ (alpha 0) and θ₁ (alpha 1) marked
    with the losses measured there (``meta['loss_theta0']``, ``meta['loss_theta1']``)."""
    ax = ax or plt.gca()
    meta = meta or {}
    split = _split_name(meta)
    line = line.sort_values("alpha")
    c_loss, c_acc = "#4c72b0", "#55a868"
    ax.plot(line["alpha"], line["loss"], color=c_loss, lw=2.2, marker="o", ms=5,
            label=t("landscape.loss_split", split=split))
    for a, key, lab in ((0, "loss_theta0", "theta0"), (1, "loss_theta1", "theta1")):
        ax.axvline(a, color="0.5", ls=":", lw=1.2)
        ax.text(a, 1.01, "θ₀" if a == 0 else "θ₁", transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=7.5, fontfamily=_fam())
        if key in meta and meta[key] is not None:
            ax.scatter([a], [meta[key]], marker="*" if a else "o", s=120 if a else 60, color=c_loss,
                       edgecolor="white", zorder=5)
    ax.set_xlabel(t("landscape.alpha"), fontfamily=_fam())
    ax.set_ylabel(t("landscape.loss_split", split=split), color=c_loss)
    ax.set_title(t("landscape.line"), pad=18, fontfamily=_fam())
    twin = ax.twinx()
    twin.plot(line["alpha"], line["accuracy"], color=c_acc, lw=1.8, ls="--", marker="s", ms=4,
              label=t("landscape.acc_split", split=split))
    twin.set_ylabel(t("landscape.acc_split", split=split), color=c_acc)
    twin.grid(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    title = t("landscape.n_eval", n=meta["n_eval"], split=split) if "n_eval" in meta else None
    ax.legend(h1 + h2, l1 + l2, loc="upper left", bbox_to_anchor=(-0.25, -0.2), title=title)
    return ax


def landscape(land: dict) -> Figure:
    """Figure ``landscape``: the loss surface on the θ₀/θ₁ plane with the path (left) and the 1-D
    interpolation θ₀ → θ₁ with accuracy (right)."""
    meta = land.get("meta") or {}
    fig, axes = plt.subplots(1, 2, figsize=figsize(9.9), layout="constrained", gridspec_kw={"width_ratios": [1.3, 1]})
    plot_loss_surface(land["surface"], path=land.get("path"), meta=meta, ax=axes[0])
    plot_loss_line(land["line"], meta=meta, ax=axes[1])
    # one legend under both panels: under the contour panel alone its notes widened that column
    # and left the colorbar far from the map
    notes = [t_ for ax in axes if (t_ := ax.get_legend().get_title().get_text())]
    leg = figure_legend(fig, axes, ncols=3, title="\n".join(notes) or None, prop={"family": _fam()},
                        handlelength=None)
    leg.get_title().set_fontfamily(_fam_latin())
    fig.suptitle(t("landscape.title"))
    return fit_texts(fig)


# --------------------------------------------------------------------------- data-size-strategy
DSS_ORDER = ("frozen", "layerwise", "full")


def plot_paired_gaps(finals: pd.DataFrame, reference: str, *, by: str = "strategy", x: str = "size",
                     order: Sequence | None = None, label_prefix: str = "strategies", ax: Axes | None = None) -> Axes:
    """Each arm minus ``reference`` at each ``x``: the mean of the seed-paired differences with its
    95% t interval (:func:`ftcore.records.stats.paired_difference`), log x, a zero line."""
    from ftcore.records.stats import paired_difference
    ax = ax or plt.gca()
    order = [o for o in _ordered(finals[by], order or DSS_ORDER) if o != reference]
    pal = _palette([*order, reference])
    dodge = 0.02
    for i, name in enumerate(order):
        shift = (i - (len(order) - 1) / 2) * dodge
        rows = []
        for size, g in finals.groupby(x):
            a = g[g[by] == name].set_index("seed")["value"].astype(float).to_dict()
            b = g[g[by] == reference].set_index("seed")["value"].astype(float).to_dict()
            iv = paired_difference(a, b)
            if iv.n:
                rows.append((float(size), iv.estimate, iv.estimate - iv.low if np.isfinite(iv.low) else 0.0))
        if rows:
            xs, ys, hs = map(np.array, zip(*rows))
            ax.errorbar(xs * 10 ** shift, ys, yerr=hs, color=pal[name], marker="o", ms=5, lw=1.8, capsize=4,
                        label=t("dss.gap", arm=_short(label_prefix, name), ref=_short(label_prefix, reference)))
    ax.axhline(0, color="0.3", lw=1)
    ax.set_xscale("log")
    sizes = sorted(finals[x].unique())
    ax.set_xticks(sizes, [f"{int(v):,}" for v in sizes])
    ax.minorticks_off()
    ax.set_xlabel(t("strategies.size"))
    ax.set_ylabel(t("dss.gap_axis"))
    ax.legend(loc="best")
    return ax


def data_size_strategy(runs: RunSet, sweep: RunSet) -> Figure:
    """Figure ``data-size-strategy``: frozen encoder, layer-wise LRs and full fine-tuning at each
    training-set size (left: test accuracy; middle: each minus full fine-tuning, seed-paired), and
    the sweep that chose the layer-wise arm's top LR (right: validation accuracy per top LR)."""
    f = runs.finals("accuracy", "test")
    order = _ordered(f["strategy"], DSS_ORDER)
    fig, ax = plt.subplot_mosaic([["acc", "gap"], ["acc", "sweep"]], figsize=figsize(10.5), layout="constrained",
                                 width_ratios=[1.4, 1])
    plot_accuracy_vs_size(f, order=order, majority=majority_share(runs, "test"), ax=ax["acc"])
    ax["acc"].set_title(t("strategies.acc_title"))
    plot_paired_gaps(f, "full", order=order, ax=ax["gap"])
    ax["gap"].set_title(t("dss.gap_title"))
    v = sweep.finals("accuracy", "validation")
    means = v.groupby("lr")["value"].mean()
    ax["sweep"].plot(v["lr"], v["value"], "o", color="0.55", ms=4, label=t("strategies.seed_dots"))
    ax["sweep"].plot(means.index, means.values, "-", color=_palette(order)["layerwise"], lw=2)
    best = float(means.idxmax())
    ax["sweep"].axvline(best, color="0.3", ls="--", lw=1)
    ax["sweep"].set_xscale("log")
    ax["sweep"].set_xticks(list(means.index), [f"{x:.0e}".replace("e-0", "e-") for x in means.index])
    ax["sweep"].minorticks_off()
    ax["sweep"].set_xlabel(t("dss.top_lr"))
    ax["sweep"].set_ylabel(t("dss.val_acc"))
    ax["sweep"].set_title(t("dss.sweep_title", n=f"{int(v['train_size'].iloc[0]):,}"))
    ax["gap"].set_xlabel("")
    # the accuracy lines fill their panel: the legend goes under the figure, in columns (as in strategies)
    leg = ax["acc"].get_legend()
    fig.legend(leg.legend_handles, [x.get_text() for x in leg.get_texts()], loc="outside lower center", ncols=3,
               title=leg.get_title().get_text() or None, fontsize="small", title_fontsize="small")
    leg.remove()
    fig.suptitle(t("dss.title"))
    return fit_texts(fig)


__all__ = [
    "concept", "strategies", "data_size_strategy", "plot_paired_gaps", "layer_lr", "schedules_basic", "landscape",
    "plot_concept_diagram", "plot_accuracy_vs_size", "plot_metric_by_strategy", "plot_trainable_params",
    "plot_layer_lrs", "plot_head_lr_schedules", "plot_loss_surface", "plot_loss_line",
]
