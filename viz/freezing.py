"""3.2.2 冻结策略: which layer groups each freezing strategy trains, what freezing costs and
gives, gradual unfreezing, and how much each layer changes when nothing is frozen.

Axes-level functions (``plot_*``) draw one panel from tidy data (a RunSet's tables or a record);
figure-level functions, one per figure id (``freeze_map``, ``freeze_effects``, ``unfreeze``,
``layer_drift``), compose them. Every number drawn is read from the inputs.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ftcore.records.record import RunRecord
from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import (fit_texts, _categories, _count, _fam_latin, _rotate, _short, plot_majority, _group_label, _group_order, _layer_lr_table,
                      _name, _ordered, _palette, _pct, _sep, mean_ci_table, memory_legend, memory_note, n_text,
                      plot_training_memory)
from .basics import plot_metric_by_strategy
from .problems import _few_log_ticks
from .cost import cost_kind, cost_label, run_cost
from .geometry import figsize
from .intervals import plot_paired_differences
from .layout import figure_legend, keep_texts_inside, place_legends
from .memory import MEMORY_PARTS, MIB
from .text import t
from .theme import strong

FREEZE_ORDER = ("none", "bottom", "middle", "head_only", "gradual")


def _trainable_table(layer_state: pd.DataFrame, steps: Sequence[int]) -> pd.DataFrame:
    """Whether each group was trainable during update ``s`` (state recorded after step ``s-1``):
    a frame indexed by step with one boolean column per group."""
    ls = layer_state.sort_values("step", kind="stable")
    out = {}
    for g, df in ls.groupby("group", sort=False):
        state = df.drop_duplicates("step", keep="last").set_index("step")["trainable"]
        col = []
        for s in steps:
            before = state[state.index <= s - 1]
            col.append(bool(before.iloc[-1]) if len(before) else bool(state.iloc[0]))
        out[g] = col
    return pd.DataFrame(out, index=list(steps))


# ------------------------------------------------------------------------------------ freeze-map
def _unfreeze_steps(layer_state: pd.DataFrame, events: pd.DataFrame | None = None) -> dict[str, int]:
    """Group → the step at which it became trainable after starting frozen."""
    out = {}
    ls = layer_state.sort_values("step", kind="stable")
    for g, df in ls.groupby("group", sort=False):
        if not bool(df["trainable"].iloc[0]):
            on = df[df["trainable"].astype(bool) & (df["step"] > df["step"].iloc[0])]
            if len(on):
                out[g] = int(on["step"].iloc[0])
    if events is not None and len(events):
        for _, e in events[events["kind"] == "unfreeze"].iterrows():
            out.setdefault(str(e["detail"]), int(e["step"]))
    return out


def plot_freeze_map(layer_state: pd.DataFrame, *, by: str = "strategy", events: pd.DataFrame | None = None,
                    order: Sequence | None = None, ax: Axes | None = None) -> Axes:
    """Rows = ``by`` values, columns = layer groups in depth order; colour = trainable at the
    first recorded step, text = the group's parameter count (and, for groups unfrozen later, the
    step they were unfrozen); right of each row, the trainable total at the start."""
    ax = ax or plt.gca()
    rows = _ordered(layer_state[by], order or FREEZE_ORDER)
    groups = _group_order(layer_state["group"])
    start = (layer_state.sort_values("step", kind="stable").drop_duplicates([by, "group"], keep="first")
             .set_index([by, "group"]))
    Z = np.full((len(rows), len(groups)), np.nan)
    for i, r in enumerate(rows):
        for j, g in enumerate(groups):
            if (r, g) in start.index:
                Z[i, j] = float(bool(start.loc[(r, g), "trainable"]))
    c_on, c_off = "#55a868", "#d9d9d9"
    cmap = mcolors.ListedColormap([c_off, c_on])
    ax.pcolormesh(np.arange(len(groups) + 1), np.arange(len(rows) + 1), np.ma.masked_invalid(Z),
                  cmap=cmap, vmin=0, vmax=1, edgecolors="white", linewidth=2)
    totals = []
    for i, r in enumerate(rows):
        ls_r = layer_state[layer_state[by] == r]
        ev_r = events[events[by] == r] if events is not None and len(events) and by in events else None
        later = _unfreeze_steps(ls_r, ev_r)
        total, trainable = 0, 0
        for j, g in enumerate(groups):
            if (r, g) not in start.index:  # e.g. the pooler of a run with mean pooling: no such module
                ax.text(j + 0.5, i + 0.5, "—", ha="center", va="center", fontsize=7, color="0.45")
                continue
            n = int(start.loc[(r, g), "n_params"])
            on = bool(start.loc[(r, g), "trainable"])
            total += n
            trainable += n if on else 0
            text = _count(n)
            if g in later:
                text += "\n" + t("freeze-map.unfrozen_at", step=later[g])
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7,
                    color="white" if on else "0.15")
        pct = 100.0 * trainable / total if total else np.nan
        totals.append(t("freeze-map.row_total", n=_count(trainable), pct=_pct(pct)))
    ax.set_xlim(0, len(groups))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(groups)) + 0.5)
    ax.set_xticklabels([_group_label(g) for g in groups])
    _rotate(ax, 35)
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([f"{_short('freeze-map', r)}\n{tot}" for r, tot in zip(rows, totals)], fontsize=7.5)
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("freeze-map.strategy"))
    ax.grid(False)
    ax.tick_params(length=0)
    handles = [Patch(facecolor=c_on, label=t("freeze-map.trainable")), Patch(facecolor=c_off, label=t("freeze-map.frozen"))]
    if np.isnan(Z).any():
        handles.append(Patch(facecolor="white", edgecolor="0.6", label=t("freeze-map.absent")))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=len(handles))
    return ax


def freeze_map(runs: RunSet) -> Figure:
    """Figure ``freeze-map``: which layer groups each freezing strategy trains, from the records."""
    first_seed = runs.values("seed")[0] if runs.values("seed") else None
    sel = runs.select(seed=first_seed) if first_seed is not None else runs
    fig, ax = plt.subplots(figsize=figsize(9.5), layout="constrained")
    plot_freeze_map(sel.table("layer_state"), events=sel.table("events"), ax=ax)
    fig.suptitle(t("freeze-map.title"))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ freeze-effects
def plot_seed_sd(finals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                 label_prefix: str = "freeze-map", ax: Axes | None = None) -> Axes:
    """The standard deviation of ``value`` across seeds per ``by`` value (a bar where n ≥ 2, a note
    where fewer seeds finished)."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or [])
    pal = _palette(order)
    short = []
    for i, name in enumerate(order):
        vals = finals.loc[finals[by] == name, "value"].astype(float)
        vals = vals[np.isfinite(vals)]
        if len(vals) >= 2:
            sd = float(vals.std(ddof=1))
            ax.bar(i, sd, color=pal[name], alpha=0.8, width=0.65, zorder=2)
            ax.text(i, sd, f"{sd:.3f}", ha="center", va="bottom", fontsize=7)
        else:
            short.append((i, len(vals)))
    for i, n in short:
        ax.text(i, 0.5, t("freeze-effects.need2", n=n), transform=ax.get_xaxis_transform(), ha="center",
                va="center", fontsize=7, color="0.35", rotation=90)
    ax.margins(y=0.12)
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.6, len(order) - 0.4)
    return _categories(ax, order, label_prefix, ylabel=t("freeze-effects.sd_axis"), title=t("freeze-effects.spread"))


def freeze_effects(runs: RunSet, memory=None) -> Figure:
    """Figure ``freeze-effects``: per freezing strategy, test accuracy (mean ± 95% t interval, every
    seed a dot, the s.d. across seeds written under it), each strategy's seed-paired difference to
    full fine-tuning with its interval against zero (the 0.01–0.05 effects the verdicts judge), what
    training costs (:mod:`viz.cost`: CPU seconds, else optimizer steps) and what it keeps in memory.

    ``memory`` is a study whose ``tables["memory"]`` has one row per strategy (``arm``) from
    ``figure_studies.memory``: its panel stacks the bytes of parameters, gradients, optimizer state
    and saved activations. Without it the cost panel takes its place (process RSS, the only memory
    older records hold, is flat across strategies and shows nothing)."""
    from .schedules import plot_final_points
    f = runs.finals("accuracy", "test")
    order = _ordered(f["strategy"], FREEZE_ORDER)
    n = n_text(runs.n_seeds(strategy=o) for o in order)
    labels = [_short("freeze-map", o) for o in order]
    pal = _palette(order)
    fig, axes = plt.subplots(2, 2, figsize=figsize(10.5), layout="constrained")
    acc, diff, cost, mem = axes.ravel()
    sds = {}
    for name in order:  # the spread across seeds, written under each mean
        v = f.loc[f["strategy"] == name, "value"].astype(float)
        v = v[np.isfinite(v)]
        if len(v) >= 2:
            sds[name] = t("freeze-effects.sd", sd=f"{v.std(ddof=1):.3f}")
    plot_final_points(f, by="strategy", order=order, prefix="freeze-map.short", ax=acc, colors=pal,
                      majority=majority_share(runs, "test"), n_in_ticks=False, legend=False, notes=sds)
    acc.set_title(t("freeze-effects.acc"))
    ref = "none" if "none" in order else order[0]
    plot_paired_differences(f, ref, by="strategy", order=order, scale=100, digits=1, colors=pal,
                            labels={o: _short("freeze-map", o) for o in order}, ax=diff)
    diff.set_ylabel(t("intervals.diff_axis"))
    diff.set_title(t("freeze-effects.diff"))
    recs = [rec for _, rec in runs]
    kind = cost_kind(recs)
    f["cost"] = [run_cost(rec, kind) if kind else np.nan for _, rec in runs]
    plot_metric_by_strategy(f, "cost", order=order, ylabel=cost_label(kind),
                            title=t("freeze-effects.cost_steps" if kind == "steps" else "cost.title"), ax=cost)
    if memory is not None:
        plot_training_memory(memory.tables["memory"], order=order, labels=labels, ax=mem, legend=False)
        mem.set_title(t("freeze-effects.memory"))
        _mark_growing_arms(memory.tables["memory"], runs, order, mem)
    else:
        mem.set_visible(False)
    for ax in (acc, cost, mem):
        ax.set_xticks(range(len(order)), labels)
    for ax in (acc, diff, cost, mem):
        _rotate(ax, 25)
        ax.set_ylabel(ax.get_ylabel(), fontsize=7.5)
    title = t("freeze-effects.title") + "\n" + t("seeds_n", n=n)
    note = memory_note(getattr(memory, "meta", None)) if memory is not None else ""
    fig.suptitle(title + (_sep() + note if note else ""))
    # one legend under the figure, off every panel: the majority line and the memory parts
    handles, names = [], []
    maj = [ln for ln in acc.get_lines() if ln.get_gid() == "majority"]
    if maj:
        handles, names = maj[:1], [maj[0].get_label()]
    if memory is not None:
        h, n_ = memory_legend(mem, top_first=False)
        handles, names = handles + list(h), names + list(n_)
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(handles), 3), fontsize="small")
    fit_texts(fig)
    for ax in (acc, diff, mem):
        if ax.get_visible():
            keep_texts_inside(ax)  # the values written beside the points, the note over a growing arm
    place_legends(fig)
    return fig


def _mark_growing_arms(memory: pd.DataFrame, runs: RunSet, order, ax: Axes) -> None:
    """Above the bar of each arm whose trainable set grows during training (gradual unfreezing:
    recorded ``unfreeze`` events), say which of its steps the bar counts: its peak, when the study
    counted as many trainable parameters as the run had at its end (``ftcore.analysis.memory``
    measures there), else its first step (older studies: the head only). Written inside the panel
    (the caller keeps it there with :func:`keep_texts_inside`)."""
    mem = memory.assign(arm=memory["arm"].astype(str)).drop_duplicates("arm", keep="last").set_index("arm")
    for i, name in enumerate(order):
        sel = runs.select(strategy=name)
        rec = sel.records[0] if len(sel) else None
        if rec is None or str(name) not in mem.index or not len(rec.events) \
                or not (rec.events["kind"] == "unfreeze").any():
            continue
        row = mem.loc[str(name)]
        at_end = rec.summary.get("trainable_params_at_end")
        peak = at_end is not None and int(row["trainable_params"]) >= int(at_end)
        top = sum(float(row[p]) for p in MEMORY_PARTS if p in row.index) / MIB
        # over its bar; at an end of the row aligned with the bar's outer edge, so it stays in the panel
        ha, x = ("left", i - 0.325) if i == 0 else ("right", i + 0.325) if i == len(order) - 1 else ("center", i)
        ax.annotate(t("freeze-effects.peak" if peak else "freeze-effects.first_step"), (x, top),
                    xytext=(0, 2), textcoords="offset points", ha=ha, va="bottom", fontsize=7,
                    color="0.2", linespacing=1.0)


# ------------------------------------------------------------------------------------ unfreeze
def plot_unfreeze_lrs(record: RunRecord, *, colorbar: bool = True, ax: Axes | None = None) -> Axes:
    """Each layer group's effective LR per step (0 while frozen, grey) as a heatmap, head on top;
    the recorded unfreezing events as markers on the boundary where each group starts training."""
    ax = ax or plt.gca()
    lrs = _layer_lr_table(record.lrs[["step", "layer", "group", "lr"]])
    steps = sorted(lrs["step"].unique())
    groups = _group_order(lrs["layer"])[::-1]  # head at the top
    wide = lrs.pivot_table(index="layer", columns="step", values="lr").reindex(index=groups, columns=steps)
    if len(record.layer_state):
        tr = _trainable_table(record.layer_state, steps).T.reindex(index=groups).fillna(True).astype(bool)
        wide = wide.where(tr.to_numpy(), 0.0)
    Z = wide.to_numpy(float)
    cmap = plt.get_cmap("magma_r").with_extremes(under="#e6e6e6")
    pos = Z[Z > 0]
    vmin = float(pos.min()) if len(pos) else 1e-12
    vmax = float(pos.max()) if len(pos) else 1.0
    if vmax <= vmin:
        vmax = vmin * 1.0001
    edges = np.concatenate([[steps[0] - 0.5], np.asarray(steps, float) + 0.5]) if steps else np.array([0, 1])
    mesh = ax.pcolormesh(edges, np.arange(len(groups) + 1), np.where(Z > 0, Z, vmin * 0.5), cmap=cmap,
                         vmin=vmin, vmax=vmax, edgecolors="white", linewidth=0.3 if len(steps) < 60 else 0)
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, extend="min", shrink=0.9)
        cb.set_label(t("lr"))
        cb.formatter.set_powerlimits((-3, 3))
    ev = record.events
    ev = ev[ev["kind"] == "unfreeze"] if len(ev) else ev
    row = {g: i for i, g in enumerate(groups)}
    xs, ys = [], []
    for _, e in ev.iterrows():
        if e["detail"] in row:
            xs.append(int(e["step"]) + 0.5)
            ys.append(row[e["detail"]] + 0.5)
    if xs:
        ax.scatter(xs, ys, marker="|", s=260, linewidths=3, color="#1f77b4", zorder=4, clip_on=False,
                   label=t("unfreeze.event"))
    ax.set_yticks(np.arange(len(groups)) + 0.5)
    ax.set_yticklabels([_group_label(g) for g in groups])
    ax.set_ylim(len(groups), 0)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # a narrow panel: ticks that stay apart
    ax.set_ylabel(t("layer_group"))
    ax.grid(False)
    handles = [Patch(facecolor="#e6e6e6", label=t("unfreeze.frozen"))]
    if xs:
        handles.append(Line2D([], [], marker="|", ls="none", ms=12, mew=3, color="#1f77b4", label=t("unfreeze.event")))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=1)
    if len(steps) <= 6:
        ax.set_xticks(steps)
    return ax


def plot_val_accuracy_curves(evals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                             label_prefix: str = "freeze-map", majority: float | None = None,
                             legend_title: bool = True, ax: Axes | None = None) -> Axes:
    """Validation accuracy per step, one line per ``by`` value: the mean over seeds with a band of
    its 95% t interval (:func:`~viz._common.mean_ci`, ``gid="ci95"``; where ≥ 2 seeds were
    evaluated) and each seed as a thin line; the majority-class accuracy (``majority``, as
    recorded) as a labelled dotted line. The legend's title says n and what the band is, unless
    ``legend_title=False`` (the figure says it)."""
    ax = ax or plt.gca()
    order = _ordered(evals[by], order or FREEZE_ORDER)
    pal = _palette(order)
    ns = [evals.loc[evals[by] == name, "seed"].nunique() if "seed" in evals else 1 for name in order]
    for name in order:
        d = evals[evals[by] == name]
        if "seed" in d and d["seed"].nunique() > 1:
            for _, s in d.groupby("seed"):
                ax.plot(s["step"], s["value"], color=pal[name], lw=0.7, alpha=0.35)
        st = mean_ci_table(d, "step").sort_values("step")
        ax.plot(st["step"], st["mean"], color=pal[name], lw=2.2, marker="o" if len(st) <= 12 else None,
                label=_name(label_prefix, name))
        band = st[st["n"] > 1]
        if len(band):
            ax.fill_between(band["step"], band["low"], band["high"], color=pal[name], alpha=0.18, lw=0, gid="ci95")
    plot_majority(ax, majority)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # a narrow panel: a few step ticks
    ax.set_ylabel(t("val_accuracy"))
    ax.set_title(t("unfreeze.val_panel"))
    ax.legend(title=t("seeds_n", n=n_text(ns)) if legend_title else None, loc="best")
    return ax


def unfreeze(runs: RunSet) -> Figure:
    """Figure ``unfreeze``: the gradual run's per-group LR and unfreezing events (left; the lowest
    seed), validation accuracy of gradual unfreezing vs full fine-tuning (right: the mean over seeds
    with its 95% t band, each seed a thin line)."""
    seeds = sorted(runs.values("seed"))
    rec = runs.one(strategy="gradual", seed=seeds[0]) if seeds else runs.one(strategy="gradual")
    fig, axes = plt.subplots(1, 2, figsize=figsize(7.5), layout="constrained", gridspec_kw={"width_ratios": [1.25, 1]})
    plot_unfreeze_lrs(rec, ax=axes[0])
    axes[0].set_title(t("unfreeze.lr_panel", seed=seeds[0] if seeds else "-"))
    plot_val_accuracy_curves(runs.evals("accuracy", "validation"), order=["gradual", "none"],
                             majority=majority_share(runs, "validation"), legend_title=False, ax=axes[1])
    # both panels' legends as one under the figure: above the panels they took the heatmap's and
    # the curves' height
    figure_legend(fig, axes, ncols=3, handlelength=None)
    n = n_text(runs.n_seeds(strategy=k) for k in ("gradual", "none") if runs.n_seeds(strategy=k))
    fig.suptitle(t("unfreeze.title") + "\n" + t("seeds_n", n=n))
    return fit_texts(fig)


# ------------------------------------------------------------------------------------ layer-drift
def plot_layer_drift(drift: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """``relative_change`` (‖Δw‖/‖w‖) per pretrained layer group in depth order, as points joined by
    a line on a log y axis (a bar on a log axis has no meaningful base). The new head is left out
    (it had no pretrained weights: its change from a random start is not drift), and so is a group
    that did not move at all (e.g. the pooler under mean pooling)."""
    ax = ax or plt.gca()
    moved = drift[(drift["group"] != "head") & (drift["relative_change"].astype(float) > 0)]
    groups = _group_order(moved["group"])
    d = moved.set_index("group").reindex(groups)
    ax.plot(range(len(groups)), d["relative_change"].astype(float), color="#4c72b0", marker="o", lw=2, ms=7,
            zorder=2)
    ax.set_yscale("log")
    ax.margins(y=0.15)
    v = d["relative_change"].astype(float)
    if len(v):  # a few plain labels, never the crowded minor ticks of a span under a decade
        _few_log_ticks(ax, float(v.max() / v.min()))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([_group_label(g) for g in groups])
    _rotate(ax, 40)
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-drift.change"), fontfamily=_fam_latin())
    ax.set_title(t("layer-drift.change_panel"))
    return ax


def plot_layer_cka(drift: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Linear CKA of each layer's representations to the pretrained model's (groups without a
    representation, e.g. the head, are left out)."""
    ax = ax or plt.gca()
    groups = [g for g in _group_order(drift["group"])]
    d = drift.set_index("group").reindex(groups)
    d = d[np.isfinite(d["cka"].astype(float))]
    ax.plot(range(len(d)), d["cka"], color="#dd8452", marker="o", lw=2, ms=7)
    ax.set_xticks(range(len(d)))
    ax.set_xticklabels([_group_label(g) for g in d.index])
    _rotate(ax, 40)
    ax.margins(y=0.15)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-drift.cka"))
    ax.set_title(t("layer-drift.cka_panel"))
    return ax


def layer_drift(study) -> Figure:
    """Figure ``layer-drift``: relative weight change and CKA per layer after full fine-tuning."""
    drift = study.tables["drift"]
    fig, axes = plt.subplots(1, 2, figsize=figsize(7.5), layout="constrained")
    plot_layer_drift(drift, ax=axes[0])
    plot_layer_cka(drift, ax=axes[1])
    meta = getattr(study, "meta", {}) or {}
    title = t("layer-drift.title")
    if {"test_accuracy", "n_examples"} <= set(meta):  # no run id: a reader cannot use it
        acc = meta["test_accuracy"]
        title += "\n" + t("layer-drift.note", acc=f"{acc:.3f}", n=meta["n_examples"])
    fig.suptitle(title)
    return fit_texts(fig)


__all__ = [
    "freeze_map", "freeze_effects", "unfreeze", "layer_drift",
    "plot_freeze_map", "plot_seed_sd", "plot_unfreeze_lrs", "plot_val_accuracy_curves", "plot_layer_drift",
    "plot_layer_cka",
]
