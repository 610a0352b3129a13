"""What notebook 13 (指令微调与 RLHF) calls: the stored studies as tables (the tiny GPT's samples,
the prompt mask, accuracies per task, the reward model's top and bottom texts, RLHF samples before
and after) and two knobs that train live behind a button: the prompt mask on/off
(:class:`MaskToggle`) and the KL coefficient β (:class:`KLKnob`).

Everything measured comes from :mod:`ftcore.alignment`; nothing trains unless the reader clicks.
In quick mode (``FTLAB_QUICK=1``) the quick-scale records and tiny runs are used. Texts follow
``viz.set_theme(LANG)``."""
from __future__ import annotations

import ipywidgets as W
import pandas as pd

from .env import QUICK
from .strings import tr
from .widgets import Control


def _t(key: str, **kw) -> str:
    """This notebook's text ``key`` (lab/texts: ``alignment.<key>``) in the theme's language."""
    return tr(f"alignment.{key}", **kw)


def _scale():
    from chapter.scale import SCALES
    return SCALES["quick" if QUICK else "full"]


def _configs():
    """The GPT, instruction-tuning, reward-model and RL configs of the figures (quick ones in quick mode)."""
    from ftcore.alignment.causal_lm import GPTConfig
    from ftcore.alignment.instructions import TuneConfig
    from ftcore.alignment.reward import RewardConfig
    from ftcore.alignment.rlhf import RLConfig
    pick = (lambda c: c.quick()) if QUICK else (lambda c: c)
    return pick(GPTConfig()), pick(TuneConfig()), pick(RewardConfig()), pick(RLConfig())


def inputs(fid: str) -> dict:
    """A figure's combined inputs (studies and tidy frames) from the stored records."""
    import chapter
    from chapter.registry import REGISTRY
    raw = chapter.inputs(fid, quick=QUICK)  # registers the figures first
    return REGISTRY[fid].combine(raw)


def gpt_facts() -> str:
    """The tiny GPT in one line: size, corpus, steps, time, perplexity before and after."""
    from ftcore.alignment.causal_lm import n_parameters
    m = inputs("instruction-tuning")["gpt"].meta
    c = m["config"]
    return (f"tiny GPT: {n_parameters(c, m['vocab_size']):,} parameters ({c['n_layer']} layers × {c['n_embd']}), "
            f"BPE vocabulary {m['vocab_size']:,}, corpus {m['corpus_docs']:,} texts / {m['corpus_tokens']:,} tokens, "
            f"{c['steps']} steps × {c['batch']}×{c['block']} tokens ({m['epochs']:.1f} passes), "
            f"{m['train_s'] / 60:.1f} min on {m['threads']} thread; held-out perplexity "
            f"{m['initial_perplexity']:.0f} → {m['final_perplexity']:.1f}")


def pretraining_samples() -> pd.DataFrame:
    """The tiny GPT's samples from fixed openings at each checkpoint: one row per (step, opening)."""
    s = inputs("instruction-tuning")["gpt"].tables["samples"]
    return s.assign(text=s["prompt"] + " " + s["text"].str.strip())[["step", "prompt", "text"]]


def mask_table(rows: int = 16) -> pd.DataFrame:
    """The last ``rows`` positions of the first training example: token, its id, and its label with
    and without the prompt mask (-100 = no loss)."""
    m = inputs("instruction-tuning")["mask"]
    return m[["position", "token", "input_id", "label_masked", "label_unmasked"]].tail(rows).reset_index(drop=True)


def accuracy_by_task() -> pd.DataFrame:
    """Answer accuracy per task, arm and split (mean over seeds), from the records."""
    pt = inputs("instruction-tuning")["per_task"]
    pt = pt[pt["metric"] == "accuracy"]
    return pt.pivot_table(index=["task", "split"], columns="arm", values="value", aggfunc="mean").round(3)


def reward_top_bottom() -> pd.DataFrame:
    """The held-out reviews the reward model scores highest and lowest, with their true verdicts."""
    s = inputs("rlhf")["reward"].tables["scored"]
    return s[["end", "reward", "label", "text"]].round({"reward": 2})


def rlhf_samples(seed: int = 0) -> pd.DataFrame:
    """Samples before and after RL at each β (one seed), with their reward-model scores."""
    s = inputs("rlhf")["samples"]
    s = s[s["seed"] == seed]
    return s[["beta", "when", "text", "reward", "length"]].round({"reward": 2}).reset_index(drop=True)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.3f}")


class MaskToggle:
    """Prompt mask on/off, a button that instruction-tunes the tiny GPT once and measures answer
    accuracy on held-out examples and the held-out phrasing; every result stays in a table."""

    def __init__(self, steps: int | None = None, n_eval: int | None = None):
        from dataclasses import replace
        _, tune, _, _ = _configs()
        self.base = replace(tune, steps=steps or (4 if QUICK else 150), n_eval=n_eval or (4 if QUICK else 40))
        self.mask = W.Checkbox(value=True, description=_t("mask"))
        self.button = W.Button(description=_t("train"), button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self.msg = W.HTML(_t("wait_it"))
        self.table = W.HTML("")
        self.history: list[dict] = []
        self.result = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.mask, self.button]), self.msg, self.table])

    def run(self) -> dict:
        from dataclasses import replace

        from ftcore.alignment.causal_lm import pretrained_gpt
        from ftcore.alignment.instructions import accuracy_rows, answer, eval_examples, tune
        gpt_cfg, *_ = _configs()
        cfg = replace(self.base, mask_prompt=bool(self.mask.value))
        self.msg.value = _t("running")
        model, tok, _ = pretrained_gpt(gpt_cfg, _scale().runs_dir)
        steps = tune(model, tok, cfg)
        acc = accuracy_rows(answer(model, tok, eval_examples(cfg), cfg))
        acc = acc[(acc["task"] == "all") & (acc["metric"] == "accuracy")].set_index("split")["value"]
        row = {_t("mask"): _t("arm_mask") if cfg.mask_prompt else _t("arm_nomask"), _t("steps"): cfg.steps,
               _t("answer_loss"): steps["answer_loss"].tail(20).mean(),
               _t("acc_test"): acc.get("test"), _t("acc_phr"): acc.get("phrasing")}
        self.history.append(row)
        self.result = {"steps": steps, "accuracy": acc}
        self.msg.value = ""
        self.table.value = f"<b>{_t('history')}</b>" + _table(pd.DataFrame(self.history))
        return row

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class KLKnob(Control):
    """The KL coefficient β, a button that runs RLOO from the pretrained tiny GPT against the reward
    model, then shows reward/KL/length at the end and samples before and after."""

    BETAS = (0.0, 0.01, 0.05, 0.2, 1.0)

    def __init__(self, steps: int | None = None):
        from dataclasses import replace
        *_, rl = _configs()
        self.base = replace(rl, steps=steps or (2 if QUICK else 60))
        self.beta = W.SelectionSlider(options=list(self.BETAS), value=0.01, description=_t("beta"),
                                      continuous_update=False, style={"description_width": "initial"})
        self.button = W.Button(description=_t("rl"), button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self.msg = W.HTML(_t("wait_rl"))
        self.table = W.HTML("")
        self.samples = W.HTML("")
        super().__init__()  # the output area, figure, result and history of every control
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.beta, self.button]), self.msg, self.out, self.table, self.samples])

    def run(self) -> dict:
        from dataclasses import replace

        from ftcore.alignment.causal_lm import pretrained_gpt
        from ftcore.alignment.reward import trained_reward_model
        from ftcore.alignment.rlhf import rlhf
        gpt_cfg, _, rm_cfg, _ = _configs()
        cfg = replace(self.base, kl_coef=float(self.beta.value))
        self.msg.value = _t("running")
        policy, tok, _ = pretrained_gpt(gpt_cfg, _scale().runs_dir)
        rm, _ = trained_reward_model(rm_cfg, _scale().runs_dir)
        steps, samples = rlhf(policy, tok, lambda texts: rm(texts).detach(), cfg)
        end = steps.tail(10).mean(numeric_only=True)
        row = {"β": cfg.kl_coef, _t("steps"): cfg.steps, _t("reward"): end["reward"], _t("kl"): end["kl"],
               _t("length"): end["length"], _t("repetition"): end["repetition"]}
        self.history.append(row)
        self.result = {"steps": steps, "samples": samples}
        self.msg.value = ""
        self.table.value = f"<b>{_t('history')}</b>" + _table(pd.DataFrame(self.history))
        s = samples.assign(when=samples["when"].map({"before": _t("before"), "after": _t("after")}))
        s = s.rename(columns={"when": "", "text": _t("text"), "reward": _t("score")})[["", _t("text"), _t("score")]]
        self.samples.value = _table(s.iloc[::2])  # one sample per opening
        self.show_curves(steps.assign(beta=cfg.kl_coef, seed=0))
        return row

    def show_curves(self, steps: pd.DataFrame):
        """Reward and KL per step of this run (10-step rolling mean), drawn into the widget."""
        import matplotlib.pyplot as plt

        import viz
        from viz.alignment import plot_band
        from viz.geometry import figsize
        fig, axes = plt.subplots(1, 2, figsize=figsize(5.0), layout="constrained")
        for ax, value in zip(axes, ("reward", "kl")):
            plot_band(steps, value, ax=ax, labels={steps["beta"].iloc[0]: f"β = {steps['beta'].iloc[0]:g}"})
            ax.set_title(viz.t(f"rlhf.{value}_title"), fontsize="medium")
        axes[0].legend(fontsize="small")
        self.show_fig(fig)


__all__ = ["KLKnob", "MaskToggle", "accuracy_by_task", "gpt_facts", "inputs", "mask_table", "pretraining_samples",
           "reward_top_bottom", "rlhf_samples"]
