"""The notebooks' knobs. Each control is a small class: ``.widget`` is what JupyterLab shows (it
also displays itself), ``.fig`` the figure it redraws, ``.update()`` what a change triggers, so
tests can turn the knobs without a browser. Anything that trains waits for a button or for the
slider to be released (``continuous_update=False``)."""
from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import viz
from ftcore import RunConfig
from ftcore.engine.config import SCHEDULES, WARMUPS

from .env import QUICK, live_config
from .live import train_live


class Control:
    """Base: a widget tree, an output area and a figure redrawn into it."""

    def __init__(self):
        self.out = W.Output()
        self.fig = None
        self.result = None

    def show_fig(self, fig):
        self.fig = fig
        plt.close(fig)
        with self.out:
            self.out.clear_output(wait=True)
            display(fig)

    def _ipython_display_(self):
        display(self.widget)


# ------------------------------------------------------------------------------ 3.2.4
class ScheduleExplorer(Control):
    """Scheduler kind, warmup kind and length, decay factor: the LR per step from the real
    schedulers (``ftcore.engine.schedules.preview``, the same code a run uses)."""

    def __init__(self, total_steps: int = 300, steps_per_epoch: int = 100, lr: float = 2e-4):
        super().__init__()
        self.total, self.per_epoch, self.lr = total_steps, steps_per_epoch, lr
        kinds = [s for s in SCHEDULES if s not in ("plateau", "range_test")]
        self.schedule = W.Dropdown(options=kinds, value="cosine", description="schedule")
        self.warmup = W.Dropdown(options=list(WARMUPS), value="linear", description="warmup")
        self.warmup_ratio = W.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.02, description="warmup %",
                                          readout_format=".0%")
        self.gamma = W.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05, description="decay α (γ)")
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
        ax.set_title(f"{self.schedule.value} + warmup {self.warmup.value} ({self.warmup_ratio.value:.0%})")
        self.show_fig(fig)


# ------------------------------------------------------------------------------ 3.2.2
class FreezeExplorer(Control):
    """Freeze depth: freeze the lowest n layer groups of the real model (fastai's ``freeze_to``)
    and show its freeze map and trainable parameter count."""

    def __init__(self, model: str | None = None):
        super().__init__()
        from ftcore.engine.layers import layer_groups
        from ftcore.engine.models import load_model
        self.model = load_model(model or RunConfig().model, 2, seed=0)
        self.groups = layer_groups(self.model)
        self.depth = W.IntSlider(value=0, min=0, max=len(self.groups) - 1, description="frozen groups",
                                 style={"description_width": "initial"})
        self.depth.observe(lambda _: self.update(), names="value")
        self.text = W.HTML()
        self.widget = W.VBox([self.depth, self.text, self.out])
        self.update()

    def freeze_map(self) -> pd.DataFrame:
        return pd.DataFrame([{"group": g.name, "trainable": g.trainable, "n_params": g.n_params}
                             for g in self.groups])

    def update(self):
        from ftcore.engine.layers import freeze_to
        freeze_to(self.model, self.depth.value)
        df = self.freeze_map()
        self.result = df
        n_train, n_all = int(df.loc[df.trainable, "n_params"].sum()), int(df["n_params"].sum())
        self.text.value = (f"<b>{viz.t('trainable_params')}: {n_train:,} / {n_all:,} "
                           f"({100 * n_train / n_all:.2f}%)</b>")
        fig, ax = plt.subplots(figsize=(11, 2.2), layout="constrained")
        # one row of the chapter's freeze map: the model as freeze_to(n) leaves it
        viz.plot_freeze_map(df.assign(step=0, strategy=f"freeze_to({self.depth.value})"), ax=ax)
        ax.set_ylabel("")
        self.show_fig(fig)


# ------------------------------------------------------------------------------ live runs
class LiveRunControl(Control):
    """A slider (released = nothing yet), a Train button, live curves while it trains, and a
    one-line result. Subclasses say which config a slider value means."""

    label = "train"

    def __init__(self, slider):
        super().__init__()
        self.slider = slider
        self.button = W.Button(description=self.label, button_style="primary", icon="play")
        self.button.on_click(lambda _: self.update())
        self.live_out = W.Output()
        self.summary = W.HTML()
        self.records = []
        self.widget = W.VBox([W.HBox([self.slider, self.button]), self.live_out, self.summary, self.out])

    def config(self) -> RunConfig:
        raise NotImplementedError

    def update(self):
        self.button.disabled = True
        try:
            with self.live_out:
                self.live_out.clear_output()
                rec, live = train_live(self.config(), out=self.live_out, title=self.describe())
            self.records.append((self.slider.value, rec))
            self.result = rec
            self.fig = live.fig
            self.summary.value = self.report(rec)
            self.after(rec)
        finally:
            self.button.disabled = False
        return self.result

    def describe(self) -> str:
        return f"{self.slider.description} = {self.slider.value:g}"

    def report(self, rec) -> str:
        return (f"{self.describe()}: status <b>{rec.status}</b>, "
                f"{viz.t('test_accuracy')} <b>{rec.metric('accuracy'):.3f}</b>, "
                f"{rec.summary['steps']} steps in {rec.summary['wall_s']:.1f} s")

    def after(self, rec):
        pass


class LRInstability(LiveRunControl):
    """Learning rate → a short real run: loss and gradient norms show (in)stability."""

    def __init__(self):
        super().__init__(W.FloatLogSlider(value=2e-4, base=10, min=-6, max=-1.5, step=0.25, description="LR",
                                          continuous_update=False, readout_format=".1e"))

    def config(self):
        return live_config(lr=self.slider.value, clip_grad_norm=None, warmup="none", schedule="constant")


class LabelNoise(LiveRunControl):
    """Share of training labels flipped → accuracy, and how well per-example loss finds them."""

    def __init__(self):
        super().__init__(W.FloatSlider(value=0.2, min=0.0, max=0.6, step=0.1, description="noise",
                                       continuous_update=False))

    def config(self):
        return live_config(label_noise=self.slider.value, score_train=True)

    def report(self, rec):
        ex = rec.examples
        k = int(ex["noisy"].sum())
        found = ex.nlargest(k, "loss")["noisy"].mean() if k else float("nan")
        return super().report(rec) + (f"; precision@{k} of the highest-loss examples: <b>{found:.2f}</b>" if k else "")


class LoraRank(LiveRunControl):
    """LoRA rank → trainable share and accuracy of a live run."""

    def __init__(self):
        super().__init__(W.Dropdown(options=[1, 2, 4, 8, 16, 32], value=8, description="LoRA r"))

    def config(self):
        return live_config(peft="lora", lora_r=self.slider.value, lr=1e-3)

    def report(self, rec):
        return super().report(rec) + f"; trainable {rec.summary['trainable_pct_at_end']:.2f}%"


class ForgettingControl(Control):
    """EWC λ or replay fraction → a live two-task sequence and its accuracy matrix."""

    def __init__(self):
        super().__init__()
        self.method = W.ToggleButtons(options=["naive", "ewc", "replay"], value="ewc")
        self.lam = W.FloatLogSlider(value=1e6, base=10, min=2, max=8, step=0.5, description="EWC λ",
                                    continuous_update=False)
        self.frac = W.FloatSlider(value=0.25, min=0.05, max=0.5, step=0.05, description="replay",
                                  continuous_update=False)
        self.button = W.Button(description="train the sequence", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.update())
        self.summary = W.HTML()
        self.widget = W.VBox([self.method, W.HBox([self.lam, self.frac]), self.button, self.summary, self.out])

    def config(self):
        from ftcore.analysis.continual import ContinualConfig
        base = live_config(eval_splits=(), test_size=32 if QUICK else 300, train_size=32 if QUICK else 400)
        return ContinualConfig(base=base, tasks=("rt-sentiment", "bbc-topic"), method=self.method.value,
                               ewc_lambda=self.lam.value, replay_fraction=self.frac.value,
                               fisher_examples=16 if QUICK else 128)

    def update(self):
        from ftcore.analysis.continual import train_sequence
        from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
        self.button.disabled = True
        try:
            rec = train_sequence(self.config())
            m = accuracy_matrix(rec)
            self.result = m
            f = forgetting_metrics(m)
            self.summary.value = (f"{self.method.value}: forgetting of task 1 <b>{f['forgetting'][0]:.3f}</b>, "
                                  f"final average accuracy <b>{f['average_accuracy']:.3f}</b>, "
                                  f"{rec.summary['train_s']:.0f} s")
            fig, ax = plt.subplots(figsize=(4.5, 3), layout="constrained")
            viz.plot_accuracy_matrix(m, ax=ax)
            ax.set_title(self.method.value)
            self.show_fig(fig)
        finally:
            self.button.disabled = False
        return self.result


# ------------------------------------------------------------------------------ 3.2.3 and seed 003
class CollatorBox(Control):
    """Type a sentence: the real tokenizer and collators (classification padding, MLM masking,
    causal-LM labels, T5-style span corruption) show what the model would receive."""

    def __init__(self, text: str = "The film is a gentle, funny and surprisingly moving story.", seed: int = 0):
        super().__init__()
        from ftcore.engine.models import load_tokenizer
        self.tok = load_tokenizer(RunConfig().model)
        self.seed = seed
        self.text = W.Textarea(value=text, layout=W.Layout(width="90%"), continuous_update=False)
        self.text.observe(lambda _: self.update(), names="value")
        self.table = W.HTML()
        self.widget = W.VBox([self.text, self.table])
        self.update()

    def update(self):
        from ftcore.analysis.collate import collated_views
        views = collated_views(self.tok, self.text.value, seed=self.seed)
        self.result = views
        self.table.value = "".join(f"<h4>{name}</h4>" + df.to_html(index=False) for name, df in views.items())
        return views


def schedule_explorer(**kw) -> ScheduleExplorer:
    return ScheduleExplorer(**kw)


def freeze_explorer(**kw) -> FreezeExplorer:
    return FreezeExplorer(**kw)


__all__ = ["CollatorBox", "ForgettingControl", "FreezeExplorer", "LRInstability", "LabelNoise", "LoraRank",
           "ScheduleExplorer", "freeze_explorer", "schedule_explorer"]
