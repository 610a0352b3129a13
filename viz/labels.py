"""What a figure calls things: condition labels from viz's string tables, and numbers written
short (parameter counts, percentages, learning rates)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .text import has, t
from .theme import current_lang


def _sep() -> str:
    """The separator between two notes in one line."""
    return "；" if current_lang() == "zh" else "; "


def _name(prefix: str, name, *, spaces: bool = False) -> str:
    """The label ``prefix.name`` in the current language (``fitting.regime.overfit``), or the name
    itself if none is registered (underscores as spaces with ``spaces=True``)."""
    key = f"{prefix}.{name}"
    if has(key):
        return t(key)
    return str(name).replace("_", " ") if spaces else str(name)


def _short(prefix: str, name) -> str:
    """A condition's short label (``prefix.short.name``) where one is registered, else its label."""
    return _name(f"{prefix}.short", name) if has(f"{prefix}.short.{name}") else _name(prefix, name)


def _ordered(values, preferred: Sequence[str]) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def _count(n: float) -> str:
    """A parameter count, short: 22.7M, 1.77M, 148K, 770."""
    if n is None or not np.isfinite(n):
        return t("concept.missing")
    n = float(n)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{n:.0f}"


def _pct(p: float) -> str:
    if not np.isfinite(p):
        return t("concept.missing")
    return f"{p:.0f}%" if p >= 10 else (f"{p:.1f}%" if p >= 0.1 else f"{p:.2g}%")


def _lr_short(lr: float) -> str:
    """A learning rate as short as it reads, as the chapter writes it: 0.001 → 1e-3, 2e-05 → 2e-5,
    0.0002 → 2e-4; from 0.1 up in decimals (0.1, 1)."""
    lr = float(lr)
    if not np.isfinite(lr) or lr <= 0 or lr >= 0.1:
        return f"{lr:g}"
    mant, exp = f"{lr:.2e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def _lr(x) -> str:
    return _lr_short(x) if x is not None else "?"
