"""Analysis modules on the tiny model: layer drift (weights, CKA) and probes of pretrained knowledge."""
import copy
import math

import numpy as np
import pytest
import torch

from ftcore import build
from ftcore.engine.assets import wordnet_available
from ftcore.analysis.drift import (cka_to_reference, fixed_batch, layer_representations, linear_cka,
                          measure_drift, relative_change, snapshot)
from ftcore.engine.models import load_model, load_tokenizer
from ftcore.analysis.probe import (definition_retrieval, encode, forgetting_of_pretrained, knn_accuracy,
                          linear_probe_accuracy, probe_task, wordnet_definitions)

GROUPS = ["embeddings", "layer.0", "layer.1", "pooler", "head"]


# ----------------------------------------------------------------------------- CKA
def test_cka_of_a_representation_with_itself_is_one(tiny):
    X = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    model = load_model("tiny-bert", 2, seed=0)
    batch = fixed_batch(tiny, 20)  # the toy task's validation split has 30 examples
    reps = layer_representations(model, batch)
    assert list(reps) == ["embeddings", "layer.0", "layer.1"]
    assert all(r.shape == (20, 32) for r in reps.values())
    for r in reps.values():
        assert linear_cka(r, r) == pytest.approx(1.0, abs=1e-9)
    same = cka_to_reference(model, copy.deepcopy(model), batch)
    assert same == pytest.approx({n: 1.0 for n in reps}, abs=1e-9)


def test_cka_invariant_to_rotation_and_scale_not_to_any_linear_map():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 12, generator=g, dtype=torch.float64)
    X = X @ torch.randn(12, 12, generator=g, dtype=torch.float64)  # correlated features
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    assert linear_cka(X, 7.5 * X @ Q) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(X, X + 3.0) == pytest.approx(1.0, abs=1e-9)  # centering: shifts do not matter
    Y = torch.randn(300, 12, generator=g, dtype=torch.float64)
    assert linear_cka(X @ Q, Y) == pytest.approx(linear_cka(X, Y), abs=1e-9)
    stretch = torch.diag(torch.logspace(-2, 2, 12, dtype=torch.float64))
    assert linear_cka(X, X @ stretch) < 0.95  # an anisotropic scaling does change it


def test_cka_of_independent_features_is_low_and_of_related_features_high():
    g = torch.Generator().manual_seed(2)
    X, Y = torch.randn(1000, 10, generator=g), torch.randn(1000, 10, generator=g)
    assert linear_cka(X, Y) < 0.05
    assert linear_cka(X, X + 0.3 * Y) > 0.8
    assert math.isnan(linear_cka(torch.ones(50, 3), X[:50]))
    with pytest.raises(ValueError):
        linear_cka(X, Y[:10])


# ----------------------------------------------------------------------------- weight change
def test_relative_change_is_zero_untouched_and_per_group():
    model = load_model("tiny-bert", 2, seed=0)
    ref = snapshot(model)
    assert relative_change(model, ref) == {g: 0.0 for g in GROUPS}
    with torch.no_grad():
        w = model.bert.encoder.layer[1].output.dense.weight
        w.mul_(1.5)
    changes = relative_change(model, ref)
    assert changes["layer.1"] > 0
    assert {g: v for g, v in changes.items() if g != "layer.1"} == {g: 0.0 for g in GROUPS if g != "layer.1"}
    # exact value: only that matrix moved, by half its norm
    group_sq = sum(float(ref[n].double().pow(2).sum()) for n in ref if ".layer.1." in n)
    expect = 0.5 * float(ref["bert.encoder.layer.1.output.dense.weight"].double().norm()) / math.sqrt(group_sq)
    assert changes["layer.1"] == pytest.approx(expect, rel=1e-6)
    no_head = {n: t for n, t in ref.items() if not n.startswith("classifier")}
    assert math.isnan(relative_change(model, no_head)["head"])


def test_frozen_groups_do_not_change_and_trained_groups_do(tiny):
    trainer = build(tiny.replace(freeze="bottom", freeze_layers=1, epochs=1))
    ref = snapshot(trainer.model)
    trainer.fit()
    changes = relative_change(trainer.model, ref)
    assert list(changes) == GROUPS
    assert changes["embeddings"] == 0.0 and changes["layer.0"] == 0.0
    assert all(changes[g] > 1e-4 for g in ("layer.1", "pooler", "head"))


def test_measure_drift_reports_weights_and_representations(tiny):
    df = measure_drift(tiny.replace(freeze="bottom", freeze_layers=1, epochs=1), n_examples=24)
    assert list(df.columns) == ["group", "relative_change", "cka"]
    assert df["group"].tolist() == GROUPS
    row = df.set_index("group")
    assert row.loc["embeddings", "relative_change"] == 0.0 and row.loc["layer.0", "relative_change"] == 0.0
    assert row.loc["embeddings", "cka"] == pytest.approx(1.0, abs=1e-9)  # frozen: same representation
    assert row.loc["layer.0", "cka"] == pytest.approx(1.0, abs=1e-9)
    assert row.loc["layer.1", "relative_change"] > 0 and row.loc["layer.1", "cka"] < 1 - 1e-6
    assert math.isnan(row.loc["pooler", "cka"]) and math.isnan(row.loc["head", "cka"])
    assert df.attrs["n_examples"] == 24 and df.attrs["steps"] > 0


# ----------------------------------------------------------------------------- probes
def _blobs(n, k, d, sep, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * sep
    y = rng.integers(0, k, size=n)
    return centers[y] + rng.normal(size=(n, d)), y


def test_linear_probe_separable_vs_random_labels():
    X, y = _blobs(1200, 3, 20, sep=3.0, seed=0)
    acc = linear_probe_accuracy(X[:600], y[:600], X[600:], y[600:], seed=0)
    assert acc > 0.95
    assert linear_probe_accuracy(X[:600], y[:600], X[600:], y[600:], seed=0) == acc  # deterministic
    rng = np.random.default_rng(1)
    R, r = rng.normal(size=(3000, 20)), rng.integers(0, 2, size=3000)
    chance = linear_probe_accuracy(R[:1000], r[:1000], R[1000:], r[1000:], seed=0)
    assert abs(chance - 0.5) < 0.05


def test_knn_separable_vs_random_labels():
    X, y = _blobs(1200, 4, 16, sep=3.0, seed=3)
    X = X + 10.0  # cosine similarity is about direction: keep the blobs apart in angle too
    assert knn_accuracy(X[:600], y[:600], X[600:], y[600:], k=5) > 0.9
    rng = np.random.default_rng(4)
    R, r = rng.normal(size=(3000, 16)), rng.integers(0, 2, size=3000)
    assert abs(knn_accuracy(R[:1000], r[:1000], R[1000:], r[1000:], k=5) - 0.5) < 0.05
    # k=1 on the training set itself finds each point
    assert knn_accuracy(X[:100], y[:100], X[:100], y[:100], k=1) == 1.0


def test_encode_keeps_order_and_ignores_padding():
    model = load_model("tiny-bert", 2, seed=0).train()
    tok = load_tokenizer("tiny-bert")
    texts = ["short", "a much longer sentence with quite a few more words in it", "medium length text"]
    feats = encode(model, texts, tok, batch_size=2)
    assert feats.shape == (3, 32) and model.training  # mode restored
    alone = torch.cat([encode(model, [t], tok) for t in texts])
    torch.testing.assert_close(feats, alone, atol=1e-5, rtol=1e-5)
    ids = tok(texts)["input_ids"]
    torch.testing.assert_close(encode(model, ids[::-1], tok), feats.flip(0), atol=1e-5, rtol=1e-5)


def test_probe_task_on_tiny_model_is_deterministic(toy_task):
    model = load_model("tiny-bert", 2, seed=0)
    tok = load_tokenizer("tiny-bert")
    a = probe_task(model, toy_task, tok, n_train=120, n_test=60, max_length=16)
    b = probe_task(model, toy_task, tok, n_train=120, n_test=60, max_length=16)
    assert set(a) == {"linear", "knn"}
    assert all(0.0 <= v <= 1.0 for v in a.values())
    assert a == b


def test_forgetting_of_pretrained_returns_before_after_drop(tiny, toy_task):
    out = forgetting_of_pretrained(tiny.replace(epochs=1), toy_task, definitions=False,
                                   n_train=100, n_test=60, max_length=16)
    for probe in ("linear", "knn"):
        for part in ("before", "after"):
            assert 0.0 <= out[f"{probe}_{part}"] <= 1.0
        assert out[f"{probe}_drop"] == pytest.approx(out[f"{probe}_before"] - out[f"{probe}_after"])
    assert "definitions_before" not in out
    assert out["lr"] == tiny.lr and out["task"] == tiny.task and out["steps"] > 0
    assert 0.0 <= out["finetune_validation_accuracy"] <= 1.0
    assert out["config"]["model"] == "tiny-bert"


@pytest.mark.skipif(not wordnet_available(), reason="Debian wordnet-base is not installed")
def test_wordnet_definition_retrieval():
    pairs = wordnet_definitions()
    assert len(pairs) > 1000
    words = [w.lower() for w, _ in pairs]
    assert len(set(words)) == len(words) and not any("_" in w for w in words)
    assert not any('; "' in d for _, d in pairs)
    model = load_model("tiny-bert", 2, seed=0)
    tok = load_tokenizer("tiny-bert")
    acc = definition_retrieval(model, tok, n=40, seed=0, max_length=24)
    assert 0.0 <= acc <= 1.0
    assert definition_retrieval(model, tok, n=40, seed=0, max_length=24) == acc


def test_forgetting_of_pretrained_with_lora_probes_the_adapted_encoder(tiny, toy_task):
    out = forgetting_of_pretrained(tiny.replace(epochs=1, peft="lora"), toy_task, definitions=False,
                                   n_train=100, n_test=60, max_length=16)
    assert 0.0 <= out["linear_after"] <= 1.0 and out["steps"] > 0
