"""LoRA written out in full, for reading (``RunConfig.peft="lora_scratch"``).

``peft="lora"`` uses the ``peft`` library; this module does the same thing in about forty lines so
the method can be read in one place. Hu et al. (2021): a frozen weight ``W`` (out × in) gets a
trainable low-rank update, and the layer computes

    y = W x + b  +  (alpha / r) · B A dropout(x)        A: r × in,  B: out × r

* ``A`` starts random (Kaiming-uniform, as in peft) and ``B`` starts at zero, so ``B A = 0`` and
  training starts exactly at the pretrained function;
* ``alpha / r`` keeps the update's size comparable when the rank changes;
* dropout acts on the update's input only; ``W`` and ``b`` never change.

After training the update can be folded into the weight (:func:`merge_lora`): ``W' = W + (alpha/r) B A``
gives a plain ``nn.Linear`` with the same outputs and no extra cost at inference.

``tests/test_adapters_prefix.py`` checks that this matches ``peft``: the same trainable parameter
count for the same targets and rank, and the same outputs when A and B are copied from a peft model.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus the trainable low-rank update ``(alpha / r) · B A``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)  # W and b stay as pretrained
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.A = nn.Parameter(torch.empty(r, base.in_features, device=base.weight.device, dtype=base.weight.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # peft's default (that of nn.Linear)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.A.T @ self.B.T  # x → r numbers → out numbers
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function: ``W + (alpha/r) B A``."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scaling * self.B @ self.A)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def apply_lora(model: nn.Module, r: int, alpha: float, dropout: float, targets) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each ``nn.Linear`` whose own name (the last part
    of its path, e.g. ``query``) is in ``targets`` in a :class:`LoRALinear`. Returns the wrapped
    modules' paths; raises ValueError when none matches. Only A and B are trainable afterwards
    (the caller unfreezes the new head, as peft does with ``modules_to_save``)."""
    for p in model.parameters():
        p.requires_grad_(False)
    targets = set(targets)
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not found:
        raise ValueError(f"Target modules {sorted(targets)} not found in the base model")
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha, dropout))
    return [name for name, _ in found]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` in ``model`` by its merged ``nn.Linear`` (in place)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.merged())
    return model


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoRALinear) for m in model.modules())
