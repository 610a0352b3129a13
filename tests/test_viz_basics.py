"""viz.basics (3.2.1-3.2.2): every figure from the committed quick-mode records, in both languages:
the right panels, one artist per run/group/strategy, registered labels, legends, and a PNG render
that would fail on a missing glyph. No training."""
from __future__ import annotations

import ast
import copy
import inspect
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

import viz  # noqa: E402
from viz import basics, continual, data, freezing, problems, schedules  # noqa: E402
from viz._common import _count, _group_label, _group_order  # noqa: E402
from ftcore.records.runset import RunSet  # noqa: E402
from viz.text import t  # noqa: E402
from figure_checks import bar_patches, legend_texts, render  # noqa: E402



def texts(fig_or_ax) -> list[str]:
    return [x.get_text() for x in fig_or_ax.findobj(matplotlib.text.Text)]


def split_colorbars(fig: Figure):
    """The figure's plain axes (in creation order) and its colour-bar axes."""
    cbars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    return [a for a in fig.axes if a not in cbars], cbars


def depth(groups) -> list[str]:
    return _group_order(groups)


# ------------------------------------------------------------------------------------ module rules
def _figure_functions() -> dict:
    """{viz section module: the figure functions it holds}, read from the registry's specs."""
    import sys

    from chapter import figures  # noqa: F401 (registers the figures)
    from chapter.registry import REGISTRY
    out: dict = {}
    for spec in REGISTRY.values():
        draw = getattr(spec.draw, "func", spec.draw)  # a functools.partial fixes a keyword (decay's target)
        out.setdefault(sys.modules[draw.__module__], set()).add(draw.__name__)
    return out


SECTIONS = _figure_functions()


@pytest.mark.parametrize("module", list(SECTIONS), ids=lambda m: m.__name__)
def test_module_exports_and_imports(module):
    """One module per section: its figures and seaborn-style ``plot_*`` functions (``ax=None``,
    keyword-only) exported; no
    torch, nothing of ftcore but the records, no saving or showing."""
    public = {n for n, f in inspect.getmembers(module, inspect.isfunction)
              if f.__module__ == module.__name__ and not n.startswith("_")}
    assert set(module.__all__) <= public
    figures = SECTIONS[module]
    assert figures <= set(module.__all__)
    for name in (n for n in module.__all__ if n.startswith("plot_")):
        params = inspect.signature(getattr(module, name)).parameters
        assert "ax" in params and params["ax"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["ax"].default is None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.split(".")[0] == "torch" for m in mods)
    assert all(m.startswith("ftcore.records") for m in mods if m.startswith("ftcore"))  # viz reads records only
    src = Path(module.__file__).read_text(encoding="utf-8")
    assert "savefig" not in src and ".show(" not in src


def test_every_figure_function_is_in_one_section_module():
    import viz
    owners = {}
    for module, figures in SECTIONS.items():
        for name in figures:
            assert getattr(viz, name) is getattr(module, name)
            owners.setdefault(name, []).append(module.__name__)
    assert all(len(v) == 1 for v in owners.values())


def test_group_order_and_counts(lang_theme):
    lang_theme("en")
    assert _group_order(["head", "layer.10", "pooler", "layer.2", "embeddings", "prompt"]) == \
        ["prompt", "embeddings", "layer.2", "layer.10", "pooler", "head"]
    assert [_count(n) for n in (22713986, 1774464, 147840, 770)] == ["22.7M", "1.77M", "148K", "770"]
    assert _group_label("layer.3") == t("freeze-map.group.layer", "en", i=3)


# ------------------------------------------------------------------------------------ concept
def test_concept(figure_inputs, lang):
    inp = figure_inputs("concept")
    rec = inp["runs"].records[0]
    fig = basics.concept(**inp)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    first = rec.layer_state.drop_duplicates("group")
    n_groups = len(first)
    assert len([p for p in ax.patches if isinstance(p, FancyBboxPatch)]) == 3 + n_groups
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == 3
    shown = "\n".join(texts(ax))
    meta = inp["meta"]
    # the dataset by its name in the Chinese figure (no identifier), by its id in the English one
    assert meta["model"] in shown and (t("continual.task.rt-sentiment", lang) if lang == "zh" else meta["task"]) in shown
    assert t("concept.model_params", lang, params=_count(rec.summary["total_params"])) in shown
    assert t("concept.result_acc", lang, acc=f"{rec.metric('accuracy', 'test'):.3f}") in shown
    for n in first["n_params"]:
        assert _count(n) in shown
    for label in meta["labels"]:
        assert label in shown
    assert fig._suptitle.get_text() == t("concept.title", lang)
    # the cost is CPU time (or steps), never the wall time a loaded machine took
    s = rec.summary
    cost = (t("concept.result_steps", lang, steps=s["steps"]) if s.get("cpu_s") is None else
            t("concept.result_cost", lang, steps=s["steps"], cpu=f"{s['cpu_s']:.0f}"))
    assert cost.replace(" · ", "") in shown.replace("\n", "").replace(" · ", "")
    assert f"{s['train_s']:.1f}" not in shown
    render(fig)
    # every box's text stays inside its box
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    for txt in ax.texts:
        bb = txt.get_window_extent(renderer)
        home = [b for b in boxes if b.x0 <= bb.x0 + bb.width / 2 <= b.x1 and b.y0 <= bb.y0 + bb.height / 2 <= b.y1]
        if home:
            assert home[0].x0 - 1 <= bb.x0 and bb.x1 <= home[0].x1 + 1, txt.get_text()


# ------------------------------------------------------------------------------------ strategies
def test_strategies(figure_inputs, lang):
    runs = figure_inputs("strategies")["runs"]
    fig = basics.strategies(runs=runs)
    assert len(fig.axes) == 3
    acc, time_ax, params = fig.axes
    names = runs.values("strategy")
    assert len([c for c in acc.containers if isinstance(c, ErrorbarContainer)]) == len(names)
    assert acc.get_xscale() == "log"
    assert acc.get_xlabel() == t("strategies.size", lang)
    assert acc.get_ylabel() == t("test_accuracy", lang)
    (leg,) = fig.legends  # under the figure, off the accuracy lines
    shown = [x.get_text() for x in leg.get_texts()]
    assert leg.get_title().get_text().startswith(t("seeds_n", lang, n=runs.n_seeds()))
    assert set(shown) >= {t(f"strategies.{n}", lang) for n in names}
    assert t("chance", lang) not in shown  # the majority-class line, only where it is recorded
    kind = viz.cost.cost_kind(r for lab, r in runs if lab["size"] == max(runs.values("size")))
    assert len(bar_patches(time_ax)) == len(names) and time_ax.get_ylabel() == t(f"cost.{kind}", lang)
    assert len(bar_patches(params)) == len(names) and params.get_yscale() == "log"
    assert [x.get_text() for x in params.get_xticklabels()] == \
        [t(f"strategies.short.{n}", lang) for n in ("full", "frozen", "random") if n in names]  # short at print width
    render(fig)


# ------------------------------------------------------------------------------------ layer-lr
def test_layer_lr(figure_inputs, lang):
    runs = figure_inputs("layer-lr")["runs"]
    fig = basics.layer_lr(runs=runs)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    groups = depth(runs.table("lrs")["layer"])
    lines = ax.get_lines()
    assert len(lines) == len(runs)
    assert all(len(line.get_xdata()) == len(groups) for line in lines)
    assert ax.get_yscale() == "log"
    assert [x.get_text() for x in ax.get_xticklabels()] == [_group_label(g) for g in groups]
    assert ax.get_ylabel() == t("layer-lr.axis", lang) and ax.get_xlabel() == t("layer_group", lang)
    cfg = runs.one(strategy="layerwise_0.8").config
    assert t("layer-lr.layerwise", lang, a=f"{cfg['layer_decay']:g}") in legend_texts(ax)
    # the discriminative line is the recorded one: its embeddings LR is the smallest value drawn
    disc = runs.one(strategy="discriminative").lrs
    emb = disc.loc[(disc["layer"] == "embeddings") & (disc["step"] == 1), "lr"].max()
    assert min(np.min(line.get_ydata()) for line in lines) == pytest.approx(emb)
    render(fig)


# ------------------------------------------------------------------------------------ schedules-basic
def test_schedules_basic(figure_inputs, lang):
    runs = figure_inputs("schedules-basic")["runs"]
    fig = basics.schedules_basic(runs=runs)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    warm = any(rec.summary.get("warmup_steps") for rec in runs.records)
    assert len(ax.get_lines()) == len(runs) + warm
    n_steps = runs.records[0].lrs["step"].nunique()
    assert len(ax.get_lines()[0].get_xdata()) == n_steps
    assert ax.get_xlabel() == t("step", lang) and ax.get_ylabel() == t("lr", lang)
    assert set(legend_texts(ax)) >= {t(f"schedules-basic.{s}", lang) for s in runs.values("schedule")}
    render(fig)


# ------------------------------------------------------------------------------------ landscape
def test_landscape(figure_inputs, lang):
    land = figure_inputs("landscape")["land"]
    fig = basics.landscape(land=land)
    assert len(fig.axes) == 4  # surface, its colour bar, the 1-D line, its accuracy twin
    plain, cbars = split_colorbars(fig)
    assert len(cbars) == 1
    surf, line_ax, twin = plain
    assert surf.get_xlabel() == t("landscape.alpha", lang) and surf.get_ylabel() == t("landscape.beta", lang)
    path_lines = [ln for ln in surf.get_lines() if ln.get_label() == t("landscape.path", lang)]
    assert len(path_lines) == 1 and len(path_lines[0].get_xdata()) == len(land["path"])
    (leg,) = fig.legends  # one legend under both panels (under the map alone it pushed the colour bar away)
    shown = [x.get_text() for x in leg.get_texts()]
    assert {t("landscape.theta0", lang), t("landscape.theta1", lang), t("landscape.path", lang)} <= set(shown)
    assert t("landscape.acc_split", lang, split=t("landscape.split.validation", lang)) in shown
    assert t("landscape.norm", lang, d=f"{land['meta']['d1_norm']:.3g}") in leg.get_title().get_text()
    assert surf.get_legend() is None and line_ax.get_legend() is None
    assert len(line_ax.get_lines()) == 1 + 2  # loss, θ₀ and θ₁ markers
    assert len(line_ax.get_lines()[0].get_xdata()) == len(land["line"])
    assert len(twin.get_lines()) == 1
    assert twin.get_ylabel() == t("landscape.acc_split", lang, split=t("landscape.split.validation", lang))
    render(fig)


# ------------------------------------------------------------------------------------ freeze-map
def test_freeze_map(figure_inputs, lang):
    runs = figure_inputs("freeze-map")["runs"]
    fig = freezing.freeze_map(runs=runs)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    ls = runs.table("layer_state")
    groups = depth(ls["group"])
    rows = runs.values("strategy")
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(mesh) == 1 and mesh[0].get_array().shape == (len(rows), len(groups))
    assert [x.get_text().split("\n")[0] for x in ax.get_yticklabels()] == [t(f"freeze-map.short.{r}", lang)
                                                                          for r in rows]
    assert [x.get_text() for x in ax.get_xticklabels()] == [_group_label(g) for g in groups]
    cell_texts = [x for x in ax.texts if x.get_position()[0] < len(groups)]
    assert len(cell_texts) == len(rows) * len(groups)
    assert len(ax.texts) == len(rows) * len(groups)  # the row totals are in the tick labels:
    for tick, r in zip(ax.get_yticklabels(), rows):  # "strategy\ntrainable total (share)"
        name, total = tick.get_text().split("\n")
        assert total and "%" in total, tick.get_text()
    ev = runs.one(strategy="gradual").events
    unfreezes = ev[ev["kind"] == "unfreeze"]
    assert len(unfreezes) > 0
    shown = "\n".join(x.get_text() for x in cell_texts)
    for _, e in unfreezes.iterrows():
        assert t("freeze-map.unfrozen_at", lang, step=int(e["step"])) in shown
    # colour: head_only trains the head alone at step 0
    z = np.asarray(mesh[0].get_array()).reshape(len(rows), len(groups))
    assert z[rows.index("head_only")].tolist() == [float(g in ("pooler", "head")) for g in groups]
    assert len(legend_texts(ax)) == 2
    render(fig)


# ------------------------------------------------------------------------------------ freeze-effects
def test_freeze_effects(figure_inputs, lang):
    inputs = figure_inputs("freeze-effects")
    runs, memory = inputs["runs"], inputs.get("memory")  # memory: what training keeps, counted in bytes
    fig = freezing.freeze_effects(runs=runs, memory=memory)
    names = runs.values("strategy")
    acc, diff, cost = fig.axes[:3]
    assert acc.get_ylabel() == t("test_accuracy", lang) and not bar_patches(acc)  # points, not bars from 0
    assert any(ln.get_gid() == "zero" for ln in diff.get_lines())  # each minus full fine-tuning, paired
    assert [x.get_text() for x in diff.get_xticklabels()] == [t(f"freeze-map.short.{n}", lang) for n in names
                                                              if n != "none"]
    kind = viz.cost.cost_kind(runs.records)  # what training costs, not wall time
    assert len(bar_patches(cost)) == len(names) and cost.get_ylabel() == t(f"cost.{kind}", lang)
    assert not any(ax.get_ylabel() in (t("peak_mb", lang), t("wall_s", lang)) for ax in fig.axes)
    if memory is not None:
        assert len(fig.axes) == 4
        assert len(bar_patches(fig.axes[3])) == 4 * len(names)  # four stacked parts per strategy
        assert fig.axes[3].get_ylabel() == t("memory.axis", lang)
    for ax in (acc, cost):  # the strategies by their short labels
        assert [x.get_text() for x in ax.get_xticklabels()] == [t(f"freeze-map.short.{n}", lang) for n in names]
    assert t("seeds_n", lang, n=runs.n_seeds()) in fig._suptitle.get_text()
    render(fig)


# ------------------------------------------------------------------------------------ unfreeze
def test_unfreeze(figure_inputs, lang):
    runs = figure_inputs("unfreeze")["runs"]
    fig = freezing.unfreeze(runs=runs)
    assert len(fig.axes) == 3  # LR heatmap, its colour bar, validation accuracy
    plain, cbars = split_colorbars(fig)
    assert len(cbars) == 1
    heat, val = plain
    rec = runs.one(strategy="gradual", seed=runs.values("seed")[0])
    groups = depth(rec.lrs["layer"])
    steps = sorted(rec.lrs["step"].unique())
    mesh = [c for c in heat.collections if isinstance(c, QuadMesh)][0]
    z = np.asarray(mesh.get_array()).reshape(len(groups), len(steps))
    # frozen groups are drawn under the colour scale (LR 0): embeddings never trained in quick mode
    rows = [x.get_text() for x in heat.get_yticklabels()]
    assert rows == [_group_label(g) for g in groups[::-1]]
    assert z[rows.index(_group_label("head"))].min() >= mesh.norm.vmin
    first = rec.layer_state.sort_values("step").drop_duplicates("group").set_index("group")["trainable"]
    for g in groups:
        if not first[g]:
            assert z[rows.index(_group_label(g)), 0] < mesh.norm.vmin
    n_events = (rec.events["kind"] == "unfreeze").sum()
    assert len(heat.collections[1].get_offsets()) == n_events
    assert heat.get_xlabel() == t("step", lang) and heat.get_ylabel() == t("layer_group", lang)
    maj = [ln for ln in val.get_lines() if ln.get_gid() == "majority"]  # where the records carry it
    assert len(val.get_lines()) == 2 * (1 + (runs.n_seeds() > 1) * runs.n_seeds()) + len(maj)
    (leg,) = fig.legends  # both panels' entries, under the figure
    assert heat.get_legend() is None and val.get_legend() is None
    assert set(x.get_text() for x in leg.get_texts()) == {
        t("unfreeze.frozen", lang), t("unfreeze.event", lang), t("freeze-map.gradual", lang), t("freeze-map.none", lang),
        *(ln.get_label() for ln in maj)}
    assert val.get_ylabel() == t("val_accuracy", lang)
    render(fig)


# ------------------------------------------------------------------------------------ layer-drift
def test_layer_drift(figure_inputs, lang):
    study = figure_inputs("layer-drift")["study"]
    drift = study.tables["drift"]
    fig = freezing.layer_drift(study=study)
    assert len(fig.axes) == 2
    change, cka = fig.axes
    # the new head (no pretrained weights) and groups that never moved are not drift
    moved = drift[(drift["group"] != "head") & (drift["relative_change"] > 0)]
    # points on the log axis, not bars (a bar on a log axis has no meaningful base)
    assert not bar_patches(change) and len(change.get_lines()[0].get_xdata()) == len(moved)
    assert "head" in set(drift["group"]) and change.get_yscale() == "log"
    assert [x.get_text() for x in change.get_xticklabels()] == [_group_label(g) for g in depth(moved["group"])]
    assert len(cka.get_lines()) == 1 and len(cka.get_lines()[0].get_xdata()) == drift["cka"].notna().sum()
    assert change.get_ylabel() == t("layer-drift.change", lang) and cka.get_ylabel() == t("layer-drift.cka", lang)
    render(fig)


# ------------------------------------------------------------------------------------ axes-level, several seeds
def _reseeded(runs: RunSet, n: int = 3, diverge: dict | None = None) -> RunSet:
    """The quick runs repeated as ``n`` seeds with shifted accuracies (one run may be marked
    diverged), to exercise error bars, seed dots and bands without training."""
    items = []
    for labels, rec in runs:
        for s in range(n):
            r = copy.copy(rec)
            r.tables = dict(rec.tables)
            ev = rec.evals.copy()
            ev.loc[ev["metric"] == "accuracy", "value"] += 0.02 * s
            r.tables["evals"] = ev
            lab = {**labels, "seed": s}
            if diverge and all(lab.get(k) == v for k, v in diverge.items()):
                r.status = "diverged"
            items.append((lab, r))
    return RunSet(items)


def test_axes_level_functions_with_explicit_ax(figure_inputs, lang_theme):
    lang_theme("zh")
    strat = _reseeded(figure_inputs("strategies")["runs"], diverge={"strategy": "random", "seed": 2})
    f = strat.finals()
    fig, axes = plt.subplots(3, 3, figsize=(13, 11), layout="constrained")
    ax = basics.plot_accuracy_vs_size(f, chance=0.5, ax=axes[0, 0])
    assert ax is axes[0, 0]
    errs = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(errs) == 3 and all(c.has_yerr for c in errs)
    assert t("diverged") in legend_texts(ax)
    assert ax.get_legend().get_title().get_text() == t("seeds_n", n=3)
    big = f[f["size"] == f["size"].max()]
    assert basics.plot_metric_by_strategy(big, "train_s", label_prefix="strategies", ax=axes[0, 1]) is axes[0, 1]
    assert len(bar_patches(axes[0, 1])) == 3
    assert basics.plot_trainable_params(big, ax=axes[0, 2]) is axes[0, 2]
    freeze = _reseeded(figure_inputs("freeze-effects")["runs"])
    ff = freeze.finals()
    assert freezing.plot_seed_sd(ff, ax=axes[1, 0]) is axes[1, 0]
    assert len(bar_patches(axes[1, 0])) == ff["strategy"].nunique()
    assert bar_patches(axes[1, 0])[0].get_height() == pytest.approx(pd.Series([0, 0.02, 0.04]).std() , abs=1e-9)
    unf = _reseeded(figure_inputs("unfreeze")["runs"])
    ev = unf.evals("accuracy", "validation")
    assert freezing.plot_val_accuracy_curves(ev, ax=axes[1, 1]) is axes[1, 1]
    assert len(axes[1, 1].get_lines()) == 2 * (1 + 3) and len(axes[1, 1].collections) == 2  # ± s.d. bands
    rec = unf.one(strategy="gradual", seed=0)
    assert freezing.plot_unfreeze_lrs(rec, colorbar=False, ax=axes[1, 2]) is axes[1, 2]
    lr_runs = figure_inputs("layer-lr")["runs"]
    assert basics.plot_layer_lrs(lr_runs.table("lrs"), ax=axes[2, 0]) is axes[2, 0]
    assert basics.plot_head_lr_schedules(figure_inputs("schedules-basic")["runs"].table("lrs"), warmup_steps=1,
                                         ax=axes[2, 1]) is axes[2, 1]
    assert len(axes[2, 1].get_lines()) == 4 + 1
    drift = figure_inputs("layer-drift")["study"].tables["drift"]
    assert freezing.plot_layer_drift(drift, ax=axes[2, 2]) is axes[2, 2]
    render(fig)
    plt.close(fig)

    fig, axes = plt.subplots(1, 4, figsize=(13, 4), layout="constrained")
    land = figure_inputs("landscape")["land"]
    assert basics.plot_loss_surface(land["surface"], path=land["path"], meta=land["meta"], colorbar=False,
                                    ax=axes[0]) is axes[0]
    assert basics.plot_loss_line(land["line"], meta=land["meta"], ax=axes[1]) is axes[1]
    assert freezing.plot_layer_cka(drift, ax=axes[2]) is axes[2]
    inp = figure_inputs("concept")
    assert basics.plot_concept_diagram(inp["meta"], record=inp["runs"].records[0], ax=axes[3]) is axes[3]
    ls = figure_inputs("freeze-map")["runs"].table("layer_state")
    fig2, ax2 = plt.subplots(figsize=(12, 4))
    assert freezing.plot_freeze_map(ls, ax=ax2) is ax2
    render(fig)
    render(fig2)
