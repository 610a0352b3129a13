"""The frozen-feature cache: frozen bottom layers run once per example, not once per epoch.

When the bottom of a model is frozen (the embeddings and the lowest k encoder layers, or the whole
encoder and its pooler) and those layers run in eval mode (``RunConfig(frozen_dropout=False)``),
their output for an example never changes during training. So ftcore computes it once, then trains
only what is above it:

* the frozen modules' ``forward`` is replaced by a pass-through, and the cached hidden states enter
  the model as ``inputs_embeds``: the upper layers, the attention mask handling, the pooler and the
  head are the model's own code, and the layer groups (all parameters are still there) are the same;
* if everything below the head is frozen, the cache holds the pooled vector itself (one "token" per
  example) and a step trains the classifier alone.

Eligible runs: ``frozen_dropout=False``, no PEFT, frozen groups forming a bottom prefix that stays
frozen (not gradual unfreezing), pretrained weights not re-initialised inside the prefix, and a
BERT-style model (``embeddings`` + a stack of layers). Others run the frozen layers normally, in eval
mode. The choice is a function of the config alone, so the same config always takes the same path.

Determinism and staleness: a run's features are computed in a canonical order (its examples sorted
by length, fixed batch size), so they depend only on the examples, never on what ran before. The
in-process memo is keyed by the model's fingerprint, the frozen depth, pooling, precision and the
exact token ids of the examples, so it is exact reuse or nothing, and it is bounded by
``FTCORE_FEATURE_CACHE_MB`` (default 2048, least recently used first out). Nothing goes to disk.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..config.peft_kinds import PEFT_METHODS
from .layers import _find_blocks, frozen_eval, layer_groups  # noqa: F401 (frozen_eval: its old home)

CACHE_MB = float(os.environ.get("FTCORE_FEATURE_CACHE_MB", 2048))
# A switch for comparing against the uncached path (tests, benchmark); FTCORE_FEATURE_CACHE=0 turns
# the cache off, which changes a cached run's numbers only by floating-point rounding.
ENABLED = os.environ.get("FTCORE_FEATURE_CACHE", "1") != "0"
FEATURE_BATCH = 64  # examples per forward pass when computing features (no gradients)
_MEMO: OrderedDict[str, list[torch.Tensor]] = OrderedDict()


@dataclass(frozen=True)
class FrozenPrefix:
    """What is frozen at the bottom: ``depth`` encoder layers under frozen embeddings, and whether
    the pooler (with everything below it) is frozen too, so pooled vectors can be cached."""

    depth: int
    pooled: bool

    def describe(self) -> str:
        what = "the whole encoder and its pooler" if self.pooled else (
            "the embeddings" + (f" and layers 0–{self.depth - 1}" if self.depth else ""))
        return f"{what}: computed once per example in eval mode"


def frozen_prefix(cfg, model: nn.Module) -> FrozenPrefix | None:
    """The cacheable frozen bottom of ``model`` under ``cfg``, or None when the cache does not apply."""
    if not ENABLED or cfg.frozen_dropout or PEFT_METHODS[cfg.peft].changes_model \
            or cfg.freeze in ("none", "gradual", "middle"):
        return None
    if cfg.init != "pretrained" or not hasattr(getattr(model, "base_model", model), "embeddings"):
        return None
    try:
        groups = layer_groups(model)
    except ValueError:  # no stack of layers to bypass: run the model as it is
        return None
    frozen = [not any(p.requires_grad for _, p in g.params) for g in groups]
    k = 0
    while k < len(groups) and frozen[k]:
        k += 1
    if k == 0 or any(frozen[k:]) or groups[0].name != "embeddings":
        return None  # a frozen group above a trainable one: not a prefix
    blocks = [g for g in groups if g.kind == "block"]
    depth = sum(1 for g in groups[:k] if g.kind == "block")
    if cfg.reinit_top and depth > len(blocks) - cfg.reinit_top:
        return None
    # pooled: every group but the head frozen (the pooler may have no parameters: mean pooling)
    pooled = depth == len(blocks) and all(g.kind == "head" for g in groups[k:])
    return FrozenPrefix(depth, pooled)


def _key(model_fp: str, prefix: FrozenPrefix, cfg, ids: list) -> str:
    h = hashlib.sha256(f"{model_fp}|{prefix}|{cfg.pooling}|{cfg.precision}|{cfg.max_length}".encode())
    for x in ids:
        h.update(np.asarray(x, dtype=np.int32).tobytes())
        h.update(b"|")
    return h.hexdigest()


@torch.no_grad()
def compute_features(model: nn.Module, ids: list[list[int]], prefix: FrozenPrefix, *, collator,
                     device, autocast) -> list[torch.Tensor]:
    """The frozen bottom's output for each example (tokens × hidden, or 1 × hidden when pooled),
    float32 on the CPU, in the order of ``ids``. Canonical: sorted by length, fixed batches."""
    base = getattr(model, "base_model", model)
    was_training = model.training
    model.eval()
    out: list[torch.Tensor | None] = [None] * len(ids)
    order = np.argsort([len(x) for x in ids], kind="stable")
    try:
        for start in range(0, len(order), FEATURE_BATCH):
            chunk = order[start:start + FEATURE_BATCH]
            batch = collator([{"input_ids": ids[i]} for i in chunk])
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast:
                res = base(**batch, output_hidden_states=not prefix.pooled)
            if prefix.pooled:
                vecs = res.pooler_output.float().cpu()
                for j, i in enumerate(chunk):
                    out[i] = vecs[j:j + 1].clone()
            else:
                hidden = res.hidden_states[prefix.depth].float().cpu()  # 0 = embeddings' output
                for j, i in enumerate(chunk):
                    out[i] = hidden[j, :len(ids[i])].clone()
    finally:
        model.train(was_training)
    return out


def cached_features(model, ids, prefix, cfg, *, model_fp, collator, device, autocast) -> list[torch.Tensor]:
    """:func:`compute_features` through the bounded in-process memo (exact reuse only)."""
    key = _key(model_fp, prefix, cfg, ids)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    feats = compute_features(model, ids, prefix, collator=collator, device=device, autocast=autocast)
    _MEMO[key] = feats
    while len(_MEMO) > 1 and memo_bytes() > CACHE_MB * 2**20:
        _MEMO.popitem(last=False)
    return feats


def memo_bytes() -> int:
    return sum(t.numel() * t.element_size() for feats in _MEMO.values() for t in feats)


def clear_memo() -> None:
    _MEMO.clear()


class FeatureCollator:
    """Pads cached features (tokens × hidden) into ``inputs_embeds`` with their attention mask.
    The items' ``input_ids`` hold the features (the data loaders stay the same)."""

    def __call__(self, items: list[dict]) -> dict:
        feats = [it["input_ids"] for it in items]
        n, hidden = max(len(f) for f in feats), feats[0].shape[1]
        embeds = torch.zeros(len(feats), n, hidden)
        mask = torch.zeros(len(feats), n, dtype=torch.long)
        for i, f in enumerate(feats):
            embeds[i, :len(f)] = f
            mask[i, :len(f)] = 1
        out = {"inputs_embeds": embeds, "attention_mask": mask}
        if "labels" in items[0]:
            out["labels"] = torch.tensor([it["labels"] for it in items])
        return out


class Bypass:
    """Replaces the frozen modules' forward with a pass-through (and restores it): the embeddings
    hand on ``inputs_embeds`` (the cached states), frozen layers hand on their input, and a frozen
    pooler hands on the first "token" (the cached pooled vector)."""

    def __init__(self, model: nn.Module, prefix: FrozenPrefix):
        base = getattr(model, "base_model", model)
        _, blocks = _find_blocks(base)
        self.forwards = [(base.embeddings, lambda *a, inputs_embeds=None, **kw: inputs_embeds)]
        self.forwards += [(b, lambda hidden_states, *a, **kw: hidden_states) for b in list(blocks)[:prefix.depth]]
        if prefix.pooled:
            self.forwards.append((base.pooler, lambda hidden_states, *a, **kw: hidden_states[:, 0]))

    def __enter__(self) -> Bypass:
        for module, forward in self.forwards:
            module.forward = forward  # an instance attribute wins over the class's forward
        return self

    def __exit__(self, *exc) -> None:
        for module, _ in self.forwards:
            module.__dict__.pop("forward", None)


def attach(trainer, prefix: FrozenPrefix, model_fp: str):
    """Put ``trainer`` on cached features: swap its data's token ids for features (train and every
    evaluation split), its collator for :class:`FeatureCollator`, and bypass the frozen modules until
    the run ends (a callback restores the model, so analyses after training see the real model)."""
    from .trainer import Callback

    t0 = time.perf_counter()
    data = trainer.data
    kw = dict(model_fp=model_fp, collator=data.collator, device=trainer.device, autocast=trainer.autocast)
    trainer.model.to(trainer.device)
    train = {**data.train, "length": [len(x) for x in data.train["input_ids"]],  # same batches as uncached
             "input_ids": cached_features(trainer.model, data.train["input_ids"], prefix, trainer.cfg, **kw)}
    evals = {split: {**part, "input_ids": cached_features(trainer.model, part["input_ids"], prefix,
                                                          trainer.cfg, **kw)}
             for split, part in data.evals.items()}
    trainer.data = replace(data, train=train, evals=evals, collator=FeatureCollator())
    bypass = Bypass(trainer.model, prefix).__enter__()
    trainer.feature_bypass = bypass  # analyses that use the real model before fit exit it for a while
    seconds = time.perf_counter() - t0
    trainer.summary["frozen_features_s"] = seconds
    trainer.log_event("frozen_features", f"{prefix.describe()} ({len(train['input_ids'])} training "
                                         f"examples, {seconds:.1f} s)")

    class RestoreModel(Callback):
        order = 1000  # after everything else at fit_end (the final evaluation included)

        def on_fit_end(self, t) -> None:
            bypass.__exit__(None, None, None)
            t.data = data

    trainer.add_callback(RestoreModel())
    return trainer


__all__ = ["Bypass", "FeatureCollator", "FrozenPrefix", "attach", "cached_features", "clear_memo",
           "compute_features", "frozen_prefix", "memo_bytes"]
