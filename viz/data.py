"""3.2.3 数据准备: task formats, augmentation, label noise.

Figure-level functions (one per figure id): :func:`task_formats`, :func:`augmentation`,
:func:`data_quality`. Axes-level functions draw one panel each: :func:`plot_token_table`,
:func:`plot_augmented_texts`, :func:`plot_augmented_predictions`, :func:`plot_noise_curves`,
:func:`plot_noise_detection`. Everything drawn comes from the studies' tables and the run records;
:func:`noise_detection` computes precision at k from the records' ``examples`` tables.
"""
from __future__ import annotations

import difflib
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ftcore.records.runset import RunSet
from ftcore.records.queries import majority_share
from ._common import fit_texts, _name, _sep, mean_ci_table, n_text, plot_majority
from .layout import figure_legend
from .geometry import FIG_WIDTH_CM, figsize
from .text import t
from .theme import current_lang


LABEL_NAMES = {"zh": {"fresh": "好评", "rotten": "差评"},
               "en": {"fresh": "fresh", "rotten": "rotten"}}


def _label_name(name: str) -> str:
    return LABEL_NAMES[current_lang()].get(str(name), str(name))


def _is_special(token: str) -> bool:
    return token.startswith("[") and token.endswith("]")


# ------------------------------------------------------------------------------ task-formats
GREY, TEXT_GREY = "#e6e6e6", "#8c8c8c"
FORMATS = ("classification", "token_classification", "mlm")


def _cell(ax, x, y, w, h, text, face, *, color="black", fontsize=7.5):
    """A table cell with its top-left corner at (x, y) (y grows downwards), text centred."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor="white", linewidth=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=color, clip_on=True)


# the table's columns and their widths (in row heights): wide enough for a word piece, a five-digit ID
COLUMNS = (("token", 2.6), ("input_id", 1.6), ("attention_mask", 0.9), ("label", 1.3), ("label_text", 2.6))


def plot_token_table(tokens: pd.DataFrame, *, fmt: str | None = None, sequence_label: int | None = None,
                     label_name: str | None = None, ax=None, fontsize: float = 7.5):
    """One task format's encoded example as a table read top to bottom: one row per token
    position; columns token, input ID, attention mask and label (plus the label's meaning when
    labels are per token), named at the top. Cells with label -100 (ignored by the loss) are
    greyed out. A classification example has no per-token labels: ``sequence_label`` (and
    ``label_name``) fill one cell down the label column."""
    ax = ax or plt.gca()
    df = tokens if fmt is None else tokens[tokens["format"] == fmt]
    df = df.sort_values("position").reset_index(drop=True)
    n = len(df)
    per_token = bool(df["label"].notna().any())
    cols = list(COLUMNS if per_token else COLUMNS[:4])
    pal = sns.color_palette("colorblind")
    token_face, mask_face = "#dbe9f6", "#d9f0d3"
    label_faces = {"O": "white", "B-TITLE": pal[1], "I-TITLE": "#fdd9a0"}
    x, xticks = 0.0, []
    for col, w in cols:
        xticks.append(x + w / 2)
        for i, r in df.iterrows():
            ignored = per_token and r["label"] == -100
            if col == "token":
                masked = r["token"] == "[MASK]"
                face = pal[1] if masked else (GREY if _is_special(r["token"]) else token_face)
                _cell(ax, x, i, w, 1, r["token"], face, fontsize=fontsize)
            elif col == "input_id":
                _cell(ax, x, i, w, 1, str(int(r["input_id"])), "white", fontsize=fontsize)
            elif col == "attention_mask":
                m = int(r["attention_mask"])
                _cell(ax, x, i, w, 1, str(m), mask_face if m else GREY, fontsize=fontsize)
            elif col == "label" and per_token:
                face = GREY if ignored else label_faces.get(r["label_text"], "#fdd9a0")
                _cell(ax, x, i, w, 1, str(int(r["label"])), face, color=TEXT_GREY if ignored else "black",
                      fontsize=fontsize)
            elif col == "label_text":
                face = GREY if ignored else label_faces.get(r["label_text"], "#fdd9a0")
                _cell(ax, x, i, w, 1, str(r["label_text"]), face, fontsize=fontsize)
        if col == "label" and not per_token:
            text = t("task-formats.sequence_label", id=sequence_label,
                     name=_label_name(label_name) if label_name is not None else "")
            ax.add_patch(Rectangle((x, 0), w, n, facecolor=pal[1], edgecolor="white", linewidth=1.2))
            ax.text(x + w / 2, n / 2, text, ha="center", va="center", rotation=90, fontsize=fontsize + 1,
                    clip_on=True)
        x += w
    ax.set_xlim(0, x)
    ax.set_ylim(n, 0)
    ax.set_xticks(xticks, [t(f"task-formats.row.{col}") for col, _ in cols], rotation=90)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(n) + 0.5, [str(int(p)) for p in df["position"]])
    ax.tick_params(axis="both", length=0, labelsize=max(fontsize, 7))
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    if fmt is not None:
        k = int((df["label"].notna() & (df["label"] != -100)).sum())
        ax.set_title(t(f"task-formats.{fmt}", k=k, n=n), loc="left", fontsize="medium")
    return ax


def task_formats(study) -> Figure:
    """``task-formats``: the real tokenizer's and collators' output for one review, per task type,
    three tables side by side read top to bottom (one row per token)."""
    tokens = study.tables["tokens"]
    formats = [f for f in FORMATS if f in set(tokens["format"])]
    widths = [sum(w for _, w in (COLUMNS if tokens.loc[tokens["format"] == f, "label"].notna().any() else COLUMNS[:4]))
              for f in formats]
    fig, axes = plt.subplots(1, len(formats), figsize=figsize(9.9), layout="constrained",
                             gridspec_kw={"width_ratios": widths})
    axes = np.atleast_1d(axes)
    review = study.meta.get("review", {})
    for ax, fmt, w in zip(axes, formats, widths):
        plot_token_table(tokens, fmt=fmt, sequence_label=study.meta.get("sequence_label"),
                         label_name=review.get("label"), ax=ax, fontsize=7)
        # wrapped before the layout is computed (a title far wider than its panel collapses it):
        # about 0.2 cm per Latin character and 0.33 cm per Chinese one at the title's size
        room_cm = 0.9 * FIG_WIDTH_CM * w / sum(widths)
        per_char = 0.33 if current_lang() == "zh" else 0.2
        title = ax.get_title(loc="left")
        ax.set_title(textwrap.fill(title, max(8, int(room_cm / per_char)),
                                   break_long_words=current_lang() == "zh", break_on_hyphens=False), loc="left",
                     fontsize="medium")
    axes[0].set_ylabel(t("task-formats.position"))
    for ax in axes[1:]:  # the same positions in every table: numbered once, on the left
        ax.tick_params(labelleft=False)
    fig.suptitle(t("task-formats.title"))
    if review:
        fig.supxlabel(t("task-formats.review", label=_label_name(review.get("label", "")),
                        text=review.get("text", "")), fontsize="small", color="#444444")
    return fit_texts(fig)


# ------------------------------------------------------------------------------ augmentation
def _changes(original: str, text: str, limit: int = 120) -> str:
    """What an augmentation changed, word by word: ``a → b``, ``+word``, ``−word`` (position by
    position when the words are only reordered, as a swap does)."""
    a, b = original.split(), text.split()
    parts = []
    if sorted(a) == sorted(b):
        parts = [f"{x} → {y}" for x, y in zip(a, b) if x != y]
        a = b = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "replace":
            parts.append(f"{' '.join(a[i1:i2])} → {' '.join(b[j1:j2])}")
        elif op == "delete":
            parts.append("−" + " ".join(a[i1:i2]))
        elif op == "insert":
            parts.append("+" + " ".join(b[j1:j2]))
    out = "; ".join(parts)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def plot_augmented_texts(augment: pd.DataFrame, *, ax=None, width: int = 58, fontsize: float = 7.5):
    """Each augmentation (one row, original first): the wrapped text, and in grey what it changed."""
    ax = ax or plt.gca()
    df = augment.reset_index(drop=True)
    original = str(df.loc[df["op"] == "original", "text"].iloc[0]) if (df["op"] == "original").any() else None
    for i, r in df.iterrows():
        noted = original is not None and r["op"] != "original"
        # with a note, the text ends just above the row's middle and the note starts just below it
        ax.text(0.0, i + 0.02 if noted else i, "\n".join(textwrap.wrap(str(r["text"]), width)), ha="left",
                va="bottom" if noted else "center", fontsize=fontsize)
        if noted:
            ch = _changes(original, str(r["text"]), limit=int(width * 1.05) - 10)  # one line: "changed: " + …
            unchanged = "augmentation.unchanged.delete" if r["op"] == "delete" else "augmentation.unchanged"
            note = t("augmentation.changes", changes=ch) if ch else t(unchanged)
            ax.text(0.0, i + 0.08, "\n".join(textwrap.wrap(note, int(width * 1.05))), ha="left", va="top",
                    fontsize=max(fontsize - 1, 7), color="#666666")
    ax.set_xlim(0, 1)
    ax.set_ylim(len(df) - 0.5, -0.5)
    ax.set_yticks(range(len(df)), [_name("augmentation.op", op, spaces=True) for op in df["op"]])
    ax.set_xticks([])
    ax.grid(False)
    for y in np.arange(len(df) - 1) + 0.5:
        ax.axhline(y, color="#dddddd", linewidth=0.8)
    ax.set_title(t("augmentation.texts"), loc="left")
    return ax


def plot_augmented_predictions(augment: pd.DataFrame, *, label_names: list[str] | None = None, ax=None):
    """The model's predicted class for each augmented text (bar colour) and its probability (bar
    length); the chance level 1/number of classes, when ``label_names`` are given."""
    ax = ax or plt.gca()
    df = augment.reset_index(drop=True)
    names = list(label_names) if label_names else list(dict.fromkeys(df["predicted"]))
    pal = dict(zip(names, sns.color_palette("colorblind", len(names))))
    for i, r in df.iterrows():
        ax.barh(i, r["p_predicted"], height=0.55, color=pal.get(r["predicted"], "grey"))
        ax.text(min(r["p_predicted"], 1.0) + 0.02, i, f"{_label_name(r['predicted'])}\n{r['p_predicted']:.3f}",
                va="center", ha="left", fontsize=7)
    # each bar names its class, so no colour legend; the chance line is named where it starts
    if label_names:
        chance = 1 / len(label_names)
        ax.axvline(chance, color="black", linestyle=":", linewidth=1, label=t("chance"))
        ax.text(chance, 1.01, t("chance"), transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1.45)
    ax.set_xticks([0, 0.5, 1.0])
    ax.set_ylim(len(df) - 0.5, -0.5)
    ax.set_xlabel(t("augmentation.probability"))
    ax.grid(axis="y", visible=False)
    return ax


def augmentation(study) -> Figure:
    """``augmentation``: real augmentations of one review and the fine-tuned model's verdicts."""
    augment, meta = study.tables["augment"], study.meta
    fig, (ax_text, ax_bar) = plt.subplots(1, 2, figsize=figsize(11.5), layout="constrained",
                                          sharey=True, gridspec_kw={"width_ratios": [2.8, 1]})
    plot_augmented_texts(augment, ax=ax_text)
    plot_augmented_predictions(augment, label_names=meta.get("label_names"), ax=ax_bar)
    ax_bar.tick_params(axis="y", labelleft=False)
    notes = []
    if meta.get("synonym_source"):
        notes.append(t("augmentation.source", source=_name("augmentation.source", meta["synonym_source"], spaces=True)))
    if meta.get("left_out"):
        sep = "、" if current_lang() == "zh" else ", "
        notes.append(t("augmentation.left_out", ops=sep.join(_name("augmentation.left_out", x, spaces=True)
                                                               for x in meta["left_out"])))
    if meta.get("test_accuracy") is not None and np.isfinite(meta["test_accuracy"]):
        notes.append(t("augmentation.model", acc=meta["test_accuracy"]))
    notes.append(t("augmentation.caveats"))  # what EDA does to a sentence, so its artefacts are read as such
    fig.suptitle(t("augmentation.title"))
    if notes:
        fig.supxlabel(_sep().join(notes), fontsize="small", color="#444444")
    return fit_texts(fig)


# ------------------------------------------------------------------------------ data-quality
def noise_detection(examples: pd.DataFrame, by: tuple[str, ...] = ("noise", "size", "seed")) -> pd.DataFrame:
    """Per run (the ``by`` labels): k = number of flipped training labels, precision at k of
    ranking the examples by final training loss (highest first), and the base rate (share
    flipped, what picking k at random would find). Runs without flipped labels are left out."""
    rows = []
    by = [b for b in by if b in examples.columns]
    for key, g in examples.groupby(by, sort=False):
        k = int(g["noisy"].sum())
        if k == 0:
            continue
        top = g.sort_values("loss", ascending=False, kind="stable").head(k)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "k": k,
                     "precision": float(top["noisy"].mean()), "base_rate": float(g["noisy"].mean())})
    return pd.DataFrame(rows, columns=[*by, "k", "precision", "base_rate"])


def plot_noise_curves(finals: pd.DataFrame, *, ax=None, chance: float | None = None,
                      majority: float | None = None):
    """Test accuracy vs training-set size (log x, a tick labelled with each size present), one line
    per noise level: the mean over that cell's seeds with its 95% t interval (error bars,
    :func:`~viz._common.mean_ci`; none for one seed) and each seed as a dot; where the levels have
    different numbers of seeds each level's label says its n. The majority-class accuracy
    (``majority``, as recorded) and ``chance`` (1/number of classes) as dotted lines."""
    ax = ax or plt.gca()
    levels = list(dict.fromkeys(finals["noise"]))
    pal = sns.color_palette("rocket_r", len(levels) + 1)[1:]
    has_seed = "seed" in finals
    ns = {noise: (finals.loc[finals["noise"] == noise, "seed"].nunique() if has_seed else 1) for noise in levels}
    for j, (noise, color) in enumerate(zip(levels, pal)):
        d = finals[finals["noise"] == noise]
        m = mean_ci_table(d, "size").sort_values("size")
        shift = 1 + 0.015 * (j - (len(levels) - 1) / 2)  # side by side on the log axis
        label = t("data-quality.noise_level", pct=100 * noise)
        if len(set(ns.values())) > 1:
            label += f" ({t('n_seeds', n=ns[noise])})"
        ax.errorbar(m["size"] * shift, m["mean"], yerr=m["half"] if m["half"].notna().any() else None, marker="o",
                    color=color, capsize=3, label=label)
        ax.scatter(d["size"] * shift, d["value"], color=color, s=12, alpha=0.5, zorder=3, linewidths=0)
        bad = d[d["status"] == "diverged"]
        if len(bad):
            ax.scatter(bad["size"] * shift, bad["value"], marker="x", color="red", zorder=4, label="_diverged")
    plot_majority(ax, majority)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=t("chance"))
    sizes = sorted(set(finals["size"]))
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{int(s):,}" for s in sizes])
    ax.minorticks_off()
    lo, hi = min(sizes), max(sizes)
    ax.set_xlim(lo / 1.25, hi * 1.25)
    ax.set_xlabel(t("data-quality.size"))
    ax.set_ylabel(t("test_accuracy"))
    ax.set_title(t("data-quality.curves"))
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_noise_detection(detection: pd.DataFrame, *, ax=None):
    """Precision at k per noise level (bars, one per training-set size: the mean over seeds with its
    95% t interval, cut at 0 and 1, seeds as dots), with the base rate (share of flipped labels)
    marked over each group; its legend lists the sizes, then the base rate."""
    ax = ax or plt.gca()
    levels = list(dict.fromkeys(detection["noise"]))
    sizes = list(dict.fromkeys(detection["size"])) if "size" in detection else [None]
    pal = sns.color_palette("crest", len(sizes))
    width = 0.8 / len(sizes)
    for j, (size, color) in enumerate(zip(sizes, pal)):
        d = detection if size is None else detection[detection["size"] == size]
        m = mean_ci_table(d, "noise", "precision").set_index("noise").reindex(levels)
        x = np.arange(len(levels)) + (j - (len(sizes) - 1) / 2) * width
        half = m["half"]
        # a precision lies in [0, 1]: the interval is drawn up to those bounds
        yerr = np.vstack([np.minimum(half, m["mean"]), np.minimum(half, 1 - m["mean"])])
        ax.bar(x, m["mean"], width=width * 0.92, color=color, yerr=yerr if half.notna().any() else None,
               capsize=3, label=t("data-quality.size_level", size=f"{int(size):,}") if size is not None else None,
               gid="sizes")
        for xi, noise in zip(x, levels):
            v = d.loc[d["noise"] == noise, "precision"]
            ax.scatter(np.full(len(v), xi), v, color="black", s=10, alpha=0.6, zorder=3, linewidths=0)
    base = detection.groupby("noise", sort=False)["base_rate"].mean().reindex(levels)
    for i, b in enumerate(base):
        ax.hlines(b, i - 0.45, i + 0.45, color="black", linestyle="--", linewidth=1.2, gid="base_rate",
                  label=t("data-quality.base_rate") if i == 0 else None)
    ax.set_xticks(range(len(levels)), [t("data-quality.noise_tick", pct=100 * n) for n in levels])
    ax.set_ylim(0, 1.05)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel(t("data-quality.noise"))
    ax.set_ylabel(t("data-quality.precision"))
    ax.set_title(t("data-quality.detection"))
    # the sizes, then the base rate (the figure draws this legend under both panels, off the bars)
    handles, labels = ax.get_legend_handles_labels()
    base = [i for i, lab in enumerate(labels) if lab == t("data-quality.base_rate")]
    order = [i for i in range(len(labels)) if i not in base] + base
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small")
    ax.grid(axis="x", visible=False)
    return ax


def data_quality(runs: RunSet) -> Figure:
    """``data-quality``: test accuracy vs training-set size under label noise, and how well the
    final per-example loss finds the flipped labels (precision at k)."""
    finals = runs.finals()
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=figsize(8.5), layout="constrained")
    plot_noise_curves(finals, ax=ax_l, majority=majority_share(runs, "test"))
    leg = ax_l.get_legend()  # beside its panel, off the curves (under it, both panels would lose height)
    ax_l.legend(leg.legend_handles, [x.get_text() for x in leg.get_texts()], loc="upper left", bbox_to_anchor=(1.02, 1),
                borderaxespad=0, fontsize="small")
    plot_noise_detection(noise_detection(runs.table("examples")), ax=ax_r)
    # under the figure: above the bars it took half the panel, under it the panel's width; two rows fit
    figure_legend(fig, [ax_r], ncols=3, columnspacing=1.0)
    cells = finals.groupby(["noise", "size"], sort=False)["seed"].nunique() if "seed" in finals else [1]
    fig.suptitle(t("data-quality.title") + "\n" + t("seeds_n", n=n_text(cells)))
    return fit_texts(fig)


__all__ = ["augmentation", "data_quality", "noise_detection", "plot_augmented_predictions",
           "plot_augmented_texts", "plot_noise_curves", "plot_noise_detection", "plot_token_table",
           "task_formats"]
