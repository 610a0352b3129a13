"""The widgets' labels, buttons and summaries in both languages (``lab/texts/{zh,en}.json``, the
notebook modules' under ``pretraining.*``, ``quantization.*``, ``alignment.*``), registered with viz's
string table (``viz.text.register``) under ``lab.*`` keys: the notebook's ``viz.set_theme(LANG)`` picks the
language for the figures and the widgets alike (Chinese by default, ``LANG = "en"`` for English)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import viz
from viz.text import register

# The widgets' texts, one table per language (lab/texts/{zh,en}.json), registered under ``lab.*``:
# a key missing in one language is an error at import (viz.text.register).
TEXTS = Path(__file__).with_name("texts")
register({lang: {f"lab.{k}": v for k, v in json.loads((TEXTS / f"{lang}.json").read_text(encoding="utf-8")).items()}
          for lang in ("zh", "en")})


def tr(key: str, **fmt) -> str:
    """The widget text ``key`` in the current language (``viz.set_theme(lang)``)."""
    return viz.t(f"lab.{key}", **fmt)


def pct(share: float) -> str:
    """A share as a percentage with enough digits to be non-zero: 0.5 → "50%", 3.4e-5 → "0.0034%"."""
    p = 100.0 * share
    if not math.isfinite(p):
        return "–"
    if p == 0:
        return "0%"
    if p >= 10:
        return f"{p:.0f}%"
    if p >= 0.1:
        return f"{p:.1f}%"
    return f"{p:.2g}%"


__all__ = ["pct", "tr"]
