"""The LR schedules and warmups a config can name (3.2.4), each with its shape and its flags.

A schedule multiplies each param group's peak LR: warmup over the first ``W`` updates, then the
schedule's decay over the rest. The shapes are pure functions (no torch), so the config layer can
hold them; :mod:`ftcore.engine.schedules` drives them through PyTorch's schedulers and asks the
entry which one (``torch``) and whether a warmup comes first (``warms_up``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .registry import Registry

EXP_WARMUP_RATE = 5.0  # exponential warmup 1 - e^(-5p), rescaled to reach exactly 1 at p = 1


@dataclass(frozen=True)
class Warmup:
    name: str
    doc: str
    factor: Callable[[float], float]  # fraction of the peak LR at warmup progress p in (0, 1]
    hf: bool = False  # transformers' Trainer warms up this way (the HF Trainer path accepts it)


@dataclass(frozen=True)
class Schedule:
    name: str
    doc: str
    # LR factor after warmup, ``decay(cfg, q, k_after, steps_per_epoch)``: q in [0, 1) is decay progress,
    # k_after the updates since warmup ended. None: not a warmup-and-decay shape (its own scheduler).
    decay: Callable[..., float] | None = None
    torch: str = "LambdaLR"  # the PyTorch scheduler that drives it (LambdaLR runs warmup + decay)
    warms_up: bool = True  # False: it makes its own ramp and ignores ``warmup``
    warmups: tuple[str, ...] | None = None  # the warmup shapes it accepts (None: all)
    on_validation: bool = False  # moved by the validation loss: "validation" must be evaluated
    sweep: bool = False  # rises exponentially from range_start_lr to lr (the LR finder's run)
    hf: str | None = None  # transformers' lr_scheduler_type drawing the same curve (HF Trainer path)


WARMUPS: Registry[Warmup] = Registry("warmup", [
    Warmup("none", "start at the peak LR", lambda p: 1.0, hf=True),
    Warmup("linear", "rise linearly to the peak", lambda p: p, hf=True),
    Warmup("cosine", "rise along half a cosine", lambda p: 0.5 * (1.0 - math.cos(math.pi * p))),
    Warmup("exponential", "rise as 1 - e^(-5p), fast first",
           lambda p: (1.0 - math.exp(-EXP_WARMUP_RATE * p)) / (1.0 - math.exp(-EXP_WARMUP_RATE))),
    Warmup("sqrt", "rise as the square root of progress", math.sqrt),
])

SCHEDULES: Registry[Schedule] = Registry("schedule", [
    Schedule("constant", "the peak LR after warmup", lambda c, q, k, spe: 1.0, hf="constant_with_warmup"),
    Schedule("linear", "linear decay to min_lr_ratio",
             lambda c, q, k, spe: c.min_lr_ratio + (1.0 - c.min_lr_ratio) * (1.0 - q), hf="linear"),
    Schedule("cosine", "half a cosine down to min_lr_ratio",
             lambda c, q, k, spe: c.min_lr_ratio + (1.0 - c.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * q)),
             hf="cosine"),
    Schedule("exponential", "x gamma per epoch, applied smoothly per update",
             lambda c, q, k, spe: c.gamma ** (k / spe)),
    Schedule("polynomial", "(1 - progress)^poly_power down to min_lr_ratio",
             lambda c, q, k, spe: c.min_lr_ratio + (1.0 - c.min_lr_ratio) * (1.0 - q) ** c.poly_power),
    Schedule("step", "x gamma every step_every epochs",
             lambda c, q, k, spe: c.gamma ** math.floor(k / (c.step_every * spe))),
    Schedule("cosine_restarts", "restarts cosine cycles down to min_lr_ratio",
             lambda c, q, k, spe: c.min_lr_ratio + (1.0 - c.min_lr_ratio) * 0.5
             * (1.0 + math.cos(math.pi * ((c.restarts * q) % 1.0)))),
    Schedule("cyclic", "triangular cycles between min_lr_ratio and the peak (CyclicLR)", torch="CyclicLR",
             warms_up=False),
    Schedule("one_cycle", "rise for warmup_ratio of the run, then anneal (OneCycleLR)", torch="OneCycleLR",
             warmups=("linear", "cosine")),
    Schedule("plateau", "the peak LR until the validation loss stalls, then x plateau_factor "
             "(ReduceLROnPlateau)", lambda c, q, k, spe: 1.0, on_validation=True),
    Schedule("range_test", "exponential rise from range_start_lr to lr (the LR finder)", warms_up=False,
             sweep=True),
])

__all__ = ["EXP_WARMUP_RATE", "SCHEDULES", "Schedule", "WARMUPS", "Warmup"]
