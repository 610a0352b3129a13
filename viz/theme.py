"""``set_theme(lang)``: one look for every figure, and Chinese that renders on a bare machine.

The CJK font is the OFL-licensed Noto Sans SC file shipped inside the ``zhplot`` wheel (a pip
dependency), registered with matplotlib's font manager by path: no system fonts are needed and
``zhplot`` itself is never imported (importing it would change global rcParams behind our back).
Glyphs missing from the first font fall back to the next one in the family list (matplotlib ≥ 3.6).
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import matplotlib as mpl
from matplotlib import font_manager

LANGS = ("zh", "en")
# On screen (a notebook at 100% zoom, a projector) a figure is shown at SCREEN_DPI pixels per inch
# (``on_screen``): the smallest text, 7 pt, is then 12.6 px, and a full-width figure (15.4 cm) is
# 790 px, narrower than a JupyterLab cell, so the browser never scales it down. Figures are laid out
# at figure.dpi 100 (what the print checks measure) and saved at savefig.dpi (300).
SCREEN_DPI = 130
# Font sizes in points at print size (figures are drawn at the book's text width, see viz.geometry):
# nothing below 7 pt, and "small" (0.833 × font.size) still 7.5 pt for notes written under a figure.
FONT_PT = {"font.size": 9, "axes.labelsize": 8.5, "axes.titlesize": 9, "xtick.labelsize": 8,
           "ytick.labelsize": 8, "legend.fontsize": 7.5, "legend.title_fontsize": 7.5,
           "figure.titlesize": 10, "figure.labelsize": 8}
CJK_FONT_FILE = "zhplot/fonts/NotoSansSC-Regular.ttf"
_state = {"lang": "zh"}


class _OneWeightCJK:
    """The packaged Noto Sans SC has one weight. When bold English text lists it as the fallback for
    CJK glyphs, matplotlib logs "Failed to find font weight bold for Noto Sans SC" on every lookup:
    expected here, so dropped (any other font message still shows)."""

    def filter(self, record) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("findfont: Failed to find font weight") and "Noto Sans SC" in msg)


font_manager._log.addFilter(_OneWeightCJK())


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


class _Theme:
    """What :func:`set_theme` returns: the theme is already applied; as a context manager it puts
    back the language and every rcParam it found on entry (like ``seaborn.axes_style``)."""

    def __init__(self, lang: str, saved_lang: str, saved_rc: dict):
        self.lang, self._saved_lang, self._saved_rc = lang, saved_lang, saved_rc

    def __enter__(self) -> _Theme:
        return self

    def __exit__(self, *exc) -> None:
        _state["lang"] = self._saved_lang
        with warnings.catch_warnings():  # restoring deprecated keys must not warn
            warnings.simplefilter("ignore", mpl.MatplotlibDeprecationWarning)
            mpl.rcParams.update(self._saved_rc)

    def __repr__(self) -> str:
        return f"viz theme (lang={self.lang!r})"

    def _ipython_display_(self) -> None:
        """Nothing to show: a notebook cell ending in ``viz.set_theme(LANG)`` prints nothing, as before."""


def on_screen(fig):
    """``fig`` shown at :data:`SCREEN_DPI` (its layout, in points, unchanged): what a notebook displays."""
    fig.set_dpi(SCREEN_DPI)
    return fig


def set_theme(lang: str = "zh", *, context: str = "paper", font_scale: float = 1.0) -> _Theme:
    """Style every later figure: seaborn's whitegrid on a white background (readable in dark
    JupyterLab themes too), the CJK font, and the label language ``"zh"`` (default) or ``"en"``.
    Fonts are sized for print (:data:`FONT_PT`, times ``font_scale``): figures are drawn at the
    book's text width (``viz.geometry``), so a point in the file is a point on paper.

    A plain call changes the global style; ``with set_theme("en"): ...`` changes it for the block
    only and restores the previous language and rcParams on exit."""
    import seaborn as sns

    check_lang(lang)
    saved_lang = _state["lang"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mpl.MatplotlibDeprecationWarning)
        saved_rc = dict(mpl.rcParams)
    _state["lang"] = lang
    cjk = cjk_font()
    families = [cjk, "DejaVu Sans"] if lang == "zh" else ["DejaVu Sans", cjk]
    weight = "normal" if lang == "zh" else "bold"  # the packaged Noto Sans SC has one weight only
    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale,
                  # the explicit list (not "sans-serif") is what makes matplotlib fall back per glyph
                  rc={"font.family": families, "font.sans-serif": families,
                      "figure.facecolor": "white", "savefig.facecolor": "white",
                      "axes.facecolor": "white", "figure.dpi": 100, "savefig.dpi": 300,
                      "pdf.fonttype": 42, "axes.titleweight": weight, "figure.titleweight": weight,
                      "legend.frameon": False,
                      **{k: v * font_scale for k, v in FONT_PT.items()}})
    mpl.rcParams["axes.unicode_minus"] = True
    return _Theme(lang, saved_lang, saved_rc)


__all__ = ["FONT_PT", "SCREEN_DPI", "on_screen", "FontMissingError", "LANGS", "check_lang", "cjk_font", "current_lang", "set_theme", "strong"]
