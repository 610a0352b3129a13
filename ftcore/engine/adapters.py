"""Bottleneck adapters, written by hand (``RunConfig.peft="adapter"``).

The ``adapters`` library (AdapterHub) would do this, but its releases pin transformers 4.x
(1.3.0 requires ``transformers ~= 4.57``) and ftcore runs on transformers 5, so the method is
written out here; it is short.

An adapter (Houlsby et al. 2019) is a small bottleneck network with a residual connection:

    adapter(h) = h + W_up · f(W_down · h + b_down) + b_up       W_down: size × d,  W_up: d × size

``size`` (``RunConfig.adapter_size``) is much smaller than the hidden width d, so each adapter has about
``2 · d · size`` parameters. ``W_up`` and ``b_up`` start at zero, so every adapter starts as the identity
and the adapted model computes exactly the pretrained function; ``W_down`` starts random as any
``nn.Linear`` (Kaiming-uniform, like LoRA's A) and f is GELU (BERT's own nonlinearity).

Where they go. A BERT layer has two sub-layers, self-attention and the feed-forward network (FFN); each
ends in an output projection, dropout, then ``LayerNorm(x + ·)`` with the sub-layer's input x. The
adapter acts on the projection's output, before the residual and the LayerNorm (Houlsby's Figure 2):

* ``adapter_placement="houlsby"``: after the attention output and after the FFN output of every layer
  (two adapters per layer); the LayerNorms train too (all of the encoder's, as Houlsby et al. 2019
  write: "we also train the layer normalization parameters");
* ``adapter_placement="pfeiffer"``: after the FFN output only (one adapter per layer, Pfeiffer et al.
  2021, AdapterFusion); the LayerNorms stay frozen, so only the adapters train.

In both, the rest of the pretrained model is frozen and the new classification head trains (it starts
random). The pooler stays frozen, as with ``peft="lora"``.

Adapters add nonlinear computation, so unlike LoRA they cannot be merged into the weights: a model
with adapters cannot be saved as a plain transformers model (``--save-model`` refuses it).
"""
from __future__ import annotations

import torch
from torch import nn

PLACEMENTS = ("houlsby", "pfeiffer")


class BottleneckAdapter(nn.Module):
    """``h + up(f(down(h)))``; ``up`` starts at zero, so the adapter starts as the identity."""

    def __init__(self, hidden: int, size: int):
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.act = nn.GELU()
        self.up = nn.Linear(size, hidden)
        # down keeps nn.Linear's Kaiming-uniform init (as LoRA's A, and AdapterHub's "mam_adapter" init):
        # with up = 0 the start is the identity whatever down is, and a down of full size gives up a
        # gradient from the first step (Houlsby's std 0.01 starts both near zero and learns slowly).
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))

    def after(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the sub-layer's output projection: its output goes through the adapter."""
        return self(output)


def _sublayers(block: nn.Module, placement: str) -> list[nn.Module]:
    """The output modules of a BERT-style layer that get an adapter (each has ``dense`` and ``LayerNorm``):
    ``attention.output`` (BertSelfOutput) and ``output`` (BertOutput, the FFN's)."""
    names = ["attention.output", "output"] if placement == "houlsby" else ["output"]
    found = []
    for name in names:
        try:
            sub = block.get_submodule(name)
        except AttributeError:
            sub = None
        if sub is None or not isinstance(getattr(sub, "dense", None), nn.Linear) \
                or not isinstance(getattr(sub, "LayerNorm", None), nn.LayerNorm):
            raise ValueError(f"bottleneck adapters need BERT-style layers (with {name}.dense and "
                             f"{name}.LayerNorm); {type(block).__name__} has none")
        found.append(sub)
    return found


def add_adapters(model: nn.Module, size: int, placement: str = "houlsby") -> list[str]:
    """Insert adapters into every encoder layer of ``model`` and set what trains (adapters, the
    LayerNorms for ``houlsby``; the caller unfreezes the head). Returns the adapters' module paths.

    Each adapter is registered as ``<sub-layer>.adapter`` (e.g. ``bert.encoder.layer.0.output.adapter``)
    and called by a forward hook on that sub-layer's ``dense``, so the pretrained modules and their
    parameter names are left as they are."""
    from .layers import _find_blocks

    if placement not in PLACEMENTS:
        raise ValueError(f"adapter placement {placement!r}: expected one of {', '.join(PLACEMENTS)}")
    base = getattr(model, "base_model", model)
    found = _find_blocks(base)
    if found is None:
        raise ValueError(f"could not find a stack of encoder layers in {type(model).__name__}")
    for p in model.parameters():
        p.requires_grad_(False)
    if placement == "houlsby":
        for m in base.modules():
            if isinstance(m, nn.LayerNorm):
                for p in m.parameters():
                    p.requires_grad_(True)
    for block in found[1]:
        for sub in _sublayers(block, placement):
            dense = sub.dense
            sub.adapter = BottleneckAdapter(dense.out_features, size).to(dense.weight.device, dense.weight.dtype)
            dense.register_forward_hook(sub.adapter.after)
    return [name for name, m in model.named_modules() if isinstance(m, BottleneckAdapter)]


def has_adapters(model: nn.Module) -> bool:
    return any(isinstance(m, BottleneckAdapter) for m in model.modules())
