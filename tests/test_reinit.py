"""Re-initialising the top layers (Zhang et al. 2021) really re-initialises them (issue 24): with
transformers 5, ``model._init_weights`` skips every parameter a checkpoint load marked as
initialised, so the earlier implementation changed nothing and its arm equalled the baseline."""
from __future__ import annotations

import torch

from ftcore import RunConfig
from ftcore.engine.models import load_model


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_reinit_top_changes_exactly_the_top_layer_of_a_pretrained_model():
    before = _params(load_model(RunConfig().model, 2, seed=0))
    after_model = load_model(RunConfig().model, 2, seed=0, reinit_top=1)
    after = _params(after_model)
    top = f"encoder.layer.{after_model.config.num_hidden_layers - 1}."
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    in_top = {n for n in before if top in n}
    assert changed == in_top, sorted(changed ^ in_top)[:5]  # every top-layer tensor, nothing else
    std = after_model.config.initializer_range
    w = next(v for n, v in after.items() if n.endswith(top + "intermediate.dense.weight"))
    assert abs(float(w.std()) - std) < 0.1 * std  # BERT's init: N(0, initializer_range)
    ln = next(v for n, v in after.items() if n.endswith(top + "output.LayerNorm.weight"))
    assert torch.all(ln == 1)


def test_reinit_is_seeded_and_its_records_never_reuse_the_old_implementations():
    a = _params(load_model(RunConfig().model, 2, seed=3, reinit_top=1))
    b = _params(load_model(RunConfig().model, 2, seed=3, reinit_top=1))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert RunConfig(reinit_top=1).identity_dict()["reinit_impl"] == 2
    assert "reinit_impl" not in RunConfig(reinit_top=0).identity_dict()  # other runs keep their ids
