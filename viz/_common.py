"""What every figure module shares: condition labels, layer-group order and names, number formats,
palettes, seed dots and bars, training memory as stacked bars, legends, tick rotation and the font
lists for mixed-script labels."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.transforms import Bbox, TransformedBbox, offset_copy

from ftcore.records.runset import RunSet
from ftcore.records.stats import mean_interval
from .text import has, t
from .theme import current_lang

DIVERGED_STYLE = dict(marker="X", color="#d62728", s=60, zorder=5, linewidths=0)


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


def _group_key(group: str) -> tuple:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return (1, int(m.group(1)))
    return {"prompt": (0, -1), "embeddings": (0, 0), "pooler": (2, 0), "head": (3, 0)}.get(group, (4, group))


def _group_order(groups) -> list[str]:
    """Layer groups in depth order: (prompt,) embeddings, layer.0 … layer.N, pooler, head."""
    return sorted(dict.fromkeys(groups), key=_group_key)


def _group_label(group: str) -> str:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return t("freeze-map.group.layer", i=m.group(1))
    return _name("freeze-map.group", group)


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


def _categories(ax: Axes, order: Sequence, prefix: str, *, ylabel: str | None = None,
                title: str | None = None) -> Axes:
    """Name the categories at x = 0 … n-1 (``prefix.name`` labels); the y label and title if given."""
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([_name(prefix, n) for n in order])
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def _ordered(values, preferred: Sequence[str]) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def _palette(names: Sequence) -> dict:
    cols = sns.color_palette("colorblind", max(len(names), 1))
    return {n: cols[i] for i, n in enumerate(names)}


def _layer_lr_table(lrs: pd.DataFrame) -> pd.DataFrame:
    """One LR per (labels…, step, layer group): the max over that group's param groups."""
    keys = [c for c in lrs.columns if c not in ("group", "lr")]
    return lrs.groupby(keys, sort=False, dropna=False)["lr"].max().reset_index()


def _dots(ax: Axes, x, values, statuses, color, *, jitter: float = 0.0, shift: float = 0.0,
          log: bool = False, label: str | None = None) -> None:
    """The individual seeds: dots, with diverged runs as red crosses (at the axis bottom if their
    value is not a number)."""
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    statuses = np.asarray(statuses, dtype=object)
    offs = np.zeros(len(values))
    for u in np.unique(x):  # spread the seeds at each x
        idx = np.flatnonzero(x == u)
        offs[idx] = (np.arange(len(idx)) - (len(idx) - 1) / 2) * jitter
    xs = x * 10 ** (offs + shift) if log else x + offs + shift
    ok = statuses != "diverged"
    if ok.any():
        ax.scatter(xs[ok], values[ok], s=14, color=color, alpha=0.55, edgecolor="none", zorder=4, label=label)
    bad = ~ok
    if bad.any():
        fin = bad & np.isfinite(values)
        if fin.any():
            ax.scatter(xs[fin], values[fin], **DIVERGED_STYLE, label=t("diverged"))
        nan = bad & ~np.isfinite(values)
        if nan.any():
            ax.scatter(xs[nan], np.zeros(nan.sum()), transform=ax.get_xaxis_transform(),
                       clip_on=False, **DIVERGED_STYLE, label=None if fin.any() else t("diverged"))


def _fam() -> list[str]:
    """The theme's font list as an explicit family list, so that glyphs missing from the first
    font (θ₀'s subscripts in Noto Sans SC) fall back to the next: the generic "sans-serif" family
    resolves to its first font only."""
    return list(mpl.rcParams["font.sans-serif"])


def _fam_latin() -> list[str]:
    """DejaVu Sans first (for ‖, θ₀, Δ in mixed labels), the theme's fonts after it for the rest."""
    return ["DejaVu Sans"] + [f for f in mpl.rcParams["font.sans-serif"] if f != "DejaVu Sans"]


def _legend_dedup(ax: Axes, **kw):
    """A legend listing each label once (its first handle); none if nothing is labelled."""
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    return ax.legend(list(seen.values()), list(seen), **kw) if seen else None


def keep_texts_inside(ax: Axes, *, pad_pt: float = 2.0, tries: int = 8) -> Axes:
    """Widen the (linear) y range of ``ax`` until every text written in it (the values written above
    or under bars) lies inside the axes, ``pad_pt`` from the frame: margins in data units cannot
    know how tall a text is on a small panel. Call it once the figure's layout is settled (after
    :func:`fit_texts`). Returns ``ax``."""
    fig = ax.figure
    pad = pad_pt * fig.dpi / 72
    for _ in range(tries):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        box = ax.get_window_extent(renderer)
        boxes = [a.get_window_extent(renderer) for a in ax.texts if a.get_visible() and a.get_text().strip()]
        boxes = [b for b in boxes if np.isfinite([b.y0, b.y1]).all()]
        if not boxes or box.height <= 0:
            break
        over = max(b.y1 for b in boxes) - (box.y1 - pad)
        under = (box.y0 + pad) - min(b.y0 for b in boxes)
        if over <= 0.5 and under <= 0.5:
            break
        lo, hi = ax.get_ylim()
        per_px = (hi - lo) / box.height
        ax.set_ylim(lo - max(under, 0) * per_px, hi + max(over, 0) * per_px)
    return ax


def legend_below(ax: Axes, *, gap_pt: float = 2.0):
    """Move ``ax``'s legend under the axes, below its tick labels and x label, centred (two columns
    when they fit the axes' width, else one): for a panel too small to keep its legend clear of the
    values written on its bars. Call it once the figure's layout is settled (after
    :func:`fit_texts`); constrained layout then makes room for it when the figure is drawn again.
    Returns the legend (None if the axes has none)."""
    leg = ax.get_legend()
    if leg is None:
        return None
    fig = ax.figure
    texts = leg.get_texts()
    handles, labels = leg.legend_handles, [x.get_text() for x in texts]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    below = ax.xaxis.get_tightbbox(renderer)
    drop_pt = ((box.y0 - below.y0) if below is not None else 0.0) * 72 / fig.dpi + gap_pt
    kw = dict(loc="upper center", bbox_to_anchor=(0.5, 0), borderaxespad=0, handlelength=1.5, columnspacing=1.0,
              bbox_transform=offset_copy(ax.transAxes, fig=fig, y=-drop_pt, units="points"),
              fontsize=texts[0].get_fontsize() if texts else None)
    leg = ax.legend(handles, labels, ncols=min(2, len(labels)), **kw)
    if len(labels) > 1 and leg.get_window_extent(renderer).width > box.width:
        leg = ax.legend(handles, labels, ncols=1, **kw)
    return leg


def _rotate(ax: Axes, angle: float = 30) -> None:
    for lab in ax.get_xticklabels():
        lab.set_rotation(angle)
        lab.set_ha("right")
        lab.set_rotation_mode("anchor")


def plot_majority(ax: Axes, value: float | None, *, orientation: str = "h"):
    """The majority-class accuracy as a labelled dotted line (``gid="majority"``) on an accuracy
    axis; nothing when ``value`` is None or not a number (no fake chance line)."""
    if value is None or not np.isfinite(value):
        return None
    kw = dict(color="0.35", ls=":", lw=1.2, zorder=1, gid="majority", label=t("majority_line", v=value))
    return ax.axhline(value, **kw) if orientation == "h" else ax.axvline(value, **kw)


def _short(prefix: str, name) -> str:
    """A condition's short label (``prefix.short.name``) where one is registered, else its label."""
    return _name(f"{prefix}.short", name) if has(f"{prefix}.short.{name}") else _name(prefix, name)


_OPENING = "([{（［｛「『【〈《“‘"
_CLOSING = ")]}）］｝」』】〉》”’，。、：；！？,.:;!?%…"
_BRACKETS = {"(": ")", "[": "]", "（": "）", "［": "］", "「": "」", "【": "】"}
_SHORT_GROUP = 12  # a bracketed group of at most this many characters inside is never broken
_BARE_NUMBER = re.compile(r"(?:^|[\s([（［])[-+−]?[0-9][0-9.,]*$")  # "48" in "(48 training examples)"
_UNIT = re.compile(r"(?:%|‰|°|[A-Za-zµ]{1,3}(?![A-Za-z]))")  # M, MiB, ms, s, cm, pt, %


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _text_width(text: str) -> int:
    """Width in half-width cells: a Chinese character (or full-width sign) counts two."""
    return sum(2 if _wide(c) else 1 for c in text)


def _break_points(line: str) -> list[tuple[int, bool]]:
    """Where ``line`` may break: ``(i, at_space)`` breaks before ``line[i]`` (``at_space``: the
    space ``line[i]`` is dropped by the break). Spaces break, and so does the seam between two
    characters where one is Chinese, except: inside a bracketed group of at most
    :data:`_SHORT_GROUP` characters, before a closing bracket or punctuation, after an opening
    bracket, and between a number and its unit (``22.6 M``, ``768 个``)."""
    protected = set()
    stack = []
    for i, c in enumerate(line):
        if c in _BRACKETS:
            stack.append(i)
        elif stack and c == _BRACKETS[line[stack[-1]]]:
            j = stack.pop()
            if i - j - 1 <= _SHORT_GROUP:
                protected.update(range(j + 1, i + 1))  # no break before any of j+1 … i
    out = []
    for i in range(1, len(line)):
        at_space = line[i] == " "
        if at_space:
            before, after = line[:i].rstrip(" "), line[i:].lstrip(" ")
            if line[i - 1] == " ":  # one break per run of spaces: at its first
                continue
        elif line[i - 1] != " " and (_wide(line[i - 1]) or _wide(line[i])):
            before, after = line[:i], line[i:]
        else:
            continue
        if not before or not after or i in protected:
            continue
        if after[0] in _CLOSING or before[-1] in _OPENING:
            continue
        if before[-1].isdigit() and (_wide(after[0]) and after[0] not in _OPENING or _UNIT.match(after)
                                     or (_BARE_NUMBER.search(before) and after[0].isalpha())):
            continue  # a number and its unit, measure word or counted noun stay together
        out.append((i, at_space))
    return out


def wrap_text(text: str, width: int) -> str:
    """``text`` broken into lines of about ``width`` half-width cells (:func:`_text_width`) at the
    places :func:`_break_points` allows: Latin words stay whole, Chinese breaks between
    characters, short bracketed groups and numbers with their units are never split, no line starts
    with a closing bracket. A piece longer than ``width`` that cannot break stays on its own line.
    Existing line breaks are kept."""
    out = []
    for line in text.split("\n"):
        start, last, lines = 0, None, []
        points = _break_points(line)
        k = 0
        while True:
            # the farthest break from ``start`` whose line still fits; else the first one after it
            best = None
            while k < len(points) and _text_width(line[start:points[k][0]].rstrip(" ")) <= width:
                best = points[k]
                k += 1
            if k >= len(points) and _text_width(line[start:]) <= width:
                break
            if best is None:
                if k >= len(points):
                    break
                best = points[k]
                k += 1
            i, at_space = best
            lines.append(line[start:i].rstrip(" "))
            start = i + 1 if at_space else i
            while start < len(line) and line[start] == " ":
                start += 1
            while k < len(points) and points[k][0] < start:
                k += 1
        lines.append(line[start:])
        out.extend(lines)
    return "\n".join(out)


def _wrap_to(text: str, ratio: float) -> str:
    """``text`` wrapped onto about ``ratio`` times as many lines (:func:`wrap_text`: words kept
    whole where there are spaces, Chinese broken between characters, never inside a short
    bracketed group nor between a number and its unit)."""
    lines = text.split("\n")
    longest = max((_text_width(x) for x in lines), default=0)
    width = max(4, int(longest / ratio))
    return wrap_text(text, width)


def _pin_outside_legends(fig) -> None:
    """Anchor each ``loc="outside …"`` figure legend to the canvas itself rather than to the figure's
    bbox: ``savefig(bbox_inches="tight")`` swaps that bbox for the tight one, which includes the
    verdict notes the chapter writes under the canvas, and would move the legend down onto them.
    Constrained layout still reserves its margin (it looks at the legend's own anchor, left unset)."""
    for leg in fig.legends:
        if getattr(leg, "_outside_loc", None) and leg._bbox_to_anchor is None:
            canvas = TransformedBbox(Bbox.unit(), fig.transFigure)
            leg.get_bbox_to_anchor = lambda canvas=canvas: canvas


def fit_texts(fig):
    """Wrap what is wider than its room at print size: axes titles wider than their axes, the
    figure's title and notes (``suptitle``, ``supxlabel``, the titles of figure legends) wider than
    the figure. Constrained layout makes room for the extra lines when the figure is drawn. Figure
    legends outside the axes are pinned to the canvas (:func:`_pin_outside_legends`). Returns ``fig``."""
    _pin_outside_legends(fig)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    todo = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        room = ax.get_window_extent(renderer).width
        for title in (ax.title, ax._left_title, ax._right_title):
            todo.append((title, room))
    for txt in (fig._suptitle, fig._supxlabel, *(leg.get_title() for leg in fig.legends)):
        if txt is not None:  # 8 % spare: the PDF backend measures text a few per cent wider than Agg
            todo.append((txt, fig.bbox.width * 0.92))
    for txt, room in todo:
        for _ in range(3):
            if not txt.get_text() or room <= 0:
                break
            w = txt.get_window_extent(renderer).width
            if w <= room * 1.01 or w > room * 4:  # fits, or the layout has not settled: leave it
                break
            txt.set_text(_wrap_to(txt.get_text(), max(w / room, 1.05) * 1.05))
    return fig


def _lr(x) -> str:
    return f"{float(x):g}" if x is not None else "?"


def mean_ci(values) -> tuple[float, float, int]:
    """``(mean, half-width of its 95% t interval, n)`` of the finite ``values``: the interval of
    ``ftcore.records.stats.mean_interval``, the one the gallery's verdicts use. The half-width is
    nan with fewer than 2 values (no interval is drawn for one seed)."""
    iv = mean_interval(values)
    half = iv.high - iv.estimate if iv.n > 1 else np.nan
    return iv.estimate, float(half), iv.n


def mean_ci_table(df: pd.DataFrame, by: str | Sequence[str], value: str = "value") -> pd.DataFrame:
    """Per group of ``by`` (order of first appearance): ``mean``, ``half`` (half-width of the 95% t
    interval, nan where n < 2), ``low``, ``high`` and ``n`` (finite values) of column ``value``."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, sort=False):
        m, half, n = mean_ci(g[value].astype(float))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "mean": m, "half": half, "low": m - half, "high": m + half, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "half", "low", "high", "n"])


def n_text(ns) -> str:
    """Seeds per arm as a reader says it: ``5``, or ``3–5`` when the arms differ."""
    ns = sorted({int(n) for n in ns})
    if not ns:
        return "0"
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"


def seed_note(runs: RunSet, key: str) -> str:
    """``mean ± 95% t interval, n = k seeds`` (k per ``key`` value, a range where the arms differ)
    and what the dots are."""
    ns = [runs.n_seeds(**{key: v}) for v in runs.values(key)]
    return t("seeds_n", n=n_text(ns)) + _sep() + t("problems.dots")


def plot_seed_bars(data: pd.DataFrame, *, x: str, value: str = "value", order: Sequence | None = None,
                   hue: str | None = None, hue_order: Sequence | None = None, x_labels: Sequence[str] | None = None,
                   hue_labels: Sequence[str] | None = None, palette=None, failed: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Bars of the mean of ``value`` per ``x`` (and ``hue``), 95% t interval error bars where n > 1
    (:func:`mean_ci`), every run
    as a dot (scatter ``gid="seeds"``). Runs with ``status == "diverged"`` and no value are drawn as
    red crosses at the bottom (``gid="diverged"``); rows where column ``failed`` is true as red rings."""
    ax = ax or plt.gca()
    order = list(order if order is not None else pd.unique(data[x]))
    hues = list(hue_order if hue_order is not None else (pd.unique(data[hue]) if hue else [None]))
    palette = palette or sns.color_palette(n_colors=max(len(hues), 1))
    width, xs = 0.8, np.arange(len(order))
    w = width / len(hues)
    jitter = np.random.default_rng(0)
    dots, div_x, ring = [], [], []
    for k, h in enumerate(hues):
        sub = data if h is None else data[data[hue] == h]
        pos = xs - width / 2 + w * (k + 0.5)
        means, sds = [], []
        for o, p in zip(order, pos):
            rows = sub[sub[x] == o]
            v = rows[value].astype(float)
            fin = v[np.isfinite(v)]
            mean, half, _ = mean_ci(fin)
            means.append(mean)
            sds.append(half)
            off = (jitter.uniform(-0.25, 0.25, len(rows)) * w) if len(rows) > 1 else np.zeros(len(rows))
            for (_, r), d in zip(rows.iterrows(), off):
                if np.isfinite(float(r[value])):
                    dots.append((p + d, float(r[value])))
                    if failed and bool(r.get(failed, False)):
                        ring.append((p + d, float(r[value])))
                elif r.get("status") == "diverged":
                    div_x.append(p + d)
        label = hue_labels[k] if hue_labels is not None else (None if h is None else str(h))
        color = palette[k % len(palette)]
        ax.bar(pos, np.nan_to_num(np.asarray(means, float)), w * 0.9, color=color, alpha=0.75, label=label,
               edgecolor="none")
        sd = np.asarray(sds, float)
        ok = np.isfinite(sd) & np.isfinite(np.asarray(means, float))
        if ok.any():
            ax.errorbar(pos[ok], np.asarray(means, float)[ok], yerr=sd[ok], fmt="none", ecolor="black",
                        elinewidth=1.2, capsize=3)
    if dots:
        d = np.asarray(dots)
        ax.scatter(d[:, 0], d[:, 1], s=14, color="black", zorder=4, gid="seeds")
    if ring:
        r = np.asarray(ring)
        ax.scatter(r[:, 0], r[:, 1], s=70, facecolors="none", edgecolors="tab:red", linewidths=1.4, zorder=5,
                   label=t("problems.collapsed_dot"), gid="failed")
    if div_x:
        ax.scatter(div_x, [0.03] * len(div_x), marker="x", s=45, color="tab:red", zorder=5,
                   transform=ax.get_xaxis_transform(), label=t("problems.diverged_dot"), gid="diverged")
    ax.set_xticks(xs, list(x_labels) if x_labels is not None else [str(o) for o in order])
    ax.set_xlim(-0.6, len(order) - 0.4)
    return ax


# ------------------------------------------------------------------------------------ training memory
MEMORY_PARTS = ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")  # stacked bottom → top
MIB = 2 ** 20


def _memory_colors() -> dict[str, tuple]:
    """Parameters grey (every arm holds them all), the parts training adds in colour."""
    pal = sns.color_palette("colorblind")
    return dict(zip(MEMORY_PARTS, ((0.72, 0.72, 0.72), pal[0], pal[1], pal[2])))


def plot_training_memory(memory: pd.DataFrame, *, order: Sequence | None = None,
                         labels: Sequence[str] | Mapping | Callable | None = None, ax: Axes | None = None,
                         legend: bool = True) -> Axes:
    """What training keeps in memory for one step, per arm: stacked bars in MiB (2**20 bytes) of
    parameters, gradients, optimizer state and activations saved for backward (columns
    ``params_bytes`` … ``activations_bytes`` of a ``figure_studies.memory`` table, one row per
    ``arm``), with a legend. ``order`` gives the arms and their x positions (0 … n-1; an arm the
    table lacks gets no bar), by default the table's order; ``labels`` names them (a list in that
    order, a mapping or a function of the arm name; by default the names themselves). Each part's
    rectangles carry its column name as ``gid``; :func:`memory_legend` gives the legend's entries
    (``legend=False`` leaves the legend to the caller, e.g. under a figure)."""
    ax = ax or plt.gca()
    mem = memory.assign(arm=memory["arm"].astype(str)).drop_duplicates("arm", keep="last").set_index("arm")
    order = [str(o) for o in (order if order is not None else mem.index)]
    if labels is None:
        names = order
    elif isinstance(labels, Mapping):
        names = [str(labels.get(o, o)) for o in order]
    elif callable(labels):
        names = [str(labels(o)) for o in order]
    else:
        names = [str(x) for x in labels]
        if len(names) != len(order):
            raise ValueError(f"{len(names)} labels for {len(order)} arms")
    mem = mem.reindex(order)
    xs, bottom = np.arange(len(order)), np.zeros(len(order))
    colors = _memory_colors()
    for part in MEMORY_PARTS:
        h = np.nan_to_num(mem[part].astype(float).to_numpy() / MIB) if part in mem else np.zeros(len(order))
        ax.bar(xs, h, 0.65, bottom=bottom, color=colors[part], edgecolor="white", linewidth=0.5, zorder=2,
               label=t(f"memory.{part}"), gid=part)
        bottom = bottom + h
    ax.set_xticks(xs, names)
    ax.set_xlim(-0.6, len(order) - 0.4)
    top = float(bottom.max()) if len(bottom) else 0.0
    ax.set_ylim(0, top * (1.6 if legend else 1.1) if top > 0 else 1.0)  # room for the legend above shorter bars
    ax.set_ylabel(t("memory.axis"))
    if legend:
        ax.legend(*memory_legend(ax), loc="best", fontsize="small")
    return ax


def memory_legend(ax: Axes, *, top_first: bool = True) -> tuple[list, list[str]]:
    """The handles and labels of a :func:`plot_training_memory` panel, top of the stack first (as a
    column reads) or, with ``top_first=False``, bottom first (as a row reads)."""
    by_text = dict(zip(*ax.get_legend_handles_labels()[::-1]))
    parts = [t(f"memory.{p}") for p in MEMORY_PARTS][::-1 if top_first else 1]
    return [by_text[x] for x in parts if x in by_text], [x for x in parts if x in by_text]


def memory_note(meta: Mapping | None) -> str:
    """The batch the memory was counted on (``figure_studies.memory``'s meta), or "" without one."""
    meta = meta or {}
    if not {"batch_examples", "batch_tokens"} <= set(meta):
        return ""
    return t("memory.note", n=int(meta["batch_examples"]), tokens=int(meta["batch_tokens"]),
             precision=str(meta.get("precision", "fp32")))
