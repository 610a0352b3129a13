"""Live runs: train a small real run in the notebook with a progress bar and curves that redraw
as it trains (loss, global gradient norm, learning rate, validation accuracy)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt

from ftcore import RunConfig
from ftcore.engine.runs import build, train
from ftcore.engine.trainer import Callback, Trainer


class LiveCurves(Callback):
    """Redraws a 4-panel figure every ``every`` steps into ``out`` (an ipywidgets Output; with
    ``out=None`` the figure is only kept in ``self.fig``, e.g. in tests)."""

    order = 95  # after the Recorder

    def __init__(self, out=None, every: int = 5, title: str = ""):
        self.out, self.every, self.title = out, every, title
        self.steps, self.loss, self.gnorm, self.lr, self.val = [], [], [], [], []
        self.fig = None

    def on_step_end(self, t: Trainer) -> None:
        norms = t.grad_norms() if t.cfg.record_grad_norms else {}
        self.steps.append(t.step)
        self.loss.append(t.loss)
        self.gnorm.append(math.sqrt(sum(v * v for v in norms.values())) if norms else math.nan)
        self.lr.append(t.optimizer.param_groups[-1]["lr"])
        if t.step % self.every == 0:
            self.draw()

    def on_eval_end(self, t: Trainer) -> None:
        val = t.last_eval.get("validation")
        if val:
            self.val.append((t.step, val["accuracy"]))

    def on_fit_end(self, t: Trainer) -> None:
        self.draw()

    def draw(self):
        import viz

        if self.fig is None:
            self.fig, self.axes = plt.subplots(1, 4, figsize=(13, 2.8), layout="constrained")
            plt.close(self.fig)  # shown through the Output widget only
        for ax in self.axes:
            ax.clear()
        a_loss, a_norm, a_lr, a_val = self.axes
        a_loss.plot(self.steps, self.loss, color="C0")
        a_loss.set(xlabel=viz.t("step"), ylabel=viz.t("train_loss"))
        a_norm.plot(self.steps, self.gnorm, color="C3")
        a_norm.set(xlabel=viz.t("step"), ylabel=viz.t("grad_norm"))
        if any(g > 0 for g in self.gnorm if g == g):
            a_norm.set_yscale("log")
        a_lr.plot(self.steps, self.lr, color="C2")
        a_lr.set(xlabel=viz.t("step"), ylabel=viz.t("lr"))
        if self.val:
            s, v = zip(*self.val)
            a_val.plot(s, v, "o-", color="C1")
        a_val.set(xlabel=viz.t("step"), ylabel=viz.t("val_accuracy"))
        if self.title:
            self.fig.suptitle(self.title)
        if self.out is not None:
            from IPython.display import display
            with self.out:
                self.out.clear_output(wait=True)
                display(self.fig)
        return self.fig


def train_live(cfg: RunConfig, *, out=None, every: int = 5, title: str = ""):
    """Train ``cfg`` now (never from the cache: the point is to watch it), drawing live curves into
    ``out``. Returns ``(record, live)``; the record is the same a ``ftcore.run`` would store."""
    live = LiveCurves(out, every=every, title=title)
    trainer = build(cfg)
    trainer.add_callback(live)
    return train(cfg, trainer=trainer), live
