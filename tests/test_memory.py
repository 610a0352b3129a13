"""Training memory in bytes: what freezing and PEFT save shows up in gradients, optimizer state and
saved activations, not in the parameters the model still holds."""
from __future__ import annotations

from ftcore.analysis.memory import training_memory


def test_freezing_saves_gradients_optimizer_state_and_activations(tiny):
    full = training_memory(tiny)
    head = training_memory(tiny.replace(freeze="head_only"))
    bottom = training_memory(tiny.replace(freeze="bottom", freeze_layers=1))
    assert full["params_bytes"] == head["params_bytes"] == bottom["params_bytes"]  # all still held
    # AdamW keeps two fp32 moments per trainable parameter; gradients one each
    assert full["optimizer_bytes"] == 2 * 4 * full["trainable_params"]
    assert full["grads_bytes"] == 4 * full["trainable_params"]
    assert head["grads_bytes"] < bottom["grads_bytes"] < full["grads_bytes"]
    assert head["optimizer_bytes"] < bottom["optimizer_bytes"] < full["optimizer_bytes"]
    # nothing below the first trainable layer must remember its inputs for backward
    assert head["activations_bytes"] < bottom["activations_bytes"] < full["activations_bytes"]
    assert full["batch_tokens"] == head["batch_tokens"]  # the same batch for every strategy


def test_gradual_unfreezing_needs_its_peak_not_its_first_step(tiny):
    """Gradual unfreezing's memory is that of its last stage: with a schedule that unfreezes every
    group in time, exactly full fine-tuning's (step 1 trains the head only, as head_only does)."""
    full = training_memory(tiny)
    head = training_memory(tiny.replace(freeze="head_only"))
    done = training_memory(tiny.replace(freeze="gradual", unfreeze_unit="step", unfreeze_every=1.0,
                                        unfreeze_groups=1))
    assert done["unfrozen_groups"] > 0
    for k in ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "trainable_params"):
        assert done[k] == full[k], k
    # a schedule that only reaches the top group by the last update: more than the head, less than full
    part = training_memory(tiny.replace(freeze="gradual", unfreeze_unit="epoch", unfreeze_every=1.0))
    assert part["unfrozen_groups"] == 1
    assert head["trainable_params"] < part["trainable_params"] < full["trainable_params"]
    assert head["grads_bytes"] < part["grads_bytes"] < full["grads_bytes"]
