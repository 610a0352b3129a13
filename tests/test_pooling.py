"""Mean pooling: the head sees the masked mean of the last hidden states, padding ignored."""
from __future__ import annotations

import pytest
import torch

from ftcore.engine.layers import layer_groups
from ftcore.engine.models import load_model
from ftcore.engine.pooling import MeanPooler, apply_pooling


def test_mean_pooling_ignores_padding_and_drops_the_pooler_weights():
    model = apply_pooling(load_model("tiny-bert", 2, seed=0), "mean").eval()
    assert isinstance(model.base_model.pooler, MeanPooler)
    assert not any("pooler" in n for n, _ in model.named_parameters())
    assert "pooler" not in [g.name for g in layer_groups(model)]
    ids = torch.tensor([[101, 7, 8, 102, 0, 0], [101, 9, 10, 11, 12, 102]])
    mask = (ids != 0).long()
    with torch.no_grad():
        out = model.base_model(input_ids=ids, attention_mask=mask)
        h = out.last_hidden_state
        assert torch.allclose(out.pooler_output[0], h[0, :4].mean(0), atol=1e-6)  # padding left out
        assert torch.allclose(out.pooler_output[1], h[1].mean(0), atol=1e-6)
        short = model.base_model(input_ids=ids[:1, :4], attention_mask=mask[:1, :4]).pooler_output
        assert torch.allclose(short[0], out.pooler_output[0], atol=1e-5)  # same text, same vector


def test_cls_pooling_is_left_alone_and_bad_names_are_refused():
    model = load_model("tiny-bert", 2, seed=0)
    assert apply_pooling(model, "cls") is model and not isinstance(model.base_model.pooler, MeanPooler)
    with pytest.raises(ValueError, match="expected one of"):
        apply_pooling(model, "max")
