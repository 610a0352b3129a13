"""Prefix tuning, written by hand (``RunConfig.peft="prefix"``).

Li & Liang (2021) keep the whole pretrained model frozen and give every layer's attention P extra
key/value positions that belong to no token (P = ``RunConfig.prompt_tokens``):

    attention(Q, [K_p; K], [V_p; V])        K_p, V_p: P × d for each layer, trainable

The queries are the tokens' own, so the output still has one vector per token; each token may also
attend to the P prefix positions, whose values it mixes in as if P more tokens had been there from the
start. Prompt tuning (``peft="prompt"``) adds trainable vectors at the input only; prefix tuning reaches
every layer directly. Each layer's K_p and V_p (P × d, d the hidden width) are split into heads the way
the layer's own keys and values are, so every head gets its own P keys and P values.

Why not ``peft``: peft hands the prefixes to the model as ``past_key_values``, and BERT-style encoders
of transformers 5 take no such argument. But their self-attention already has the one line prefix
tuning needs. A decoder keeps a cache of the keys and values of the tokens it has seen, and its
self-attention does ``key, value = cache.update(key, value, layer_idx)``: the past keys and values are
put in front of the new ones. A prefix is such a past that no token produced. So a forward pre-hook
on each layer's self-attention hands it a small stand-in for the cache (:class:`_PrefixCache`) whose
``update`` puts that layer's prefixes in front, and widens the attention mask by P columns; the
attention function itself (eager or sdpa) is transformers' own, untouched.

The mask. transformers builds it once per forward (``create_bidirectional_mask``) in the form the
attention implementation wants: ``None`` when nothing is masked, a boolean [B, 1, T, T] mask for sdpa
(True = may attend) or an additive float one for eager (0 = may attend, the dtype's minimum = masked).
Every token may attend to every prefix position, so :func:`extend_mask` puts P "may attend" columns in
front of the key axis (True or 0.0) and leaves ``None`` as it is.

Reparameterization. Li & Liang found that training the prefixes directly is unstable and slightly
worse, so during training they compute them from a smaller matrix P′ (P × d, not P × 2·L·d) through
an MLP:

    [K_p, V_p for every layer] = MLP(P′)        P′: P × d,  MLP = Linear(d, h) → tanh → Linear(h, 2·L·d)

(:class:`PrefixEncoder`; L layers, each row of the output holds one prefix position's key and value
for every layer). Its width h is :data:`PREFIX_HIDDEN` = 256. Why 256: the P output rows are an affine
map of P vectors of width h, so with h ≥ P the MLP can still produce any set of prefixes (with
h + 1 < P their matrix would be confined to rank h + 1), and 256 is the largest ``prompt_tokens`` allowed. A wider h
adds h · 2·L·d parameters that reach nothing more; with 256, all-MiniLM-L6-v2 (L = 6, d = 384) and
P = 20 train 1,291,266 parameters with a two-class head (5.4 % of the 24.0 M the model then has).
After training only the result matters: ``model.prefix_encoder()`` gives the 2·L·P·d numbers (92,160
for all-MiniLM-L6-v2 with P = 20), and P′ and the MLP can be thrown away.

What trains: the prefix encoder and the new classification head; everything else of the encoder,
the pooler included (as with ``peft="lora"``), is frozen. The prefix encoder sits on the model
(``model.prefix_encoder``), outside the encoder, so ftcore's layer groups count it with the head
(it gets the head's learning rate, ``head_lr`` where set).
Like adapters, prefixes are an extra input of the attention, not a change of weights: a prefix-tuned
model cannot be saved as a plain transformers model (``--save-model`` refuses it).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

PREFIX_HIDDEN = 256  # h, the reparameterization MLP's width (see the module docstring)


class PrefixEncoder(nn.Module):
    """Li & Liang's reparameterization: ``MLP(P′)`` gives every layer's key and value prefixes."""

    def __init__(self, tokens: int, hidden: int, layers: int, mlp_hidden: int = PREFIX_HIDDEN):
        super().__init__()
        self.tokens, self.hidden, self.layers = tokens, hidden, layers
        self.embedding = nn.Parameter(torch.randn(tokens, hidden))  # P′ (N(0, 1), as nn.Embedding)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_hidden), nn.Tanh(), nn.Linear(mlp_hidden, 2 * layers * hidden))

    def forward(self) -> torch.Tensor:
        """All prefixes, [L, 2 (key, value), P, d]: what is worth keeping after training."""
        out = self.mlp(self.embedding).view(self.tokens, self.layers, 2, self.hidden)
        return out.permute(1, 2, 0, 3)

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``i``'s key and value prefixes, each [P, d]. Only that layer's 2·d rows of the output
        Linear are computed (the rows ``forward`` puts at ``[i]``)."""
        h, out, d = self.mlp[:2](self.embedding), self.mlp[2], self.hidden
        rows = slice(2 * d * i, 2 * d * (i + 1))
        key, value = nn.functional.linear(h, out.weight[rows], out.bias[rows]).view(self.tokens, 2, d).unbind(1)
        return key, value

    def hand_over(self, i: int, attention: nn.Module, args, kwargs):
        """Forward pre-hook of layer ``i``'s self-attention: its prefixes go in as the "cache", and the
        mask gets P more columns. (Computed afresh in each layer, from the parameters: nothing is kept
        between calls, so gradient checkpointing and ``deepcopy`` need no care.)"""
        key, value = self.layer(i)
        kwargs["cache"] = _PrefixCache(key, value)
        kwargs["attention_mask"] = extend_mask(kwargs.get("attention_mask"), self.tokens)
        return args, kwargs


class _PrefixCache:
    """What BERT's self-attention calls as ``cache.update(key, value, layer_idx)``: returns the layer's
    keys and values with the prefixes in front, along the position axis."""

    def __init__(self, key: torch.Tensor, value: torch.Tensor):
        self.key, self.value = key, value

    def update(self, key: torch.Tensor, value: torch.Tensor, *args, **kwargs):
        # key, value: [B, heads, T, head_dim]; a prefix [P, d] splits into heads as the layer's own do
        batch, heads, _, head_dim = key.shape

        def by_head(prefix, like):
            prefix = prefix.view(-1, heads, head_dim).transpose(0, 1)  # [heads, P, head_dim]
            return prefix.to(like.dtype).expand(batch, -1, -1, -1)

        return (torch.cat([by_head(self.key, key), key], dim=2),
                torch.cat([by_head(self.value, value), value], dim=2))


def extend_mask(mask: torch.Tensor | None, tokens: int) -> torch.Tensor | None:
    """``mask`` with ``tokens`` "may attend" columns in front of its key axis (the last)."""
    if mask is None:  # nothing masked: the prefixes are open to every token anyway
        return None
    fill = torch.ones if mask.dtype == torch.bool else torch.zeros  # True (sdpa) or + 0.0 (eager)
    return torch.cat([fill(*mask.shape[:-1], tokens, dtype=mask.dtype, device=mask.device), mask], dim=-1)


def _self_attention(block: nn.Module) -> nn.Module:
    """A BERT-style layer's self-attention: ``attention.self`` with query/key/value projections and a
    ``cache`` argument (the key/value cache that prefix tuning feeds)."""
    import inspect

    attn = getattr(getattr(block, "attention", None), "self", None)
    if attn is None or not all(isinstance(getattr(attn, n, None), nn.Linear) for n in ("query", "key", "value")) \
            or "cache" not in inspect.signature(attn.forward).parameters:
        raise ValueError(f"prefix tuning needs BERT-style self-attention (attention.self with query, key and "
                         f"value projections that takes a `cache`), and {type(block).__name__} has none; use "
                         "peft='prompt', 'adapter' or 'lora' instead")
    return attn


def add_prefixes(model: nn.Module, tokens: int, mlp_hidden: int = PREFIX_HIDDEN) -> PrefixEncoder:
    """Give every encoder layer of ``model`` ``tokens`` trainable key/value prefixes and freeze the
    rest (the caller unfreezes the head). Returns the :class:`PrefixEncoder`, registered as
    ``model.prefix_encoder``; raises ValueError for a model that is not BERT-like."""
    from .layers import _find_blocks

    base = getattr(model, "base_model", model)
    found = _find_blocks(base)
    if found is None:
        raise ValueError(f"could not find a stack of encoder layers in {type(model).__name__}")
    attentions = [_self_attention(block) for block in found[1]]
    for p in model.parameters():
        p.requires_grad_(False)
    key = attentions[0].key  # d: the width of a layer's keys (and values), all heads together
    model.prefix_encoder = PrefixEncoder(tokens, key.out_features, len(attentions), mlp_hidden).to(
        key.weight.device, key.weight.dtype)
    for i, attn in enumerate(attentions):
        attn.register_forward_pre_hook(functools.partial(model.prefix_encoder.hand_over, i), with_kwargs=True)
    return model.prefix_encoder


def has_prefixes(model: nn.Module) -> bool:
    return any(isinstance(m, PrefixEncoder) for m in model.modules())
