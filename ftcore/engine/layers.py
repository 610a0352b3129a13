"""Layer groups: a model's parameters split into named groups in depth order.

``embeddings, layer.0 … layer.N-1, pooler, head`` for a BERT classifier. Freezing, layer-wise
learning rates, per-layer gradient norms, drift and the freeze map all use this one grouping,
computed from the model (the encoder's stack of identical blocks is found, not hard-coded).

Freezing follows fastai's vocabulary: ``freeze_to(model, n)`` makes groups ``[n:]`` trainable
and ``[:n]`` frozen; ``freeze`` trains the head only; ``unfreeze`` trains everything.
``frozen_eval`` runs the fully frozen modules in eval mode (``frozen_dropout=False``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class LayerGroup:
    name: str  # "embeddings", "layer.3", "pooler", "head"
    kind: str  # "embeddings" | "block" | "top" | "head"
    index: int  # position in depth order (0 = bottom)
    params: list = field(default_factory=list, repr=False)  # [(full name, Parameter)]
    modules: list = field(default_factory=list, repr=False)  # the block module(s), for re-init

    @property
    def n_params(self) -> int:
        return sum(p.numel() for _, p in self.params)

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for _, p in self.params)

    def set_trainable(self, flag: bool) -> None:
        for _, p in self.params:
            p.requires_grad_(flag)


def _find_blocks(base: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The encoder's stack: the ModuleList of same-type modules holding the most parameters."""
    best, best_size = None, 0
    for name, module in base.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if len({type(m) for m in module}) != 1:
                continue
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = (name, module), size
    return best


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """The model's layer groups, bottom to top. Every parameter belongs to exactly one group.

    A PEFT model is grouped through the model it wraps (LoRA weights fall in their layer's group);
    parameters PEFT adds outside it (prompt tuning's virtual tokens) form a "prompt" group at the
    bottom, as they enter where the embeddings do."""
    outer = model
    if hasattr(model, "get_base_model"):  # peft.PeftModel
        model = model.get_base_model()
    base = getattr(model, "base_model", model)
    base_ids = {id(p) for p in base.parameters()}
    found = _find_blocks(base)
    if found is None:
        raise ValueError(f"could not find a stack of encoder layers in {type(model).__name__}")
    _, blocks = found
    block_of = {id(p): i for i, blk in enumerate(blocks) for p in blk.parameters()}

    groups: dict[str, LayerGroup] = {}
    top_children: set[str] = set()
    seen_block = False
    base_prefix = next((n for n, m in model.named_modules() if m is base), "")
    for full, p in model.named_parameters():
        if id(p) in block_of:
            seen_block = True
            i = block_of[id(p)]
            g = groups.setdefault(f"layer.{i}", LayerGroup(f"layer.{i}", "block", 0, modules=[blocks[i]]))
        elif id(p) in base_ids:
            if not seen_block:
                g = groups.setdefault("embeddings", LayerGroup("embeddings", "embeddings", 0))
            else:
                rel = full[len(base_prefix) + 1:] if base_prefix else full
                top_children.add(rel.split(".")[0])
                g = groups.setdefault("top", LayerGroup("top", "top", 0))
        else:
            g = groups.setdefault("head", LayerGroup("head", "head", 0))
        g.params.append((full, p))
    if "top" in groups and len(top_children) == 1:  # BERT: "pooler"; GPT-2: "ln_f"
        groups["top"].name = top_children.pop()

    if outer is not model:
        inner = {id(p) for p in model.parameters()}
        for full, p in outer.named_parameters():
            if id(p) not in inner:
                groups.setdefault("prompt", LayerGroup("prompt", "prompt", 0)).params.append((full, p))

    order = {"prompt": -1, "embeddings": 0, "block": 1, "top": 2, "head": 3}
    ordered = sorted(groups.values(), key=lambda g: (order[g.kind], _block_index(g)))
    for i, g in enumerate(ordered):
        g.index = i
    return ordered


def _block_index(g: LayerGroup) -> int:
    return int(g.name.split(".")[1]) if g.kind == "block" else 0


def group_names(model: nn.Module) -> list[str]:
    return [g.name for g in layer_groups(model)]


def depth_from_top(groups: list[LayerGroup]) -> dict[str, int]:
    """0 for the head and the pooler above the encoder, 1 for the top encoder layer, … ."""
    blocks = [g for g in groups if g.kind == "block"]
    depth = {}
    for g in groups:
        if g.kind in ("head", "top"):
            depth[g.name] = 0
        elif g.kind == "block":
            depth[g.name] = len(blocks) - _block_index(g)
        else:  # embeddings and prompt
            depth[g.name] = len(blocks) + 1
    return depth


# ----------------------------------------------------------------------------- freezing
def freeze_to(model: nn.Module, n: int) -> list[str]:
    """Freeze groups ``[:n]`` and train groups ``[n:]`` (fastai). Returns the trainable names."""
    groups = layer_groups(model)
    n = n % len(groups) if n < 0 else min(n, len(groups))
    for g in groups:
        g.set_trainable(g.index >= n)
    return [g.name for g in groups if g.index >= n]


def freeze(model: nn.Module) -> list[str]:
    """Train the head only."""
    return freeze_to(model, -1)


def unfreeze(model: nn.Module) -> list[str]:
    """Train every group."""
    return freeze_to(model, 0)


def frozen_groups_for(strategy: str, groups: list[LayerGroup], *, freeze_layers: int | None = None,
                      explicit: tuple[str, ...] = ()) -> list[str]:
    """Names of the groups a freezing strategy freezes at the start of training.

    none: nothing · bottom: embeddings + the lowest ``freeze_layers`` encoder layers ·
    middle: ``freeze_layers`` encoder layers centred in the stack (embeddings, the outer layers,
    pooler and head train) · head_only and gradual: everything but the head · list: ``explicit``.
    """
    blocks = [g.name for g in groups if g.kind == "block"]
    if strategy == "none":
        return []
    if strategy in ("head_only", "gradual"):
        return [g.name for g in groups if g.kind != "head"]
    if strategy in ("bottom", "middle"):
        if freeze_layers is None or not 0 <= freeze_layers <= len(blocks):
            raise ValueError(f"RunConfig.freeze_layers={freeze_layers!r} is not allowed: expected an "
                             f"integer in [0, {len(blocks)}] (the model has {len(blocks)} encoder layers)")
        if strategy == "bottom":
            return (["embeddings"] if freeze_layers else []) + blocks[:freeze_layers]
        start = (len(blocks) - freeze_layers) // 2
        return blocks[start:start + freeze_layers]
    if strategy == "list":
        names = [g.name for g in groups]
        unknown = [n for n in explicit if n not in names]
        if unknown:
            raise ValueError(f"RunConfig.frozen_groups={explicit!r} is not allowed: unknown group(s) "
                             f"{unknown}; this model's groups are {names}")
        return list(explicit)
    raise ValueError(f"unknown freezing strategy {strategy!r}")


def apply_freeze(model: nn.Module, frozen: list[str]) -> None:
    for g in layer_groups(model):
        g.set_trainable(g.name not in frozen)


def frozen_eval(model: nn.Module) -> None:
    """Put every module whose parameters are all frozen in eval mode (its dropout off). Call after
    ``model.train()`` in ``frozen_dropout=False`` runs: frozen layers act as a fixed feature extractor."""
    for m in model.modules():  # parents before children: a frozen parent's eval() covers its subtree
        if m.training:  # (checking each module again cost 1.9 ms a step, the time of a head-only step)
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.eval()
