"""One frozen, validated configuration per run.

A fine-tune is an override of the defaults: ``dataclasses.replace(RunConfig(), lr=1e-4)`` or
``RunConfig(task="bbc-topic", freeze="gradual")``. Every field is checked when the config is built,
so a bad value fails at once with a message naming the field, the value and what is allowed,
not an hour later deep inside the loop.

Each field carries its documentation (meaning and unit) in its metadata, and what it accepts is
kept in the tables below the class (``CHOICES``, ``RANGES``): the validation, its error messages and
``ftcore run --help`` are all generated from them, so they cannot drift apart. Units: *steps* are
optimizer updates (one per ``grad_accum`` batches), *epochs* are passes over the training split,
*examples* are labelled texts. Values written as text (a YAML file, a command line) are converted
by :func:`coerce`: ``lr: 1e-4`` is a number, ``head_lr: none`` is None.

Torch-free, below both the engine and the records (a record's config is read without torch):
``precision="auto"`` needs the hardware, so the engine registers what it resolves to
(:func:`register_precision_resolver`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from typing import Any

from .peft_kinds import PEFT_METHODS
from .schedule_kinds import SCHEDULES, WARMUPS

# The vocabulary of choices, in the chapter's words. Each tuple is what a field accepts; schedules,
# warmups and PEFT methods are registries (the names, each with its own flags: ``SCHEDULES[name]``).
FREEZE_STRATEGIES = ("none", "bottom", "middle", "head_only", "gradual", "list")
LR_STRATEGIES = ("uniform", "layerwise", "discriminative")
OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("auto", "fp32", "bf16")  # ftcore.engine.precision resolves auto
ADAPTER_PLACEMENTS = ("houlsby", "pfeiffer")  # ftcore.engine.adapters
AUGMENT_OPS = ("synonym", "insert", "delete", "swap")
EVAL_SPLITS = ("train", "validation", "test")
EARLY_STOP_METRICS = ("loss", "accuracy")
UNFREEZE_UNITS = ("epoch", "step")
DEVICES = ("auto", "cpu", "cuda")
POOLINGS = ("cls", "mean")  # ftcore.engine.pooling

# Fields added after reference records were made, with the value that reproduces the behaviour from
# before they existed: at that value they are left out of the run id, so older records keep their ids.
ADDED_LATER: dict[str, Any] = {"pooling": "cls", "frozen_dropout": True, "unfreeze_groups": 1, "one_cycle_momentum": False,
                               "adapter_size": 64, "adapter_placement": "houlsby"}


def _f(default: Any, doc: str, *, none: str | None = None, identity: bool = True) -> Any:
    """A field with its documentation (shown by ``ftcore run --help``, with its allowed values).

    ``none``: what ``None`` means for an optional field. ``identity=False``: the field changes how a
    run is executed or shown, not what it computes (it is left out of the run id)."""
    metadata = {"doc": doc}
    if none is not None:
        metadata["none"] = none
    if not identity:
        metadata["identity"] = False
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one fine-tuning run. Validated on construction.

    The defaults are the chapter's "full fine-tuning" baseline: the whole pretrained encoder plus a
    new head trained with AdamW, linear warmup then linear decay, on 2,000 movie reviews.
    """

    # --- what is fine-tuned on what
    model: str = _f("all-MiniLM-L6-v2", "model to fine-tune: the default's alias, a hub id (needs "
                    "internet), a local folder with config.json and weights, or 'tiny-bert' (2 random "
                    "layers, for tests)")
    task: str = _f("rt-sentiment", "built-in task (see `ftcore tasks`), a local CSV/TSV/JSON/JSONL/Parquet file "
                   "with text and label columns, or a hub dataset id (needs internet)")
    train_size: int | None = _f(2000, "training examples, a stratified sample of the train split; a split "
                                "with fewer examples is used whole (the record notes it: event "
                                "train_size_clamped, summary train_examples)", none="the whole split")
    seed: int = _f(0, "seed of the data order, the new head's initial weights, dropout, augmentation and "
                   "label noise")
    pooling: str = _f("cls", "how a text becomes one vector for the head: 'cls' = the encoder's pooler on the "
                      "first token (BertForSequenceClassification), 'mean' = the mean of the last hidden "
                      "states over the real tokens (how sentence-transformers checkpoints such as the "
                      "default model were trained)")
    init: str = _f("pretrained", "start from the pretrained weights, or 'random' (same architecture, "
                   "trained from scratch)")

    # --- how long
    epochs: float = _f(3.0, "length of training in epochs (passes over the training examples; fractions "
                       "allowed); ignored when max_steps is set")
    max_steps: int | None = _f(None, "length of training in optimizer steps; overrides epochs",
                               none="use epochs")
    batch_size: int = _f(16, "examples per forward pass (per batch)")
    grad_accum: int = _f(1, "batches per optimizer step (effective batch = batch_size x grad_accum "
                         "examples)")
    max_length: int = _f(64, "tokens per text; longer texts are truncated")
    group_by_length: bool = _f(True, "batch texts of similar length together (less padding, same "
                               "examples per epoch)")

    # --- optimizer
    optimizer: str = _f("adamw", "optimizer: AdamW (decoupled weight decay) or SGD with momentum")
    lr: float = _f(5e-5, "peak learning rate (per optimizer step) of the top encoder layer, and of the head "
                   "unless head_lr is set")
    weight_decay: float = _f(0.01, "decoupled weight decay (AdamW) per step, as a fraction of the LR; never "
                             "applied to biases and LayerNorm weights")
    betas: tuple[float, float] = _f((0.9, 0.999), "AdamW's two moment decay rates (per step)")
    momentum: float = _f(0.9, "SGD momentum (optimizer='sgd' only)")

    # --- learning rate per layer group (3.2.1)
    lr_strategy: str = _f("uniform", "learning rate per layer group: the same for all, layer-wise decay, or "
                          "discriminative (ULMFiT)")
    layer_decay: float = _f(0.95, "layerwise: LR factor per layer down from the top (lr x layer_decay^depth)")
    discriminative_factor: float = _f(2.6, "discriminative: LR divisor per layer down from the top "
                                      "(lr / factor^depth)")
    head_lr: float | None = _f(None, "separate peak LR of the new head (and pooler)", none="follow lr")

    # --- schedule (3.2.4)
    schedule: str = _f("linear", "LR schedule after warmup")
    warmup: str = _f("linear", "shape of the LR warmup")
    warmup_ratio: float = _f(0.06, "warmup length as a fraction of the run's optimizer steps")
    warmup_steps: int | None = _f(None, "warmup length in optimizer steps; overrides warmup_ratio. At most "
                                  "the run's steps - 1: a longer warmup is shortened and the record notes it "
                                  "(event warmup_clamped, summary warmup_steps)", none="use warmup_ratio")
    min_lr_ratio: float = _f(0.0, "LR floor of linear/cosine/polynomial/restarts/cyclic, as a fraction of the "
                             "peak LR")
    poly_power: float = _f(2.0, "polynomial schedule: decay exponent")
    gamma: float = _f(0.5, "exponential: LR factor per epoch; step: LR factor at each drop")
    step_every: float = _f(1.0, "step schedule: epochs between LR drops")
    restarts: int = _f(3, "cosine_restarts: number of cosine cycles in the run")
    cycle_epochs: float = _f(0.5, "cyclic: epochs per half cycle (rise or fall)")
    one_cycle_momentum: bool = _f(False, "one_cycle: cycle the momentum inversely to the LR, 0.95 -> 0.85 -> 0.95 "
                                  "(AdamW's beta1, SGD's momentum), as Smith & Topin's one-cycle policy and fastai's "
                                  "fit_one_cycle do; off: only the LR cycles")
    plateau_factor: float = _f(0.5, "plateau: LR factor applied when the validation loss stalls")
    plateau_patience: int = _f(1, "plateau: evaluations without improvement before the LR is reduced")
    range_start_lr: float = _f(1e-7, "range_test schedule: LR of the first step (it rises exponentially to "
                               "lr); must be below lr")

    # --- freezing (3.2.2)
    freeze: str = _f("none", "freezing strategy: none, the embeddings + bottom freeze_layers layers, "
                     "freeze_layers middle layers, all but the head, gradual unfreezing from the top "
                     "(ULMFiT), or the groups in frozen_groups")
    freeze_layers: int | None = _f(None, "freeze='bottom'/'middle': how many encoder layers (at most the "
                                   "model's)", none="not used (required by bottom and middle)")
    frozen_groups: tuple[str, ...] = _f((), "freeze='list': layer group names, e.g. embeddings,layer.0")
    unfreeze_every: float = _f(1.0, "freeze='gradual': epochs or steps (unfreeze_unit) between unfreezing "
                               "the next layer group down; a schedule that cannot reach the bottom group "
                               "before the run ends is noted in the record (event unfreeze_incomplete, "
                               "reported by `ftcore doctor`)")
    unfreeze_unit: str = _f("epoch", "freeze='gradual': unit of unfreeze_every")
    unfreeze_groups: int = _f(1, "freeze='gradual': layer groups unfrozen together at each stage, top "
                              "down (ULMFiT unfreezes one per epoch; grouping keeps the epochs few)")

    # --- parameter-efficient fine-tuning (seed 003)
    peft: str = _f("none", "parameter-efficient method: LoRA (peft), prompt tuning, BitFit (biases only), "
                   "bottleneck adapters (by hand), prefix tuning (by hand, ftcore.engine.prefix: key/value "
                   "positions in every layer's attention), LoRA written from scratch "
                   "(ftcore.engine.lora, same method as lora), or none")
    lora_r: int = _f(8, "LoRA: rank of the low-rank update B·A")
    lora_alpha: float = _f(16.0, "LoRA: scaling; the update is multiplied by lora_alpha / lora_r")
    lora_dropout: float = _f(0.1, "LoRA: dropout probability on the update's input")
    lora_targets: tuple[str, ...] = _f(("query", "value"), "LoRA: names of the modules that get an update")
    prompt_tokens: int = _f(20, "prompt tuning: trainable virtual tokens prepended to the input; prefix "
                            "tuning: trainable key/value positions prepended in every layer's attention")
    adapter_size: int = _f(64, "adapter: bottleneck width (units between the down- and up-projection of each "
                           "adapter; about 2 x hidden x adapter_size parameters per adapter)")
    adapter_placement: str = _f("houlsby", "adapter: 'houlsby' = after the attention and the FFN output of "
                                "every layer, LayerNorms train too; 'pfeiffer' = after the FFN output only, "
                                "only the adapters (and head) train")

    # --- regularization and data (3.2.3, 3.2.5)
    dropout: float | None = _f(None, "hidden and attention dropout probability", none="the model's own")
    frozen_dropout: bool = _f(True, "keep dropout on in frozen layers (as HF Trainer does); false runs them in "
                              "eval mode, which also lets ftcore compute the frozen bottom's outputs once per "
                              "example and reuse them every epoch (the frozen-feature cache)")
    label_smoothing: float = _f(0.0, "label smoothing of the cross-entropy loss (probability mass spread "
                                "over the other classes)")
    early_stopping_patience: int | None = _f(None, "evaluations without improvement before training stops",
                                             none="no early stopping")
    early_stopping_metric: str = _f("loss", "validation metric early stopping watches")
    label_noise: float = _f(0.0, "fraction of training labels flipped to another class at random")
    augment: tuple[str, ...] = _f((), "text augmentation ops applied to training texts (comma-separated)")
    augment_rate: float = _f(0.1, "fraction of a text's words each augmentation op touches")
    augment_copies: int = _f(1, "augmented copies added per training example (when augment is set)")

    # --- stability (3.2.5)
    clip_grad_norm: float | None = _f(1.0, "max global L2 norm of the gradient per optimizer step",
                                      none="no clipping")
    precision: str = _f("auto", "arithmetic: auto = bf16 autocast where this CPU/GPU has native bf16 and "
                        "it measures faster, fp32 elsewhere (the record and run id hold what was used); "
                        "fp32; or bf16 autocast for forward and backward (20-150x slower than fp32 on CPUs "
                        "without native bf16)")
    reinit_top: int = _f(0, "re-initialise the top k encoder layers before training (at most the model's "
                         "layers)")
    divergence_factor: float = _f(10.0, "the run stops as diverged when the training loss exceeds this "
                                  "factor x the first step's loss (a non-finite loss always stops it)")

    # --- evaluation
    eval_every: int | None = _f(None, "optimizer steps between evaluations", none="once per epoch")
    eval_size: int | None = _f(1000, "examples of each evaluation split used (a fixed stratified subset; "
                               "a smaller split is used whole)", none="the whole split")
    eval_splits: tuple[str, ...] = _f(("validation",), "splits evaluated during training (comma-separated)")
    eval_at_start: bool = _f(False, "also evaluate the untouched model at step 0")
    test_at_end: bool = _f(True, "evaluate on the test split after training")
    test_size: int | None = _f(None, "examples of the test split used (a fixed stratified subset; a smaller "
                               "split is used whole)", none="the whole split")
    score_train: bool = _f(False, "record every training example's loss at the end (finds noisy labels)")

    # --- execution: not part of a run's identity
    threads: int | None = _f(None, "CPU threads torch uses", none="leave torch's setting", identity=False)
    device: str = _f("auto", "where to train: auto (CUDA when available), cpu, or cuda", identity=False)
    record_grad_norms: bool = _f(True, "record per-group gradient norms every step (small cost)",
                                 identity=False)
    progress: bool = _f(True, "show a progress bar", identity=False)

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
        """The fields that determine a run's numbers (used for the run id). ``precision="auto"`` is
        replaced by what it resolves to on this machine: the id names the arithmetic actually used."""
        out = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)
               if f.metadata.get("identity", True)
               and not (f.name in ADDED_LATER and getattr(self, f.name) == ADDED_LATER[f.name])}
        if out.get("precision") == "auto":
            out["precision"] = _resolve_precision(self)
        if self.reinit_top:  # v1 re-initialised nothing (transformers 5): its records are never reused
            out["reinit_impl"] = 2
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """From ``to_dict()`` output, a JSON/YAML mapping, or strings as typed on a command line."""
        return from_mapping(data, "config")

    def __repr__(self) -> str:  # only what differs from the defaults: short enough to read
        changed = {k: v for k, v in self.to_dict().items() if v != _DEFAULTS.get(k)}
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"RunConfig({inner})"


class ConfigError(ValueError):
    """A config value out of range or unknown; the message names the field and what is allowed."""


# ``precision="auto"`` needs the hardware (torch): the engine registers the resolver, so this module
# stays importable without torch.
_PRECISION_RESOLVER = None


def register_precision_resolver(fn) -> None:
    """``fn(cfg) -> "fp32" | "bf16"``: what ``auto`` means here (``ftcore.engine.precision``)."""
    global _PRECISION_RESOLVER
    _PRECISION_RESOLVER = fn


def _resolve_precision(cfg: RunConfig) -> str:
    if _PRECISION_RESOLVER is None:
        import importlib
        importlib.import_module("ftcore.engine.precision")  # registers itself
    return _PRECISION_RESOLVER(cfg)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------- what each field accepts
@dataclass(frozen=True)
class _Range:
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False

    def text(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.lo is None and self.hi is None:
            return kind
        left = "(-inf" if self.lo is None else ("(" if self.lo_open else "[") + _num(self.lo)
        right = "inf)" if self.hi is None else _num(self.hi) + (")" if self.hi_open else "]")
        return f"{kind} in {left}, {right}"

    def ok(self, v: float) -> bool:
        return ((self.lo is None or (v > self.lo if self.lo_open else v >= self.lo))
                and (self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


MAX_SEED = 2**32 - 1  # numpy's legacy seeding (np.random.seed) takes at most 32 bits
MAX_DIVERGENCE_FACTOR = 100.0  # above this a blown-up loss (tens to hundreds x) would pass unnoticed

# What each choice field accepts: a tuple of names or a registry (read live, so an entry added to a
# registry is accepted at once).
CHOICES: dict[str, Collection[str]] = {
    "init": ("pretrained", "random"), "optimizer": OPTIMIZERS, "lr_strategy": LR_STRATEGIES,
    "schedule": SCHEDULES, "warmup": WARMUPS, "freeze": FREEZE_STRATEGIES, "unfreeze_unit": UNFREEZE_UNITS,
    "peft": PEFT_METHODS, "early_stopping_metric": EARLY_STOP_METRICS, "precision": PRECISIONS,
    "device": DEVICES, "pooling": POOLINGS, "adapter_placement": ADAPTER_PLACEMENTS,
}
ITEM_CHOICES: dict[str, tuple[str, ...]] = {"augment": AUGMENT_OPS, "eval_splits": EVAL_SPLITS}
RANGES: dict[str, _Range] = {
    "train_size": _Range(1, integer=True),
    "seed": _Range(0, MAX_SEED, integer=True),
    "epochs": _Range(0, 1000, lo_open=True),
    "max_steps": _Range(1, integer=True),
    "batch_size": _Range(1, 4096, integer=True),
    "grad_accum": _Range(1, 1024, integer=True),
    "max_length": _Range(8, 512, integer=True),
    "lr": _Range(0, 10, lo_open=True),
    "weight_decay": _Range(0, 1),
    "momentum": _Range(0, 1, hi_open=True),
    "layer_decay": _Range(0, 1, lo_open=True),
    "discriminative_factor": _Range(1),
    "head_lr": _Range(0, 10, lo_open=True),
    "warmup_ratio": _Range(0, 1, hi_open=True),
    "warmup_steps": _Range(0, integer=True),
    "min_lr_ratio": _Range(0, 1),
    "poly_power": _Range(0, lo_open=True),
    "gamma": _Range(0, 1, lo_open=True),
    "step_every": _Range(0, lo_open=True),
    "restarts": _Range(1, 100, integer=True),
    "cycle_epochs": _Range(0, lo_open=True),
    "plateau_factor": _Range(0, 1, lo_open=True, hi_open=True),
    "plateau_patience": _Range(0, integer=True),
    "range_start_lr": _Range(0, 10, lo_open=True),  # and below lr for schedule="range_test"
    "freeze_layers": _Range(0, 1000, integer=True),
    "unfreeze_every": _Range(0, lo_open=True),
    "unfreeze_groups": _Range(1, 1000, integer=True),
    "lora_r": _Range(1, 1024, integer=True),
    "lora_alpha": _Range(0, lo_open=True),
    "lora_dropout": _Range(0, 1, hi_open=True),
    "prompt_tokens": _Range(1, 256, integer=True),
    "adapter_size": _Range(1, 4096, integer=True),
    "dropout": _Range(0, 1, hi_open=True),
    "label_smoothing": _Range(0, 1, hi_open=True),
    "early_stopping_patience": _Range(1, integer=True),
    "label_noise": _Range(0, 1, hi_open=True),
    "augment_rate": _Range(0, 1, lo_open=True),
    "augment_copies": _Range(1, 20, integer=True),
    "clip_grad_norm": _Range(0, lo_open=True),
    "reinit_top": _Range(0, 1000, integer=True),
    "divergence_factor": _Range(1, MAX_DIVERGENCE_FACTOR, lo_open=True),
    "eval_every": _Range(1, integer=True),
    "eval_size": _Range(1, integer=True),
    "test_size": _Range(1, integer=True),
    "threads": _Range(1, 1024, integer=True),
}
OTHER_ALLOWED = {
    "model": "a non-empty model name or folder",
    "task": "a non-empty task name or file",
    "betas": "two numbers in [0, 1), e.g. 0.9,0.999",
    "frozen_groups": "layer group names of the model (embeddings, layer.0 ... layer.N-1, pooler, head)",
    "lora_targets": "module names, e.g. query,value",
}
_FIELDS = {f.name: f for f in fields(RunConfig)}
BOOL_FIELDS = tuple(n for n, f in _FIELDS.items() if str(f.type) == "bool")
TUPLE_FIELDS = tuple(n for n, f in _FIELDS.items() if str(f.type).startswith("tuple"))


def is_optional(name: str) -> bool:
    return "None" in str(_FIELDS[name].type)


def allowed(name: str) -> str:
    """What field ``name`` accepts, in words (the same text as its error message and --help)."""
    if name in CHOICES:
        text = "one of " + ", ".join(CHOICES[name])
    elif name in ITEM_CHOICES:
        text = "any of " + ", ".join(ITEM_CHOICES[name]) + " (comma-separated; empty for none)"
    elif name in RANGES:
        text = RANGES[name].text()
    elif name in BOOL_FIELDS:
        text = "true or false"
    else:
        text = OTHER_ALLOWED[name]
    if is_optional(name):
        text += f", or none (= {_FIELDS[name].metadata.get('none', 'not set')})"
    return text


def describe(name: str) -> str:
    """One field's meaning, unit, allowed values and default, for ``--help``."""
    f = _FIELDS[name]
    default = f.default
    shown = ("none" if default is None else str(default).lower() if isinstance(default, bool)
             else ",".join(map(str, default)) if isinstance(default, tuple) else str(default))
    return f"{f.metadata['doc']}. Allowed: {allowed(name)}. Default: {shown or '(empty)'}."


def _bad(name: str, value: Any, expected: str | None = None) -> ConfigError:
    return ConfigError(f"RunConfig.{name}={value!r} is not allowed: expected {expected or allowed(name)}")


def _validate(c: RunConfig) -> None:
    for name, choices in CHOICES.items():
        if getattr(c, name) not in choices:
            raise _bad(name, getattr(c, name), "one of " + ", ".join(repr(x) for x in choices))
    for name in ("model", "task"):
        if not isinstance(getattr(c, name), str) or not getattr(c, name).strip():
            raise _bad(name, getattr(c, name))
    for name in BOOL_FIELDS:
        if not isinstance(getattr(c, name), bool):
            raise _bad(name, getattr(c, name))
    for name, rng in RANGES.items():
        value = getattr(c, name)
        if value is None and is_optional(name):
            continue
        ok_type = isinstance(value, int) if rng.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or (not rng.integer and not math.isfinite(value)) \
                or not rng.ok(value):
            raise _bad(name, value)
    schedule, method = SCHEDULES[c.schedule], PEFT_METHODS[c.peft]
    if schedule.sweep and not c.range_start_lr < c.lr:
        raise _bad("range_start_lr", c.range_start_lr,
                   f"a number below lr={c.lr:g} for schedule={c.schedule!r} (the LR rises from "
                   "range_start_lr to lr)")
    if len(c.betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                                    for b in c.betas):
        raise _bad("betas", c.betas)
    for name in ("frozen_groups", "lora_targets"):
        if not all(isinstance(x, str) and x.strip() for x in getattr(c, name)):
            raise _bad(name, getattr(c, name))
    for name, choices in ITEM_CHOICES.items():
        if any(x not in choices for x in getattr(c, name)):
            raise _bad(name, getattr(c, name), "a tuple of " + ", ".join(repr(o) for o in choices))

    if method.lora_targets and not c.lora_targets:
        raise _bad("lora_targets", c.lora_targets, f'module names (e.g. ("query", "value")) when peft={c.peft!r}')
    if method.changes_model and c.freeze != "none":
        raise _bad("freeze", c.freeze, f'"none" when peft={c.peft!r} (PEFT decides what trains)')
    if c.freeze == "list" and not c.frozen_groups:
        raise _bad("frozen_groups", c.frozen_groups, 'layer group names when freeze="list"')
    if c.freeze != "list" and c.frozen_groups:
        raise _bad("frozen_groups", c.frozen_groups, f'() unless freeze="list" (freeze={c.freeze!r})')
    if c.freeze in ("bottom", "middle") and c.freeze_layers is None:
        raise _bad("freeze_layers", None, f'a number of encoder layers when freeze={c.freeze!r}')
    if schedule.on_validation and "validation" not in c.eval_splits:
        raise _bad("eval_splits", c.eval_splits, f'to include "validation" when schedule="{c.schedule}"')
    if c.early_stopping_patience is not None and "validation" not in c.eval_splits:
        raise _bad("eval_splits", c.eval_splits, 'to include "validation" when early stopping is on')
    if schedule.warmups is not None and c.warmup not in schedule.warmups:
        shapes = " or ".join(f'"{w}"' for w in schedule.warmups)
        raise _bad("warmup", c.warmup, f'{shapes} for schedule="{c.schedule}" (its own ramp)')


_DEFAULTS = {f.name: _jsonable(f.default) for f in fields(RunConfig)}


# ---------------------------------------------------------------------------- text to values
_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null", "~", "")


def _number(text: str, integer: bool) -> Any:
    """``"1e-4"`` -> 1e-4, ``"2e3"`` -> 2000 for an integer field; the text itself if it is no number."""
    try:
        x = float(text.strip().replace("_", ""))
    except ValueError:
        return text
    if integer:
        if not math.isfinite(x) or x != int(x):
            return text
        try:
            return int(text.strip().replace("_", ""))  # exact for big integers
        except ValueError:
            return int(x)
    return x


def coerce(name: str, value: Any) -> Any:
    """A field's value as written in a config file or on the command line, turned into its type.

    Strings become numbers where the field is numeric (``lr: 1e-4`` is a *string* in YAML 1.1,
    which PyYAML follows), ``none``/``null`` becomes None for optional fields, ``true``/``no``
    become booleans, and ``a,b`` becomes a tuple. What cannot be converted is left as it is, so
    validation reports it with the field's allowed values."""
    if name not in _FIELDS:
        return value
    if name in TUPLE_FIELDS:
        if isinstance(value, str):
            value = [x.strip() for x in value.split(",") if x.strip()]
        if name == "betas" and isinstance(value, (list, tuple)):
            value = [_number(x, False) if isinstance(x, str) else x for x in value]
        return value
    if not isinstance(value, str):
        if name in RANGES and RANGES[name].integer and isinstance(value, float) and value.is_integer():
            return int(value)  # 2000.0 in a JSON file
        return value
    if is_optional(name) and value.strip().lower() in _NONE:
        return None
    if name in BOOL_FIELDS:
        low = value.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else value
    if name in RANGES:
        return _number(value, RANGES[name].integer)
    return value


def from_mapping(data: Any, source: str) -> RunConfig:
    """A RunConfig from a mapping read from a file or flags (values coerced, unknown keys refused)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of RunConfig fields (name: value), "
                          f"got {type(data).__name__}")
    unknown = [k for k in data if k not in _FIELDS]
    if unknown:
        import difflib
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            str(k).replace("-", "_"), _FIELDS, n=1)) else repr(k) for k in unknown]
        raise ConfigError(f"{source}: unknown config field(s) {', '.join(hints)}; known fields: "
                          f"{', '.join(_FIELDS)}")
    return RunConfig(**{k: coerce(k, v) for k, v in data.items()})


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def load_config(path: str) -> RunConfig:
    """Read a config from a JSON or YAML file (keys are RunConfig fields; values as on the command
    line are accepted too: ``lr: 1e-4``, ``head_lr: none``). Any problem is one ConfigError line."""
    from pathlib import Path

    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir():
        raise ConfigError(f"config file {path!r} is a folder: give a .json or .yaml file of RunConfig fields")
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(f"config file {path!r} has an unsupported type {suffix or '(no suffix)'!r}: "
                          "write it as .json or .yaml/.yml (keys are RunConfig fields)")
    if not p.exists():
        raise ConfigError(f"config file {path!r} does not exist (check the path)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path!r} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}") from None
    else:
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"config file {path!r} is not valid YAML: {what}{where}") from None
        data = {} if data is None else data
    return from_mapping(data, f"config file {path!r}")


__all__ = ["ADAPTER_PLACEMENTS", "ADDED_LATER", "AUGMENT_OPS", "BOOL_FIELDS", "CHOICES", "CONFIG_SUFFIXES",
           "ConfigError", "DEVICES", "EARLY_STOP_METRICS", "EVAL_SPLITS", "FREEZE_STRATEGIES", "ITEM_CHOICES",
           "LR_STRATEGIES", "MAX_DIVERGENCE_FACTOR", "MAX_SEED", "OPTIMIZERS", "OTHER_ALLOWED", "PEFT_METHODS",
           "POOLINGS", "PRECISIONS", "RANGES", "RunConfig", "SCHEDULES", "TUPLE_FIELDS", "UNFREEZE_UNITS",
           "WARMUPS", "allowed", "coerce", "describe", "from_mapping", "is_optional", "load_config",
           "register_precision_resolver"]
