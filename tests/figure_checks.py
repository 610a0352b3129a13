"""What the viz tests read off a drawn figure, in one place: the languages, a PNG render that fails
on a missing glyph, legend texts, bars, majority-class lines, a title as written before wrapping."""
from __future__ import annotations

import io

from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

LANGS = ("zh", "en")


def render(fig: Figure) -> None:
    """Render the figure to PNG (a missing glyph is an error: pyproject's warning filter)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.tell() > 1000


def legend_texts(ax) -> list[str]:
    leg = ax.get_legend()
    assert leg is not None
    return [x.get_text() for x in leg.get_texts()]


def bar_patches(ax) -> list[Rectangle]:
    """Every rectangle of the axes (one per bar, and a heatmap's cells)."""
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def bar_containers(ax) -> list[BarContainer]:
    """The axes' bar groups, one per ``ax.bar`` call."""
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def unwrapped(text: str) -> str:
    """A text as written, before it was wrapped to fit its panel (line breaks and spaces dropped)."""
    return "".join(text.split())


def majority_lines(fig) -> list:
    """The lines marking the recorded majority class."""
    return [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "majority"]
