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

from ..engine.config import RunConfig
from ..records.queries import SMOOTHING  # noqa: F401  (the smoothing the suggestion uses)
from ..records.queries import smooth_losses as smooth
from ..records.queries import suggest_lr as suggest
from ..records.record import RunRecord


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


def lr_find(cfg: RunConfig, *, start_lr: float = 1e-7, end_lr: float = 1.0, num_steps: int = 100,
            stop_factor: float = 4.0, runs_dir=None) -> LRFinderResult:
    """Run (or fetch) the range test for ``cfg``'s model, task and data, and suggest an LR."""
    from ..engine.runs import run

    test_cfg = cfg.replace(schedule="range_test", lr=end_lr, range_start_lr=start_lr, max_steps=num_steps,
                           warmup="none", eval_splits=(), test_at_end=False, early_stopping_patience=None,
                           divergence_factor=stop_factor)
    rec = run(test_cfg, runs_dir=runs_dir)
    lrs_by_step = rec.lrs[rec.lrs.group == rec.lrs.group.iloc[-1]].set_index("step")["lr"]
    losses = rec.steps.set_index("step")["loss"]
    lrs = [float(lrs_by_step[s]) for s in losses.index]
    steepest, valley = suggest(lrs, losses.tolist())
    return LRFinderResult(lrs, losses.tolist(), smooth([x if math.isfinite(x) else np.nan for x in losses]),
                          steepest, valley, rec)
