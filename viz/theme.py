"""``set_theme(lang)``: one look for every figure, and Chinese that renders on a bare machine.

The CJK font is the OFL-licensed Noto Sans SC file shipped inside the ``zhplot`` wheel (a pip
dependency), registered with matplotlib's font manager by path: no system fonts are needed and
``zhplot`` itself is never imported (importing it would change global rcParams behind our back).
Glyphs missing from the first font fall back to the next one in the family list (matplotlib ≥ 3.6).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path

import matplotlib as mpl
from matplotlib import font_manager

LANGS = ("zh", "en")
CJK_FONT_FILE = "zhplot/fonts/NotoSansSC-Regular.ttf"
_state = {"lang": "zh"}


class FontMissingError(RuntimeError):
    """The pip-installed CJK font is not there."""


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register Noto Sans SC from the zhplot wheel and return its family name."""
    try:
        path = Path(metadata.distribution("zhplot").locate_file(CJK_FONT_FILE))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FontMissingError("the Chinese font (Noto Sans SC) is missing: install it with "
                               "`pip install zhplot==1.0.0` (or run `make setup`)")
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang={lang!r} is not allowed: expected one of {LANGS}")
    return lang


def current_lang() -> str:
    return _state["lang"]


def strong() -> str:
    """Font weight for emphasis: bold in English; normal in Chinese, because the packaged Noto Sans
    SC has one weight only (asking for bold would log a font-fallback message)."""
    return "normal" if _state["lang"] == "zh" else "bold"


def set_theme(lang: str = "zh", *, context: str = "notebook", font_scale: float = 1.0) -> None:
    """Style every later figure: seaborn's whitegrid on a white background (readable in dark
    JupyterLab themes too), the CJK font, and the label language ``"zh"`` (default) or ``"en"``."""
    import seaborn as sns

    _state["lang"] = check_lang(lang)
    cjk = cjk_font()
    families = [cjk, "DejaVu Sans"] if lang == "zh" else ["DejaVu Sans", cjk]
    weight = "normal" if lang == "zh" else "bold"  # the packaged Noto Sans SC has one weight only
    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale,
                  # the explicit list (not "sans-serif") is what makes matplotlib fall back per glyph
                  rc={"font.family": families, "font.sans-serif": families,
                      "figure.facecolor": "white", "savefig.facecolor": "white",
                      "axes.facecolor": "white", "figure.dpi": 100, "savefig.dpi": 300,
                      "pdf.fonttype": 42, "axes.titleweight": weight, "figure.titleweight": weight,
                      "legend.frameon": False})
    mpl.rcParams["axes.unicode_minus"] = True


__all__ = ["FontMissingError", "LANGS", "check_lang", "cjk_font", "current_lang", "set_theme", "strong"]
