"""Features a figure relies on: LR finder, augmentation, plateau, freezing maps, optional WordNet."""
import pytest

from ftcore import RunConfig, load_task, train
from ftcore.engine.config import ConfigError
from ftcore.engine.assets import wordnet_available
from ftcore.engine.layers import frozen_groups_for, layer_groups
from ftcore.analysis.lr_finder import lr_find, suggest
from ftcore.engine.models import load_model


def test_lr_finder_suggests_an_lr_inside_the_range(tiny, tmp_path):
    res = lr_find(tiny, start_lr=1e-6, end_lr=10.0, num_steps=40, runs_dir=tmp_path)
    assert 1e-6 <= res.suggestion <= 10.0 and 1e-7 <= res.min_loss_lr_over_10 <= 1.0
    assert res.lrs == sorted(res.lrs) and len(res.lrs) == len(res.losses)
    assert "suggested LR" in repr(res)
    assert res.record.path is not None  # cached like any run


def test_suggest_finds_the_steepest_descent():
    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    # Loss flat, then falling fastest around 1e-3, minimum at 1e-2, then rising.
    import math
    losses = [2.0 - math.tanh((math.log10(lr) + 3) * 2) for lr in lrs]
    losses = [l if lr < 1e-2 else 1.0 + (math.log10(lr) + 2) * 5 for l, lr in zip(losses, lrs)]
    steepest, _ = suggest(lrs, losses)
    assert 10 ** -3.6 < steepest < 10 ** -2.4


def test_augmentation_adds_copies_with_source_labels(tiny):
    rec = train(tiny.replace(epochs=1, augment=("swap", "delete"), augment_copies=2))
    n = rec.summary["train_examples"]
    assert n == 210 * 3  # 70% of 300 for training, plus two augmented copies each


def test_plateau_reduces_lr_and_records_the_event(tiny):
    rec = train(tiny.replace(schedule="plateau", warmup="none", eval_every=2, plateau_patience=0,
                             plateau_factor=0.5, lr=3e-2, epochs=3, clip_grad_norm=None))
    reductions = rec.events[rec.events.kind == "lr_reduced"]
    assert len(reductions) >= 1
    head = rec.lrs[rec.lrs.group == "head"].set_index("step")["lr"]
    assert head.iloc[-1] < head.iloc[0]
    first = int(reductions.step.iloc[0])
    assert head[first + 1] == pytest.approx(head[first] * 0.5)


@pytest.mark.parametrize("strategy, kw, frozen", [
    ("none", {}, []),
    ("bottom", {"freeze_layers": 1}, ["embeddings", "layer.0"]),
    ("middle", {"freeze_layers": 4}, ["layer.1", "layer.2", "layer.3", "layer.4"]),
    ("head_only", {}, ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["pooler"]),
    ("gradual", {}, ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["pooler"]),
])
def test_freezing_strategies_on_a_six_layer_stack(strategy, kw, frozen):
    from transformers import BertConfig, BertForSequenceClassification
    model = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=6,
                                                     num_attention_heads=2, intermediate_size=16))
    assert frozen_groups_for(strategy, layer_groups(model), **kw) == frozen


@pytest.mark.skipif(not wordnet_available(), reason="Debian wordnet-base not installed (optional task)")
def test_wordnet_supersense_task():
    t = load_task("wordnet-supersense")
    assert t.num_labels == 26 and "noun.animal" in t.label_names
    assert sum(t.sizes().values()) > 5000


def test_random_init_keeps_the_architecture_but_not_the_weights():
    import torch
    a = load_model("all-MiniLM-L6-v2", 2, seed=0)
    b = load_model("all-MiniLM-L6-v2", 2, seed=0, init="random")
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    wa = dict(a.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    wb = dict(b.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    assert not torch.equal(wa, wb)
    with pytest.raises(ValueError, match="init"):
        RunConfig(init="scratch")


def test_score_train_records_each_example_loss_and_flags_flipped_labels(tiny):
    rec = train(tiny.replace(label_noise=0.2, score_train=True, epochs=4))
    ex = rec.examples
    assert len(ex) == 210 and ex["noisy"].sum() == 42  # 70% of 300 in train, 20% of them flipped
    # a model that learned the clean rule finds the flipped labels harder to fit
    assert ex.loc[ex["noisy"], "loss"].mean() > ex.loc[~ex["noisy"], "loss"].mean()


def test_test_size_evaluates_a_fixed_subset_of_the_test_split(tiny):
    rec = train(tiny.replace(test_size=20, epochs=1))
    assert rec.summary["steps"] > 0
    assert train(tiny.replace(test_size=20, epochs=1)).metric("accuracy") == rec.metric("accuracy")
    with pytest.raises(ConfigError, match="test_size"):
        tiny.replace(test_size=0)
