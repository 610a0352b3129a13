"""The notebooks' knobs. Each control is a small class: ``.widget`` is what JupyterLab shows (it
also displays itself), ``.fig`` the figure it redraws, ``.update()`` what a change triggers, so
tests can turn the knobs without a browser.

Anything that trains waits for the reader's click on its button (a slider only chooses the
setting), so "Run All" never blocks a notebook's widgets; the run's progress bar, live curves,
test accuracy and the verdict of ``ftcore.records.validity.learned`` (did it learn, or collapse to
one class?) appear inside the widget, and a table keeps every earlier setting's result beside the
new one. Texts follow the notebook's language (``viz.set_theme(LANG)``: Chinese by default)."""
from __future__ import annotations

import contextlib
import html
import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import viz
from ftcore import RunConfig
from ftcore.engine.config import SCHEDULES, WARMUPS
from viz.theme import current_lang

from .env import LORA_LR, QUICK, live_config
from .live import WidgetProgress, train_live
from .strings import pct, tr


def _button(text: str) -> W.Button:
    # width follows the label: a fixed-width button cuts a long Chinese label off
    return W.Button(description=text, button_style="primary", icon="play",
                    layout=W.Layout(width="auto", min_width="110px"), tooltip=text)


def _style():
    return {"description_width": "initial"}


def verdict(rec, *, split: str = "test") -> tuple[bool, str]:
    """Whether ``rec`` learned (``ftcore.records.validity.learned``: completed, not collapsed to one
    class, accuracy at least majority + margin) and one sentence saying so, with the reason."""
    from ftcore.records.validity import LEARN_MARGIN, ONE_CLASS_LIMIT, learned
    check = learned(rec, split=split)
    acc, maj = rec.metric("accuracy", split), rec.metric("majority_frac", split)
    if check.passed:
        return True, tr("learned", gain=acc - maj)
    if current_lang() == "en":
        return False, tr("not_learned", reason=html.escape(check.reason))
    share = rec.metric("max_class_frac", split)
    if rec.status == "diverged":
        reason = tr("reason_diverged")
    elif math.isnan(acc):
        reason = tr("reason_missing")
    elif not math.isnan(share) and share >= ONE_CLASS_LIMIT:
        reason = tr("reason_one_class", share=share)
    else:
        reason = tr("reason_low", acc=acc, maj=maj, margin=LEARN_MARGIN)
    return False, tr("not_learned", reason=reason)


def history_html(rows: list[dict]) -> str:
    """The results so far, newest last, as a small HTML table (empty before the first run)."""
    if not rows:
        return ""
    df = pd.DataFrame(rows)
    return (f"<div style='margin-top:6px'><b>{tr('history')}</b></div>"
            + df.to_html(index=False, escape=False, border=0, float_format=lambda v: f"{v:.3f}"))


def doctor_html(rec) -> str:
    """The run doctor's diagnosis of ``rec`` in the notebook's language, as HTML."""
    from ftcore.records.doctor import diagnose
    text = diagnose(rec).to_text(current_lang())
    return f"<b>{tr('doctor')}</b><pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"


def per_class_html(rec) -> str:
    """The record's per-class test metrics and confusion matrix as HTML ("" for older records)."""
    from ftcore.records.queries import confusion_matrix, per_class_table
    names = rec.summary.get("label_names")
    table = per_class_table(rec.evals, "test", names)
    if not len(table):
        return ""
    cm = confusion_matrix(rec.evals, "test", names)
    table = table.rename(columns={c: tr(f"pc_{c}") for c in table.columns})
    return (f"<b>{tr('per_class')}</b>" + table.round(3).to_html(index=False, border=0)
            + f"<b>{tr('confusion')}</b>" + cm.to_html(border=0))


class Control:
    """Base: a widget tree, an output area and a figure redrawn into it."""

    def __init__(self):
        self.out = W.Output()
        self.fig = None
        self.result = None
        self.history: list[dict] = []

    def show_fig(self, fig):
        self.fig = fig
        plt.close(fig)
        with self.out:
            self.out.clear_output(wait=True)
            display(viz.on_screen(fig))

    @contextlib.contextmanager
    def busy(self):
        """While a run trains: its button disabled, so a second click cannot start another."""
        self.button.disabled = True
        try:
            yield
        finally:
            self.button.disabled = False

    def _ipython_display_(self):
        display(self.widget)


@contextlib.contextmanager
def logged(out: W.Output):
    """``out`` cleared, then holding what a run prints (its progress and log lines)."""
    with out:
        out.clear_output()
        yield


# ------------------------------------------------------------------------------ 3.2.4
class ScheduleExplorer(Control):
    """Scheduler kind, warmup kind and length, decay factor: the LR per step from the real
    schedulers (``ftcore.engine.schedules.preview``, the same code a run uses)."""

    def __init__(self, total_steps: int = 300, steps_per_epoch: int = 100, lr: float = 2e-4):
        super().__init__()
        self.total, self.per_epoch, self.lr = total_steps, steps_per_epoch, lr
        # the schedules whose LR is a function of the step alone, so the curve can be drawn without
        # training: not one moved by the validation loss (flat here: nothing is evaluated), nor the
        # LR finder's sweep (a diagnostic run, not a schedule to train with)
        kinds = list(SCHEDULES.where(on_validation=False, sweep=False))
        self.schedule = W.Dropdown(options=kinds, value="cosine", description=tr("schedule"), style=_style())
        self.warmup = W.Dropdown(options=list(WARMUPS), value="linear", description=tr("warmup"), style=_style())
        self.warmup_ratio = W.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.02, description=tr("warmup_ratio"),
                                          readout_format=".0%", style=_style())
        self.gamma = W.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05, description=tr("gamma"),
                                   style=_style())
        for w in (self.schedule, self.warmup, self.warmup_ratio, self.gamma):
            w.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.schedule, self.warmup]), W.HBox([self.warmup_ratio, self.gamma]),
                              self.out])
        self.update()

    def config(self) -> RunConfig:
        return RunConfig(lr=self.lr, schedule=self.schedule.value, warmup=self.warmup.value,
                         warmup_ratio=self.warmup_ratio.value, gamma=self.gamma.value)

    def update(self):
        from ftcore.engine.schedules import preview
        lrs = preview(self.config(), self.total, self.per_epoch)["all"]
        self.result = lrs
        fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
        viz.plot_lr_schedule(lrs, ax=ax)
        ax.set_title(f"{self.schedule.value} + {tr('warmup')} {self.warmup.value} ({self.warmup_ratio.value:.0%})")
        self.show_fig(fig)


# ------------------------------------------------------------------------------ 3.2.2
class FreezeExplorer(Control):
    """Freeze depth: freeze the lowest n layer groups of the real model (fastai's ``freeze_to``)
    and show each group's parameter count, trainable or frozen, and the trainable share."""

    def __init__(self, model: str | None = None):
        super().__init__()
        from ftcore.engine.layers import layer_groups
        from ftcore.engine.models import load_model
        self.model = load_model(model or RunConfig().model, 2, seed=0)
        self.groups = layer_groups(self.model)
        self.depth = W.IntSlider(value=0, min=0, max=len(self.groups) - 1, description=tr("frozen_groups"),
                                 style=_style())
        self.depth.observe(lambda _: self.update(), names="value")
        self.text = W.HTML()
        self.widget = W.VBox([self.depth, self.text, self.out])
        self.update()

    def freeze_map(self) -> pd.DataFrame:
        return pd.DataFrame([{"group": g.name, "trainable": g.trainable, "n_params": g.n_params}
                             for g in self.groups])

    def update(self):
        from ftcore.engine.layers import freeze_to
        from viz._common import _count, _group_label
        freeze_to(self.model, self.depth.value)
        df = self.freeze_map()
        self.result = df
        n_train, n_all = int(df.loc[df.trainable, "n_params"].sum()), int(df["n_params"].sum())
        share = pct(n_train / n_all)
        self.text.value = f"<b>{tr('trainable_share', n=n_train, total=n_all, pct=share)}</b>"
        on, off = "#3a8a4f", "#c8c8c8"  # the freeze map's colours, numbers written above the bars in black
        fig, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
        x = np.arange(len(df))
        ax.bar(x, df["n_params"], color=[on if t else off for t in df["trainable"]], edgecolor="white")
        ax.set_yscale("log")
        ax.set_ylim(df["n_params"].min() / 3, df["n_params"].max() * 6)
        for xi, n, t in zip(x, df["n_params"], df["trainable"]):
            ax.text(xi, n * 1.25, _count(n), ha="center", va="bottom", fontsize=11, color="black",
                    fontweight="bold" if t else "normal")
        ax.set_xticks(x)
        ax.set_xticklabels([_group_label(g) for g in df["group"]], fontsize=11, rotation=30, ha="right")
        ax.set_ylabel(tr("freeze_ylabel"), fontsize=11)
        ax.tick_params(axis="y", labelsize=10)
        ax.set_title(tr("freeze_title", n=self.depth.value, n_train=_count(n_train), pct=share), fontsize=12)
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color=on, label=tr("trainable")), Patch(color=off, label=tr("frozen"))],
                  loc="upper right", fontsize=10, frameon=True)
        ax.grid(False, axis="x")
        self.show_fig(fig)


# ------------------------------------------------------------------------------ live runs
def _fmt(w) -> str:
    v = w.value
    if isinstance(w, W.FloatLogSlider):
        return f"{v:.1e}"
    if isinstance(v, bool):
        return "✓" if v else "✗"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class LiveRun(Control):
    """A Train button (and the knobs of a subclass), a progress bar and live curves while it
    trains, then the test accuracy with the learned / collapsed verdict, and a table of every run
    so far. ``config``: a function returning the RunConfig (default :func:`lab.live_config`)."""

    def __init__(self, knobs=(), *, title: str = "", config=None, show_record: bool = False):
        super().__init__()
        self.knobs = list(knobs)
        self.slider = self.knobs[0] if self.knobs else None
        self.title, self._config, self.show_record = title, config, show_record
        self.button = _button(tr("train"))
        self.button.on_click(lambda _: self.update())
        self.progress = WidgetProgress()
        self.live_out = W.Output()
        self.summary = W.HTML()
        self.extra = W.HTML()
        self.table = W.HTML()
        self.records = []
        self.widget = W.VBox([W.HBox(self.knobs + [self.button]), self.progress.widget, self.live_out,
                              self.summary, self.extra, self.table])

    def config(self) -> RunConfig:
        return (self._config or live_config)()

    def describe(self) -> str:
        if not self.knobs:
            return self.title
        return ", ".join(f"{k.description} = {_fmt(k)}" for k in self.knobs)

    def update(self):
        with self.busy():
            rec, live = train_live(self.config(), out=self.live_out, title=self.title or self.describe(),
                                   progress=self.progress)
            self.records.append((self.slider.value if self.slider is not None else None, rec))
            self.result, self.fig = rec, live.fig
            ok, sentence = verdict(rec)
            self.summary.value = self.report(rec) + "<br>" + sentence
            self.history.append(self.row(rec, ok))
            self.table.value = history_html(self.history)
            self.extra.value = self.after(rec)
        return self.result

    def report(self, rec) -> str:
        return tr("result", setting=html.escape(self.describe()), acc=rec.metric("accuracy"),
                  maj=rec.metric("majority_frac"), steps=rec.summary["steps"], secs=rec.summary["wall_s"])

    def row(self, rec, ok: bool) -> dict:
        return {tr("col_setting"): html.escape(self.describe()), tr("col_acc"): rec.metric("accuracy"),
                tr("col_verdict"): tr("ok") if ok else tr("bad"), tr("col_steps"): int(rec.summary["steps"]),
                tr("col_secs"): f"{rec.summary['wall_s']:.0f}"}

    def after(self, rec) -> str:
        """HTML shown in the widget after the summary (subclasses: a table, the doctor, ...)."""
        out = per_class_html(rec)
        if self.show_record:
            scalar = rec.evals[~rec.evals["metric"].str.contains("/")]  # the per-class rows are above
            out += f"<b>{tr('record_tail')}</b>" + scalar.tail(8).to_html(index=False, border=0)
        return out


LiveRunControl = LiveRun  # the name earlier notebooks used


class LRInstability(LiveRun):
    """Learning rate → a short real run without clipping or warmup: loss and gradient norms show
    (in)stability; a run that collapsed to one class is flagged, not reported as completed."""

    def __init__(self):
        super().__init__([W.FloatLogSlider(value=1e-4, base=10, min=-6, max=-1.5, step=0.25, description=tr("lr"),
                                           continuous_update=False, readout_format=".1e", style=_style())])

    def config(self):
        return live_config(lr=self.slider.value, clip_grad_norm=None, warmup="none", schedule="constant")


class LabelNoise(LiveRun):
    """Share of training labels flipped → accuracy, and how well per-example loss finds them."""

    def __init__(self):
        super().__init__([W.FloatSlider(value=0.2, min=0.0, max=0.6, step=0.1, description=tr("noise"),
                                        continuous_update=False, readout_format=".0%", style=_style())])

    def config(self):
        return live_config(label_noise=self.slider.value, score_train=True)

    @staticmethod
    def found(rec) -> tuple[int, float]:
        ex = rec.examples
        k = int(ex["noisy"].sum()) if len(ex) else 0
        return k, (float(ex.nlargest(k, "loss")["noisy"].mean()) if k else float("nan"))

    def report(self, rec):
        k, p = self.found(rec)
        return super().report(rec) + ("<br>" + tr("precision", k=k, p=p) if k else "")

    def row(self, rec, ok):
        k, p = self.found(rec)
        return {**super().row(rec, ok), tr("col_precision"): p if k else "–"}


class LoraRank(LiveRun):
    """LoRA rank → trainable share and accuracy of a live run (LoRA at its own LR, 3e-3: at the
    full fine-tune's 1e-4 its adapters, which start at zero, barely move)."""

    def __init__(self):
        super().__init__([W.Dropdown(options=[1, 2, 4, 8, 16, 32], value=8, description=tr("lora_r"),
                                     style=_style())])

    def config(self):
        return live_config(peft="lora", lora_r=self.slider.value, lr=LORA_LR)

    def report(self, rec):
        return super().report(rec) + f"; {tr('col_trainable')} {pct(rec.summary['trainable_pct_at_end'] / 100)}"

    def row(self, rec, ok):
        return {**super().row(rec, ok), tr("col_trainable"): pct(rec.summary["trainable_pct_at_end"] / 100)}


class GradualUnfreeze(LiveRun):
    """Gradual unfreezing (head first, then one more group from the top every n steps): the live
    curves, the test accuracy and the recorded unfreezing events."""

    def __init__(self):
        super().__init__([W.Dropdown(options=[2, 5, 10, 20] if QUICK else [5, 10, 20], value=2 if QUICK else 10,
                                     description=tr("unfreeze_every"), style=_style())])

    def config(self):
        return live_config(freeze="gradual", unfreeze_unit="step", unfreeze_every=self.slider.value)

    def after(self, rec) -> str:
        ev = rec.events
        return ev[ev["kind"].astype(str).str.startswith("unfreeze")].to_html(index=False, border=0)


class DoctorRun(LiveRun):
    """A live run whose learning rate and clipping the reader chooses, then the run doctor's verdict."""

    def __init__(self):
        super().__init__([W.FloatLogSlider(value=1e-4, base=10, min=-6, max=-1.5, step=0.25, description=tr("lr"),
                                           continuous_update=False, readout_format=".1e", style=_style()),
                          W.Checkbox(value=True, description=tr("clip"), indent=False)])

    def config(self):
        return live_config(lr=self.knobs[0].value, clip_grad_norm=1.0 if self.knobs[1].value else None)

    def after(self, rec) -> str:
        return doctor_html(rec)


# ------------------------------------------------------------------------------ continual learning
class ForgettingControl(Control):
    """Method, EWC λ or replay fraction → a live two-task sequence (review sentiment, then news topic;
    each task on the live regime, so both learn and forgetting can show) and its accuracy matrix.
    Replay + EWC uses both knobs; joint multi-task training (the upper bound) neither."""

    def __init__(self):
        super().__init__()
        self.method = W.ToggleButtons(options=[(tr(f"method.{m}"), m) for m in ("naive", "ewc", "replay", "replay_ewc", "joint")],
                                      value="ewc", description=tr("method"), style=_style())
        self.lam = W.FloatLogSlider(value=1e6, base=10, min=2, max=8, step=0.5, description=tr("ewc_lambda"),
                                    continuous_update=False, style=_style())
        self.frac = W.FloatSlider(value=0.25, min=0.05, max=0.5, step=0.05, description=tr("replay"),
                                  continuous_update=False, readout_format=".0%", style=_style())
        self.button = _button(tr("train_sequence"))
        self.button.on_click(lambda _: self.update())
        self.live_out = W.Output()  # the sequence's progress bars (tqdm, captured here)
        self.summary = W.HTML()
        self.table = W.HTML()
        self.widget = W.VBox([self.method, W.HBox([self.lam, self.frac]), self.button, self.live_out,
                              self.summary, self.out, self.table])

    def config(self):
        from ftcore.analysis.continual import ContinualConfig
        base = live_config(eval_splits=(), train_size=32 if QUICK else 500, test_size=32 if QUICK else 300,
                           progress=True)
        return ContinualConfig(base=base, tasks=("rt-sentiment", "bbc-topic"), method=self.method.value,
                               ewc_lambda=self.lam.value, replay_fraction=self.frac.value,
                               fisher_examples=16 if QUICK else 128)

    def describe(self) -> str:
        m = self.method.value
        knobs = ([f"λ = {self.lam.value:.0e}"] if m in ("ewc", "replay_ewc") else []) + \
            ([f"{tr('replay')} = {self.frac.value:.0%}"] if m in ("replay", "replay_ewc") else [])
        return ", ".join([tr(f"method.{m}"), *knobs])

    def sequence_verdict(self, rec) -> tuple[bool, str]:
        from ftcore.records.metrics import accuracy_matrix
        from ftcore.records.validity import LEARN_MARGIN, learned_sequence
        check = learned_sequence(rec)
        if check.passed:
            return True, tr("sequence_learned")
        if current_lang() == "en":
            return False, tr("sequence_not_learned", reason=html.escape(check.reason))
        a = accuracy_matrix(rec)
        bad = []
        for i, task in enumerate(a.index):
            acc, maj = float(a.iloc[i, i]), rec.metric("majority_frac", "test", task=task)
            if math.isnan(acc) or (not math.isnan(maj) and acc < maj + LEARN_MARGIN):
                bad.append(tr("sequence_task_low", task=task, acc=acc, maj=maj))
        return False, tr("sequence_not_learned", reason="；".join(bad) or check.reason)

    def update(self):
        from ftcore.analysis.continual import train_sequence
        from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
        with self.busy():
            with logged(self.live_out):
                rec = train_sequence(self.config())
            m = accuracy_matrix(rec)
            self.result = m
            f = forgetting_metrics(m)
            a = m.to_numpy(float)
            ok, sentence = self.sequence_verdict(rec)
            self.summary.value = tr("sequence_result", method=html.escape(self.describe()), a11=a[0, 0],
                                    a12=a[-1, 0], f=f["forgetting"][0], a22=a[-1, -1], avg=f["average_accuracy"],
                                    secs=rec.summary["wall_s"]) + "<br>" + sentence
            self.history.append({tr("col_setting"): html.escape(self.describe()), tr("col_task1"): a[0, 0],
                                 tr("col_task1_end"): a[-1, 0], tr("col_forgetting"): f["forgetting"][0],
                                 tr("col_avg"): f["average_accuracy"], tr("col_verdict"): tr("ok") if ok else tr("bad"),
                                 tr("col_secs"): f"{rec.summary['wall_s']:.0f}"})
            self.table.value = history_html(self.history)
            fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
            viz.plot_accuracy_matrix(m, ax=ax)
            ax.set_title(self.describe())
            self.show_fig(fig)
        return self.result


# ------------------------------------------------------------------------------ 3.2.4 LR range test
class LRFinder(Control):
    """The LR range test on a button (``ftcore.analysis.lr_finder.lr_find``; its progress bar is
    captured inside the widget): the loss-vs-LR curve with the suggestions marked, and what they mean."""

    def __init__(self, config=None, num_steps: int | None = None):
        super().__init__()
        self._config, self.num_steps = config, num_steps or (8 if QUICK else 100)
        self.button = _button(tr("lr_find"))
        self.button.on_click(lambda _: self.update())
        self.live_out = W.Output()
        self.summary = W.HTML()
        self.widget = W.VBox([self.button, self.live_out, self.out, self.summary])

    def config(self) -> RunConfig:
        return (self._config or (lambda: live_config(train_size=64 if QUICK else 1600, progress=True)))()

    def update(self):
        from ftcore.analysis.lr_finder import lr_find
        with self.busy():
            with logged(self.live_out):
                res = lr_find(self.config(), num_steps=self.num_steps)
            self.result = res
            curve = pd.DataFrame({"lr": res.lrs, "loss": res.losses})
            stopped = len(res.lrs) < self.num_steps
            factor = res.record.config.get("divergence_factor")
            fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
            viz.plot_lr_range(curve, ax=ax, stopped_factor=factor if stopped else None)
            self.show_fig(fig)
            note = tr("lr_stopped", factor=factor or 0, n=len(res.lrs), total=self.num_steps) if stopped else ""
            self.summary.value = tr("lr_found", n=len(res.lrs), lo=res.lrs[0], hi=res.lrs[-1], steep=res.suggestion,
                                    valley=res.min_loss_lr_over_10, stopped=note)
        return self.result


# ------------------------------------------------------------------------------ seed 004 (notebook 10)
class HFTrainerRun(Control):
    """The Hugging Face Trainer demo on a button: a progress bar, a few log lines, validation
    evaluations during training, the test accuracy with its verdict, per-class precision/recall/F1
    and the run doctor. The "full recipe" box adds what seeds 001 and 003 hand to Trainer:
    layer-wise LRs, label smoothing, early stopping with the best weights loaded at the end."""

    def __init__(self, config=None):
        super().__init__()
        self._config = config
        self.button = _button(tr("hf_train"))
        self.button.on_click(lambda _: self.update())
        self.recipe = W.Checkbox(value=False, description=tr("hf_recipe"), indent=False,
                                 layout=W.Layout(width="auto"))
        self.bar = W.IntProgress(value=0, min=0, max=1, bar_style="info", layout=W.Layout(width="320px"))
        self.log = W.Output()
        self.summary = W.HTML()
        self.classes = W.HTML()
        self.extra = W.HTML()
        self.table = W.HTML()
        self.widget = W.VBox([W.HBox([self.button, self.recipe]), self.bar, self.log, self.summary, self.classes,
                              self.extra, self.table])

    def config(self) -> RunConfig:
        cfg = (self._config or live_config)()
        if not self.recipe.value:
            return cfg
        from chapter.figures.engines import RECIPE  # the engines figure's recipe, on the live run's settings
        return cfg.replace(**RECIPE)

    def update(self):
        from .hf_demo import train_with_hf_trainer
        with self.busy():
            with logged(self.log):
                rec = train_with_hf_trainer(self.config(), progress=self.bar)
            self.result = rec
            ok, sentence = verdict(rec)
            self.bar.bar_style = "success" if ok else "danger"
            setting = "HF Trainer" + (tr("hf_recipe_short") if self.recipe.value else "")
            stopped = (tr("hf_stopped", step=rec.summary["restored_step"]) if "restored_step" in rec.summary else "")
            self.summary.value = tr("result", setting=setting, acc=rec.metric("accuracy"),
                                    maj=rec.metric("majority_frac"), steps=rec.summary["steps"],
                                    secs=rec.summary["wall_s"]) + stopped + "<br>" + sentence
            self.classes.value = per_class_html(rec)
            self.history.append({tr("col_setting"): setting, tr("col_acc"): rec.metric("accuracy"),
                                 tr("col_verdict"): tr("ok") if ok else tr("bad"),
                                 tr("col_secs"): f"{rec.summary['wall_s']:.0f}"})
            self.table.value = history_html(self.history)
            self.extra.value = doctor_html(rec)
        return self.result


# ------------------------------------------------------------------------------ 3.2.3 and seed 003
class CollatorBox(Control):
    """Type a sentence: the real tokenizer and collators (classification padding, MLM masking,
    causal-LM labels, T5-style span corruption) show what the model would receive; with
    ``explain=True`` (notebook 09) also the causal shift, a decoder-style view without BERT's
    special tokens, the 80/10/10 rule row by row and why Chinese text becomes [UNK]."""

    def __init__(self, text: str = "The film is a gentle, funny and surprisingly moving story.", seed: int = 0,
                 explain: bool = False):
        super().__init__()
        from ftcore.engine.models import load_tokenizer
        self.tok = load_tokenizer(RunConfig().model)
        self.seed, self.explain = seed, explain
        self.text = W.Textarea(value=text, layout=W.Layout(width="90%"), continuous_update=False)
        self.text.observe(lambda _: self.update(), names="value")
        self.table = W.HTML()
        self.widget = W.VBox([self.text, self.table])
        self.update()

    def update(self):
        from ftcore.analysis.collate import collated_views

        from . import objectives
        views = collated_views(self.tok, self.text.value, seed=self.seed)
        if self.explain:
            views = {**views, **objectives.explained_views(self.tok, self.text.value, views)}
        self.result = views
        parts = [f"<h4>{objectives.title(name)}</h4>" + df.to_html(index=False) for name, df in views.items()]
        if self.explain:
            parts.append(objectives.unk_note(self.tok, self.text.value))
        self.table.value = "".join(parts)
        return views


def schedule_explorer(**kw) -> ScheduleExplorer:
    return ScheduleExplorer(**kw)


def freeze_explorer(**kw) -> FreezeExplorer:
    return FreezeExplorer(**kw)


__all__ = ["CollatorBox", "DoctorRun", "ForgettingControl", "FreezeExplorer", "GradualUnfreeze", "HFTrainerRun",
           "LRFinder", "LRInstability", "LabelNoise", "LiveRun", "LoraRank", "ScheduleExplorer", "freeze_explorer",
           "schedule_explorer", "verdict"]
