"""Instruction tuning and RLHF (seed 003): figures ``instruction_tuning`` and ``rlhf``.

Drawn from the studies of ``ftcore.alignment`` (the tiny GPT's pretraining, the instruction-tuning
arms, the reward model, the RLHF runs), combined into tidy frames by ``chapter.figures.alignment``.
No torch here.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftcore.records.queries import smooth_losses
from ._common import _sep, fit_texts, mean_ci, n_text, plot_majority, plot_seed_bars
from .geometry import figsize
from .text import t
from .wrap import wrap_text

__all__ = ["instruction_tuning", "plot_answer_accuracy", "plot_band", "plot_mask", "plot_pretraining",
           "plot_reward_model", "plot_samples", "rlhf", "sample_rows", "token_label"]

IT_ARMS = ("untuned", "nomask", "mask")
SPLITS = ("test", "phrasing")


def token_label(token: str) -> str:
    """A token as a reader sees it: a space as ␣, a new line as ↵."""
    return token.replace("\n", "↵").replace(" ", "␣") or "∅"


# ------------------------------------------------------------------------------------ instruction tuning
def plot_pretraining(steps: pd.DataFrame, evals: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Training loss per step (smoothed) and held-out loss (ln perplexity, the same unit: nats per
    token) at each evaluation."""
    ax = ax or plt.gca()
    ax.plot(steps["step"], smooth_losses(steps["loss"].tolist()), color="C0", lw=1.3, label=t("instruction-tuning.train_loss"))
    ax.plot(evals["step"], np.log(evals["perplexity"]), "o-", color="C3", ms=3, lw=1, label=t("instruction-tuning.heldout_loss"))
    ax.set_xlabel(t("step"))
    ax.set_ylabel(t("instruction-tuning.nats"))
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_mask(mask: pd.DataFrame, *, ax: Axes | None = None, head: int = 3, tail: int = 10) -> Axes:
    """The labels the loss sees, with and without the prompt mask: one column per token (the first
    ``head`` and the last ``tail`` positions), grey cells = -100 (no loss), coloured = a target."""
    ax = ax or plt.gca()
    cols = pd.concat([mask.head(head), mask.tail(tail)])
    rows = (("label_masked", t("instruction-tuning.row_mask")), ("label_unmasked", t("instruction-tuning.row_nomask")))
    for r, (col, _) in enumerate(rows):
        for c, (_, tok) in enumerate(cols.iterrows()):
            x = c + (1 if c >= head else 0)  # a gap column for the positions left out
            target = int(tok[col]) != -100
            ax.add_patch(plt.Rectangle((x - 0.45, r - 0.4), 0.9, 0.8, color="C2" if target else "0.85", lw=0))
            ax.text(x, r, "✓" if target else "-100", ha="center", va="center", fontsize=7,
                    color="white" if target else "0.3")
    ax.text(head, 0.5, "…", ha="center", va="center", fontsize=9)
    ticks = [c + (1 if c >= head else 0) for c in range(len(cols))]
    ax.set_xticks(ticks, [token_label(x) for x in cols["token"]], fontsize=7, rotation=90)
    ax.set_yticks([0, 1], [name for _, name in rows])
    ax.set_xlim(-0.6, len(cols) + 0.6)
    ax.set_ylim(1.6, -0.6)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    return ax


def plot_answer_accuracy(accuracy: pd.DataFrame, *, metric: str = "accuracy", ax: Axes | None = None) -> Axes:
    """Answer accuracy per arm on held-out examples and held-out phrasings: mean over seeds, 95% t
    interval, seeds as dots; the majority answer's share (mean over the tasks) dotted."""
    ax = ax or plt.gca()
    d = accuracy[accuracy["metric"] == metric]
    arms = [a for a in IT_ARMS if a in set(d["arm"])]
    plot_seed_bars(d, x="split", hue="arm", order=list(SPLITS), hue_order=arms,
                   x_labels=[t(f"instruction-tuning.split.{s}") for s in SPLITS],
                   hue_labels=[t(f"instruction-tuning.arm.{a}") for a in arms],
                   palette=[sns.color_palette()[i] for i in (7, 1, 2)][-len(arms):] if len(arms) == 3 else None, ax=ax)
    maj = accuracy[(accuracy["metric"] == "majority_frac") & (accuracy["split"] == "test")]["value"]
    plot_majority(ax, float(maj.mean()) if len(maj) else None)
    ax.set_ylim(0, 1)
    ax.set_ylabel(t("instruction-tuning.acc_axis"))
    ax.legend(fontsize="small", loc="upper left")
    return ax


def instruction_tuning(gpt, mask: pd.DataFrame, accuracy: pd.DataFrame, per_task: pd.DataFrame | None = None,
                       steps: pd.DataFrame | None = None) -> Figure:
    """Figure ``instruction-tuning``: (a) the tiny GPT's pretraining, (b) what the prompt mask does
    to the labels, (c) answer accuracy of the un-tuned, no-mask and mask arms."""
    fig, ax = plt.subplot_mosaic([["mask", "mask", "mask"], ["pre", "acc", "choice"]], figsize=figsize(9.9),
                                 layout="constrained", height_ratios=[1, 2.3])
    plot_mask(mask, ax=ax["mask"])
    ax["mask"].set_title(t("instruction-tuning.mask_title"), fontsize="medium")
    m = gpt.meta
    d, layers = m["config"]["n_embd"], m["config"]["n_layer"]  # GPT-2's count, output layer tied to the embedding
    n_params = m["vocab_size"] * d + m["config"]["n_positions"] * d + layers * (12 * d * d + 13 * d) + 2 * d
    plot_pretraining(gpt.tables["steps"], gpt.tables["evals"], ax=ax["pre"])
    ax["pre"].set_title(t("instruction-tuning.pre_title", params=n_params / 1e6, ppl=m["final_perplexity"]),
                        fontsize="medium")
    plot_answer_accuracy(accuracy, ax=ax["acc"])
    ax["acc"].set_title(t("instruction-tuning.acc_title"), fontsize="medium")
    plot_answer_accuracy(accuracy, metric="choice_accuracy", ax=ax["choice"])
    ax["choice"].set_title(t("instruction-tuning.choice_title"), fontsize="medium")
    ax["choice"].set_ylabel("")
    ax["choice"].get_legend().remove()
    n = accuracy[accuracy["arm"] != "untuned"].groupby("arm")["seed"].nunique()
    # the arms' legend under the figure, headed by the note (inside, it would cover the bars)
    handles, labels = ax["acc"].get_legend_handles_labels()
    ax["acc"].get_legend().remove()
    leg = fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small",
                     title=t("seeds_n", n=n_text(n)) + _sep() + t("problems.dots"), title_fontsize="small")
    leg.set_gid("note")
    fig.suptitle(t("instruction-tuning.title"))
    fit_texts(fig)
    return fig


# ------------------------------------------------------------------------------------ RLHF
def plot_band(steps: pd.DataFrame, value: str, *, by: str = "beta", window: int = 10, ax: Axes | None = None,
              labels: dict | None = None) -> Axes:
    """``value`` per step for each ``by`` group: each seed's rolling mean over ``window`` steps, then
    the mean over seeds with its 95% t band."""
    ax = ax or plt.gca()
    for i, (key, g) in enumerate(steps.groupby(by, sort=True)):
        per_seed = g.pivot_table(index="step", columns="seed", values=value).sort_index()
        smooth = per_seed.rolling(window, min_periods=1).mean()
        stats = np.array([mean_ci(row.dropna()) for _, row in smooth.iterrows()], dtype=float)
        mean, half = stats[:, 0], stats[:, 1]
        color = sns.color_palette()[(0, 3, 2, 4)[i % 4]]
        ax.plot(smooth.index, mean, color=color, lw=1.4, label=(labels or {}).get(key, str(key)))
        if np.isfinite(half).any():
            ax.fill_between(smooth.index, mean - half, mean + half, color=color, alpha=0.2, lw=0, gid="ci95")
    ax.set_xlabel(t("step"))
    return ax


def plot_reward_model(reward, *, ax: Axes | None = None) -> Axes:
    """The reward model's held-out pairwise accuracy per step (chance 0.5 dotted); where it was
    measured on more than one split, a line each: test pairs solid, validation pairs dashed (the
    figure's note says so, :func:`rlhf`; the panel is too small for a legend off its lines)."""
    ax = ax or plt.gca()
    ev = reward.tables["evals"]
    splits = list(dict.fromkeys(ev["split"])) if "split" in ev else [None]
    for split in splits:
        d = ev if split is None else ev[ev["split"] == split]
        style = dict(ls="--", marker="s") if split == "validation" else dict(ls="-", marker="o")
        ax.plot(d["step"], d["value"], color="C4", ms=3, lw=1.3, gid=f"pairs-{split}", **style)
    ax.axhline(0.5, color="0.35", ls=":", lw=1.2, gid="majority")
    ax.set_ylim(min(0.4, float(ev["value"].min()) - 0.05), 1.0)
    ax.set_xlabel(t("step"))
    ax.set_ylabel(t("rlhf.pair_acc"))
    return ax


def sample_rows(samples: pd.DataFrame, *, seed: int | None = None, prompt: str | None = None) -> pd.DataFrame:
    """The before/after texts of one opening: the starting model's sample (``when == "before"``; the
    same for every β of a seed, as it is drawn before training) and, per β (ascending), the trained
    policy's sample from the same opening and generator. By default the lowest seed and its first
    opening, the first of its samples: a fixed rule, not a choice by how the texts read. Columns
    ``when``, ``beta`` (NaN before), ``prompt``, ``text``, ``reward``, ``seed``."""
    seed = int(samples["seed"].min()) if seed is None else seed
    d = samples[samples["seed"] == seed]
    prompt = d["prompt"].iloc[0] if prompt is None else prompt
    d = d[d["prompt"] == prompt]
    before = d[d["when"] == "before"].head(1).assign(beta=np.nan)
    after = [g[g["when"] == "after"].head(1) for _, g in d.groupby("beta", sort=True)]
    return pd.concat([before, *after], ignore_index=True)[["when", "beta", "prompt", "text", "reward", "seed"]]


def plot_samples(samples: pd.DataFrame, *, ax: Axes | None = None, fontsize: float = 7.0, **pick) -> Axes:
    """:func:`sample_rows` written out, one row each: who wrote it (the starting model, or the policy
    after RL at β) with its reward-model score, then the text (wrapped to the axes; the model's own
    words, never read as mathtext). The axes has no frame; ``pick`` goes to :func:`sample_rows`."""
    ax = ax or plt.gca()
    rows = sample_rows(samples, **pick)
    ax.set_axis_off()
    fig = ax.figure
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    label_frac = 0.17
    chars = max(20, int((1 - label_frac) * width_pt / (0.55 * fontsize)))  # Latin text: ~0.55 em a character
    ax.set_title(t("rlhf.samples_title", prompt=rows["prompt"].iloc[0], seed=int(rows["seed"].iloc[0])),
                 fontsize="medium")
    betas = sorted(rows["beta"].dropna().unique())
    y_pt = 0.0
    for r in rows.itertuples():
        before = r.when == "before"
        who = t("rlhf.before") if before else t("rlhf.beta", beta=f"{r.beta:g}")
        # each β in its curves' colour (plot_band's order), the starting model grey
        color = "0.3" if before else sns.color_palette()[(0, 3, 2, 4)[betas.index(r.beta) % 4]]
        body = wrap_text(str(r.text).replace("\n", " "), chars)
        kw = dict(xycoords="axes fraction", textcoords="offset points", va="top", fontsize=fontsize,
                  annotation_clip=False)
        ax.annotate(f"{who} ({r.reward:+.2f})", (0, 1), xytext=(0, -y_pt), ha="left", color=color, **kw)
        ax.annotate(body, (label_frac, 1), xytext=(0, -y_pt), ha="left", parse_math=False, **kw)
        y_pt += (body.count("\n") + 1) * fontsize * 1.3 + 2
    ax.samples_height_pt = y_pt  # what the rows need: the caller sizes the axes to it
    return ax


def _fit_height(fig: Figure, ax: Axes, need_pt: float, tries: int = 3) -> None:
    """Resize ``ax``'s gridspec row (its height ratio) until the axes is ``need_pt`` tall."""
    gs = ax.get_subplotspec().get_gridspec()
    row = ax.get_subplotspec().rowspan.start
    for _ in range(tries):
        fig.draw_without_rendering()
        have = ax.get_window_extent().height * 72 / fig.dpi
        if have <= 0 or abs(have - need_pt) < 2:
            break
        ratios = list(gs.get_height_ratios() or [1] * gs.nrows)
        ratios[row] *= need_pt / have
        gs.set_height_ratios(ratios)


def rlhf(reward, steps: pd.DataFrame, samples: pd.DataFrame | None = None) -> Figure:
    """Figure ``rlhf``: the reward model's held-out pairwise accuracy; reward, KL to the starting model,
    sample length and repetition per RL step at each KL coefficient β; with ``samples`` (the studies'
    before/after texts), one opening's text before RL and after it at each β (:func:`plot_samples`)."""
    grid = [["rm", "reward", "kl"], ["loss", "len", "rep"]]
    if samples is not None and len(samples):
        grid.append(["samples"] * 3)
    fig, ax = plt.subplot_mosaic(grid, figsize=figsize(9.9), layout="constrained")
    if "samples" in ax:
        plot_samples(samples, ax=ax["samples"])
    plot_reward_model(reward, ax=ax["rm"])
    ax["rm"].set_title(t("rlhf.rm_title"), fontsize="medium")
    st = reward.tables["steps"]
    ax["loss"].plot(st["step"], smooth_losses(st["loss"].tolist()), color="C4", lw=1.3)
    ax["loss"].set_xlabel(t("step"))
    ax["loss"].set_ylabel(t("loss"))
    ax["loss"].set_title(t("rlhf.bt_title"), fontsize="medium")
    labels = {b: t("rlhf.beta", beta=f"{b:g}") for b in sorted(steps["beta"].unique())}
    for name, value in (("reward", "reward"), ("kl", "kl"), ("len", "length"), ("rep", "repetition")):
        plot_band(steps, value, ax=ax[name], labels=labels)
        ax[name].set_title(t(f"rlhf.{name}_title"), fontsize="medium")
    # the βs' key once, under the figure and headed by the note: the bands fill every RL panel
    n = steps.groupby("beta")["seed"].nunique()
    ev = reward.tables["evals"]
    splits_note = t("rlhf.note_splits") if "split" in ev and ev["split"].nunique() > 1 else ""
    leg = fig.legend(*ax["reward"].get_legend_handles_labels(), loc="outside lower center", ncols=len(labels),
                     fontsize="small", title=t("rlhf.note", n=n_text(n)) + splits_note, title_fontsize="small")
    leg.set_gid("note")
    for name in ("rm", "reward", "kl"):  # each column shares its steps: the bottom row names them
        ax[name].set_xlabel("")
    fig.suptitle(t("rlhf.title"))
    fit_texts(fig)
    if "samples" in ax:
        _fit_height(fig, ax["samples"], ax["samples"].samples_height_pt)
    return fig
