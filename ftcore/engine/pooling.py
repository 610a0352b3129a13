"""How a sequence becomes one vector for the classification head.

``cls``: the encoder's own pooler on the first ([CLS]) token, as ``BertForSequenceClassification``
does. That pooler was trained for BERT's next-sentence task; in a sentence-transformers checkpoint
such as all-MiniLM-L6-v2 it was never trained for sentence meaning.

``mean``: the mean of the last hidden states over the real (unpadded) tokens, which is the pooling
sentence-transformers checkpoints were trained with. The pooler module is replaced by a
parameter-free :class:`MeanPooler`, so the model stays a standard Hugging Face classifier (same
forward, same layer groups minus the pooler's weights, same PEFT wrapping).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import POOLINGS


class MeanPooler(nn.Module):
    """Masked mean over tokens. It receives only the hidden states from the encoder, so the
    attention mask of the current forward pass is handed over by a pre-hook on the encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (batch, tokens, hidden) -> (batch, hidden)
        if self.mask is None:
            return hidden.mean(dim=1)
        m = self.mask[:, : hidden.shape[1]].unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)

    def extra_repr(self) -> str:
        return "masked mean over tokens (sentence-transformers pooling)"


def _encoder_with_pooler(model: nn.Module) -> nn.Module:
    base = getattr(model, "base_model", model)
    if not hasattr(base, "pooler"):
        raise ValueError(f"pooling='mean' needs an encoder with a `pooler` module (BERT-style); "
                         f"{type(model).__name__} has none: use pooling='cls'")
    return base


def apply_pooling(model: nn.Module, pooling: str) -> nn.Module:
    """Set the pooling of a Hugging Face sequence classifier in place (``cls`` leaves it as is)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is not allowed; expected one of {POOLINGS}")
    if pooling == "cls":
        return model
    base = _encoder_with_pooler(model)
    base.pooler = MeanPooler()
    base.register_forward_pre_hook(_hand_over_mask, with_kwargs=True)
    return model


def _hand_over_mask(module, args, kwargs):
    """Encoder pre-hook: the attention mask to the encoder's own pooler, looked up at call time (not
    a closure over one pooler object, so a deep copy of the model hands it to the copy's pooler)."""
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1:
        mask = args[1]
    module.pooler.mask = mask


__all__ = ["MeanPooler", "POOLINGS", "apply_pooling"]
