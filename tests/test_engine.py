"""The loop's behaviour on the tiny model: learning, freezing, LRs, stopping, determinism."""
import math

import pytest
import torch

from ftcore import build, train
from ftcore.engine.callbacks import Recorder
from ftcore.engine.layers import freeze, freeze_to, group_names, layer_groups, unfreeze
from ftcore.engine.models import load_model


def test_loss_falls_and_accuracy_beats_chance(tiny):
    rec = train(tiny.replace(epochs=4))
    losses = rec.steps["loss"].tolist()
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert rec.metric("accuracy", "test") > 0.8
    assert rec.status == "completed"


def test_layer_groups_in_depth_order():
    model = load_model("tiny-bert", 2, seed=0)
    assert group_names(model) == ["embeddings", "layer.0", "layer.1", "pooler", "head"]
    groups = layer_groups(model)
    n_all = sum(p.numel() for p in model.parameters())
    assert sum(g.n_params for g in groups) == n_all  # every parameter in exactly one group


def test_fastai_freeze_vocabulary():
    model = load_model("tiny-bert", 2, seed=0)
    assert freeze(model) == ["head"]
    assert freeze_to(model, 3) == ["pooler", "head"]
    assert freeze_to(model, -2) == ["pooler", "head"]
    assert unfreeze(model) == group_names(model)


def test_frozen_groups_unchanged_and_without_gradients(tiny):
    cfg = tiny.replace(freeze="bottom", freeze_layers=1, epochs=1)
    trainer = build(cfg)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    seen_grads = {}

    class Spy:
        order = 60

        def on_after_backward(self, t):
            for g in t.groups:
                seen_grads.setdefault(g.name, set()).update(p.grad is not None for _, p in g.params)

    trainer.callbacks.append(Spy())
    trainer.fit()
    groups = {g.name: g for g in trainer.groups}
    for name in ("embeddings", "layer.0"):
        assert seen_grads[name] == {False}
        for pname, p in groups[name].params:
            assert torch.equal(p, before[pname]), pname
    for name in ("layer.1", "pooler", "head"):
        assert seen_grads[name] == {True}
        assert any(not torch.equal(p, before[n]) for n, p in groups[name].params)


def test_one_lr_row_per_group_per_step_and_layerwise_ratios(tiny):
    rec = train(tiny.replace(lr_strategy="layerwise", layer_decay=0.8, epochs=1))
    lrs = rec.lrs
    n_groups = lrs["group"].nunique()
    assert n_groups == 10  # 5 layer groups x (decay, no_decay)
    assert len(lrs) == n_groups * len(rec.steps)
    assert (lrs.groupby("step").size() == n_groups).all()
    last = lrs[lrs.step == lrs.step.max()].drop_duplicates("layer").set_index("layer")["lr"]
    assert last["layer.1"] / last["head"] == pytest.approx(0.8, rel=1e-12)
    assert last["layer.0"] / last["layer.1"] == pytest.approx(0.8, rel=1e-12)
    assert last["embeddings"] / last["layer.0"] == pytest.approx(0.8, rel=1e-12)
    assert last["pooler"] == last["head"]


def test_discriminative_and_head_lr(tiny):
    rec = train(tiny.replace(lr_strategy="discriminative", head_lr=5e-3, epochs=1, warmup="none",
                             schedule="constant"))
    first = rec.lrs[rec.lrs.step == 1].drop_duplicates("layer").set_index("layer")["lr"]
    assert first["head"] == 5e-3
    assert first["layer.1"] == pytest.approx(3e-3 / 2.6) and first["layer.0"] == pytest.approx(3e-3 / 2.6**2)


def test_same_config_twice_gives_identical_losses(tiny):
    cfg = tiny.replace(epochs=1, dropout=0.2, label_noise=0.1)
    a, b = train(cfg), train(cfg)
    assert a.steps["loss"].tolist() == b.steps["loss"].tolist()
    assert a.grad_norms["norm"].tolist() == b.grad_norms["norm"].tolist()
    c = train(cfg.replace(seed=1))
    assert c.steps["loss"].tolist() != a.steps["loss"].tolist()


def test_early_stopping_restores_best_step(tiny):
    # A learning rate far too high for the tiny model makes validation loss wander up and down.
    cfg = tiny.replace(epochs=6, eval_every=3, early_stopping_patience=2, lr=3e-2, warmup="none",
                       schedule="constant", clip_grad_norm=None)
    rec = train(cfg)
    val = rec.evals[(rec.evals.split == "validation") & (rec.evals.metric == "loss")]
    during = val[val.step.isin(range(3, rec.summary["steps"] + 1, 3))].drop_duplicates("step", keep="first")
    best_step = int(during.loc[during.value.idxmin(), "step"])
    assert rec.summary["best_step"] == best_step
    assert rec.summary["validation_loss"] == pytest.approx(during.value.min(), rel=1e-6)
    kinds = rec.events["kind"].tolist()
    if best_step != rec.summary["steps"]:
        assert "restored_best" in kinds


def test_early_stop_event_and_status(tiny):
    cfg = tiny.replace(epochs=20, eval_every=2, early_stopping_patience=1, lr=5e-2, warmup="none",
                       schedule="constant", clip_grad_norm=None)
    rec = train(cfg)
    assert rec.status == "early_stopped"
    assert "early_stop" in rec.events["kind"].tolist()
    assert rec.summary["steps"] < rec.summary["total_steps_planned"]


def test_divergence_is_recorded_and_stops_cleanly(tiny):
    rec = train(tiny.replace(lr=10.0, warmup="none", schedule="constant", clip_grad_norm=None,
                             optimizer="sgd", epochs=3))
    assert rec.status == "diverged"
    ev = rec.events[rec.events.kind == "diverged"]
    assert len(ev) == 1 and int(ev.step.iloc[0]) == rec.summary["steps"]
    assert rec.summary["steps"] < rec.summary["total_steps_planned"]
    last = rec.steps["loss"].iloc[-1]
    assert not math.isfinite(last) or last > 10 * rec.steps["loss"].iloc[0]


def test_gradual_unfreezing_top_down(tiny):
    rec = train(tiny.replace(freeze="gradual", unfreeze_every=3, unfreeze_unit="step", epochs=1))
    unfrozen = rec.events[rec.events.kind == "unfreeze"]
    assert unfrozen["detail"].tolist() == ["pooler", "layer.1", "layer.0", "embeddings"]
    assert unfrozen["step"].tolist() == [3, 6, 9, 12]
    state = rec.layer_state
    assert state[state.step == 0].set_index("group")["trainable"].to_dict() == {
        "embeddings": False, "layer.0": False, "layer.1": False, "pooler": False, "head": True}
    assert len(state) == 5 + 4  # initial state, then one change per unfrozen group
    # No gradient norm for a group before it is unfrozen.
    gn = rec.grad_norms
    assert (gn[(gn.group == "embeddings") & (gn.step <= 12)]["norm"] == 0).all()


def test_grad_accum_bf16_reinit_and_recording_off(tiny):
    rec = train(tiny.replace(grad_accum=2, precision="bf16", reinit_top=1, epochs=1))
    assert rec.summary["steps"] == math.ceil(math.ceil(300 * 0.7 / 16) / 2)
    assert rec.steps["examples_seen"].iloc[-1] == rec.summary["train_examples"]
    trainer = build(tiny.replace(epochs=1, record_grad_norms=False))
    trainer.fit()
    assert next(c for c in trainer.callbacks if isinstance(c, Recorder)).rows["grad_norms"] == []


def test_clipping_bounds_the_update_by_the_recorded_norm(tiny):
    """With clipping at c, the applied gradient has global norm min(recorded norm, c)."""
    import torch
    cfg = tiny.replace(epochs=1, clip_grad_norm=0.05, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                       warmup="none", schedule="constant", lr=1.0)
    trainer = build(cfg)
    applied = []

    class Spy:
        order = 95

        def on_step_end(self, t):
            now = {n: p.detach().clone() for n, p in t.model.named_parameters()}
            delta = torch.sqrt(sum(((now[n] - before[n]) ** 2).sum() for n in now))
            applied.append(float(delta))  # SGD, lr 1, no momentum: the update is the gradient
            before.update(now)

    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.callbacks.append(Spy())
    trainer.fit()
    rec = next(c for c in trainer.callbacks if isinstance(c, Recorder))
    totals = {}
    for step, _, norm in rec.rows["grad_norms"]:
        totals[step] = totals.get(step, 0.0) + norm ** 2
    for step, delta in enumerate(applied, start=1):
        assert delta == pytest.approx(min(totals[step] ** 0.5, 0.05), rel=1e-3)


def test_gradual_unfreezing_in_groups_unfreezes_several_per_stage(tiny):
    """ULMFiT by epoch with groups: the frozen groups top down, ``unfreeze_groups`` at a time."""
    rec = train(tiny.replace(freeze="gradual", unfreeze_every=3, unfreeze_unit="step", unfreeze_groups=2, epochs=1))
    unfrozen = rec.events[rec.events.kind == "unfreeze"]
    assert unfrozen["detail"].tolist() == ["pooler", "layer.1", "layer.0", "embeddings"]
    assert unfrozen["step"].tolist() == [3, 3, 6, 6]
    assert tiny.replace(unfreeze_groups=1).identity_dict() == tiny.identity_dict()  # old ids unchanged
