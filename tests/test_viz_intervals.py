"""What a verdict rests on is drawn (issue 25): every figure that judges claims draws intervals
(error bars, bands or interval lines), single runs stand apart from means, and no legend sits on
the plotted data. Drawn from the quick-mode records, with their one seed copied into several seeds
(values shifted a little per seed) so that a mean has an interval to draw."""
from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

import viz  # noqa: E402
from ftcore.records.runset import RunSet  # noqa: E402
from viz.intervals import CI_GID, SINGLE_GID  # noqa: E402
from viz.layout import legend_on_data  # noqa: E402

from chapter import figures  # noqa: E402,F401  (registers the figures)
from chapter.registry import REGISTRY  # noqa: E402

CLAIMED = [fid for fid, spec in REGISTRY.items() if spec.claims]
SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")
    matplotlib.rcdefaults()


def _shifted(rec, k: int):
    """A copy of a record as if another seed had run: its evaluations shifted by 0.01·k (an
    accuracy stays in [0, 1])."""
    r = copy.copy(rec)
    r.tables = dict(rec.tables)
    ev = rec.tables["evals"].copy()
    if k and len(ev):
        shift = 0.01 * k * (1 if k % 2 else -1)
        ev["value"] = (ev["value"].astype(float) + shift).where(ev["metric"] != "accuracy",
                                                                (ev["value"].astype(float) + shift).clip(0, 1))
    r.tables["evals"] = ev
    return r


def with_seeds(runs: RunSet) -> RunSet:
    """The runs with each (one-seed) cell copied into :data:`SEEDS`."""
    items = []
    for labels, rec in runs:
        if "seed" not in labels:
            return runs
        for k, s in enumerate(SEEDS):
            items.append(({**labels, "seed": s}, _shifted(rec, k)))
    return RunSet(items)


def _study_copy(st, k: int):
    """A study as if run with another seed (its ``evals`` shifted like :func:`_shifted`)."""
    c = copy.copy(st)
    tables = dict(st.tables)
    if "evals" in tables:
        tables["evals"] = _shifted(type("R", (), {"tables": {"evals": tables["evals"]}})(), k).tables["evals"]
    object.__setattr__(c, "tables", tables)
    return c


def several_seeds(inputs: dict, studies: bool = False) -> dict:
    """Every RunSet with its cells copied into :data:`SEEDS`; with ``studies`` (a figure whose arms
    are studies, one per seed) a study keyed by seed (``mask_0``, ``rl_0.2_0``) copied likewise
    under the other seeds' keys."""
    out = {}
    for key, v in inputs.items():
        if isinstance(v, RunSet):
            out[key] = with_seeds(v)
            continue
        out[key] = v
        stem, _, seed = key.rpartition("_")
        if studies and stem and seed == str(SEEDS[0]) and hasattr(v, "tables"):
            for k, s in enumerate(SEEDS[1:], start=1):
                out[f"{stem}_{s}"] = _study_copy(v, k)
    return out


def intervals_drawn(fig) -> list:
    """The interval artists of a figure: error bars with a length, bands, or anything tagged ci95."""
    found = []
    for ax in fig.axes:
        for c in ax.containers:
            if isinstance(c, ErrorbarContainer) and (c.has_xerr or c.has_yerr):
                found += [lc for lc in c.lines[2] if isinstance(lc, LineCollection) and len(lc.get_segments())]
        found += [a for a in (*ax.collections, *ax.lines, *ax.patches) if a.get_gid() == CI_GID]
        # a table (continual-table) writes each interval as "mean ± half-width" in its cells
        found += [c for tab in ax.tables for c in tab.get_celld().values() if "±" in c.get_text().get_text()]
    return found


@pytest.mark.parametrize("fid", CLAIMED)
def test_a_figure_with_claims_draws_intervals(figure_inputs, fid):
    with viz.set_theme("en"):
        spec = REGISTRY[fid]
        fig = spec.render(several_seeds(figure_inputs(fid), studies=type(spec).__name__ == "StudiesFigure"))
        assert intervals_drawn(fig), f"{fid} judges claims but draws no interval"


def test_the_check_sees_a_figure_without_intervals():
    with viz.set_theme("en"):
        fig, ax = plt.subplots()
        ax.bar([0, 1], [0.7, 0.8])
        assert intervals_drawn(fig) == []
        ax.errorbar([0], [0.7], yerr=[0.02])
        assert intervals_drawn(fig)


def test_failure_rates_carry_wilson_intervals(figure_inputs):
    from ftcore.records.stats import wilson
    with viz.set_theme("en"):
        inputs = figure_inputs("stability-fixes")
        fig = viz.stability_fixes(**inputs)
        ax = fig.axes[0]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert bars
        data = viz.problems.fixes_frame(inputs["runs"])
        order = inputs["runs"].values("fix")
        k = data.groupby("fix")["failed"].sum()
        n = data.groupby("fix")["failed"].count()
        segs = bars[0].lines[2][0].get_segments()
        assert len(segs) == len(order)
        for seg in segs:  # one row per fix (y = its index in order), the rate along x
            assert seg[0, 1] == seg[1, 1]
            fix = order[int(round(seg[0, 1]))]
            iv = wilson(int(k[fix]), int(n[fix]))
            assert seg[:, 0].min() == pytest.approx(iv.low) and seg[:, 0].max() == pytest.approx(iv.high)


def test_single_runs_stand_apart_from_means():
    with viz.set_theme("en"):
        finals = pd.DataFrame({"arm": ["a"] * 3 + ["b"], "seed": [0, 1, 2, 0], "value": [0.7, 0.72, 0.71, 0.8],
                               "status": "completed"})
        fig, ax = plt.subplots()
        viz.plot_final_points(finals, by="arm", ax=ax)
        singles = [c for c in ax.collections if c.get_gid() == SINGLE_GID]
        assert len(singles) == 1 and singles[0].get_offsets()[0][1] == pytest.approx(0.8)
        assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 1  # the mean of a only
        assert any("n = 1" in x.get_text() for x in ax.texts)


def test_paired_differences_are_drawn_against_zero():
    from ftcore.records.stats import paired_difference
    from viz.intervals import plot_paired_differences
    finals = pd.DataFrame({"arm": ["ref"] * 3 + ["x"] * 3, "seed": [0, 1, 2] * 2,
                           "value": [0.70, 0.72, 0.74, 0.71, 0.74, 0.75]})
    with viz.set_theme("en"):
        fig, ax = plt.subplots()
        plot_paired_differences(finals, "ref", by="arm", ax=ax)
        iv = paired_difference({0: 0.71, 1: 0.74, 2: 0.75}, {0: 0.70, 1: 0.72, 2: 0.74})
        (eb,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        seg = eb.lines[2][0].get_segments()[0]
        assert seg[:, 1].min() == pytest.approx(iv.low) and seg[:, 1].max() == pytest.approx(iv.high)
        assert any(ln.get_gid() == "zero" for ln in ax.get_lines())


# ---------------------------------------------------------------------------- legends off the data
def legend_overlaps(fig) -> list[str]:
    """The legends of the figure's axes whose box covers a data point or a bar of their axes."""
    fig.canvas.draw()
    found = []
    for ax in fig.axes:
        pts, bars = legend_on_data(ax)
        if pts or bars:
            found.append(f"{ax.get_title()!r}: {pts} points, {bars} bars under the legend")
    return found


def test_the_legend_check_sees_a_legend_on_the_data():
    with viz.set_theme("en"):
        fig, ax = plt.subplots(figsize=(4, 3))
        x = np.linspace(0, 1, 50)
        ax.plot(x, np.full_like(x, 0.5), label="flat")
        ax.legend(loc="center")
        assert legend_overlaps(fig)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
        assert legend_overlaps(fig) == []


def test_the_legend_check_sees_a_legend_on_a_band():
    """A band (the interval around a mean curve) is data although no point lies under the legend."""
    with viz.set_theme("en"):
        fig, ax = plt.subplots(figsize=(4, 3))
        x = np.linspace(0, 1, 3)
        ax.plot(x[[0, -1]], [0.1, 0.1], label="mean")  # points at the ends only
        ax.fill_between(x, 0.2, 0.8, alpha=0.2)
        ax.legend(loc="center")
        assert legend_overlaps(fig)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fid", list(REGISTRY))
def test_no_legend_sits_on_the_data(figure_inputs, fid, lang):
    """Drawn with several seeds, so that curves have their bands (decay's validation curves) and
    means their error bars, as the reference records draw them."""
    with viz.set_theme(lang):
        spec = REGISTRY[fid]
        fig = spec.render(several_seeds(figure_inputs(fid), studies=type(spec).__name__ == "StudiesFigure"))
        assert legend_overlaps(fig) == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_decay_legends_stay_off_its_bands(figure_inputs, lang):
    with viz.set_theme(lang):
        fig = viz.decay(with_seeds(figure_inputs("decay")["runs"]))
        val = fig.axes[1]
        assert [c for c in val.collections if isinstance(c, PolyCollection)], "no bands drawn"
        # its legend (target, majority class) is the figure's, under all panels
        assert val.get_legend() is None and len(fig.legends) == 1 and legend_overlaps(fig) == []


def test_crowded_tick_labels_are_rotated_and_spaced_ones_are_not():
    from viz.layout import rotate_if_crowded
    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.set_xticks(range(4), ["reduce-on-plateau", "triangular-cyclic", "one-cycle", "cosine-restarts"])  # unbreakable
    assert rotate_if_crowded(ax) and ax.get_xticklabels()[0].get_rotation() == 30
    fig2, ax2 = plt.subplots(figsize=(8.0, 2.0))
    ax2.set_xticks(range(3), ["a", "b", "c"])
    assert not rotate_if_crowded(ax2) and ax2.get_xticklabels()[0].get_rotation() == 0
    plt.close(fig)
    plt.close(fig2)


def test_slanted_labels_are_unwrapped_and_steepened_until_they_stand_apart():
    from viz import geometry
    from viz.layout import rotate_if_crowded
    fig, ax = plt.subplots(figsize=(2.2, 2.0))
    wrapped = ["reduce on\nplateau\nn = 5", "cyclic\n(triangular)\nn = 5", "one-cycle\nn = 5", "cosine\nwith\nrestarts\nn = 5"]
    ax.set_xticks(range(4), wrapped)
    assert rotate_if_crowded(ax)
    labels = ax.get_xticklabels()
    assert [lab.get_text() for lab in labels] == ["reduce on plateau\nn = 5", "cyclic (triangular)\nn = 5",
                                                  "one-cycle\nn = 5", "cosine with restarts\nn = 5"]
    texts = {lab.get_text() for lab in labels}
    assert not [p for p in geometry.overlaps(fig) if set(p) <= texts]  # the print check sees them apart
    assert labels[0].get_rotation() >= 30
    plt.close(fig)
