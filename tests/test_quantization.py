"""Quantization (figure ``quantization``): int8 dynamic quantization shrinks the model and keeps its
outputs close, quantization-aware training runs and converts, the study stores and reloads, and
the figure resolves and draws in quick mode. Tiny random BERT, seconds."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ftcore.analysis import quantization as q
from ftcore.engine.runs import build, init_model


def _trained_tiny(tiny):
    trainer = build(tiny.replace(epochs=1))
    trainer.fit()
    return trainer


def test_dynamic_quantization_shrinks_the_state_dict_and_keeps_outputs_close(tiny):
    trainer = _trained_tiny(tiny)
    fp32 = trainer.model.cpu().float().eval()
    int8 = q.quantize_int8(fp32)
    linear = q.linear_layers(fp32)
    assert linear and all(isinstance(int8.get_submodule(n), torch.ao.nn.quantized.dynamic.Linear) for n in linear)
    assert not q.linear_layers(int8)  # no float Linear left
    assert type(fp32.get_submodule(linear[0])) is nn.Linear  # the original is untouched
    assert q.state_dict_bytes(int8) < q.state_dict_bytes(fp32)
    batch = q._batch([[101, 2000, 2001, 102], [101, 2002, 102]], 0)
    with torch.no_grad():
        a, b = fp32(**batch).logits.softmax(-1), int8(**batch).logits.softmax(-1)
    assert (a - b).abs().max() < 0.05


def test_qat_trains_through_fake_quantization_and_converts(tiny):
    cfg = tiny.replace(epochs=1)
    trainer = build(cfg)
    model = q.prepare_qat(init_model(cfg, trainer.data.num_labels))
    names = [n for n, m in model.named_modules() if isinstance(m, torch.ao.nn.qat.dynamic.Linear)]
    assert names and not q.linear_layers(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    qt = build(cfg, model=model, data=trainer.data)
    with q._quiet():
        qt.fit()
    losses = [r[3] for r in next(c for c in qt.callbacks if type(c).__name__ == "Recorder").rows["steps"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    moved = [n for n, p in qt.model.named_parameters() if not torch.equal(p.detach().cpu(), before[n])]
    assert any(n.startswith(names[0]) for n in moved)  # gradients flow through the fake quantization
    int8 = q.convert_qat(qt.model)
    assert isinstance(int8.get_submodule(names[0]), torch.ao.nn.quantized.dynamic.Linear)
    assert not any(m._forward_pre_hooks for m in int8.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear))
    batch = q._batch([[101, 2000, 2001, 102]], 0)
    with torch.no_grad():  # the QAT model in eval mode already computed what int8 computes
        a, b = qt.model.cpu().float().eval()(**batch).logits, int8(**batch).logits
    assert torch.allclose(a, b, atol=0.05)


def test_latency_rows_per_arm_batch_and_repeat():
    model = nn.Sequential()  # a stand-in with the HF call signature
    class M(nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return input_ids.float().sum()
    lat = q.measure_latency({"a": M(), "b": M()}, [[1, 2, 3]] * 4, batch_sizes=(1, 2), repeats=3)
    assert len(lat) == 2 * 2 * 3 and (lat["ms_per_example"] > 0).all()
    assert set(lat.columns) >= {"arm", "batch_size", "repeat", "ms_per_example", "cpu_share"}
    assert q.machine()["cpu"]


def test_the_study_saves_and_reloads(tiny, tmp_path):
    from ftcore.records.studies import study
    params = {"run": tiny.identity_dict()}
    compute = lambda: q.quantization_study(tiny.replace(epochs=1), n_latency=4, repeats=2)  # noqa: E731
    st = study("quantization", params, compute, runs_dir=tmp_path)
    assert set(st["arms"]["arm"]) == set(q.ARMS)
    arms = st["arms"].set_index("arm")
    # the tiny model is mostly embeddings: only with them in 8 bits is int8 smaller than bf16
    assert arms.loc["int8_ptq_emb", "size_bytes"] < arms.loc["bf16", "size_bytes"] < arms.loc["fp32", "size_bytes"]
    assert arms.loc["int8_ptq", "size_bytes"] < arms.loc["fp32", "size_bytes"]
    assert arms.loc["fp32", "agree_fp32"] == 1.0
    assert st.meta["n_quantized_layers"] == len(st.meta["quantized_layers"]) > 0
    again = study("quantization", params, lambda: pytest.fail("recomputed"), runs_dir=tmp_path, render_only=True)
    assert again["arms"].equals(st["arms"]) and again.meta["machine"] == st.meta["machine"]


def test_each_form_is_measured_on_validation_too_and_the_gate_reads_it_there(tiny):
    """The reviewed protocol's gate reads validation, never test: the study measures every form on
    validation the way it measures test, and the figure's arm results answer for either split."""
    from chapter.figures.quantization import arms_runset
    from collections import Counter

    from ftcore.engine.data import prepare_data
    cfg = tiny.replace(epochs=1, eval_splits=("validation",))
    tables, meta = q.quantization_study(cfg, n_latency=2, repeats=1, arms=("fp32", "int8_ptq"))
    arms = tables["arms"].set_index("arm")
    assert {"validation_accuracy", "validation_majority_frac", "validation_max_class_frac"} <= set(arms.columns)
    labels = prepare_data(cfg).evals["validation"]["label"]  # measured on the validation split's own examples
    assert arms.loc["fp32", "validation_majority_frac"] == pytest.approx(max(Counter(labels).values()) / len(labels))

    class Meta:  # a study as the figure reads it
        def __init__(self):
            self.meta = {"seed": 0, "run_id": "r"}
        def __getitem__(self, key):
            return tables[key]
    fp32 = next(r for lab, r in arms_runset([Meta()]) if lab["arm"] == "fp32")
    assert fp32.metric("accuracy", "validation") == arms.loc["fp32", "validation_accuracy"]
    assert fp32.metric("accuracy", "test") == arms.loc["fp32", "accuracy"]


def test_a_deep_copy_of_a_mean_pooled_model_pools_with_its_own_mask(tiny):
    """Every int8/bf16 arm is a copy: its pooler must get the copy's mask, not the original's."""
    import copy
    model = init_model(tiny.replace(pooling="mean"), 2).eval()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        model(**q._batch([[101, 2000, 102]] * 3, 0))  # leaves a 3-row mask in the original
        one = twin(**q._batch([[101, 2000, 2001, 102]], 0)).logits
    assert one.shape == (1, 2)


def test_the_figure_resolves_and_draws_from_the_quick_records():
    import matplotlib.pyplot as plt

    import chapter
    import viz
    from chapter import specs  # noqa: F401 (registers the figures)
    from chapter.registry import PLANNED, REGISTRY
    spec = REGISTRY["quantization"]
    assert "quantization" not in PLANNED
    inputs = chapter.inputs("quantization", quick=True)  # committed quick records, never trains
    arms = inputs["gate_arms"]
    assert set(arms.values("arm")) == set(q.ARMS) and arms.values("seed") == [0]
    assert len(spec.gate(inputs).checks) == len(q.ARMS)  # every compared arm is gated
    assert [j.claim.a["arm"] for j in spec.verdicts(inputs)] == ["fp32", "int8_qat", "fp32", "fp32"]
    viz.set_theme("en")
    fig = spec.render(inputs)
    assert len(fig.axes) == 4
    assert [tick.get_text() for tick in fig.axes[0].get_xticklabels()][2] == viz.t("quantization.short.int8_ptq")
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "seeds"]) == 1  # one line per seed
    plt.close(fig)
