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

__all__ = ["instruction_tuning", "plot_answer_accuracy", "plot_band", "plot_mask", "plot_pretraining",
           "plot_reward_model", "rlhf", "token_label"]

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
    """The reward model's held-out pairwise accuracy per step (chance 0.5 dotted)."""
    ax = ax or plt.gca()
    ev = reward.tables["evals"]
    ax.plot(ev["step"], ev["value"], "o-", color="C4", ms=3, lw=1.3)
    ax.axhline(0.5, color="0.35", ls=":", lw=1.2, gid="majority")
    ax.set_ylim(min(0.4, float(ev["value"].min()) - 0.05), 1.0)
    ax.set_xlabel(t("step"))
    ax.set_ylabel(t("rlhf.pair_acc"))
    return ax


def rlhf(reward, steps: pd.DataFrame, samples: pd.DataFrame | None = None) -> Figure:
    """Figure ``rlhf``: the reward model's held-out pairwise accuracy; reward, KL to the starting model,
    sample length and repetition per RL step at each KL coefficient β."""
    fig, ax = plt.subplot_mosaic([["rm", "reward", "kl"], ["loss", "len", "rep"]], figsize=figsize(9.9),
                                 layout="constrained")
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
    ax["reward"].legend(fontsize="small", loc="lower right")
    n = steps.groupby("beta")["seed"].nunique()
    fig.supxlabel(t("rlhf.note", n=n_text(n)), fontsize="small")
    fig.suptitle(t("rlhf.title"))
    fit_texts(fig)
    return fig
