"""Load the pretrained encoder (or a tiny random one for tests) with a new classification head.

What a model name means (the default model, a hub id, a local folder, ``tiny-bert``, a model made
here such as ``pretrained-here:<recipe>``) and its fingerprint are :mod:`ftcore.engine.model_sources`
(torch-free, re-exported here). Loading goes through ``transformers``' ``from_pretrained``, the same
call a user with internet makes with a hub name.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from .assets import asset_path
from .model_sources import (DEFAULT_MODEL_ALIASES, MODEL_PROVIDERS, TINY, TINY_CONFIG,  # noqa: F401 (re-exported)
                            ModelLoadError, ModelSource, _load_error, encoder_layers, register_model_resolver,
                            resolve_model)


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    src = resolve_model(name)
    src.materialize()
    # The tiny test model borrows the default model's tokenizer (vocabulary of 30,522 word pieces).
    path = str(asset_path("model")) if src.path is None else src.path
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:  # no tokenizer files / no way to build one
        raise _load_error(name, exc) from exc


def load_model(name: str, num_labels: int, *, seed: int, init: str = "pretrained",
               dropout: float | None = None, reinit_top: int = 0) -> nn.Module:
    """A sequence classifier: pretrained encoder + new head initialised from ``seed``.

    ``init="random"`` builds the same architecture with random weights (the "train from scratch"
    baseline of the chapter's strategies figure).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig

    src = resolve_model(name)
    src.materialize()
    overrides = {}
    if dropout is not None:
        overrides = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                         classifier_dropout=dropout)
    torch.manual_seed(seed)  # the new head's (and a random model's) initial weights
    try:
        if src.path is None:
            config = BertConfig(vocab_size=load_tokenizer(name).vocab_size, num_labels=num_labels,
                                **TINY_CONFIG, **overrides)
            model = AutoModelForSequenceClassification.from_config(config)
        elif init == "random":
            config = AutoConfig.from_pretrained(src.path, num_labels=num_labels, **overrides)
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            from transformers.utils import logging as hf_logging

            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # "classifier newly initialised" is expected here
            try:
                model = AutoModelForSequenceClassification.from_pretrained(
                    src.path, num_labels=num_labels, **overrides)
            finally:
                hf_logging.set_verbosity(verbosity)
    except (OSError, ValueError) as exc:  # missing/unreadable weights, unknown architecture
        raise _load_error(name, exc) from exc
    if dropout is not None:  # models whose config names dropout differently
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout
    if reinit_top:
        reinit_top_layers(model, reinit_top, seed=seed)
    return model


def reinit_top_layers(model: nn.Module, k: int, *, seed: int) -> list[str]:
    """Re-initialise the top ``k`` encoder layers (Zhang et al. 2021, "Revisiting few-sample BERT
    fine-tuning"): the layers nearest the output are the most task-specific in pretraining."""
    from .layers import layer_groups

    blocks = [g for g in layer_groups(model) if g.kind == "block"]
    if k > len(blocks):
        from ..config import ConfigError
        raise ConfigError(f"RunConfig.reinit_top={k} is not allowed: expected at most {len(blocks)} "
                          f"(the model's encoder layers)")
    torch.manual_seed(seed + 1)
    std = getattr(model.config, "initializer_range", 0.02)
    names = []
    for group in blocks[len(blocks) - k:]:
        for module in group.modules:
            module.apply(lambda m: _bert_init(m, std))
        names.append(group.name)
    return names


@torch.no_grad()
def _bert_init(module: nn.Module, std: float) -> None:
    """BERT's own initialisation, written out (what the paper re-applies). Not ``model._init_weights``:
    in transformers 5 it skips every parameter a checkpoint load marked ``_is_hf_initialized``, so
    on a pretrained model it silently re-initialised nothing."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["DEFAULT_MODEL_ALIASES", "MODEL_PROVIDERS", "TINY", "TINY_CONFIG", "ModelLoadError", "ModelSource",
           "count_parameters", "encoder_layers", "load_model", "load_tokenizer", "register_model_resolver",
           "reinit_top_layers", "resolve_model"]
