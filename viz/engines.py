"""Training loops compared (seeds 001-003): one config trained by ftcore's own loop, HF ``Trainer``
(``ftcore.engine.hf``) and PyTorch Lightning (``ftcore.engine.lightning``), each written down as
the same RunRecord, so they can be drawn side by side.

``engines`` draws, per setup (a column), the test accuracy of each loop (mean with its 95% t
interval; dots: seeds) over the majority-class line, and below it each loop minus ftcore's, seed-paired. Speed is not drawn: the records' wall times
were measured on machines shared to different degrees (the controlled comparison is ``make bench``).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ftcore.records.runset import RunSet
from ._common import _ordered, _palette, fit_texts, n_text, plot_majority
from .geometry import figsize
from .text import t
from ftcore.records.queries import majority_share

ENGINE_ORDER = ("ftcore", "hf", "lightning")
SETUP_ORDER = ("sentiment", "topic", "recipe")


def engines(runs: RunSet) -> Figure:
    """Figure ``engines``: labels ``setup`` (a column each), ``engine`` and ``seed``. Top: each loop's
    test accuracy (mean with its 95% t interval, ``gid="ci95"``; dots: seeds) over that task's
    majority-class line. Bottom: HF Trainer and Lightning minus ftcore's loop, seed-paired, with the
    interval against zero: the differences the verdicts judge, too small to see between levels."""
    from .intervals import mark_interval, plot_paired_differences
    from .seeds import _dots, mean_ci

    f = runs.finals("accuracy", "test")
    setups = _ordered(f["setup"], SETUP_ORDER)
    pal = _palette(ENGINE_ORDER)
    fig, axes = plt.subplots(2, len(setups), figsize=figsize(8.5), layout="constrained", squeeze=False,
                             height_ratios=[1.2, 1])
    for j, setup in enumerate(setups):
        sub = f[f["setup"] == setup]
        order = _ordered(sub["engine"], ENGINE_ORDER)
        names = {e: t(f"engines.engine.{e}") for e in order}
        acc, gap = axes[0, j], axes[1, j]
        for k, e in enumerate(order):
            arm = sub[sub["engine"] == e]
            mean, half, n = mean_ci(arm["value"])
            if n > 1:
                mark_interval(acc.errorbar([k], [mean], yerr=[half], fmt="o", ms=7, color=pal[e], ecolor=pal[e],
                                           elinewidth=1.8, capsize=4, zorder=3))
            _dots(acc, [k + 0.22] * len(arm), arm["value"], arm["status"], pal[e], jitter=0.05)
        acc.set_xticks(range(len(order)), [names[e] for e in order])
        acc.set_xlim(-0.5, len(order) - 0.3)
        maj = majority_share(runs.select(setup=setup), "test")
        line = plot_majority(acc, maj)
        if line is not None:  # each task its own majority class: each panel names its own, just above the line
            acc.annotate(line.get_label(), (1, maj), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                         textcoords="offset points", ha="right", va="bottom", fontsize=7, color="0.3")
        lo = min(sub["value"].min(), maj or 1.0)
        acc.set_ylim(max(0.0, lo - 0.03), min(1.0, sub["value"].max() + 0.03))
        acc.set_title(t(f"engines.setup.{setup}"))
        plot_paired_differences(sub, "ftcore", by="engine", order=[e for e in order if e != "ftcore"],
                                labels=names, colors=pal, ax=gap)
        gap.set_title(t("engines.minus_ftcore"), fontsize="medium")
        if j == 0:
            acc.set_ylabel(t("test_accuracy"))
            gap.set_ylabel(t("engines.difference"))
    n = n_text(runs.n_seeds(setup=s, engine=e) for s in setups for e in ENGINE_ORDER if runs.n_seeds(setup=s, engine=e))
    fig.suptitle(t("engines.title") + "\n" + t("seeds_n", n=n))
    return fit_texts(fig)


__all__ = ["engines"]
