"""Training loops compared (seeds 001-003): one config trained by ftcore's own loop, HF ``Trainer``
(``ftcore.engine.hf``) and PyTorch Lightning (``ftcore.engine.lightning``), each written down as
the same RunRecord, so they can be drawn side by side.

``engines`` draws, per setup (a panel), the test accuracy of each loop (bars: mean with its 95% t
interval; dots: seeds) over the majority-class line. Speed is not drawn: the records' wall times
were measured on machines shared to different degrees (the controlled comparison is ``make bench``).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ftcore.records.runset import RunSet
from ._common import _ordered, _palette, fit_texts, n_text, plot_majority, plot_seed_bars
from .geometry import figsize
from .text import t
from ftcore.records.queries import majority_share

ENGINE_ORDER = ("ftcore", "hf", "lightning")
SETUP_ORDER = ("sentiment", "topic", "recipe")


def engines(runs: RunSet) -> Figure:
    """Figure ``engines``: labels ``setup`` (a column each), ``engine`` and ``seed``."""
    f = runs.finals("accuracy", "test")
    setups = _ordered(f["setup"], SETUP_ORDER)
    pal = _palette(ENGINE_ORDER)
    fig, axes = plt.subplots(1, len(setups), figsize=figsize(6.5), layout="constrained", squeeze=False)
    for j, setup in enumerate(setups):
        sub = f[f["setup"] == setup]
        order = _ordered(sub["engine"], ENGINE_ORDER)
        names = [t(f"engines.engine.{e}") for e in order]
        acc = axes[0, j]
        for k, e in enumerate(order):
            plot_seed_bars(sub[sub["engine"] == e], x="engine", value="value", order=order, palette=[pal[e]],
                           x_labels=names, ax=acc)
        sel = runs.select(setup=setup)
        if plot_majority(acc, majority_share(sel, "test")) is not None and j == 0:
            acc.legend(loc="lower left")
        lo = min(sub["value"].min(), majority_share(sel, "test") or 1.0)
        acc.set_ylim(max(0.0, lo - 0.08), min(1.0, sub["value"].max() + 0.04))
        acc.set_title(t(f"engines.setup.{setup}"))
        if j == 0:
            acc.set_ylabel(t("test_accuracy"))
    n = n_text(runs.n_seeds(setup=s, engine=e) for s in setups for e in ENGINE_ORDER if runs.n_seeds(setup=s, engine=e))
    fig.suptitle(t("engines.title") + "\n" + t("seeds_n", n=n))
    return fit_texts(fig)


__all__ = ["engines"]
