"""The figures' look where the theme does not set it: the categorical palette, the diverged-run
marker and the font lists for labels that mix scripts."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import seaborn as sns


DIVERGED_STYLE = dict(marker="X", color="#d62728", s=60, zorder=5, linewidths=0)


def _palette(names: Sequence) -> dict:
    cols = sns.color_palette("colorblind", max(len(names), 1))
    return {n: cols[i] for i, n in enumerate(names)}


def _fam() -> list[str]:
    """The theme's font list as an explicit family list, so that glyphs missing from the first
    font (θ₀'s subscripts in Noto Sans SC) fall back to the next: the generic "sans-serif" family
    resolves to its first font only."""
    return list(mpl.rcParams["font.sans-serif"])


def _fam_latin() -> list[str]:
    """DejaVu Sans first (for ‖, θ₀, Δ in mixed labels), the theme's fonts after it for the rest."""
    return ["DejaVu Sans"] + [f for f in mpl.rcParams["font.sans-serif"] if f != "DejaVu Sans"]


__all__ = ["DIVERGED_STYLE"]
