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
