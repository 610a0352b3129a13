"""The frozen-feature cache: same training as running the frozen layers (in eval mode) every step,
the real model back after the run, and only where it is exact to use it."""
from __future__ import annotations

import numpy as np
import pytest

import ftcore.engine.features as feat
from ftcore import build, train
from ftcore.engine.features import frozen_prefix


def losses_and_acc(cfg):
    rec = train(cfg)
    return rec.steps["loss"].to_numpy(), rec.metric("accuracy", "test"), rec


@pytest.mark.parametrize("freeze", [{"freeze": "bottom", "freeze_layers": 1}, {"freeze": "head_only"},
                                    {"freeze": "bottom", "freeze_layers": 2, "pooling": "mean"}])
def test_cached_run_trains_like_the_uncached_one(tiny, monkeypatch, freeze):
    cfg = tiny.replace(frozen_dropout=False, epochs=1, **freeze)
    cached_loss, cached_acc, rec = losses_and_acc(cfg)
    assert "frozen_features" in set(rec.events["kind"])
    monkeypatch.setattr(feat, "ENABLED", False)
    plain_loss, plain_acc, plain = losses_and_acc(cfg)
    assert "frozen_features" not in set(plain.events["kind"])
    np.testing.assert_allclose(cached_loss, plain_loss, rtol=2e-4, atol=2e-5)
    assert cached_acc == pytest.approx(plain_acc, abs=0.02)
    # the same layer groups, frozen the same way, in both records
    assert rec.layer_state.equals(plain.layer_state)


def test_model_is_restored_after_the_run(tiny):
    trainer = build(tiny.replace(frozen_dropout=False, freeze="bottom", freeze_layers=1, epochs=1))
    base = trainer.model.base_model
    assert "forward" in base.embeddings.__dict__  # bypassed while training
    trainer.fit()
    assert "forward" not in base.embeddings.__dict__
    assert all("forward" not in layer.__dict__ for layer in base.encoder.layer)
    assert "input_ids" in trainer.data.collator([{"input_ids": [101, 7, 102], "labels": 0}])


def test_cache_applies_only_where_it_is_exact(tiny):
    def prefix(**kw):
        trainer = build(tiny.replace(**kw))
        return frozen_prefix(trainer.cfg, trainer.model)
    assert prefix(freeze="bottom", freeze_layers=1) is None  # dropout on in frozen layers: not cacheable
    assert prefix(frozen_dropout=False, freeze="none") is None
    assert prefix(frozen_dropout=False, freeze="gradual") is None  # the frozen set changes
    assert prefix(frozen_dropout=False, peft="bitfit") is None  # PEFT decides what trains
    assert prefix(frozen_dropout=False, freeze="bottom", freeze_layers=2).pooled is False  # pooler trains
    assert prefix(frozen_dropout=False, freeze="head_only").pooled is True


def test_frozen_layers_run_without_dropout_when_asked(tiny):
    trainer = build(tiny.replace(frozen_dropout=False, freeze="gradual", epochs=1))
    trainer.model.train()
    feat.frozen_eval(trainer.model)
    frozen = [m for m in trainer.model.modules() if list(m.parameters())
              and not any(p.requires_grad for p in m.parameters())]
    assert frozen and all(not m.training for m in frozen)
    assert trainer.model.training  # the model itself (and its head) still trains


def test_memo_reuses_exactly_and_is_bounded(tiny, monkeypatch):
    feat.clear_memo()
    cfg = tiny.replace(frozen_dropout=False, freeze="head_only", epochs=1)
    train(cfg)
    n = len(feat._MEMO)
    train(cfg.replace(seed=1))  # another training subset order, same examples: reused
    assert len(feat._MEMO) == n and feat.memo_bytes() > 0
    monkeypatch.setattr(feat, "CACHE_MB", 0)
    train(cfg.replace(max_length=12))  # other token ids: recomputed, and the bound evicts
    assert len(feat._MEMO) == 1


def test_lr_finder_of_a_frozen_encoder_trains_on_cached_features(tiny, tmp_path):
    from ftcore import RunRecord
    from ftcore.analysis.lr_finder import lr_find
    result = lr_find(tiny.replace(freeze="head_only", frozen_dropout=False), num_steps=12, runs_dir=tmp_path)
    assert len(result.lrs) > 0
    (rec,) = [RunRecord.load(p) for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert "frozen_features" in set(rec.events["kind"])  # the range test reuses the frozen encoder's output


def test_probing_a_frozen_encoder_on_cached_features_sees_the_real_model(tiny):
    """The probe before fit runs the real encoder (the cache bypasses it until fit ends); a frozen
    encoder's features cannot change, so its probe drop is exactly zero."""
    from ftcore.analysis.probe import forgetting_of_pretrained
    out = forgetting_of_pretrained(tiny.replace(freeze="head_only", frozen_dropout=False, epochs=1), tiny.task,
                                   definitions=False, n_train=40, n_test=40, max_length=16)
    assert out["linear_drop"] == 0 and out["knn_drop"] == 0
