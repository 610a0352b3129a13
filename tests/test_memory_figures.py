"""Memory as what training keeps (parameters, gradients, optimizer state, saved activations) in the
figures ``freeze-effects`` and ``peft``: the study that counts it, the stacked-bar panel, and both
figures drawn from crafted records and a crafted memory study (no training, no stored fixtures)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import viz  # noqa: E402
from ftcore.records.record import RunRecord, table_from_rows  # noqa: E402
from ftcore.records.runset import RunSet  # noqa: E402
from ftcore.records.studies import Study  # noqa: E402
from viz import geometry  # noqa: E402
from viz.text import t  # noqa: E402
from figure_checks import unwrapped  # noqa: E402

PARTS = ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
MIB = 2 ** 20
FREEZE = ("none", "bottom", "middle", "head_only", "gradual")
PEFT = ("full", "lora_r2", "lora_r8", "lora_r32", "prompt", "bitfit")
N_PARAMS = 22_713_986  # the default model's size, so that the bars have the real proportions


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")
    matplotlib.rcdefaults()


# ------------------------------------------------------------------------------------ crafted inputs
def _record(acc: float, seed: int, *, train_s: float, trainable: int) -> RunRecord:
    evals = table_from_rows("evals", [(10, "toy", "test", "accuracy", acc), (10, "toy", "test", "majority_frac", 0.55)])
    summary = {"wall_s": train_s + 2.0, "train_s": train_s, "eval_s": 2.0, "peak_rss_mb": 2000.0 + seed,
               "trainable_params_at_end": trainable, "trainable_pct_at_end": 100.0 * trainable / N_PARAMS,
               "total_params": N_PARAMS, "steps": 10}
    return RunRecord(f"crafted{seed}", {}, {}, "completed", summary, {"evals": evals})


def _runs(key: str, arms, seeds=(0, 1)) -> RunSet:
    return RunSet(({key: arm, "seed": s}, _record(0.7 + 0.02 * i + 0.01 * s, s, train_s=30.0 - 3 * i,
                                                    trainable=N_PARAMS // (i + 1)))
                  for i, arm in enumerate(arms) for s in seeds)


def _memory_row(arm: str, trainable: int, activations_mib: float) -> dict:
    return {"arm": arm, "params_bytes": 4 * N_PARAMS, "grads_bytes": 4 * trainable, "optimizer_bytes": 8 * trainable,
            "activations_bytes": int(activations_mib * MIB), "trainable_params": trainable}


META = {"batch_examples": 16, "batch_tokens": 768, "max_length": 48, "precision": "bf16"}


def _freeze_memory() -> Study:
    rows = [_memory_row("none", N_PARAMS, 40), _memory_row("bottom", 15_000_000, 25),
            _memory_row("middle", 13_000_000, 30), _memory_row("head_only", 148_000, 0.5),
            _memory_row("gradual", 148_000, 0.5)]
    return Study("memory", {}, {"memory": pd.DataFrame(rows)}, dict(META))


def _peft_memory() -> Study:
    rows = [_memory_row("full", N_PARAMS, 40), _memory_row("lora_r2", 30_000, 44), _memory_row("lora_r8", 110_000, 44),
            _memory_row("lora_r32", 440_000, 45), _memory_row("prompt", 8_000, 41), _memory_row("bitfit", 27_000, 38)]
    return Study("memory", {}, {"memory": pd.DataFrame(rows)}, dict(META))


def _probes() -> dict[str, Study]:
    def probe(before: float, after: float, lr: float) -> Study:
        row = {"linear_before": before, "linear_after": after, "knn_before": before - 0.05,
               "knn_after": after - 0.05, "lr": lr, "probe_task": "toy", "task": "toy"}
        return Study("probe", {"n_train": 64, "n_test": 32}, {"probe": pd.DataFrame([row])})
    return {"full_0.001": probe(0.8, 0.7, 1e-3), "lora_0.001": probe(0.8, 0.79, 1e-3)}


def _stacks(ax) -> dict[str, np.ndarray]:
    """Each part's bar heights (MiB) and bottoms, by the part's gid."""
    out = {}
    for part in PARTS:
        rects = [p for p in ax.patches if p.get_gid() == part]
        out[part] = np.array([[r.get_x() + r.get_width() / 2, r.get_y(), r.get_height()] for r in rects])
    return out


# ------------------------------------------------------------------------------------ (a) the study
def test_memory_study_counts_what_head_only_training_saves(tiny):
    from ftcore.analysis import figure_studies

    tables, meta = figure_studies.memory({"none": tiny, "head_only": tiny.replace(freeze="head_only")})
    mem = tables["memory"]
    assert list(mem["arm"]) == ["none", "head_only"]
    assert set(PARTS) | {"trainable_params"} <= set(mem.columns)
    full, head = (mem.set_index("arm").loc[a] for a in ("none", "head_only"))
    assert full["params_bytes"] == head["params_bytes"]  # frozen parameters are still held
    assert head["grads_bytes"] * 10 < full["grads_bytes"]
    assert head["optimizer_bytes"] * 10 < full["optimizer_bytes"]
    assert head["activations_bytes"] < full["activations_bytes"]
    assert full["optimizer_bytes"] == 2 * full["grads_bytes"]  # AdamW: two moments per trainable parameter
    assert meta["max_length"] == tiny.max_length and meta["precision"] == tiny.precision
    assert meta["batch_examples"] == tiny.batch_size and meta["batch_tokens"] >= meta["batch_examples"]


# ------------------------------------------------------------------------------------ (b) the panel
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_stacked_bars_add_up_to_the_bytes_in_mib(lang):
    mem = pd.DataFrame([{"arm": "a", "params_bytes": 3 * MIB, "grads_bytes": MIB, "optimizer_bytes": 2 * MIB,
                         "activations_bytes": MIB // 2, "trainable_params": 1},
                        {"arm": "b", "params_bytes": 3 * MIB, "grads_bytes": 0, "optimizer_bytes": 0,
                         "activations_bytes": 5 * MIB, "trainable_params": 0}])
    with viz.set_theme(lang):
        fig, ax = plt.subplots()
        viz.plot_training_memory(mem, order=["b", "a", "c"], labels={"a": "A", "b": "B"}, ax=ax)
        s = _stacks(ax)
        want = mem.set_index("arm").reindex(["b", "a", "c"])[list(PARTS)].fillna(0).to_numpy(float) / MIB
        for k, part in enumerate(PARTS):
            np.testing.assert_allclose(s[part][:, 0], [0, 1, 2])  # x = the position in ``order``
            np.testing.assert_allclose(s[part][:, 2], want[:, k])
            np.testing.assert_allclose(s[part][:, 1], want[:, :k].sum(axis=1))  # stacked on the parts below
        tops = s[PARTS[-1]][:, 1] + s[PARTS[-1]][:, 2]
        np.testing.assert_allclose(tops, want.sum(axis=1))
        np.testing.assert_allclose(tops[:2], [8.0, 6.5])
        assert [x.get_text() for x in ax.get_xticklabels()] == ["B", "A", "c"]
        assert ax.get_ylabel() == t("memory.axis") and "MiB" in ax.get_ylabel()
        legend = [x.get_text() for x in ax.get_legend().get_texts()]
        assert sorted(legend) == sorted(t(f"memory.{p}") for p in PARTS)
        if lang == "zh":
            assert set(legend) == {"参数", "梯度", "优化器状态", "保存的激活"}


# ------------------------------------------------------------------------------------ (c) the figures
def _memory_axis(fig: Figure):
    found = [ax for ax in fig.axes if any(p.get_gid() in PARTS for p in ax.patches)]
    assert len(found) == 1
    return found[0]


def _check_print(fig: Figure) -> None:
    assert geometry.print_problems(fig) == []
    w, h = geometry.saved_size_cm(fig)
    assert h <= geometry.MAX_HEIGHT_CM - geometry.NOTE_ROOM_CM + 0.05


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_freeze_effects_draws_the_memory_study(lang):
    runs, memory = _runs("strategy", FREEZE), _freeze_memory()
    with viz.set_theme(lang):
        fig = viz.freeze_effects(runs, memory=memory)
        assert len(fig.axes) == 4
        ax = _memory_axis(fig)
        assert unwrapped(ax.get_title()) == unwrapped(t("freeze-effects.memory"))
        s = _stacks(ax)
        want = memory.tables["memory"].set_index("arm").loc[list(FREEZE), list(PARTS)].sum(axis=1) / MIB
        np.testing.assert_allclose(s[PARTS[-1]][:, 1] + s[PARTS[-1]][:, 2], want.to_numpy())
        assert [x.get_text() for x in ax.get_xticklabels()] == [t(f"freeze-map.short.{n}") for n in FREEZE]
        assert not any(ax.get_ylabel() == t("peak_mb") for ax in fig.axes)  # no process RSS
        note = t("memory.note", n=16, tokens=768, precision="bf16")
        assert unwrapped(note) in unwrapped(fig._suptitle.get_text())  # the batch the bytes were counted on
        _check_print(fig)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_freeze_effects_without_memory_drops_the_rss_panel(lang):
    with viz.set_theme(lang):
        fig = viz.freeze_effects(_runs("strategy", FREEZE))
        assert len(fig.axes) == 4  # accuracy, its paired difference to full fine-tuning, cost, and one more panel
        assert not any(ax.get_ylabel() == t("peak_mb") for ax in fig.axes)
        assert unwrapped(t("freeze-effects.memory")) not in [unwrapped(ax.get_title()) for ax in fig.axes]
        names = [t(f"freeze-map.short.{n}") for n in FREEZE]
        for ax in fig.axes:  # every strategy, or (the paired-difference panel) every one but the baseline
            assert [x.get_text() for x in ax.get_xticklabels()] in (names, names[1:])
        _check_print(fig)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_peft_draws_the_memory_study(lang):
    runs, memory = _runs("method", PEFT), _peft_memory()
    with viz.set_theme(lang):
        fig = viz.peft(runs, memory=memory, **_probes())
        assert len(fig.axes) == 5
        ax = _memory_axis(fig)
        assert unwrapped(ax.get_title()) == unwrapped(t("peft.mem_title"))
        s = _stacks(ax)
        want = memory.tables["memory"].set_index("arm").loc[list(PEFT), list(PARTS)].sum(axis=1) / MIB
        np.testing.assert_allclose(s[PARTS[-1]][:, 1] + s[PARTS[-1]][:, 2], want.to_numpy())
        assert [x.get_text() for x in ax.get_xticklabels()] == [t(f"peft.method_short.{m}") for m in PEFT]
        assert not any(ax.get_ylabel() == t("peak_mb") for ax in fig.axes)
        # the panel is small: its legend goes under the figure, headed by the batch the bytes were counted on
        (legend,) = fig.legends
        assert [x.get_text() for x in legend.get_texts()] == [t(f"memory.{p}") for p in PARTS]
        assert unwrapped(t("memory.note", n=16, tokens=768, precision="bf16")) in unwrapped(legend.get_title().get_text())
        _check_print(fig)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_peft_without_memory_has_no_rss_panel(lang):
    with viz.set_theme(lang):
        fig = viz.peft(_runs("method", PEFT), **_probes())
        assert len(fig.axes) == 4
        assert not any(ax.get_ylabel() == t("peak_mb") for ax in fig.axes)
        _check_print(fig)


def test_no_code_identifiers_in_the_chinese_memory_panels():
    import re
    identifier = re.compile(r"[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+|\b[a-z]+\.[a-z_]+\b|\b[0-9a-f]{8,}\b")
    with viz.set_theme("zh"):
        for fig in (viz.freeze_effects(_runs("strategy", FREEZE), memory=_freeze_memory()),
                    viz.peft(_runs("method", PEFT), memory=_peft_memory(), **_probes())):
            assert [a.get_text() for a in geometry.text_artists(fig) if identifier.search(a.get_text())] == []
