"""Learning-rate schedules (3.2.4): warmup then decay, as pure functions of the step.

Every schedule is a multiplier of each param group's peak LR, ``k`` counting optimizer updates
from 0 (update ``k+1`` uses ``multiplier(k)``). Warmup lasts ``W`` updates; decay then runs over
the remaining ``T - W``. The shapes are one-liners you can plot without training, kept with each
schedule's flags in :mod:`ftcore.config.schedule_kinds` (``SCHEDULES``, ``WARMUPS``), and they are
driven through the PyTorch scheduler the entry names:

* warmup × {constant, linear, cosine, exponential, polynomial, step, cosine_restarts}: ``LambdaLR``
  (linear, cosine, polynomial and restarts equal ``transformers``' schedulers after warmup; the
  tests check it);
* ``cyclic``: ``torch.optim.lr_scheduler.CyclicLR`` (triangular; ignores ``warmup``);
* ``one_cycle``: ``OneCycleLR`` (rise for ``warmup_ratio`` of the run, linear or cosine);
* ``plateau``: warmup, then ``ReduceLROnPlateau`` on validation loss (reductions become events);
* ``range_test``: exponential rise from ``range_start_lr`` to ``lr`` (the LR finder; no warmup).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from torch.optim import lr_scheduler

from ..config import RunConfig
from ..config.schedule_kinds import EXP_WARMUP_RATE, SCHEDULES, WARMUPS  # noqa: F401 (EXP_WARMUP_RATE re-exported)

ONE_CYCLE_MIN_STEPS = 4


def warmup_factor(kind: str, p: float) -> float:
    """Fraction of the peak LR at warmup progress ``p`` in (0, 1]."""
    if kind not in WARMUPS:
        raise ValueError(f"unknown warmup kind {kind!r}")
    return WARMUPS[kind].factor(p)


def decay_factor(cfg: RunConfig, q: float, k_after: int, steps_per_epoch: int) -> float:
    """Fraction of the peak LR after warmup; ``q`` in [0, 1) is decay progress, ``k_after`` the
    number of updates since warmup ended."""
    decay = SCHEDULES[cfg.schedule].decay
    if decay is None:
        raise ValueError(f"schedule {cfg.schedule!r} is not a warmup-and-decay shape")
    return decay(cfg, q, k_after, steps_per_epoch)


def requested_warmup_steps(cfg: RunConfig, total_steps: int) -> int:
    """Warmup length the config asks for (before it is fitted into the run)."""
    if cfg.warmup == "none" or not SCHEDULES[cfg.schedule].warms_up:
        return 0
    return cfg.warmup_steps if cfg.warmup_steps is not None else round(cfg.warmup_ratio * total_steps)


def num_warmup_steps(cfg: RunConfig, total_steps: int) -> int:
    """Warmup length used: at most ``total_steps - 1`` (at least one step is at the peak LR)."""
    w = requested_warmup_steps(cfg, total_steps)
    return min(w, total_steps - 1) if total_steps > 1 else 0


def planned_adjustments(cfg: RunConfig, data, total_steps: int) -> list[tuple[str, str]]:
    """What any training loop will do differently from what ``cfg`` asked, known before the first
    update, as ``(event kind, detail)``: its data's notes (rows dropped, labels trimmed, a train
    split smaller than ``train_size``) and a warmup longer than the run, shortened (warned here).

    Every loop records these as events at step 0 (ftcore's Trainer, the HF and Lightning
    adapters), so the record and ``ftcore doctor`` show them, never silent."""
    notes = list(getattr(data, "notes", ()))
    asked, used = requested_warmup_steps(cfg, total_steps), num_warmup_steps(cfg, total_steps)
    if asked > used:
        detail = (f"warmup of {asked} steps asked for but the run has {total_steps} steps: "
                  f"warmup shortened to {used} steps")
        notes.append(("warmup_clamped", detail))
        warnings.warn(f"warmup_clamped: {detail}", UserWarning, stacklevel=3)
    return notes


def adjustments(trainer) -> list[tuple[str, str]]:
    """:func:`planned_adjustments` of a trainer, plus a gradual unfreezing that cannot reach the
    bottom before the run ends (each warned)."""
    cfg, total = trainer.cfg, trainer.total_steps
    notes = planned_adjustments(cfg, trainer.data, total)
    unfreezer = next((cb for cb in trainer.callbacks if type(cb).__name__ == "GradualUnfreezing"), None)
    frozen_top_down = [g.name for g in reversed(trainer.groups) if not g.trainable]
    if unfreezer is not None and frozen_top_down:
        n_groups, every, unit = len(frozen_top_down), unfreezer.every, unfreezer.unit
        per_stage = getattr(unfreezer, "groups", 1)
        # Progress when the last update starts: a group unfrozen later never trains.
        if unit == "step":
            before_last = total - 1
        else:
            n_train = len(trainer.data.train["label"])
            full, rest = divmod(total - 1, trainer.steps_per_epoch)
            before_last = (full * n_train + min(rest * cfg.batch_size * cfg.grad_accum, n_train)) / n_train
        reached = min(int(before_last // every) * per_stage, n_groups)
        if reached < n_groups:
            never = frozen_top_down[reached:]
            detail = (f"gradual unfreezing every {every:g} {unit}(s) unfreezes {reached} of {n_groups} "
                      f"frozen groups in time to train in this {total}-step run; {', '.join(never)} never "
                      f"train: set unfreeze_every to at most {before_last / -(-n_groups // per_stage):.3g} "
                      f"or train longer")
            notes.append(("unfreeze_incomplete", detail))
            warnings.warn(f"unfreeze_incomplete: {detail}", UserWarning, stacklevel=3)
    return notes


def multiplier(cfg: RunConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The schedule as a pure function ``k -> factor`` (for the LambdaLR-driven kinds)."""
    W = num_warmup_steps(cfg, total_steps)
    if SCHEDULES[cfg.schedule].sweep:
        ratio = cfg.range_start_lr / cfg.lr
        return lambda k: ratio ** (1.0 - k / max(1, total_steps - 1))

    def f(k: int) -> float:
        if k < W:
            return warmup_factor(cfg.warmup, (k + 1) / W)
        after = k - W
        return decay_factor(cfg, after / max(1, total_steps - W), after, steps_per_epoch)

    return f


class LRSchedule:
    """Drives the optimizer's LRs: call :meth:`step` after every optimizer step and
    :meth:`on_validation` after every evaluation (only ``plateau`` reacts to it)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: RunConfig, total_steps: int,
                 steps_per_epoch: int):
        self.cfg, self.optimizer = cfg, optimizer
        self.total_steps, self.steps_per_epoch = total_steps, max(1, steps_per_epoch)
        self.warmup_steps = num_warmup_steps(cfg, total_steps)
        self.k = 0
        peaks = [g["lr"] for g in optimizer.param_groups]
        kind = SCHEDULES[cfg.schedule]
        self.plateau = None
        if kind.torch == "CyclicLR":
            half = max(1, round(cfg.cycle_epochs * self.steps_per_epoch))
            self.torch = lr_scheduler.CyclicLR(optimizer, base_lr=[p * cfg.min_lr_ratio for p in peaks],
                                               max_lr=peaks, step_size_up=half, cycle_momentum=False)
        elif kind.torch == "OneCycleLR":
            # OneCycleLR divides by the length of each phase: both need >= 2 steps (short runs too).
            cycle = max(total_steps, ONE_CYCLE_MIN_STEPS)
            pct = min(max(self.warmup_steps, 2) / cycle, 0.5)
            self.torch = lr_scheduler.OneCycleLR(
                optimizer, max_lr=peaks, total_steps=cycle, pct_start=pct,
                anneal_strategy="cos" if cfg.warmup == "cosine" else "linear",
                # Smith & Topin: momentum high while the LR is low, 0.95 -> 0.85 at the peak -> 0.95
                cycle_momentum=cfg.one_cycle_momentum, base_momentum=0.85, max_momentum=0.95)
        else:
            self.torch = lr_scheduler.LambdaLR(
                optimizer, multiplier(cfg, total_steps, self.steps_per_epoch))
            if kind.on_validation:
                self.plateau = lr_scheduler.ReduceLROnPlateau(
                    optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience)

    def step(self) -> None:
        self.k += 1
        if self.plateau is not None and self.k > self.warmup_steps:
            return  # after warmup, only validation loss moves a plateau schedule
        if self.k < max(self.total_steps, ONE_CYCLE_MIN_STEPS) or not isinstance(self.torch, lr_scheduler.OneCycleLR):
            self.torch.step()

    def on_validation(self, val_loss: float) -> bool:
        """Feed validation loss; returns True if the LR was reduced."""
        if self.plateau is None or self.k < self.warmup_steps or not math.isfinite(val_loss):
            return False
        before = [g["lr"] for g in self.optimizer.param_groups]
        self.plateau.step(val_loss)
        return any(g["lr"] < b for g, b in zip(self.optimizer.param_groups, before))

    def __repr__(self) -> str:
        return (f"LRSchedule({self.cfg.schedule!r}, warmup={self.cfg.warmup!r} for "
                f"{self.warmup_steps} steps, total={self.total_steps} steps)")


def preview(cfg: RunConfig, total_steps: int, steps_per_epoch: int,
            peak_lrs: dict[str, float] | None = None) -> dict[str, list[float]]:
    """LR per step of each group as the real PyTorch schedulers produce it, without training.

    ``peak_lrs`` maps group name to peak LR (default: one group at ``cfg.lr``). Used by the
    schedule explorer; a training run records the same numbers in its ``lrs`` table.
    """
    peak_lrs = peak_lrs or {"all": cfg.lr}
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in peak_lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, peak_lrs.values())],
                          lr=cfg.lr)
    sched = LRSchedule(opt, cfg, total_steps, steps_per_epoch)
    out = {name: [] for name in peak_lrs}
    for _ in range(total_steps):
        for name, g in zip(peak_lrs, opt.param_groups):
            out[name].append(g["lr"])
        opt.step()
        sched.step()
    return out
