"""viz.problems (3.2.5: fitting, regularization, instability, stability fixes) and viz.continual
(forgetting, pretrained probes, PEFT, the continual-learning table), drawn from the committed
quick-mode records: panel counts, artists derived from the inputs, labels in both languages."""
from __future__ import annotations

import dataclasses
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import viz  # noqa: E402
from ftcore.records.metrics import accuracy_matrix, forgetting_metrics  # noqa: E402
from viz import continual, problems  # noqa: E402
from viz.text import t  # noqa: E402
from figure_checks import bar_containers, render, unwrapped  # noqa: E402



def points(ax, gid: str) -> np.ndarray:
    offs = [c.get_offsets() for c in ax.collections if c.get_gid() == gid]
    return np.concatenate(offs) if offs else np.empty((0, 2))


def by_title(fig: Figure, title: str):
    found = [ax for ax in fig.axes if unwrapped(ax.get_title()) == unwrapped(title)]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def last_eval(rec, metric, split):
    return rec.metric(metric, split)


# ------------------------------------------------------------------------------------ module surface
def test_exports_exist_and_figures_reach_viz():
    for mod in (problems, continual):
        for name in mod.__all__:
            assert callable(getattr(mod, name)), name
    for fid in ("fitting", "regularization", "instability", "stability_fixes", "forgetting",
                "forgetting_pretrained", "peft", "continual_table"):
        assert callable(getattr(viz, fid))


# ------------------------------------------------------------------------------------ fitting
def test_fitting(figure_inputs, lang):
    runs = figure_inputs("fitting")["runs"]
    regimes = runs.values("regime")
    fig = viz.fitting(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == len(regimes) == 3
    assert fig.get_suptitle() == t("fitting.title", lang)
    (leg,) = fig.legends  # the curves are explained once, under the panels
    assert [x.get_text() for x in leg.get_texts()] == [t(k, lang) for k in ("fitting.step_loss", "fitting.train_eval",
                                                                           "fitting.val_eval", "fitting.best_generic")]
    for ax, regime in zip(fig.axes, regimes):
        rec = runs.one(regime=regime)
        # per-step loss, training and validation evaluations, the early-stopping line (+ divergence)
        assert len(ax.lines) == 4 + (problems.diverged_step(rec) is not None)
        assert ax.get_title() == t(f"fitting.regime.{regime}", lang)
        (info,) = [x for x in ax.texts if x.get_gid() == "run_info"]  # the run's settings, small, under the title
        assert f"{rec.config['train_size']:,}" in info.get_text()
        assert ax.get_xlabel() == t("step", lang)
        assert ax.get_ylabel() == (t("loss", lang) if ax is fig.axes[0] else "")  # the shared y axis named once
        assert ax.get_legend() is not None  # the early-stopping step of this panel
        np.testing.assert_allclose(ax.lines[0].get_ydata(), rec.steps["loss"])
        ev = rec.evals
        val = ev[(ev.split == "validation") & (ev.metric == "loss")].drop_duplicates("step", keep="last")
        best = int(val.loc[val["value"].idxmin(), "step"])
        assert ax.lines[3].get_xdata()[0] == best  # the lowest validation loss is marked
        assert len(ax.collections) == 1  # the star at the minimum
    render(fig)


# ------------------------------------------------------------------------------------ regularization
def test_regularization(figure_inputs, lang):
    runs = figure_inputs("regularization")["runs"]
    methods = runs.values("method")
    fig = viz.regularization(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    tv, gap, test = fig.axes
    assert tv.get_title() == t("regularization.train_val", lang)
    assert "".join(gap.get_title().split()) == "".join(t("regularization.gap", lang).split())  # wrapped to fit
    # test accuracy as each method minus none, seed-paired, against zero (the effects are a few points)
    assert unwrapped(test.get_title()) == unwrapped(t("regularization.test_diff", lang, ref=t("regularization.ref", lang)))
    assert any(ln.get_gid() == "zero" for ln in test.get_lines())
    assert [x.get_text() for x in test.get_xticklabels()] == [t(f"regularization.method.{m}", lang)
                                                              for m in methods if m != "none"]
    assert [c.get_text() for c in tv.get_xticklabels()] == [t(f"regularization.method.{m}", lang) for m in methods]
    cont = bar_containers(tv)
    assert len(cont) == 2 and all(len(c) == len(methods) for c in cont)
    assert tv.get_legend() is not None
    labels = [x.get_text() for x in tv.get_legend().get_texts()]
    assert t("train_accuracy", lang) in labels and t("val_accuracy", lang) in labels
    # with one seed, the bars are the records' last evaluations
    train = [np.mean([last_eval(r, "accuracy", "train") for r in runs.select(method=m).records]) for m in methods]
    val = [np.mean([last_eval(r, "accuracy", "validation") for r in runs.select(method=m).records]) for m in methods]
    np.testing.assert_allclose([b.get_height() for b in cont[0]], train)
    np.testing.assert_allclose([b.get_height() for b in cont[1]], val)
    np.testing.assert_allclose([b.get_height() for b in bar_containers(gap)[0]], 100 * (np.array(train) - np.array(val)))
    n_runs = len(runs)
    assert len(points(tv, "seeds")) == 2 * n_runs
    assert len(points(gap, "seeds")) == n_runs
    assert gap.get_ylabel() == t("regularization.gap_axis", lang) and test.get_ylabel() == t("intervals.diff_axis", lang)
    assert t("seeds_n", lang, n=runs.n_seeds(method=methods[0])) in fig.get_supxlabel()
    render(fig)


def test_regularization_uses_restored_weights(figure_inputs):
    """For early stopping, the last evaluation of each split is the one of the restored weights."""
    runs = figure_inputs("regularization")["runs"]
    frame = problems.regularization_frame(runs)
    for labels, rec in runs:
        row = frame[(frame.method == labels["method"]) & (frame.seed == labels["seed"])].iloc[0]
        ev = rec.evals
        tr = ev[(ev.split == "train") & (ev.metric == "accuracy")]
        assert row["train"] == tr["value"].iloc[-1]
        restored = rec.summary.get("restored_step")  # None: the run never stopped early
        assert row["restored_step"] == restored or (restored is None and np.isnan(row["restored_step"]))


# ------------------------------------------------------------------------------------ instability
def test_instability(figure_inputs, lang):
    runs = figure_inputs("instability")["runs"]
    settings = runs.values("setting")
    fig = viz.instability(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * len(settings) == 8
    top, bottom = fig.axes[:len(settings)], fig.axes[len(settings):]  # subplots(2, n): row-major order
    assert fig.legends, "figure legend missing"
    assert top[0].get_ylabel() == t("train_loss", lang)
    assert bottom[0].get_ylabel() == t("instability.grad_axis", lang)
    for ax_l, ax_g, s in zip(top, bottom, settings):
        rec = runs.one(setting=s)
        div = problems.diverged_step(rec) is not None
        assert unwrapped(ax_l.get_title()).startswith(unwrapped(t(f"instability.setting.{s}", lang)))
        assert len(ax_l.lines) == 1 + div and len(ax_g.lines) == 1 + div
        assert ax_g.get_xlabel() == t("step", lang) and ax_g.get_yscale() == "log"
        ev = rec.evals
        collapsed = ev[(ev.split == "validation") & (ev.metric == "max_class_frac") & (ev.value >= 0.95)]
        assert len(points(ax_l, "collapse")) == collapsed["step"].nunique()
        g = rec.grad_norms
        expected = np.sqrt((g["norm"] ** 2).groupby(g["step"]).sum())
        expected = expected[np.isfinite(expected) & (expected > 0)]
        np.testing.assert_allclose(ax_g.lines[0].get_ydata(), expected.to_numpy())
    render(fig)


def test_instability_marks_divergence(figure_inputs, lang_theme):
    lang_theme("zh")
    rec = figure_inputs("instability")["runs"].one(setting="stable")
    events = pd.DataFrame({"step": [2], "kind": ["diverged"], "detail": ["loss is nan"]}).astype(
        rec.events.dtypes.to_dict())
    bad = dataclasses.replace(rec, status="diverged", tables={**rec.tables, "events": events})
    assert problems.diverged_step(bad) == 2
    fig, (a, b) = plt.subplots(1, 2)
    assert problems.plot_instability_loss(bad, ax=a) is a
    assert problems.plot_instability_grad_norm(bad, ax=b) is b
    for ax in (a, b):
        red = [ln for ln in ax.lines if ln.get_label() == t("instability.stopped", "zh", step=2)]
        assert len(red) == 1 and red[0].get_xdata()[0] == 2
    plt.close(fig)


# ------------------------------------------------------------------------------------ stability fixes
def test_stability_fixes(figure_inputs, lang):
    from ftcore.records.stats import newcombe_paired
    runs = figure_inputs("stability-fixes")["runs"]
    fixes = runs.values("fix")
    with viz.set_theme(lang):
        fig = viz.stability_fixes(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    rate_ax, diff_ax, acc_ax = fig.axes
    assert unwrapped(rate_ax.get_title()) == unwrapped(t("stability-fixes.failure", lang))
    assert rate_ax.get_xlabel() == t("stability-fixes.failure_axis", lang)
    assert acc_ax.get_title() == t("stability-fixes.accuracy", lang)
    assert acc_ax.get_xlabel() == t("test_accuracy", lang)
    # one row per fix, the baseline on top
    assert [c.get_text() for c in rate_ax.get_yticklabels()] == [t(f"stability-fixes.fix.{f}", lang) for f in fixes]
    failed = {f: [r.status == "diverged" or r.metric("max_class_frac", "test") > 0.95
                  for r in runs.select(fix=f).records] for f in fixes}
    (cont,) = bar_containers(rate_ax)
    np.testing.assert_allclose([b.get_width() for b in cont], [np.mean(failed[f]) for f in fixes])
    assert len(rate_ax.texts) == len(fixes)  # k/n right of each interval
    # the middle panel draws what the verdicts test: each fix minus the baseline, seed-paired, with
    # Newcombe's interval, against a zero line
    seeds = {f: [lab["seed"] for lab, _ in runs.select(fix=f)] for f in fixes}
    by_seed = {f: dict(zip(seeds[f], failed[f])) for f in fixes}
    drawn = [ln for ln in diff_ax.lines if ln.get_marker() == "o"]
    assert len(drawn) == len(fixes) - 1
    for ln, f in zip(drawn, [f for f in fixes if f != "baseline"]):
        common = sorted(set(seeds[f]) & set(seeds["baseline"]))
        iv = newcombe_paired([by_seed[f][s] for s in common], [by_seed["baseline"][s] for s in common])
        assert ln.get_xdata()[0] == pytest.approx(iv.estimate)
    assert any(ln.get_gid() == "zero" for ln in diff_ax.lines)
    assert any(getattr(c, "get_gid", lambda: None)() == "ci95" for c in diff_ax.collections)
    assert t("stability-fixes.reference", lang) in [x.get_text() for x in diff_ax.texts]
    # every finite seed a dot in the accuracy panel, no bars from 0
    assert not bar_containers(acc_ax)
    finite = sum(np.isfinite(r.metric("accuracy", "test")) for r in runs.records)
    assert sum(len(c.get_offsets()) for c in acc_ax.collections if c.get_facecolor().size and
               c.get_facecolor()[0][-1] > 0) >= finite
    assert t("seeds_n", lang, n=runs.n_seeds(fix=fixes[0])) in fig.get_supxlabel()
    render(fig)


# ------------------------------------------------------------------------------------ forgetting
def test_forgetting(figure_inputs, lang):
    runs = figure_inputs("forgetting")["runs"]
    methods = runs.values("method")
    fig = viz.forgetting(runs)
    # a matrix per method (the mean over its sequences), the mean forgetting, average accuracy vs cost
    assert isinstance(fig, Figure) and len(fig.axes) == len(methods) + 2
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == len(methods)
    for ax, m in zip(heat, methods):
        with np.errstate(all="ignore"), warnings.catch_warnings():  # cells no sequence measured: "mean of empty slice"
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.stack([accuracy_matrix(r).to_numpy(float) for r in runs.select(method=m).records]), 0)
        assert len(ax.texts) == int(np.isfinite(mean).sum())  # NaN cells stay blank
        # the same tasks in every matrix, numbered (the key under the figure names them)
        cols = (t("forgetting.cols", lang), t("forgetting.cols", lang) + " (%)", "")  # more than 5 methods: in %
        assert ax.get_xlabel() in cols and unwrapped(ax.get_ylabel()) in (unwrapped(t("forgetting.rows", lang)), "")
        assert [tk.label1.get_text() for tk in ax.xaxis.get_major_ticks()] == [str(j + 1) for j in range(mean.shape[1])]
    assert unwrapped(heat[0].get_ylabel()) == unwrapped(t("forgetting.rows", lang))
    if len(methods) > 5:  # one row of matrices, values as whole percentages, the columns named once
        assert heat[0].get_xlabel() == t("forgetting.cols", lang) + " (%)" and heat[-1].get_xlabel() == ""
        assert all(tx.get_text().isdigit() for tx in heat[0].texts)
    else:
        assert heat[-1].get_xlabel() == t("forgetting.cols", lang)
    forg, cost = [ax for ax in fig.axes if not ax.images]
    assert unwrapped(forg.get_title()) == unwrapped(t("forgetting.forg_title", lang))
    assert unwrapped(cost.get_title()) == unwrapped(t("forgetting.cost_title", lang))
    # cost is what the method costs (CPU seconds where recorded, else optimizer steps), not wall time
    kind = viz.cost.cost_kind(runs.records)
    assert cost.get_xlabel() == t("forgetting.avg_axis", lang)
    header = [x.get_text() for x in cost.texts if x.get_gid() == "cost"][-1]
    assert header == t(f"cost.{kind}", lang)
    marks = [c for c in cost.collections if c.get_label() and not c.get_label().startswith("_")]
    assert len(marks) == len(methods)
    (leg,) = fig.legends  # the methods' markers (and the majority line), under the figure, headed by the notes
    maj = [ln.get_label() for ln in cost.get_lines() if ln.get_gid() == "majority"]
    assert [x.get_text() for x in leg.get_texts()] == [c.get_label() for c in marks] + maj
    assert unwrapped(leg.get_title().get_text()).endswith(unwrapped(t("forgetting.note_one", lang, n=1)))
    costs = [x for x in cost.texts if x.get_gid() == "cost"][:-1]  # a row each, right of the panel
    assert len(costs) == len(methods)
    for k, (coll, m, c) in enumerate(zip(marks, methods, costs)):
        x, y = coll.get_offsets()[0]
        recs = runs.select(method=m).records
        assert y == k and x == pytest.approx(np.mean([forgetting_metrics(accuracy_matrix(r))["average_accuracy"] for r in recs]))
        assert c.get_position()[1] == k
        assert float(c.get_text().replace(",", "")) == pytest.approx(np.mean([viz.cost.run_cost(r, kind) for r in recs]), rel=5e-3)
    render(fig)


def test_forgetting_pretrained(figure_inputs, lang):
    probes = figure_inputs("forgetting-pretrained")
    fig = viz.forgetting_pretrained(**probes)
    rows = [st.tables["probe"].iloc[0] for st in probes.values()]
    has_ft = "finetune_test_accuracy" in probes[next(iter(probes))].tables["probe"]
    assert isinstance(fig, Figure) and len(fig.axes) == 2 + has_ft
    task = t(f"continual.task.{rows[0]['probe_task']}", lang)
    for ax, probe in zip(fig.axes, ("linear", "knn")):
        assert unwrapped(ax.get_title()) == unwrapped(t(f"forgetting-pretrained.{probe}", lang, task=task))
        assert ax.get_ylabel() == t("forgetting-pretrained.probe_axis", lang)
        assert ax.get_xlabel() == t("forgetting-pretrained.run_axis", lang)
        assert ax.get_legend() is None  # before/after: one legend under the figure
        before, after = points(ax, "before"), points(ax, "after")
        assert len(before) == len(after) == len(probes)
        assert sorted(after[:, 1]) == pytest.approx(sorted(r[f"{probe}_after"] for r in rows))
        assert sorted(before[:, 1]) == pytest.approx(sorted(r[f"{probe}_before"] for r in rows))
    (leg,) = fig.legends
    assert [x.get_text() for x in leg.get_texts()] == [t(f"forgetting-pretrained.{k}", lang) for k in ("before", "after")]
    if has_ft:  # one run each: points, not bars from 0
        assert not bar_containers(fig.axes[2]) and len(points(fig.axes[2], "finetune")) == len(probes)
    frame = continual.probe_frame(probes)
    assert list(frame["method"]) == ["full", "full", "full", "lora", "frozen"]
    full = frame.loc[frame["method"] == "full", "lr"].tolist()
    assert full == sorted(full) and len(full) == 3
    render(fig)


# ------------------------------------------------------------------------------------ peft
def test_peft(figure_inputs, lang):
    inputs = figure_inputs("peft")
    runs, memory = inputs["runs"], inputs.get("memory")  # memory: what training keeps, counted in bytes
    methods = runs.values("method")
    probes = {k: v for k, v in inputs.items() if k not in ("runs", "memory")}
    assert set(probes) == {"full_0.0001", "lora_0.003"}
    fig = viz.peft(**inputs)
    assert isinstance(fig, Figure) and len(fig.axes) == (4 if memory is None else 5)
    pct = by_title(fig, t("peft.pct_title", lang))
    acc = by_title(fig, t("peft.diff_title", lang))  # each method minus full fine-tuning, paired
    time_ax = by_title(fig, t("peft.cost_title", lang))  # what each method costs, not wall time
    drop = by_title(fig, t("peft.drop_title", lang))
    assert not any(ax.get_ylabel() == t("peak_mb", lang) for ax in fig.axes)  # process RSS is not drawn
    if memory is not None:  # stacked parameters, gradients, optimizer state, activations, in MiB
        mem = by_title(fig, t("peft.mem_title", lang))
        parts = ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
        top = [p for p in mem.patches if p.get_gid() == parts[-1]]
        want = memory.tables["memory"].set_index("arm").loc[methods, list(parts)].sum(axis=1) / 2 ** 20
        np.testing.assert_allclose([p.get_y() + p.get_height() for p in top], want.to_numpy())
    assert pct.get_yscale() == "log" and pct.get_ylabel() == t("trainable_pct", lang)
    f = runs.finals("accuracy", "test")
    np.testing.assert_allclose([b.get_height() for b in bar_containers(pct)[0]],
                               f.groupby("method", sort=False)["trainable_pct_at_end"].mean()[methods])
    kind = viz.cost.cost_kind(runs.records)
    assert time_ax.get_ylabel() == t(f"cost.{kind}", lang)
    assert len(bar_containers(time_ax)) == 1 and len(bar_containers(time_ax)[0]) == len(methods)
    assert len(points(time_ax, "seeds")) == len(runs)
    assert acc.get_ylabel() == t("intervals.diff_short", lang) and not bar_containers(acc)
    assert [x.get_text() for x in acc.get_xticklabels()] == [t(f"peft.method_short.{m}", lang) for m in methods
                                                             if m != "full"]
    cont = bar_containers(drop)
    assert len(cont) == 2 and all(len(c) == 2 for c in cont) and drop.get_legend() is not None
    frame = continual.probe_frame(probes)
    np.testing.assert_allclose([b.get_height() for b in cont[0]],
                               100 * (frame["linear_before"] - frame["linear_after"]).to_numpy())
    assert drop.get_ylabel() == t("peft.drop_axis", lang)
    render(fig)


# ------------------------------------------------------------------------------------ continual table
def test_continual_table(figure_inputs, lang):
    runs = figure_inputs("continual-table")["runs"]
    fig = viz.continual_table(runs)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    (tab,) = ax.tables
    cells = tab.get_celld()
    assert len(cells) == (len(runs) + 1) * 5
    assert cells[0, 0].get_text().get_text() == t("continual-table.method", lang)
    per_task = all(r.summary.get("per_task") for r in runs.records)
    kind = viz.cost.cost_kind(runs.records, 2)  # what the methods cost, not wall time
    cost = t(f"cost.{kind}", lang)
    note = t("continual-table.note_two" if per_task else "continual-table.note_all", lang, n=1,
             cost=cost.lower() if lang == "en" else cost)
    assert unwrapped(note) == unwrapped(fig.get_supxlabel())  # wrapped to the figure's width
    assert cost.lower() in fig.get_supxlabel().lower().replace("\n", " ")  # the note names the cost drawn
    base = viz.cost.run_cost(runs.one(method="naive"), kind, 2)
    for i, (labels, rec) in enumerate(runs, start=1):
        m = accuracy_matrix(rec)
        assert cells[i, 1].get_text().get_text() == f"{100 * m.iloc[1, 0]:.1f}%"
        assert cells[i, 2].get_text().get_text() == f"{100 * m.iloc[1, 1]:.1f}%"
        cost = viz.cost.run_cost(rec, kind, 2)
        assert cells[i, 4].get_text().get_text() == t("continual-table.ratio_fmt", lang, r=cost / base)
    assert cells[1, 4].get_text().get_text() == t("continual-table.ratio_fmt", lang, r=1.0)
    render(fig)


# ------------------------------------------------------------------------------------ axes-level functions
def test_axes_level_functions_draw_on_the_given_axes(figure_inputs, lang_theme):
    lang_theme("en")
    fit = figure_inputs("fitting")["runs"]
    reg = problems.regularization_frame(figure_inputs("regularization")["runs"])
    fixes = problems.fixes_frame(figure_inputs("stability-fixes")["runs"])
    seqs = figure_inputs("forgetting")["runs"]
    probes = continual.probe_frame(figure_inputs("forgetting-pretrained"))
    peft_runs = figure_inputs("peft")["runs"]
    order = list(pd.unique(reg["method"]))
    calls = [
        lambda ax: problems.plot_fit_curves(fit.records[0], ax=ax),
        lambda ax: problems.plot_train_val_accuracy(reg, order=order, ax=ax),
        lambda ax: problems.plot_generalization_gap(reg, order=order, ax=ax),
        lambda ax: problems.plot_fixes_failure_rate(fixes, order=list(pd.unique(fixes["fix"])), ax=ax),
        lambda ax: continual.plot_accuracy_matrix(accuracy_matrix(seqs.records[0]), ax=ax),
        lambda ax: continual.plot_cost_vs_accuracy(continual.forgetting_frame(seqs), ax=ax),
        lambda ax: continual.plot_probe_before_after(probes, probe="knn", ax=ax),
        lambda ax: continual.plot_probe_drop(probes, ax=ax),
        lambda ax: continual.plot_trainable_share(peft_runs.finals(), order=peft_runs.values("method"), ax=ax),
        lambda ax: continual.plot_method_table(continual.continual_frame(seqs)[0], ax=ax),
    ]
    fig, axes = plt.subplots(2, 5)
    for call, ax in zip(calls, axes.ravel()):
        assert call(ax) is ax
        assert ax.has_data() or ax.tables
    plt.close(fig)


def test_trainable_share_ticks_are_plain_percentages(lang_theme):
    lang_theme("en")
    data = pd.DataFrame({"method": ["full", "lora", "prompt"], "trainable_pct_at_end": [100.0, 0.52, 0.012]})
    fig, ax = plt.subplots()
    continual.plot_trainable_share(data, order=["full", "lora", "prompt"], ax=ax)
    fig.canvas.draw()
    labels = [lab.get_text() for lab in ax.get_yticklabels() if lab.get_text()]
    assert labels and not any("$" in x or "^" in x for x in labels)  # 0.01, 1, 100: not 10⁻², 10⁰, 10²
    assert "100" in labels
    plt.close(fig)
