"""Live runs: train a small real run in the notebook with a progress bar and curves that redraw
as it trains (loss, global gradient norm, learning rate, validation accuracy), drawn by the same
viz functions as the chapter's figures. The progress bar is an ipywidgets ``IntProgress`` inside
the widget (:class:`WidgetProgress`), not a tqdm bar in JupyterLab's log console."""
from __future__ import annotations

import math
import time

import matplotlib.pyplot as plt
import pandas as pd

from ftcore import RunConfig
from ftcore.engine.runs import build, train
from ftcore.engine.trainer import Callback, Trainer

from .strings import tr


class WidgetProgress(Callback):
    """An ``IntProgress`` bar and a one-line label (``.widget``) that follow the optimizer steps,
    the training loss and the last validation accuracy. Reusable: each fit starts it afresh."""

    order = 96

    def __init__(self):
        import ipywidgets as W
        self.bar = W.IntProgress(value=0, min=0, max=1, bar_style="info",
                                 layout=W.Layout(width="320px"))
        self.label = W.HTML(tr("waiting"))
        self.widget = W.HBox([self.bar, self.label])
        self.val_acc = None
        self.t0 = None

    def on_fit_start(self, t: Trainer) -> None:
        self.bar.max, self.bar.value, self.bar.bar_style = t.total_steps, 0, "info"
        self.val_acc, self.t0 = None, time.perf_counter()
        self.label.value = tr("training")

    def on_step_end(self, t: Trainer) -> None:
        self.bar.value = t.step
        loss = t.loss if t.loss is not None and math.isfinite(t.loss) else float("nan")
        if self.val_acc is None:
            self.label.value = tr("progress", step=t.step, total=t.total_steps, loss=loss)
        else:
            self.label.value = tr("progress_val", step=t.step, total=t.total_steps, loss=loss, acc=self.val_acc)

    def on_eval_end(self, t: Trainer) -> None:
        val = t.last_eval.get("validation")
        if val:
            self.val_acc = val["accuracy"]

    def on_fit_end(self, t: Trainer) -> None:
        self.label.value = tr("testing")

    def finish(self, steps: int, secs: float, ok: bool = True) -> None:
        """After the record is complete (test evaluation included)."""
        self.bar.bar_style = "success" if ok else "danger"
        self.label.value = tr("done", steps=steps, secs=secs)


class LiveCurves(Callback):
    """Redraws a 4-panel figure about a dozen times per run (every ``every`` steps if given) into
    ``out`` (an ipywidgets Output; with ``out=None`` the figure is only kept in ``self.fig``, e.g.
    in tests). What it has seen so far is kept as record tables (:meth:`tables`: ``steps``,
    ``grad_norms``, ``lrs``, ``evals``)."""

    order = 95  # after the Recorder

    def __init__(self, out=None, every: int | None = None, title: str = ""):
        self.out, self.every, self.title = out, every, title
        self.rows = {"steps": [], "grad_norms": [], "lrs": [], "evals": []}
        self.fig = None

    def on_fit_start(self, t: Trainer) -> None:
        if self.every is None:
            self.every = max(5, t.total_steps // 12)

    def on_step_end(self, t: Trainer) -> None:
        norms = t.grad_norms() if t.cfg.record_grad_norms else {}
        self.rows["steps"].append((t.step, t.loss))
        self.rows["grad_norms"] += [(t.step, group, norm) for group, norm in norms.items()]
        self.rows["lrs"].append((t.step, t.optimizer.param_groups[-1]["lr"]))
        if t.step % (self.every or 5) == 0:
            self.draw()

    def on_eval_end(self, t: Trainer) -> None:
        val = t.last_eval.get("validation")
        if val:
            self.rows["evals"].append((t.step, "validation", "accuracy", val["accuracy"]))

    def on_fit_end(self, t: Trainer) -> None:
        self.draw()

    def tables(self) -> dict[str, pd.DataFrame]:
        cols = {"steps": ["step", "loss"], "grad_norms": ["step", "group", "norm"], "lrs": ["step", "lr"],
                "evals": ["step", "split", "metric", "value"]}
        return {name: pd.DataFrame(rows, columns=cols[name]) for name, rows in self.rows.items()}

    def draw(self):
        import viz

        if self.fig is None:
            self.fig, self.axes = plt.subplots(1, 4, figsize=(12, 3), layout="constrained")
            plt.close(self.fig)  # shown through the Output widget only
        for ax in self.axes:
            ax.clear()
        a_loss, a_norm, a_lr, a_val = self.axes
        tables = self.tables()
        viz.plot_training_loss(tables["steps"], color="C0", ax=a_loss)
        viz.plot_global_grad_norm(tables["grad_norms"], color="C3", ax=a_norm)
        viz.plot_lr_schedule(tables["lrs"], color="C2", ax=a_lr)
        viz.plot_eval_curve(tables["evals"], color="C1", ax=a_val)
        if self.title:
            self.fig.suptitle(self.title)
        if self.out is not None:
            from IPython.display import display
            with self.out:
                self.out.clear_output(wait=True)
                display(viz.on_screen(self.fig))
        return self.fig


def train_live(cfg: RunConfig, *, out=None, every: int | None = None, title: str = "",
               progress: WidgetProgress | None = None):
    """Train ``cfg`` now (never from the cache: the point is to watch it), drawing live curves into
    ``out`` and, with ``progress``, moving that widget's bar (the run's own tqdm bar is then off).
    Returns ``(record, live)``; the record is the same a ``ftcore.run`` would store."""
    live = LiveCurves(out, every=every, title=title)
    if progress is not None:
        cfg = cfg.replace(progress=False)  # not part of the run's identity
    trainer = build(cfg)
    trainer.add_callback(live)
    if progress is not None:
        trainer.add_callback(progress)
    rec = train(cfg, trainer=trainer)
    if progress is not None:
        from ftcore.records.validity import learned
        progress.finish(int(rec.summary.get("steps", trainer.step)), float(rec.summary.get("wall_s", 0.0)),
                        ok=learned(rec).passed)
    return rec, live
