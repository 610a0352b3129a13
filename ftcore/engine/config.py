"""One frozen, validated configuration per run.

A fine-tune is an override of the defaults: ``dataclasses.replace(RunConfig(), lr=1e-4)`` or
``RunConfig(task="bbc-topic", freeze="gradual")``. Every field is checked when the config is built,
so a bad value fails at once with a message naming the field, the value and what is allowed,
not an hour later deep inside the loop.

Units are in the comments: *steps* are optimizer updates (one per ``grad_accum`` batches),
*epochs* are passes over the training split, *examples* are labelled texts.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

# The vocabulary of choices, in the chapter's words. Each tuple is what a field accepts.
FREEZE_STRATEGIES = ("none", "bottom", "middle", "head_only", "gradual", "list")
LR_STRATEGIES = ("uniform", "layerwise", "discriminative")
SCHEDULES = ("constant", "linear", "cosine", "exponential", "polynomial", "step",
             "cosine_restarts", "cyclic", "one_cycle", "plateau", "range_test")
WARMUPS = ("none", "linear", "cosine", "exponential", "sqrt")
OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("fp32", "bf16")
PEFT_METHODS = ("none", "lora", "prompt", "bitfit")
AUGMENT_OPS = ("synonym", "insert", "delete", "swap")
EVAL_SPLITS = ("train", "validation", "test")
EARLY_STOP_METRICS = ("loss", "accuracy")
UNFREEZE_UNITS = ("epoch", "step")
DEVICES = ("auto", "cpu", "cuda")


def _not_identity(default: Any = None, **kw) -> Any:
    """A field that changes how a run is executed or shown, not what it computes."""
    return field(default=default, metadata={"identity": False}, **kw)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one fine-tuning run. Validated on construction.

    The defaults are the chapter's "full fine-tuning" baseline: the whole pretrained encoder plus a
    new head trained with AdamW, linear warmup then linear decay, on 2,000 movie reviews.
    """

    # --- what is fine-tuned on what
    model: str = "all-MiniLM-L6-v2"  # alias, hub id, local directory, or "tiny-bert" (random, for tests)
    task: str = "rt-sentiment"  # built-in task, hub dataset id, or a local CSV/JSON/Parquet file
    train_size: int | None = 2000  # examples, stratified subsample of the train split; None = all
    seed: int = 0  # data order, new head's init, dropout, augmentation, label noise
    init: str = "pretrained"  # "pretrained" or "random" (same architecture, from-scratch baseline)

    # --- how long
    epochs: float = 3.0  # passes over the training set (fractions allowed)
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int = 16  # examples per forward pass
    grad_accum: int = 1  # forward passes per optimizer step (effective batch = batch_size * grad_accum)
    max_length: int = 64  # tokens; longer texts are truncated
    group_by_length: bool = True  # batches of similar length: less padding, same examples per epoch

    # --- optimizer
    optimizer: str = "adamw"
    lr: float = 5e-5  # peak learning rate of the top encoder layer (and of the head unless head_lr)
    weight_decay: float = 0.01  # decoupled (AdamW); never applied to biases and LayerNorm weights
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # SGD only

    # --- learning rate per layer group (3.2.1)
    lr_strategy: str = "uniform"
    layer_decay: float = 0.95  # layerwise: lr * layer_decay**depth, depth counted from the top
    discriminative_factor: float = 2.6  # discriminative (ULMFiT): lr / factor**depth
    head_lr: float | None = None  # separate peak LR for the new head (and pooler); None = follow lr

    # --- schedule (3.2.4)
    schedule: str = "linear"
    warmup: str = "linear"
    warmup_ratio: float = 0.06  # fraction of total steps spent warming up
    warmup_steps: int | None = None  # steps; overrides warmup_ratio when set
    min_lr_ratio: float = 0.0  # floor of linear/cosine/polynomial/restarts/cyclic, as a fraction of peak
    poly_power: float = 2.0  # polynomial decay exponent
    gamma: float = 0.5  # exponential: LR factor per epoch; step: factor at each drop
    step_every: float = 1.0  # step schedule: epochs between drops
    restarts: int = 3  # cosine_restarts: number of cosine cycles
    cycle_epochs: float = 0.5  # cyclic: epochs per half cycle (rise or fall)
    plateau_factor: float = 0.5  # plateau: LR *= factor when validation loss stalls
    plateau_patience: int = 1  # plateau: evaluations without improvement before reducing
    range_start_lr: float = 1e-7  # range_test: LR of the first step (rises exponentially to lr)

    # --- freezing (3.2.2)
    freeze: str = "none"
    freeze_layers: int | None = None  # bottom: how many encoder layers (plus embeddings); middle: how many
    frozen_groups: tuple[str, ...] = ()  # freeze="list": layer group names, e.g. ("embeddings", "layer.0")
    unfreeze_every: float = 1.0  # gradual: epochs or steps between unfreezing the next group down
    unfreeze_unit: str = "epoch"

    # --- parameter-efficient fine-tuning (seed 003)
    peft: str = "none"  # "lora" | "prompt" (prompt tuning) | "bitfit" (biases only) | "none"
    lora_r: int = 8  # rank of the low-rank update B·A
    lora_alpha: float = 16.0  # LoRA scaling: the update is multiplied by lora_alpha / lora_r
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value")  # module names that get a LoRA update
    prompt_tokens: int = 20  # prompt tuning: trainable virtual tokens prepended to the input

    # --- regularization and data (3.2.3, 3.2.5)
    dropout: float | None = None  # override hidden and attention dropout; None = the model's own
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None  # evaluations without improvement; None = off
    early_stopping_metric: str = "loss"  # validation loss (lower is better) or accuracy
    label_noise: float = 0.0  # fraction of training labels flipped to another class at random
    augment: tuple[str, ...] = ()  # text augmentation ops applied to training texts
    augment_rate: float = 0.1  # fraction of a text's words each op touches
    augment_copies: int = 1  # augmented copies added per training example (when augment is set)

    # --- stability (3.2.5)
    clip_grad_norm: float | None = 1.0  # max global L2 norm of the gradient; None = no clipping
    precision: str = "fp32"  # "bf16" = bfloat16 autocast for forward and backward
    reinit_top: int = 0  # re-initialise the top k encoder layers before training
    divergence_factor: float = 10.0  # diverged if loss > factor * first loss (or not finite)

    # --- evaluation
    eval_every: int | None = None  # steps between evaluations; None = once per epoch
    eval_size: int | None = 1000  # examples of each eval split used (fixed, stratified); None = all
    eval_splits: tuple[str, ...] = ("validation",)
    eval_at_start: bool = False  # also evaluate the untouched model at step 0
    test_at_end: bool = True  # evaluate on the test split after training
    test_size: int | None = None  # examples of the test split used (fixed, stratified); None = all
    score_train: bool = False  # record every training example's loss at the end (finds noisy labels)

    # --- execution: not part of a run's identity
    threads: int | None = _not_identity(None)  # torch threads; None = leave torch's setting
    device: str = _not_identity("auto")
    record_grad_norms: bool = _not_identity(True)  # per-group gradient norms each step (small cost)
    progress: bool = _not_identity(True)

    def __post_init__(self) -> None:
        # Accept lists (from JSON/YAML/CLI) where tuples are expected, then freeze them.
        for name in ("betas", "frozen_groups", "augment", "eval_splits", "lora_targets"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,) if value else ()
            object.__setattr__(self, name, tuple(value))
        _validate(self)

    # ---- conveniences
    def replace(self, **changes: Any) -> RunConfig:
        """``dataclasses.replace`` with the same validation."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def identity_dict(self) -> dict[str, Any]:
        """The fields that determine a run's numbers (used for the run id)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)
                if f.metadata.get("identity", True)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    def __repr__(self) -> str:  # only what differs from the defaults: short enough to read
        changed = {k: v for k, v in self.to_dict().items() if v != _DEFAULTS.get(k)}
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"RunConfig({inner})"


class ConfigError(ValueError):
    """A config value out of range or unknown; the message names the field and what is allowed."""


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _bad(name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"RunConfig.{name}={value!r} is not allowed: expected {allowed}")


def _check_choice(cfg: RunConfig, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(repr(c) for c in choices))


def _check_number(cfg: RunConfig, name: str, lo: float | None = None, hi: float | None = None, *,
                  integer: bool = False, optional: bool = False, lo_open: bool = False,
                  hi_open: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise _bad(name, value, kind + (" or None" if optional else ""))
    lo_ok = lo is None or (value > lo if lo_open else value >= lo)
    hi_ok = hi is None or (value < hi if hi_open else value <= hi)
    if not (lo_ok and hi_ok):
        left = "" if lo is None else ("(" if lo_open else "[") + f"{lo}"
        right = "" if hi is None else f"{hi}" + (")" if hi_open else "]")
        rng = f"{left or '(-inf'}, {right or 'inf)'}"
        raise _bad(name, value, f"{kind} in {rng}")


def _validate(c: RunConfig) -> None:
    for name, choices in [("freeze", FREEZE_STRATEGIES), ("lr_strategy", LR_STRATEGIES),
                          ("schedule", SCHEDULES), ("warmup", WARMUPS), ("optimizer", OPTIMIZERS),
                          ("precision", PRECISIONS), ("early_stopping_metric", EARLY_STOP_METRICS),
                          ("unfreeze_unit", UNFREEZE_UNITS), ("device", DEVICES),
                          ("init", ("pretrained", "random")), ("peft", PEFT_METHODS)]:
        _check_choice(c, name, choices)
    for name in ("model", "task"):
        if not isinstance(getattr(c, name), str) or not getattr(c, name).strip():
            raise _bad(name, getattr(c, name), "a non-empty name or path")

    _check_number(c, "train_size", 1, integer=True, optional=True)
    _check_number(c, "seed", 0, integer=True)
    _check_number(c, "epochs", 0, lo_open=True)
    _check_number(c, "max_steps", 1, integer=True, optional=True)
    _check_number(c, "batch_size", 1, 4096, integer=True)
    _check_number(c, "grad_accum", 1, 1024, integer=True)
    _check_number(c, "max_length", 8, 512, integer=True)
    _check_number(c, "lr", 0, 10, lo_open=True)
    _check_number(c, "weight_decay", 0, 1)
    if len(c.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in c.betas):
        raise _bad("betas", c.betas, "two numbers in [0, 1)")
    _check_number(c, "momentum", 0, 1, hi_open=True)
    _check_number(c, "layer_decay", 0, 1, lo_open=True)
    _check_number(c, "discriminative_factor", 1)
    _check_number(c, "head_lr", 0, 10, lo_open=True, optional=True)
    _check_number(c, "warmup_ratio", 0, 1, hi_open=True)
    _check_number(c, "warmup_steps", 0, integer=True, optional=True)
    _check_number(c, "min_lr_ratio", 0, 1)
    _check_number(c, "poly_power", 0, lo_open=True)
    _check_number(c, "gamma", 0, 1, lo_open=True)
    _check_number(c, "step_every", 0, lo_open=True)
    _check_number(c, "restarts", 1, 100, integer=True)
    _check_number(c, "cycle_epochs", 0, lo_open=True)
    _check_number(c, "plateau_factor", 0, 1, lo_open=True, hi_open=True)
    _check_number(c, "plateau_patience", 0, integer=True)
    _check_number(c, "range_start_lr", 0, c.lr, lo_open=True, hi_open=True)
    _check_number(c, "freeze_layers", 0, 1000, integer=True, optional=True)
    _check_number(c, "unfreeze_every", 0, lo_open=True)
    _check_number(c, "dropout", 0, 1, hi_open=True, optional=True)
    _check_number(c, "label_smoothing", 0, 1, hi_open=True)
    _check_number(c, "early_stopping_patience", 1, integer=True, optional=True)
    _check_number(c, "label_noise", 0, 1, hi_open=True)
    _check_number(c, "augment_rate", 0, 1, lo_open=True)
    _check_number(c, "augment_copies", 1, 20, integer=True)
    _check_number(c, "clip_grad_norm", 0, lo_open=True, optional=True)
    _check_number(c, "reinit_top", 0, 1000, integer=True)
    _check_number(c, "divergence_factor", 1, lo_open=True)
    _check_number(c, "eval_every", 1, integer=True, optional=True)
    _check_number(c, "eval_size", 1, integer=True, optional=True)
    _check_number(c, "test_size", 1, integer=True, optional=True)
    _check_number(c, "threads", 1, 1024, integer=True, optional=True)
    _check_number(c, "lora_r", 1, 1024, integer=True)
    _check_number(c, "lora_alpha", 0, lo_open=True)
    _check_number(c, "lora_dropout", 0, 1, hi_open=True)
    _check_number(c, "prompt_tokens", 1, 256, integer=True)
    if c.peft == "lora" and not c.lora_targets:
        raise _bad("lora_targets", c.lora_targets, 'module names (e.g. ("query", "value")) when peft="lora"')
    if c.peft != "none" and c.freeze != "none":
        raise _bad("freeze", c.freeze, f'"none" when peft={c.peft!r} (PEFT decides what trains)')

    for op in c.augment:
        if op not in AUGMENT_OPS:
            raise _bad("augment", c.augment, "a tuple of " + ", ".join(repr(o) for o in AUGMENT_OPS))
    for split in c.eval_splits:
        if split not in EVAL_SPLITS:
            raise _bad("eval_splits", c.eval_splits, "a tuple of " + ", ".join(map(repr, EVAL_SPLITS)))
    if c.freeze == "list" and not c.frozen_groups:
        raise _bad("frozen_groups", c.frozen_groups, 'layer group names when freeze="list"')
    if c.freeze != "list" and c.frozen_groups:
        raise _bad("frozen_groups", c.frozen_groups, f'() unless freeze="list" (freeze={c.freeze!r})')
    if c.freeze in ("bottom", "middle") and c.freeze_layers is None:
        raise _bad("freeze_layers", None, f'a number of encoder layers when freeze={c.freeze!r}')
    if c.schedule == "plateau" and "validation" not in c.eval_splits:
        raise _bad("eval_splits", c.eval_splits, 'to include "validation" when schedule="plateau"')
    if c.early_stopping_patience is not None and "validation" not in c.eval_splits:
        raise _bad("eval_splits", c.eval_splits, 'to include "validation" when early stopping is on')
    if c.schedule == "one_cycle" and c.warmup not in ("linear", "cosine"):
        raise _bad("warmup", c.warmup, '"linear" or "cosine" for schedule="one_cycle" (its own ramp)')


_DEFAULTS = {f.name: _jsonable(f.default) for f in fields(RunConfig)}


def load_config(path: str) -> RunConfig:
    """Read a config from a JSON or YAML file (keys are RunConfig fields)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path.endswith((".yaml", ".yml")):
        import yaml
        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of RunConfig fields, got {type(data).__name__}")
    return RunConfig.from_dict(data)
