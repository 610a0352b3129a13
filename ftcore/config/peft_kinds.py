"""The parameter-efficient fine-tuning methods a config can name (``RunConfig.peft``), with their flags.

Each entry says where its code is (``apply``, a ``module:function`` that
:func:`ftcore.engine.peft_methods.apply_peft` imports and calls with the model and the config),
what of the config it uses, and whether the trained model can be saved as plain ``transformers``
weights (:mod:`ftcore.engine.export` refuses the others before training, with the entry's reason).
"""
from __future__ import annotations

from dataclasses import dataclass

from .registry import Registry

_HERE = "ftcore.engine.peft_methods"


@dataclass(frozen=True)
class PeftMethod:
    name: str
    doc: str
    apply: str | None  # "module:function" taking (model, cfg, adapter_name); None: the model as it is
    lora_targets: bool = False  # updates the modules named in lora_targets (which must not be empty)
    # why the trained model cannot be saved as plain transformers weights (None: it can; LoRA is merged)
    unmergeable: str | None = None

    @property
    def changes_model(self) -> bool:
        """It wraps or freezes the model: PEFT decides what trains (``freeze`` must stay "none"), and
        the frozen-feature cache, which needs the model's own layers, does not apply."""
        return self.apply is not None


PEFT_METHODS: Registry[PeftMethod] = Registry("PEFT method", [
    PeftMethod("none", "full fine-tuning (or the freezing in `freeze`)", None),
    PeftMethod("lora", "LoRA through peft: a low-rank update B·A of each targeted weight", f"{_HERE}:lora_by_peft",
               lora_targets=True),
    PeftMethod("prompt", "prompt tuning through peft: trainable virtual tokens before the input",
               f"{_HERE}:prompt_by_peft", unmergeable="prompt tuning's virtual tokens are an extra input, not a "
               "change of weights (peft's save_pretrained saves the PEFT model)"),
    PeftMethod("bitfit", "only the bias terms (and the new head) train", f"{_HERE}:bitfit"),
    PeftMethod("adapter", "bottleneck adapters, by hand (ftcore.engine.adapters)", f"{_HERE}:adapters_by_hand",
               unmergeable="bottleneck adapters add nonlinear layers that cannot be merged into the weights"),
    PeftMethod("prefix", "prefix tuning, by hand (ftcore.engine.prefix): key/value positions in every layer",
               f"{_HERE}:prefixes_by_hand", unmergeable="prefix tuning's key/value prefixes are extra attention "
               "inputs, not a change of weights"),
    PeftMethod("lora_scratch", "LoRA written from scratch (ftcore.engine.lora), the same method as lora",
               f"{_HERE}:lora_by_hand", lora_targets=True),
])

__all__ = ["PEFT_METHODS", "PeftMethod"]
