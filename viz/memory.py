"""Training memory as stacked bars: what one step keeps in memory per arm (parameters,
gradients, optimizer state, activations saved for backward), in MiB."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .text import t


MEMORY_PARTS = ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")  # stacked bottom → top
MIB = 2 ** 20


def _memory_colors() -> dict[str, tuple]:
    """Parameters grey (every arm holds them all), the parts training adds in colour."""
    pal = sns.color_palette("colorblind")
    return dict(zip(MEMORY_PARTS, ((0.72, 0.72, 0.72), pal[0], pal[1], pal[2])))


def plot_training_memory(memory: pd.DataFrame, *, order: Sequence | None = None,
                         labels: Sequence[str] | Mapping | Callable | None = None, ax: Axes | None = None,
                         legend: bool = True) -> Axes:
    """What training keeps in memory for one step, per arm: stacked bars in MiB (2**20 bytes) of
    parameters, gradients, optimizer state and activations saved for backward (columns
    ``params_bytes`` … ``activations_bytes`` of a ``figure_studies.memory`` table, one row per
    ``arm``), with a legend. ``order`` gives the arms and their x positions (0 … n-1; an arm the
    table lacks gets no bar), by default the table's order; ``labels`` names them (a list in that
    order, a mapping or a function of the arm name; by default the names themselves). Each part's
    rectangles carry its column name as ``gid``; :func:`memory_legend` gives the legend's entries
    (``legend=False`` leaves the legend to the caller, e.g. under a figure)."""
    ax = ax or plt.gca()
    mem = memory.assign(arm=memory["arm"].astype(str)).drop_duplicates("arm", keep="last").set_index("arm")
    order = [str(o) for o in (order if order is not None else mem.index)]
    if labels is None:
        names = order
    elif isinstance(labels, Mapping):
        names = [str(labels.get(o, o)) for o in order]
    elif callable(labels):
        names = [str(labels(o)) for o in order]
    else:
        names = [str(x) for x in labels]
        if len(names) != len(order):
            raise ValueError(f"{len(names)} labels for {len(order)} arms")
    mem = mem.reindex(order)
    xs, bottom = np.arange(len(order)), np.zeros(len(order))
    colors = _memory_colors()
    for part in MEMORY_PARTS:
        h = np.nan_to_num(mem[part].astype(float).to_numpy() / MIB) if part in mem else np.zeros(len(order))
        ax.bar(xs, h, 0.65, bottom=bottom, color=colors[part], edgecolor="white", linewidth=0.5, zorder=2,
               label=t(f"memory.{part}"), gid=part)
        bottom = bottom + h
    ax.set_xticks(xs, names)
    ax.set_xlim(-0.6, len(order) - 0.4)
    top = float(bottom.max()) if len(bottom) else 0.0
    ax.set_ylim(0, top * (1.6 if legend else 1.1) if top > 0 else 1.0)  # room for the legend above shorter bars
    ax.set_ylabel(t("memory.axis"))
    if legend:
        ax.legend(*memory_legend(ax), loc="best", fontsize="small")
    return ax


def memory_legend(ax: Axes, *, top_first: bool = True) -> tuple[list, list[str]]:
    """The handles and labels of a :func:`plot_training_memory` panel, top of the stack first (as a
    column reads) or, with ``top_first=False``, bottom first (as a row reads)."""
    by_text = dict(zip(*ax.get_legend_handles_labels()[::-1]))
    parts = [t(f"memory.{p}") for p in MEMORY_PARTS][::-1 if top_first else 1]
    return [by_text[x] for x in parts if x in by_text], [x for x in parts if x in by_text]


def memory_note(meta: Mapping | None) -> str:
    """The batch the memory was counted on (``figure_studies.memory``'s meta), or "" without one."""
    meta = meta or {}
    if not {"batch_examples", "batch_tokens"} <= set(meta):
        return ""
    return t("memory.note", n=int(meta["batch_examples"]), tokens=int(meta["batch_tokens"]),
             precision=str(meta.get("precision", "fp32")))


__all__ = ["MEMORY_PARTS", "MIB", "memory_legend", "memory_note", "plot_training_memory"]
