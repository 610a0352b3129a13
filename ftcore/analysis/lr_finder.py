"""Learning-rate range test (Smith 2017; fastai's ``lr_find``) with a suggested learning rate.

Train for ``num_steps`` updates while the LR rises exponentially from ``start_lr`` to ``end_lr``,
and stop once the loss exceeds ``stop_factor`` × its first value. The suggestion is the LR where the
smoothed loss falls fastest (steepest negative slope against log LR), before its minimum; the LR of
the minimum divided by 10 is given too. It is an ordinary run with ``schedule="range_test"``, so its
record is cached and drawn like any other (loss against the ``lrs`` table).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import MAX_DIVERGENCE_FACTOR, ConfigError, RunConfig
from ..records.queries import SMOOTHING  # noqa: F401  (the smoothing the suggestion uses)
from ..records.queries import smooth_losses as smooth
from ..records.queries import suggest_lr as suggest
from ..records.record import RunRecord

DEFAULTS = {"start_lr": 1e-7, "end_lr": 1.0, "num_steps": 100, "stop_factor": 4.0}  # of lr_find and the CLI
MIN_STEPS = 3  # fewer cannot give a slope


class RangeTestError(ValueError):
    """The range test ran but gave too little to suggest an LR from."""


@dataclass
class LRFinderResult:
    lrs: list[float]  # LR of each update
    losses: list[float]  # raw training loss of each update
    smoothed: list[float]
    suggestion: float  # steepest descent of the smoothed loss
    min_loss_lr_over_10: float
    record: RunRecord

    def __repr__(self) -> str:
        return (f"LR range test: {len(self.lrs)} steps, LR {self.lrs[0]:.1e} -> {self.lrs[-1]:.1e}; "
                f"suggested LR {self.suggestion:.2e} (steepest descent), "
                f"{self.min_loss_lr_over_10:.2e} (minimum / 10)")


def check_range(start_lr: float, end_lr: float, num_steps: int, stop_factor: float) -> None:
    """One ConfigError line for a range the test cannot use (names the argument and what is allowed)."""
    def bad(name, value, expected):
        return ConfigError(f"lr_find {name}={value!r} is not allowed: expected {expected}")
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr), ("stop_factor", stop_factor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(name, value, "a number")
    if not 0 < end_lr <= 10:
        raise bad("end_lr", end_lr, "a number in (0, 10]")
    if not 0 < start_lr < end_lr:
        raise bad("start_lr", start_lr, f"a number in (0, end_lr={end_lr:g})")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < MIN_STEPS:
        raise bad("num_steps", num_steps, f"an integer >= {MIN_STEPS}")
    if not 1 < stop_factor <= MAX_DIVERGENCE_FACTOR:
        raise bad("stop_factor", stop_factor, f"a number in (1, {MAX_DIVERGENCE_FACTOR:g}]")


def lr_find(cfg: RunConfig, *, start_lr: float = DEFAULTS["start_lr"], end_lr: float = DEFAULTS["end_lr"],
            num_steps: int = DEFAULTS["num_steps"], stop_factor: float = DEFAULTS["stop_factor"],
            runs_dir=None) -> LRFinderResult:
    """Run (or fetch) the range test for ``cfg``'s model, task and data, and suggest an LR.

    The test sets ``cfg``'s lr (to ``end_lr``), range_start_lr (``start_lr``), max_steps
    (``num_steps``), schedule, warmup, divergence_factor (``stop_factor``) and evaluation itself."""
    from ..engine.runs import run

    check_range(start_lr, end_lr, num_steps, stop_factor)

    test_cfg = cfg.replace(schedule="range_test", lr=end_lr, range_start_lr=start_lr, max_steps=num_steps,
                           warmup="none", eval_splits=(), test_at_end=False, early_stopping_patience=None,
                           divergence_factor=stop_factor)
    rec = run(test_cfg, runs_dir=runs_dir)
    lrs_by_step = rec.lrs[rec.lrs.group == rec.lrs.group.iloc[-1]].set_index("step")["lr"]
    losses = rec.steps.set_index("step")["loss"]
    lrs = [float(lrs_by_step[s]) for s in losses.index]
    try:
        steepest, valley = suggest(lrs, losses.tolist())
    except ValueError as exc:  # too few usable steps: say what to change
        raise RangeTestError(f"{exc} or raise stop_factor (record {rec.path})") from None
    return LRFinderResult(lrs, losses.tolist(), smooth([x if math.isfinite(x) else np.nan for x in losses]),
                          steepest, valley, rec)
