"""Print geometry: every figure fits a book's text width, its text stays readable at that size and
no text overlaps another.

The sizes are set here once, in centimetres: :data:`TEXT_WIDTH_CM` wide at most and
:data:`MAX_HEIGHT_CM` tall for the largest figure, *as saved* (``savefig(bbox_inches="tight")``
adds ``savefig.pad_inches`` on every side, so a canvas is :data:`FIG_WIDTH_CM` wide). The font
sizes live in the theme (``viz.theme.FONT_PT``) and none is below :data:`MIN_FONT_PT`: the book
prints the figures at 100 %, so a point in the file is a point on paper.

:func:`print_problems` checks a drawn figure against all three rules (the tests run it over every
figure in both languages); :func:`text_artists` and :func:`saved_size_cm` are its parts.
"""
from __future__ import annotations

import io
import re
from contextlib import contextmanager
from itertools import combinations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

CM = 1 / 2.54  # inches per centimetre
TEXT_WIDTH_CM = 16.0  # a book's text width: the widest a saved figure may be
MAX_HEIGHT_CM = 12.0  # the tallest a saved figure may be (the largest figures)
MIN_FONT_PT = 7.0  # the smallest text at print size
PAD_CM = 0.1 * 2.54  # savefig.pad_inches (0.1 in), added on each side by bbox_inches="tight"
FIG_WIDTH_CM = 15.4  # canvas width of a full-width figure: 16 cm saved, pads included
NOTE_ROOM_CM = 1.6  # kept free under the tallest canvas for the verdict notes written under a figure
FIG_MAX_HEIGHT_CM = MAX_HEIGHT_CM - 2 * PAD_CM - NOTE_ROOM_CM  # the tallest canvas: 9.9 cm


def figsize(height_cm: float, width_cm: float = FIG_WIDTH_CM) -> tuple[float, float]:
    """``figsize`` in inches for a canvas ``width_cm`` × ``height_cm`` (full text width by default),
    clipped to the print limits."""
    return (min(width_cm, FIG_WIDTH_CM) * CM, min(height_cm, FIG_MAX_HEIGHT_CM) * CM)


@contextmanager
def _recording_texts():
    """Record every Text that actually draws itself (with its window extent) while inside."""
    drawn: list[tuple[Text, object]] = []
    original = Text.draw

    def draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            bb = self.get_window_extent(renderer)
            if bb.width > 0 and bb.height > 0 and np.isfinite([bb.x0, bb.y0, bb.x1, bb.y1]).all():
                drawn.append((self, bb))
    Text.draw = draw
    try:
        yield drawn
    finally:
        Text.draw = original


def text_boxes(fig: Figure) -> list[tuple[Text, object]]:
    """Every Text of ``fig`` that is drawn (tick labels of visible ticks, axis labels, titles,
    legend texts, annotations, table cells, colour-bar labels...) with its box in display units."""
    with _recording_texts() as drawn:
        fig.canvas.draw()
    seen, out = set(), []
    for a, bb in drawn:  # a Text drawn twice (e.g. by a tick and its axis) counts once
        if id(a) not in seen:
            seen.add(id(a))
            out.append((a, bb))
    return out


def text_artists(fig: Figure) -> list[Text]:
    return [a for a, _ in text_boxes(fig)]


def _corners(a: Text, bb) -> np.ndarray:
    """The four corners of a text's box as drawn: a rotated text's box is a rotated rectangle
    (its unrotated size, centred where its axis-aligned extent is centred), not that extent."""
    angle = a.get_rotation() % 180
    cx, cy = (bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2
    if angle == 0:
        w, h = bb.width, bb.height
        return np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2],
                         [cx - w / 2, cy + h / 2]])
    renderer = a.figure.canvas.get_renderer()
    rot = a.get_rotation()
    a.set_rotation(0)
    try:
        flat = a.get_window_extent(renderer)
    finally:
        a.set_rotation(rot)
    th = np.deg2rad(angle)
    u, v = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])
    hw, hh = flat.width / 2, flat.height / 2
    c = np.array([cx, cy])
    return np.array([c - hw * u - hh * v, c + hw * u - hh * v, c + hw * u + hh * v, c - hw * u + hh * v])


def _overlap_depth(p: np.ndarray, q: np.ndarray) -> float:
    """How far two convex quadrilaterals overlap: the smallest overlap of their projections on
    the four edge normals (separating axis theorem); ≤ 0 when they are apart."""
    depth = np.inf
    for poly in (p, q):
        for i in range(2):
            e = poly[i + 1] - poly[i]
            n = np.array([-e[1], e[0]]) / (np.hypot(*e) or 1.0)
            a, b = p @ n, q @ n
            depth = min(depth, min(a.max(), b.max()) - max(a.min(), b.min()))
    return depth


def overlaps(fig: Figure, tolerance_pt: float = 1.0, *, boxes=None) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` whose rendered boxes (rotated with their text) overlap by more
    than ``tolerance_pt`` points (as ``(text, text)``)."""
    tol = tolerance_pt * fig.dpi / 72
    boxes = text_boxes(fig) if boxes is None else boxes
    quads = [(a, bb, _corners(a, bb)) for a, bb in boxes]
    out = []
    for (a, p, pc), (b, q, qc) in combinations(quads, 2):
        dx = min(p.x1, q.x1) - max(p.x0, q.x0)
        dy = min(p.y1, q.y1) - max(p.y0, q.y0)
        if dx > tol and dy > tol and _overlap_depth(pc, qc) > tol:
            out.append((a.get_text(), b.get_text()))
    return out


def small_texts(fig: Figure, min_pt: float = MIN_FONT_PT, *, boxes=None) -> list[tuple[str, float]]:
    """Texts smaller than ``min_pt`` points, with their size."""
    boxes = text_boxes(fig) if boxes is None else boxes
    return [(a.get_text(), float(a.get_fontsize())) for a, _ in boxes if a.get_fontsize() < min_pt - 1e-6]


def min_font_pt(fig: Figure, *, boxes=None) -> float:
    """The smallest font size (pt) of the texts drawn in ``fig``."""
    boxes = text_boxes(fig) if boxes is None else boxes
    sizes = [float(a.get_fontsize()) for a, _ in boxes]
    return min(sizes) if sizes else float("nan")


def saved_size_cm(fig: Figure) -> tuple[float, float]:
    """Width and height (cm) of ``fig`` saved as PDF with ``bbox_inches="tight"``, as the chapter
    saves it, read from the file's MediaBox."""
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", bbox_inches="tight")
    m = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", buf.getvalue())
    x0, y0, x1, y1 = (float(v) for v in m.groups())
    return (x1 - x0) / 72 * 2.54, (y1 - y0) / 72 * 2.54


def print_problems(fig: Figure, *, tolerance_pt: float = 1.0) -> list[str]:
    """What keeps ``fig`` from printing at the book's text width: too large, text too small,
    texts overlapping. Empty when it prints."""
    problems = []
    w, h = saved_size_cm(fig)
    if w > TEXT_WIDTH_CM + 0.01 or h > MAX_HEIGHT_CM + 0.01:
        problems.append(f"saved size {w:.1f} × {h:.1f} cm exceeds {TEXT_WIDTH_CM:g} × {MAX_HEIGHT_CM:g} cm")
    boxes = text_boxes(fig)
    for text, pt in small_texts(fig, boxes=boxes):
        problems.append(f"{text!r} is {pt:.1f} pt (< {MIN_FONT_PT:g} pt)")
    for a, b in overlaps(fig, tolerance_pt, boxes=boxes):
        problems.append(f"{a!r} overlaps {b!r}")
    return problems


__all__ = ["CM", "FIG_MAX_HEIGHT_CM", "FIG_WIDTH_CM", "MAX_HEIGHT_CM", "MIN_FONT_PT", "TEXT_WIDTH_CM",
           "figsize", "min_font_pt", "overlaps", "print_problems", "saved_size_cm", "small_texts", "text_artists",
           "text_boxes"]

