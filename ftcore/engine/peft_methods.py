"""Parameter-efficient fine-tuning: LoRA and prompt tuning through the ``peft`` library; BitFit,
bottleneck adapters, prefix tuning and a LoRA written for reading by hand.

* **LoRA** (Hu et al. 2021): each targeted weight W gets a trainable low-rank update
  ``(lora_alpha / r) · B A`` (A: r×d, B: d×r, B starts at zero so training starts at W); W stays frozen.
* **Prompt tuning** (Lester et al. 2021): ``prompt_tokens`` trainable vectors are prepended to the
  input embeddings; the whole model stays frozen.
* **BitFit** (Ben Zaken et al. 2022): only the bias terms train. Nothing in ``peft`` does this, and
  it is three lines: freeze every weight, leave the biases.
* **Bottleneck adapters** (Houlsby et al. 2019; Pfeiffer et al. 2021): small down-project, GELU,
  up-project networks with a residual after the attention and/or FFN output of every layer
  (:mod:`ftcore.engine.adapters`, by hand: the ``adapters`` library needs transformers 4.x).
* **Prefix tuning** (Li & Liang 2021): ``prompt_tokens`` trainable key/value positions put in front of
  the keys and values of every layer's attention, computed during training by a small MLP
  (:mod:`ftcore.engine.prefix`, by hand: peft passes prefixes as ``past_key_values``, which BERT-style
  encoders of transformers 5 do not take).
* **LoRA from scratch** (``peft="lora_scratch"``): the same method as ``lora`` in
  :mod:`ftcore.engine.lora`, short enough to read; tested to match peft's outputs and parameter count.

In every method the new classification head trains too (it starts random, so it must).
Each method's entry in :data:`ftcore.config.peft_kinds.PEFT_METHODS` names the function below that
applies it, with the method's flags (it uses ``lora_targets``; it can be saved as plain weights).
"""
from __future__ import annotations

import contextlib
import importlib

from torch import nn

from ..config import ConfigError, RunConfig
from ..config.peft_kinds import PEFT_METHODS


def apply_peft(model: nn.Module, cfg: RunConfig, *, adapter_name: str = "default") -> nn.Module:
    """Wrap or freeze ``model`` as ``cfg.peft`` says; returns the model to train.

    The method's entry in ``PEFT_METHODS`` names the function below that applies it."""
    method = PEFT_METHODS[cfg.peft]
    if method.apply is None:
        return model
    module, _, name = method.apply.partition(":")
    apply = getattr(importlib.import_module(module), name)
    try:
        return apply(model, cfg, adapter_name)
    except ValueError as exc:  # e.g. a target module that the model does not have
        raise ConfigError(f"RunConfig.peft={cfg.peft!r} could not be applied: {exc}") from None


def bitfit(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    """Only the biases (and the new head) train."""
    head = _head_params(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(".bias") or id(p) in head)
    return model


def lora_by_peft(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    pcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=list(cfg.lora_targets))
    return get_peft_model(model, pcfg, adapter_name=adapter_name)


def prompt_by_peft(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    from peft import PromptTuningConfig, TaskType, get_peft_model

    pcfg = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.prompt_tokens)
    return get_peft_model(model, pcfg, adapter_name=adapter_name)


# ftcore's own modules (adapters, prefixes, LoRA by hand) leave the new head as it was: it trains too.
def adapters_by_hand(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    from .adapters import add_adapters
    with _head_trains(model):
        add_adapters(model, cfg.adapter_size, cfg.adapter_placement)
    return model


def prefixes_by_hand(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    from .prefix import add_prefixes
    with _head_trains(model):
        add_prefixes(model, cfg.prompt_tokens)
    return model


def lora_by_hand(model: nn.Module, cfg: RunConfig, adapter_name: str) -> nn.Module:
    from .lora import apply_lora
    with _head_trains(model):
        apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    return model


@contextlib.contextmanager
def _head_trains(model: nn.Module):
    """The head's parameters train after the block (the by-hand methods freeze the whole model)."""
    head = [p for p in model.parameters() if id(p) in _head_params(model)]
    yield
    for p in head:
        p.requires_grad_(True)


def _head_params(model: nn.Module) -> set[int]:
    from .layers import layer_groups
    return {id(p) for g in layer_groups(model) if g.kind == "head" for _, p in g.params}


def trainable_summary(model: nn.Module) -> dict[str, float]:
    """Trainable and total parameter counts and the trainable share in percent."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_params": trainable, "total_params": total, "trainable_pct": 100.0 * trainable / total}


def adapters_disabled(model: nn.Module):
    """Context in which a PEFT model computes as its base model (LoRA updates and prompts off);
    a no-op for other models. Evaluating inside it measures what the frozen base still knows."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
