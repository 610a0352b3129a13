"""Parameter-efficient fine-tuning: LoRA, prompt and prefix tuning through the ``peft`` library; BitFit,
bottleneck adapters and a LoRA written for reading by hand.

* **LoRA** (Hu et al. 2021): each targeted weight W gets a trainable low-rank update
  ``(lora_alpha / r) · B A`` (A: r×d, B: d×r, B starts at zero so training starts at W); W stays frozen.
* **Prompt tuning** (Lester et al. 2021): ``prompt_tokens`` trainable vectors are prepended to the
  input embeddings; the whole model stays frozen.
* **BitFit** (Ben Zaken et al. 2022): only the bias terms train. Nothing in ``peft`` does this, and
  it is three lines: freeze every weight, leave the biases.
* **Bottleneck adapters** (Houlsby et al. 2019; Pfeiffer et al. 2021): small down-project, GELU,
  up-project networks with a residual after the attention and/or FFN output of every layer
  (:mod:`ftcore.engine.adapters`, by hand: the ``adapters`` library needs transformers 4.x).
* **Prefix tuning** (Li & Liang 2021): ``prompt_tokens`` trainable key/value vectors prepended in every
  layer's attention, through peft's ``PrefixTuningConfig``. peft passes them as ``past_key_values``;
  BERT-style encoders of transformers 5 take no such argument (it became ``cache``, used only by
  decoders), so there the method stops with a ConfigError that says so.
* **LoRA from scratch** (``peft="lora_scratch"``): the same method as ``lora`` in
  :mod:`ftcore.engine.lora`, short enough to read; tested to match peft's outputs and parameter count.

In every method the new classification head trains too (it starts random, so it must).
"""
from __future__ import annotations

from torch import nn

from .config import RunConfig


def apply_peft(model: nn.Module, cfg: RunConfig, *, adapter_name: str = "default") -> nn.Module:
    """Wrap or freeze ``model`` as ``cfg.peft`` says; returns the model to train."""
    if cfg.peft == "none":
        return model
    if cfg.peft == "bitfit":
        head = _head_params(model)
        for name, p in model.named_parameters():
            p.requires_grad_(name.endswith(".bias") or id(p) in head)
        return model
    if cfg.peft in ("adapter", "lora_scratch"):
        return _apply_by_hand(model, cfg)
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model

    if cfg.peft == "lora":
        pcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                          lora_dropout=cfg.lora_dropout, target_modules=list(cfg.lora_targets))
    elif cfg.peft == "prefix":
        _check_prefix_supported(model)
        pcfg = PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.prompt_tokens)
    else:
        pcfg = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.prompt_tokens)
    try:
        return get_peft_model(model, pcfg, adapter_name=adapter_name)
    except ValueError as exc:  # e.g. a target module that the model does not have
        from .config import ConfigError
        raise ConfigError(f"RunConfig.peft={cfg.peft!r} could not be applied: {exc}") from None


def _apply_by_hand(model: nn.Module, cfg: RunConfig) -> nn.Module:
    """``adapter`` and ``lora_scratch``: ftcore's own modules; the new head trains too."""
    from .config import ConfigError

    head = [p for p in model.parameters() if id(p) in _head_params(model)]
    try:
        if cfg.peft == "adapter":
            from .adapters import add_adapters
            add_adapters(model, cfg.adapter_size, cfg.adapter_placement)
        else:
            from .lora import apply_lora
            apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    except ValueError as exc:
        raise ConfigError(f"RunConfig.peft={cfg.peft!r} could not be applied: {exc}") from None
    for p in head:
        p.requires_grad_(True)
    return model


PREFIX_UNSUPPORTED = (
    "RunConfig.peft='prefix' is not supported for {model} with transformers {tv} and peft {pv}: peft's "
    "prefix tuning hands its per-layer key/value prefixes to the encoder as `past_key_values`, and this "
    "encoder's forward takes no such argument (in transformers 5 BERT-style encoders renamed it `cache` and "
    "use it only as decoders), so the prefixes would never reach the attention. Use peft='prompt' (virtual "
    "tokens at the input), 'adapter' or 'lora' instead")


def _check_prefix_supported(model: nn.Module) -> None:
    """Refuse prefix tuning, with the reason, where peft cannot hand the prefixes to the encoder
    (the same test peft makes at the first forward pass, made here before training starts)."""
    import inspect

    import peft
    import transformers

    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    ok = any("past_key_values" in inspect.signature(m.forward).parameters
             for m in (model, backbone) if m is not None)
    if not ok:
        from .config import ConfigError
        raise ConfigError(PREFIX_UNSUPPORTED.format(model=type(model).__name__, tv=transformers.__version__,
                                                    pv=peft.__version__))


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
    import contextlib

    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
