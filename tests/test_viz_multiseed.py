"""Figures of the full scale's shape, drawn from crafted records (no training, no fixtures): several
paired seeds per arm, arms with different numbers of seeds, the new grids (strategies over 100 …
8,530 reviews, data quality over 4 sizes × 4 noise levels, unfreezing over 5 seeds, task sequences
over 3 seeds per method). Every error bar and band is the 95% t interval of the mean
(``ftcore.records.stats.mean_interval``, what the gallery's verdicts use), every accuracy axis marks
the recorded majority class, and the figures still print at the book's size in both languages."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

import viz  # noqa: E402
from ftcore.records.record import RunRecord, table_from_rows  # noqa: E402
from ftcore.records.runset import RunSet  # noqa: E402
from ftcore.records.stats import mean_interval  # noqa: E402
from viz import basics, continual, data, freezing, geometry, schedules  # noqa: E402
from viz._common import mean_ci, n_text, plot_seed_bars  # noqa: E402
from viz.text import t  # noqa: E402
from figure_checks import LANGS, majority_lines, unwrapped  # noqa: E402

MAJORITY = 0.512
OFFSETS = (-0.021, 0.013, 0.034, -0.008, 0.002)  # per seed: unequal, so every interval has a width


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")
    matplotlib.rcdefaults()


def half(values) -> float:
    iv = mean_interval(values)
    return iv.high - iv.estimate


def record(evals: list[tuple], *, config: dict | None = None, summary: dict | None = None, status="completed",
           **tables) -> RunRecord:
    """A record with ``evals`` rows ``(step, task, split, metric, value)`` and any other tables as rows."""
    tabs = {"evals": table_from_rows("evals", evals)}
    tabs.update({name: table_from_rows(name, rows) for name, rows in tables.items()})
    return RunRecord("0" * 16, config or {}, {}, status=status, summary=summary or {}, tables=tabs)


def test_a_numbers(lang_theme):
    lang_theme("en")
    m, h, n = mean_ci([0.7, 0.72, 0.75])
    assert m == pytest.approx(np.mean([0.7, 0.72, 0.75])) and h == pytest.approx(half([0.7, 0.72, 0.75]))
    assert n == 3 and np.isnan(mean_ci([0.7])[1])
    assert n_text([5, 3, 5]) == "3–5" and n_text([5, 5]) == "5"
    for lang in LANGS:  # the error bars say what they are, in both languages
        assert "95% t" in t("seeds_n", lang, n=5) and "s.d." not in t("seeds_n", lang, n=5)
    assert "标准差" not in t("seeds_n", "zh", n=5)


def errorbar_halves(container: ErrorbarContainer) -> dict[float, float]:
    """Position → half-width of each error bar of an errorbar container (x for vertical bars, y for
    horizontal ones)."""
    out = {}
    for seg in container.lines[2][0].get_segments():
        (x0, y0), (x1, y1) = seg
        out[float(x0) if x0 == x1 else float(y0)] = max(abs(y1 - y0), abs(x1 - x0)) / 2
    return out


def assert_prints(fig):
    w, h = geometry.saved_size_cm(fig)
    assert w <= geometry.TEXT_WIDTH_CM + 0.05 and h <= geometry.MAX_HEIGHT_CM - geometry.NOTE_ROOM_CM + 0.05, (w, h)
    boxes = geometry.text_boxes(fig)
    assert geometry.small_texts(fig, boxes=boxes) == []
    assert geometry.overlaps(fig, boxes=boxes) == []


# ------------------------------------------------------------------------------------ strategies
SIZES = (100, 300, 1000, 3000, 8530)
BASE = {"full": 0.70, "frozen": 0.66, "random": 0.52}


def strategy_runs() -> RunSet:
    items = []
    for name, seeds in (("full", 5), ("frozen", 5), ("random", 3)):
        for size in SIZES:
            for s in range(seeds):
                acc = BASE[name] + 0.03 * np.log10(size / 100) + OFFSETS[s] * (1 + (name == "random"))
                summary = {"train_s": 10 + s + size / 1000, "steps": size // 16 * (10 if name == "frozen" else 1), "trainable_params_at_end": 1e6 if name == "frozen" else 2e7,
                           "trainable_pct_at_end": 5.0 if name == "frozen" else 100.0, "total_params": 2e7}
                items.append(({"strategy": name, "size": size, "seed": s},
                              record([(50, "t", "test", "accuracy", acc), (50, "t", "test", "majority_frac", MAJORITY)],
                                     summary=summary)))
    return RunSet(items)


def test_strategies_log_sizes_and_t_intervals_per_arm(lang):
    runs = strategy_runs()
    fig = viz.strategies(runs)
    acc = next(a for a in fig.axes if a.get_title() == t("strategies.acc_title"))
    assert acc.get_xscale() == "log"
    assert list(acc.get_xticks()) == list(SIZES)
    assert [x.get_text() for x in acc.get_xticklabels()] == ["100", "300", "1,000", "3,000", "8,530"]
    assert not acc.xaxis.get_minor_ticks() or all(not x.get_text() for x in acc.get_xticklabels(minor=True))
    f = runs.finals()
    errs = [c for c in acc.containers if isinstance(c, ErrorbarContainer)]
    assert len(errs) == 3
    for c, name in zip(errs, ("full", "frozen", "random")):
        got = sorted(errorbar_halves(c).items())
        assert len(got) == len(SIZES)
        for (_, h), size in zip(got, SIZES):
            vals = f[(f["strategy"] == name) & (f["size"] == size)]["value"]
            assert len(vals) == (3 if name == "random" else 5)
            assert h == pytest.approx(half(vals), rel=1e-6), (name, size)
    (leg,) = fig.legends  # under the figure, off the accuracy lines
    labels = [x.get_text() for x in leg.get_texts()]
    assert any(t("strategies.random") in x and t("n_seeds", n=3) in x for x in labels)
    assert any(t("strategies.full") in x and t("n_seeds", n=5) in x for x in labels)
    assert leg.get_title().get_text().startswith(t("seeds_n", n="3–5"))
    lines = majority_lines(fig)
    assert len(lines) == 1 and np.allclose(lines[0].get_ydata(), MAJORITY) and lines[0].axes is acc
    assert t("majority_line", v=MAJORITY) in labels
    assert_prints(fig)


# ------------------------------------------------------------------------------------ data quality
Q_SIZES = (250, 500, 1000, 2000)
NOISE = (0.0, 0.1, 0.2, 0.4)


def quality_runs() -> RunSet:
    items = []
    for size in Q_SIZES:
        for noise in NOISE:
            for s in range(5 if noise in (0.0, 0.4) else 3):
                acc = 0.8 - 0.4 * noise + 0.02 * np.log2(size / 250) + OFFSETS[s]
                k = int(round(20 * noise))
                examples = [(i, i % 2, i < k, 2.0 - 0.05 * i + (0.3 * s if i == k else 0)) for i in range(20)]
                items.append(({"noise": noise, "size": size, "seed": s},
                              record([(9, "t", "test", "accuracy", acc), (9, "t", "test", "majority_frac", MAJORITY)],
                                     examples=examples)))
    return RunSet(items)


def test_data_quality_sizes_and_t_intervals_per_cell(lang):
    runs = quality_runs()
    fig = viz.data_quality(runs)
    curves, detection = fig.axes[:2]
    assert curves.get_xscale() == "log" and list(curves.get_xticks()) == list(Q_SIZES)
    assert [x.get_text() for x in curves.get_xticklabels()] == ["250", "500", "1,000", "2,000"]
    f = runs.finals()
    errs = [c for c in curves.containers if isinstance(c, ErrorbarContainer)]
    assert len(errs) == len(NOISE)
    for c, noise in zip(errs, NOISE):
        got = sorted(errorbar_halves(c).items())
        for (_, h), size in zip(got, Q_SIZES):
            vals = f[(f["noise"] == noise) & (f["size"] == size)]["value"]
            assert len(vals) == (5 if noise in (0.0, 0.4) else 3)
            assert h == pytest.approx(half(vals), rel=1e-6), (noise, size)
    labels = [x.get_text() for x in curves.get_legend().get_texts()]
    assert any(t("n_seeds", n=3) in x for x in labels) and any(t("n_seeds", n=5) in x for x in labels)
    assert unwrapped(t("seeds_n", n="3–5")) in unwrapped(fig._suptitle.get_text())
    lines = majority_lines(fig)
    assert len(lines) == 1 and lines[0].axes is curves and np.allclose(lines[0].get_ydata(), MAJORITY)
    # precision at k: 95% t intervals over the seeds of each (noise, size)
    det = data.noise_detection(runs.table("examples"))
    errs = [c for c in detection.containers if isinstance(c, ErrorbarContainer)]
    assert len(errs) == len(Q_SIZES)
    for c, size in zip(errs, Q_SIZES):  # a precision's interval is drawn within [0, 1]
        got = [seg[:, 1] for seg in sorted(c.lines[2][0].get_segments(), key=lambda seg: seg[0, 0])]
        for (lo, hi), nz in zip(got, NOISE[1:]):
            v = det[(det["size"] == size) & (det["noise"] == nz)]["precision"]
            m = v.mean()
            assert sorted((lo, hi)) == pytest.approx([max(0.0, m - half(v)), min(1.0, m + half(v))], abs=1e-9)
    assert_prints(fig)


# ------------------------------------------------------------------------------------ unfreeze
GROUPS = ("embeddings", "layer.0", "layer.1", "head")
STEPS = (8, 16, 24, 32)


def unfreeze_runs() -> RunSet:
    items = []
    for s in (3, 0, 4, 1, 2):  # grid order need not start at the lowest seed
        for name in ("gradual", "none"):
            ev = [(st, "t", "validation", "accuracy", 0.6 + 0.04 * k + OFFSETS[s] * (1 + (name == "none")))
                  for k, st in enumerate(STEPS)]
            ev += [(st, "t", "validation", "majority_frac", MAJORITY) for st in STEPS]
            tables = {}
            if name == "gradual":
                start = {"head": 0, "layer.1": 9, "layer.0": 17, "embeddings": 25}
                tables["lrs"] = [(st, g, g, 1e-4 * (1 - st / 40) * (st >= start[g])) for st in range(1, 33) for g in GROUPS]
                tables["layer_state"] = [(0, g, start[g] == 0, 1000) for g in GROUPS] + \
                                        [(start[g], g, True, 1000) for g in GROUPS if start[g]]
                tables["events"] = [(start[g], "unfreeze", g) for g in GROUPS if start[g]]
            items.append(({"strategy": name, "seed": s}, record(ev, **tables)))
    return RunSet(items)


def test_unfreeze_mean_curves_with_t_bands(lang):
    runs = unfreeze_runs()
    fig = viz.unfreeze(runs)
    heat, val = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert unwrapped(t("unfreeze.lr_panel", seed=0)) == unwrapped(heat.get_title())  # the lowest seed's LRs
    bands = [c for c in val.collections if isinstance(c, PolyCollection) and c.get_gid() == "ci95"]
    assert len(bands) == 2
    ev = runs.evals("accuracy", "validation")
    for band, name in zip(bands, ("gradual", "none")):
        verts = band.get_paths()[0].vertices
        for st in STEPS:
            vals = ev[(ev["strategy"] == name) & (ev["step"] == st)]["value"]
            ys = verts[np.isclose(verts[:, 0], st), 1]
            assert ys.min() == pytest.approx(vals.mean() - half(vals), abs=1e-9)
            assert ys.max() == pytest.approx(vals.mean() + half(vals), abs=1e-9)
    means = [ln for ln in val.get_lines() if ln.get_linewidth() > 2]
    assert len(means) == 2
    assert np.allclose(means[0].get_ydata(), [ev[(ev["strategy"] == "gradual") & (ev["step"] == st)]["value"].mean()
                                              for st in STEPS])
    assert unwrapped(t("seeds_n", n=5)) in unwrapped(fig._suptitle.get_text())  # the figure says n and what the band is
    assert [ln.axes for ln in majority_lines(fig)] == [val]
    assert_prints(fig)


# ------------------------------------------------------------------------------------ forgetting, continual table
TASKS = ["rt-sentiment", "bbc-topic", "rt-subjectivity"]
METHODS = ("naive", "ewc", "replay", "lwf", "lora")
TASK_MAJORITY = {"rt-sentiment": 0.5, "bbc-topic": 0.23, "rt-subjectivity": 0.5}


def sequence(method: str, seed: int) -> RunRecord:
    rng = np.random.default_rng(100 * METHODS.index(method) + seed)
    ev, events = [], []
    for i in range(3):
        end = 10 * (i + 1)
        events.append((end, "task_end", TASKS[i]))
        for j in range(i + 1):
            drop = 0.0 if i == j else (0.25 if method == "naive" else 0.08) * (i - j)
            ev.append((end, TASKS[j], "test", "accuracy", 0.85 - drop + 0.03 * rng.standard_normal()))
            ev.append((end, TASKS[j], "test", "majority_frac", TASK_MAJORITY[TASKS[j]]))
    cont = {"tasks": TASKS, **({"replay_memory": 0.05} if method == "replay" else {})}
    per = [{"train_s": 5.0 + seed + 2 * (method == "ewc"), "method_extra_s": 0.5,
            "steps": 10 + seed + 2 * (method == "replay")} for _ in TASKS]
    summary = {"train_s": sum(p["train_s"] for p in per), "method_extra_s": 1.5, "per_task": per}
    return record(ev, config={"continual": cont}, summary=summary, events=events)


def sequence_runs(seeds: int = 3) -> RunSet:
    return RunSet([({"method": m, "seed": s}, sequence(m, s)) for m in METHODS for s in range(seeds)])


def test_forgetting_mean_matrices_and_t_intervals(lang):
    runs = sequence_runs()
    fig = viz.forgetting(runs)
    seqs = continual.forgetting_frame(runs)
    heat = [a for a in fig.axes if a.images]
    assert len(heat) == len(METHODS)
    for ax, m in zip(heat, METHODS):
        mats = [r["matrix"].to_numpy(float) for _, r in seqs[seqs["method"] == m].iterrows()]
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):  # the cells no sequence measured
            mean = np.nanmean(np.stack(mats), axis=0)
        assert np.allclose(np.ma.filled(ax.images[0].get_array(), np.nan), mean, equal_nan=True)
        cells = sorted(x.get_text() for x in ax.texts)
        assert cells == sorted(f"{v:.2f}" for v in mean[np.isfinite(mean)])
        assert [x.get_text() for x in ax.get_xticklabels()] == ["1", "2", "3"]  # the key names them
    forg_ax = next(a for a in fig.axes if unwrapped(a.get_title()) == unwrapped(t("forgetting.forg_title")))
    cost_ax = next(a for a in fig.axes if unwrapped(a.get_title()) == unwrapped(t("forgetting.cost_title")))
    assert [x.get_text() for x in forg_ax.get_yticklabels()] == [t(f"continual.method_short.{m}") for m in METHODS]
    for ax, col in ((forg_ax, "mean_forgetting"), (cost_ax, "average_accuracy")):
        errs = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(errs) == len(METHODS)
        for c, m in zip(errs, METHODS):
            (h,) = errorbar_halves(c).values()
            assert h == pytest.approx(half(seqs[seqs["method"] == m][col]), rel=1e-6), (col, m)
    # one row per method, as in the forgetting panel: the means never stack, whatever the costs
    means = [c.get_offsets()[0] for c in cost_ax.collections
             if isinstance(c, PathCollection) and len(c.get_offsets()) == 1]  # the means' markers
    assert [y for _, y in means] == list(range(len(METHODS)))
    by_method = seqs.groupby("method", sort=False)
    assert [x for x, _ in means] == pytest.approx(list(by_method["average_accuracy"].mean()))
    # the cost of each method printed at the right of its row, under a header naming its kind
    costs = [x.get_text() for x in cost_ax.texts if x.get_gid() == "cost"]
    assert costs == [f"{v:.3g}" for v in by_method["cost_s"].mean()] + [t("cost.steps")]
    assert cost_ax.get_ylim() == forg_ax.get_ylim() and not any(x.get_text() for x in cost_ax.get_yticklabels())
    (line,) = majority_lines(fig)
    assert line.axes is cost_ax and np.allclose(line.get_xdata(), np.mean(list(TASK_MAJORITY.values())))
    note = next(leg for leg in fig.legends if leg.get_gid() == "note").get_title().get_text()
    key = t("forgetting.key", tasks=("，" if lang == "zh" else ", ").join(
        f"{j + 1} = {t(f'continual.task.{task}')}" for j, task in enumerate(TASKS)))
    assert unwrapped(note) == unwrapped(key + t("forgetting.note", n=3))
    assert_prints(fig)


def test_forgetting_with_one_sequence_per_method(lang):
    runs = sequence_runs(1)
    fig = viz.forgetting(runs)
    forg_ax = next(a for a in fig.axes if unwrapped(a.get_title()) == unwrapped(t("forgetting.forg_title")))
    assert not [c for c in forg_ax.containers if isinstance(c, ErrorbarContainer)]  # no interval from one value
    note = next(leg for leg in fig.legends if leg.get_gid() == "note").get_title().get_text()
    assert unwrapped(note).endswith(unwrapped(t("forgetting.note_one", n=1)))
    assert_prints(fig)


def test_continual_table_means_with_t_intervals(lang):
    runs = sequence_runs()
    fig = viz.continual_table(runs)
    seqs, _ = continual.continual_frame(runs)
    table = fig.axes[0].tables[0]
    rows = {}
    for (i, j), cell in table.get_celld().items():
        if i:
            rows.setdefault(i, {})[j] = cell.get_text().get_text()
    assert len(rows) == len(METHODS)
    for i, m in enumerate(METHODS, start=1):
        g = seqs[seqs["method"] == m]
        for j, col in ((1, "old"), (2, "new")):
            assert rows[i][j] == f"{100 * g[col].mean():.1f} ± {100 * half(g[col]):.1f}%"
        assert rows[i][3] == f"{g['cost_s'].mean():.0f}"  # optimizer steps (no CPU time recorded)
    naive = seqs[seqs["method"] == "naive"]["cost_s"].mean()
    assert rows[2][4] == t("continual-table.ratio_fmt", r=seqs[seqs["method"] == "ewc"]["cost_s"].mean() / naive)
    assert unwrapped(t("continual-table.ci")) in unwrapped(fig.get_supxlabel())
    assert_prints(fig)
    plt.close(fig)
    one = viz.continual_table(sequence_runs(1))
    cells = [c.get_text().get_text() for (i, j), c in one.axes[0].tables[0].get_celld().items() if i and j == 1]
    assert cells and all("±" not in c and c.endswith("%") for c in cells)
    assert unwrapped(t("continual-table.ci")) not in unwrapped(one.get_supxlabel())


# ------------------------------------------------------------------------------------ the other panels
def seed_frame(arms: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([{"arm": a, "seed": s, "value": 0.7 + 0.05 * k + OFFSETS[s], "status": "completed",
                          "train_s": 10 + OFFSETS[s] * 100}
                         for k, (a, n) in enumerate(arms.items()) for s in range(n)])


def test_other_error_bars_are_t_intervals(lang_theme):
    lang_theme("en")
    f = seed_frame({"a": 5, "b": 3, "c": 1})
    want = {a: half(f[f["arm"] == a]["value"]) for a in ("a", "b")}
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    # bars: regularization, stability fixes, PEFT
    plot_seed_bars(f, x="arm", ax=axes[0, 0])
    (c,) = [c for c in axes[0, 0].containers if isinstance(c, ErrorbarContainer)]
    assert sorted(errorbar_halves(c).values()) == pytest.approx(sorted(want.values()))
    # the same as points (an axis that does not start at 0: continual-pretraining's probe)
    fig2, ax2 = plt.subplots()
    plot_seed_bars(f, x="arm", points=True, ax=ax2)
    assert not ax2.patches
    (means,) = [c for c in ax2.collections if c.get_gid() == "means"]
    assert list(means.get_offsets()[:, 1]) == pytest.approx(list(f.groupby("arm")["value"].mean()))
    (c,) = [c for c in ax2.containers if isinstance(c, ErrorbarContainer)]
    assert sorted(errorbar_halves(c).values()) == pytest.approx(sorted(want.values()))
    plt.close(fig2)
    # columns of points: warmup, decay, adaptive
    schedules.plot_final_points(f, by="arm", ax=axes[0, 1], majority=MAJORITY)
    errs = [c for c in axes[0, 1].containers if isinstance(c, ErrorbarContainer) and c.has_yerr]
    assert [h for c in errs for h in errorbar_halves(c).values()] == pytest.approx([want["a"], want["b"]])
    # bars per strategy: freeze-effects, strategies' time
    basics.plot_metric_by_strategy(f.rename(columns={"arm": "strategy"}), "value", ax=axes[0, 2])
    errs = [c for c in axes[0, 2].containers if isinstance(c, ErrorbarContainer)]
    assert [h for c in errs for h in errorbar_halves(c).values()] == pytest.approx([want["a"], want["b"]])
    # steps to a target: decay
    reached = pd.DataFrame({"schedule": ["x"] * 4, "seed": range(4), "step": [10.0, 14.0, 12.0, np.nan]})
    schedules.plot_steps_to_target(reached, hue="schedule", ax=axes[1, 0])
    (c,) = [c for c in axes[1, 0].containers if isinstance(c, ErrorbarContainer)]
    assert list(errorbar_halves(c).values()) == pytest.approx([half([10, 14, 12])])
    # bands: decay's validation curves, warmup's gradient norms
    ev = pd.DataFrame([{"schedule": "x", "seed": s, "step": st, "value": 0.6 + 0.01 * st + OFFSETS[s]}
                       for s in range(5) for st in (1, 2, 3)])
    schedules.plot_val_curves(ev, hue="schedule", ax=axes[1, 1], majority=MAJORITY)
    norms = ev.rename(columns={"value": "norm"})
    schedules.plot_grad_norms(norms, hue="schedule", ax=axes[1, 2])
    for ax in axes[1, 1:]:
        (band,) = [c for c in ax.collections if c.get_gid() == "ci95"]
        verts = band.get_paths()[0].vertices
        for st in (1, 2, 3):
            vals = ev[ev["step"] == st]["value"]
            ys = verts[np.isclose(verts[:, 0], st), 1]
            assert ys.max() - ys.min() == pytest.approx(2 * half(vals), rel=1e-6)
    # the accuracy panels mark the majority class
    assert [ln.axes for ln in majority_lines(fig)] == [axes[0, 1], axes[1, 1]]


def test_freeze_effects_keeps_its_spread_panel_as_sd(lang_theme):
    lang_theme("en")
    f = seed_frame({"none": 5, "bottom": 5}).rename(columns={"arm": "strategy"})
    fig, ax = plt.subplots()
    freezing.plot_seed_sd(f, ax=ax)
    assert ax.get_ylabel() == t("freeze-effects.sd_axis")
    assert ax.patches[0].get_height() == pytest.approx(f[f["strategy"] == "none"]["value"].std(ddof=1))


@pytest.mark.parametrize("lang", LANGS)
def test_multiseed_figures_render(lang_theme, lang, tmp_path):
    """The PNGs a person looks at (kept under pytest's tmp_path)."""
    lang_theme(lang)
    for name, fig in (("strategies", viz.strategies(strategy_runs())), ("data-quality", viz.data_quality(quality_runs())),
                      ("unfreeze", viz.unfreeze(unfreeze_runs())), ("forgetting", viz.forgetting(sequence_runs())),
                      ("continual-table", viz.continual_table(sequence_runs()))):
        path = tmp_path / f"{name}-{lang}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        assert path.stat().st_size > 10_000
        plt.close(fig)
