"""viz.data (3.2.3) and viz.schedules (3.2.4): every figure from the committed quick-mode records,
in both languages (the right panels, one artist per format/operation/noise level/schedule,
registered labels, legends, a PNG render that fails on a missing glyph), each axes-level function
on an explicit ``ax``, and the torch-free LR-finder rule against ``ftcore.analysis.lr_finder``. No training."""
from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import viz  # noqa: E402
from ftcore.records import queries  # noqa: E402
from viz import data, schedules  # noqa: E402
from viz.text import t  # noqa: E402
from figure_checks import legend_texts, render  # noqa: E402



def labelled_lines(ax) -> list:
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def errorbars(ax) -> list:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def columns(ax) -> int:
    """Arms drawn as a mean with its interval, or apart as a single run (n = 1, ``gid="single_run"``)."""
    return len(errorbars(ax)) + sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == "single_run")


def tick_texts(ax, axis="x") -> list[str]:
    """The major tick labels' texts, also where a panel hides them (a neighbour shows the same)."""
    return [tk.label1.get_text() for tk in (ax.xaxis if axis == "x" else ax.yaxis).get_major_ticks()]


def all_texts(ax) -> list[str]:
    return [x.get_text() for x in ax.texts]


# ------------------------------------------------------------------------------ task-formats
def test_task_formats(figure_inputs, lang):
    study = figure_inputs("task-formats")["study"]
    tokens = study.tables["tokens"]
    fig = viz.task_formats(**figure_inputs("task-formats"))
    assert isinstance(fig, Figure)
    formats = list(dict.fromkeys(tokens["format"]))
    assert len(fig.axes) == len(formats) == 3
    assert fig._suptitle.get_text() == t("task-formats.title", lang)
    for ax, fmt in zip(fig.axes, data.FORMATS):
        df = tokens[tokens["format"] == fmt]
        n = len(df)
        per_token = df["label"].notna().any()
        rows = ["token", "input_id", "attention_mask", "label"] + (["label_text"] if per_token else [])
        # read top to bottom: one row per token, the fields as columns named at the top
        assert tick_texts(ax, "x") == [t(f"task-formats.row.{r}", lang) for r in rows]
        assert tick_texts(ax, "y") == [str(int(p)) for p in sorted(df["position"])]
        cells = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(cells) == (len(rows) * n if per_token else 3 * n + 1)  # classification: one label cell
        k = int((df["label"].notna() & (df["label"] != -100)).sum())
        assert "".join(ax.get_title(loc="left").split()) == "".join(t(f"task-formats.{fmt}", lang, k=k, n=n).split())
        shown = all_texts(ax)
        assert set(df["token"]) <= set(shown) and {str(i) for i in df["input_id"]} <= set(shown)
        if per_token:
            ignored = int((df["label"] == -100).sum())
            assert shown.count("-100") == ignored > 0
            grey = [p for p in cells if matplotlib.colors.to_hex(p.get_facecolor()) == data.GREY]
            assert len(grey) >= 2 * ignored  # label and label-meaning cells of ignored positions
        else:
            assert any(str(study.meta["sequence_label"]) in s for s in shown)
    assert fig.axes[0].get_ylabel() == t("task-formats.position", lang)
    render(fig)


# ------------------------------------------------------------------------------ augmentation
def test_augmentation(figure_inputs, lang):
    study = figure_inputs("augmentation")["study"]
    aug = study.tables["augment"]
    fig = viz.augmentation(**figure_inputs("augmentation"))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_text, ax_bar = fig.axes
    assert fig._suptitle.get_text() == t("augmentation.title", lang)
    assert tick_texts(ax_text, "y") == [t(f"augmentation.op.{op}", lang) for op in aug["op"]]
    assert "".join(ax_text.get_title(loc="left").split()) == "".join(t("augmentation.texts", lang).split())  # wrapped
    assert len([p for p in ax_bar.patches if isinstance(p, Rectangle)]) == len(aug)
    heights = sorted(p.get_width() for p in ax_bar.patches)
    assert np.allclose(heights, sorted(aug["p_predicted"]))
    assert ax_bar.get_xlabel() == t("augmentation.probability", lang)
    assert t("chance", lang) in [x.get_text() for x in ax_bar.texts]  # named at its line, no legend
    assert ax_bar.get_legend() is None
    note = fig._supxlabel.get_text()
    assert t("augmentation.left_out.back_translation", lang) in note
    assert t("augmentation.source.WordNetSynonyms", lang) in note or study.meta["synonym_source"] != "WordNetSynonyms"
    render(fig)


def test_augmentation_changes():
    assert data._changes("a b c", "a x c") == "b → x"
    assert data._changes("a b c", "a b c d") == "+d"
    assert data._changes("a b c", "a c") == "−b"
    assert data._changes("a b c", "c b a") == "a → c; c → a"  # a swap, position by position
    assert data._changes("a b", "a b") == ""


# ------------------------------------------------------------------------------ data-quality
def test_noise_detection():
    ex = pd.DataFrame({"noise": 0.5, "size": 4, "seed": 0, "noisy": [True, False, True, False],
                       "loss": [3.0, 2.5, 0.1, 0.2]})
    clean = ex.assign(noise=0.0, noisy=False)
    out = data.noise_detection(pd.concat([ex, clean]))
    assert len(out) == 1  # runs without flipped labels are left out
    row = out.iloc[0]
    assert row["k"] == 2 and row["precision"] == 0.5 and row["base_rate"] == 0.5


def test_data_quality(figure_inputs, lang):
    runs = figure_inputs("data-quality")["runs"]
    fig = viz.data_quality(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    levels = runs.values("noise")
    assert len(errorbars(left)) == len(levels)
    maj = [ln.get_label() for ln in left.get_lines() if ln.get_gid() == "majority"]  # where recorded
    assert [t("data-quality.noise_level", lang, pct=100 * n) for n in levels] == \
        [x for x in legend_texts(left) if x not in maj]  # no chance line
    assert left.get_xscale() == "log"
    assert left.get_xlabel() == t("data-quality.size", lang) and left.get_ylabel() == t("test_accuracy", lang)
    det = data.noise_detection(runs.table("examples"))
    flipped = list(dict.fromkeys(det["noise"]))
    assert 0.0 not in flipped and len(flipped) >= 2
    sizes = runs.values("size")
    bar_groups = [c for c in right.containers if isinstance(c, BarContainer)]
    assert len(bar_groups) == len(sizes) and all(len(c) == len(flipped) for c in bar_groups)
    base = [c for c in right.collections if c.get_gid() == "base_rate"]
    assert len(base) == len(flipped)
    assert tick_texts(right) == [t("data-quality.noise_tick", lang, pct=100 * n) for n in flipped]
    assert right.get_ylabel() == t("data-quality.precision", lang)
    (leg,) = fig.legends  # the detection panel's legend, under the figure (off the bars)
    shown = [x.get_text() for x in leg.get_texts()]
    assert shown[-1] == t("data-quality.base_rate", lang) and right.get_legend() is None
    assert shown[:-1] == [t("data-quality.size_level", lang, size=f"{int(v):,}") for v in sizes]
    assert t("seeds_n", lang, n=1) in fig._suptitle.get_text()
    render(fig)


def test_data_axes_level(figure_inputs, lang_theme):
    lang_theme("en")
    tokens = figure_inputs("task-formats")["study"].tables["tokens"]
    _, axes = plt.subplots(1, 5)
    assert data.plot_token_table(tokens[tokens["format"] == "mlm"], ax=axes[0]) is axes[0]
    aug = figure_inputs("augmentation")["study"].tables["augment"]
    assert data.plot_augmented_texts(aug, ax=axes[1]) is axes[1]
    assert data.plot_augmented_predictions(aug, ax=axes[2]) is axes[2]  # no label names: no chance line
    assert axes[2].get_legend() is None and not axes[2].lines  # each bar names its class; no chance line
    assert len([x for x in axes[2].texts if x.get_text()]) == len(aug)
    finals = pd.DataFrame({"noise": [0.0] * 3 + [0.2] * 3, "size": 100, "seed": [0, 1, 2] * 2,
                           "value": [0.8, 0.82, 0.81, 0.7, 0.6, 0.65],
                           "status": ["completed"] * 5 + ["diverged"]})
    assert data.plot_noise_curves(finals, ax=axes[3]) is axes[3]
    assert len(errorbars(axes[3])) == 2
    assert errorbars(axes[3])[0].has_yerr  # three seeds: an s.d. bar
    det = pd.DataFrame({"noise": [0.2, 0.2, 0.4], "size": 50, "seed": [0, 1, 0], "k": 10,
                        "precision": [0.5, 0.7, 0.9], "base_rate": [0.2, 0.2, 0.4]})
    assert data.plot_noise_detection(det, ax=axes[4]) is axes[4]
    assert len([c for c in axes[4].collections if c.get_gid() == "base_rate"]) == 2
    plt.close("all")


# ------------------------------------------------------------------------------ warmup
def test_warmup(figure_inputs, lang):
    runs = figure_inputs("warmup")["runs"]
    fig = viz.warmup(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    a, b, c = fig.axes
    kinds = runs.values("warmup")
    assert len(kinds) == 5
    assert [ln.get_label() for ln in labelled_lines(a)] == [t(f"warmup.{k}", lang) for k in kinds]
    # one legend under the figure for all three panels: the kinds once, then the warmup period
    (leg,) = fig.legends
    shown = [x.get_text() for x in leg.get_texts()]
    assert shown[:len(kinds)] == [t(f"warmup.{k}", lang) for k in kinds]
    assert t("schedules.warmup_window", lang) in shown and not any(ax.get_legend() for ax in (a, b, c))
    assert a.get_xlabel() == t("step", lang) and a.get_ylabel() == t("schedules.lr_head", lang)
    assert len(labelled_lines(b)) == 2  # none vs linear
    assert b.get_ylabel() == t("grad_norm", lang)
    assert columns(c) == len(kinds)
    for tick, k in zip(tick_texts(c), kinds):
        assert t("n_seeds", lang, n=runs.n_seeds(warmup=k)) in tick
    assert c.get_ylabel() == t("test_accuracy", lang) and c.get_title() == t("schedules.final_title", lang)
    render(fig)


# ------------------------------------------------------------------------------ decay
def test_decay(figure_inputs, lang):
    runs = figure_inputs("decay")["runs"]
    fig = viz.decay(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    a, b, c, d = fig.axes
    order = runs.values("schedule")
    assert len(order) == 6
    reached, target = schedules.steps_to_target(runs.evals("accuracy", "validation"), hue="schedule")
    maj = [ln.get_label() for ln in b.get_lines() if ln.get_gid() == "majority"]  # where recorded
    assert len(labelled_lines(b)) == len(order) + 1 + len(maj)  # + the target
    # the schedules, the target and the validation majority class: one legend under the figure
    (leg,) = fig.legends
    assert a.get_legend() is None and b.get_legend() is None
    assert [x.get_text() for x in leg.get_texts()] == [*(t(f"decay.{s}", lang) for s in order),
                                                       t("decay.target", lang, target=target, pct=95), *maj]
    assert b.get_ylabel() == t("val_accuracy", lang)
    assert columns(c) == len(order)
    n_reached = reached.groupby("schedule", sort=False)["step"].count().reindex(order)
    assert columns(d) == int((n_reached > 0).sum())  # points, not bars: a mean or a single run
    # "not reached" under each arm none of whose seeds did; once across the panel where no arm did
    assert all_texts(d).count(t("decay.not_reached", lang)) == (int((n_reached == 0).sum()) if (n_reached > 0).any()
                                                                else 1)
    assert d.get_ylabel() == t("decay.steps", lang)
    assert t("seeds_n", lang, n=1) in fig._suptitle.get_text()
    render(fig)


def test_steps_to_target():
    ev = pd.DataFrame({"schedule": ["a"] * 3 + ["b"] * 3, "seed": 0, "step": [1, 2, 3] * 2,
                       "value": [0.5, 0.9, 0.8, 0.5, 0.6, 0.7]})
    reached, target = schedules.steps_to_target(ev, hue="schedule", fraction=1.0)
    assert target == pytest.approx(0.8)  # best mean final validation accuracy (a: 0.8)
    assert reached.set_index("schedule")["step"].to_dict() == {"a": 2.0, "b": pytest.approx(np.nan, nan_ok=True)}


def test_a_wide_steps_to_target_interval_is_drawn_whole():
    """Two seeds that reached the target at 20 and 120 steps: their t interval reaches below 0 and
    far above both; the axis shows all of it (with a zero line) rather than cutting it off."""
    reached = pd.DataFrame({"schedule": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "step": [20.0, 120.0, 50.0, 52.0]})
    fig, ax = plt.subplots()
    schedules.plot_steps_to_target(reached, hue="schedule", ax=ax)
    half = 12.706 * 50 / np.sqrt(2)  # t(0.975, 1) × sd / √n
    lo, hi = ax.get_ylim()
    assert lo < 70 - half and hi > 70 + half
    assert any(np.allclose(ln.get_ydata(), 0) for ln in ax.get_lines())  # the zero line
    plt.close(fig)


# ------------------------------------------------------------------------------ adaptive
def test_adaptive(figure_inputs, lang):
    runs = figure_inputs("adaptive")["runs"]
    fig = viz.adaptive(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # three panels + plateau's twin axis
    a, b, c, twin = fig.axes
    order = runs.values("schedule")
    events = runs.one(schedule="plateau", seed=0).events
    n_red = int(events["kind"].str.contains("lr_reduced").sum())
    assert len([ln for ln in a.get_lines() if ln.get_gid() == "lr_reduced"]) == n_red
    assert legend_texts(a) == [t("lr", lang), t("adaptive.reductions", lang, n=n_red), t("val_loss", lang)]
    assert twin.get_ylabel() == t("val_loss", lang) and len(twin.get_lines()) == 1
    assert legend_texts(b) == [t(f"adaptive.{s}", lang) for s in order]
    assert columns(c) == len(order)
    render(fig)


# ------------------------------------------------------------------------------ lr-finder
def test_lr_finder(figure_inputs, lang):
    runs = figure_inputs("lr-finder")["runs"]
    rec = runs.one(test="range")
    fig = viz.lr_finder(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    curve = queries.range_curve(rec)
    steep, valley = queries.suggest_lr(curve["lr"], curve["loss"])
    expected = [t("lr-finder.raw", lang), t("lr-finder.smoothed", lang, beta=queries.SMOOTHING),
                t("lr-finder.suggestion", lang, lr=steep), t("lr-finder.valley", lang, lr=valley)]
    if rec.status == "diverged":
        expected.append(t("lr-finder.stopped", lang, factor=rec.config["divergence_factor"]))
    assert legend_texts(ax) == expected
    assert ax.get_xscale() == "log" and ax.get_xlabel() == t("lr-finder.lr", lang)
    assert fig._suptitle.get_text() == t("lr-finder.title", lang)
    render(fig)


def test_lr_finder_and_the_figure_share_one_smoothing():
    from ftcore.analysis import lr_finder

    assert lr_finder.suggest is queries.suggest_lr and lr_finder.smooth is queries.smooth_losses
    assert lr_finder.SMOOTHING == queries.SMOOTHING
    assert schedules.range_curve is queries.range_curve  # the figure reads the record through the query


# ------------------------------------------------------------------------------ schedules, axes level
def test_schedule_axes_level(figure_inputs, lang_theme):
    lang_theme("zh")
    _, axes = plt.subplots(1, 7, figsize=(20, 3))
    decay_runs = figure_inputs("decay")["runs"]
    assert schedules.plot_lr_curves(schedules.head_lrs(decay_runs), hue="schedule", prefix="decay",
                                    ax=axes[0]) is axes[0]
    assert len(labelled_lines(axes[0])) == 6
    # three seeds, synthetic: a ± s.d. band (one PolyCollection per line) and the warmup window
    norms = pd.DataFrame({"warmup": ["none"] * 6 + ["linear"] * 6, "seed": [0, 0, 1, 1, 2, 2] * 2,
                          "step": [1, 2] * 6, "norm": [1.0, 5, 2, 6, 3, 9, 1, 1, 1, 2, 1, 3]})
    assert schedules.plot_grad_norms(norms, hue="warmup", prefix="warmup", warmup_steps=1, ax=axes[1]) is axes[1]
    assert legend_texts(axes[1]) == [f"{t('warmup.none')} ({t('n_seeds', n=3)})",
                                     f"{t('warmup.linear')} ({t('n_seeds', n=3)})", t("schedules.warmup_window")]
    g = queries.global_grad_norm(pd.DataFrame({"seed": 0, "step": 1, "group": ["a", "b"], "norm": [3.0, 4.0]}),
                                 ["seed"])
    assert g["norm"].tolist() == [5.0]
    finals = pd.DataFrame({"schedule": ["x"] * 3 + ["y"] * 3, "seed": [0, 1, 2] * 2,
                           "value": [0.7, 0.72, 0.74, 0.6, 0.7, 0.5],
                           "status": ["completed"] * 5 + ["diverged"]})
    assert schedules.plot_final_points(finals, by="schedule", ax=axes[2]) is axes[2]
    assert errorbars(axes[2])[0].has_yerr
    assert t("diverged") in tick_texts(axes[2])[1] and t("diverged") not in tick_texts(axes[2])[0]
    ev = pd.DataFrame({"schedule": ["x"] * 4, "seed": [0, 0, 1, 1], "step": [1, 2, 1, 2], "value": [0.5, 0.8, 0.6, 0.9]})
    assert schedules.plot_val_curves(ev, hue="schedule", ax=axes[3], target=0.8, target_label="T") is axes[3]
    assert legend_texts(axes[3]) == ["x", "T"]
    reached = pd.DataFrame({"schedule": ["x", "x", "y"], "seed": [0, 1, 0], "step": [2.0, 4.0, np.nan]})
    assert schedules.plot_steps_to_target(reached, hue="schedule", ax=axes[4]) is axes[4]
    # x: 2 of 2 seeds reached it (written above its point); y: none ("not reached")
    assert columns(axes[4]) == 1 and all_texts(axes[4]) == ["2/2", t("decay.not_reached")]
    lrs = pd.DataFrame({"step": [1, 2, 3], "lr": [1e-3, 1e-3, 5e-4]})
    vl = pd.DataFrame({"step": [1, 2, 3], "value": [0.7, 0.71, 0.72]})
    events = pd.DataFrame({"step": [3], "kind": ["lr_reduced"], "detail": ["head lr -> 0.0005"]})
    twin = schedules.plot_plateau(lrs, vl, events, ax=axes[5])
    assert twin is not axes[5] and twin.get_ylabel() == t("val_loss")
    assert len([ln for ln in axes[5].get_lines() if ln.get_gid() == "lr_reduced"]) == 1
    assert legend_texts(axes[5])[1] == t("adaptive.reductions", n=1)
    curve = queries.range_curve(figure_inputs("lr-finder")["runs"].records[0])
    assert schedules.plot_lr_range(curve, ax=axes[6]) is axes[6]
    assert len(legend_texts(axes[6])) == 4  # no stop marked unless asked
    render(axes[0].figure)
    plt.close("all")


def test_no_torch_in_viz_modules():
    import ast
    import inspect
    for mod in (data, schedules):
        tree = ast.parse(inspect.getsource(mod))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(x.split(".")[0] == "torch" or x.startswith("ftcore.analysis.lr_finder") for x in names), mod
        assert set(mod.__all__) <= set(dir(mod)) and all(callable(getattr(mod, n)) for n in mod.__all__)
