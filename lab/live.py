"""Live runs: train a small real run in the notebook with a progress bar and curves that redraw
as it trains (loss, global gradient norm, learning rate, validation accuracy), drawn by the same
viz functions as the chapter's figures."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ftcore import RunConfig
from ftcore.engine.runs import build, train
from ftcore.engine.trainer import Callback, Trainer


class LiveCurves(Callback):
    """Redraws a 4-panel figure every ``every`` steps into ``out`` (an ipywidgets Output; with
    ``out=None`` the figure is only kept in ``self.fig``, e.g. in tests). What it has seen so far
    is kept as record tables (:meth:`tables`: ``steps``, ``grad_norms``, ``lrs``, ``evals``)."""

    order = 95  # after the Recorder

    def __init__(self, out=None, every: int = 5, title: str = ""):
        self.out, self.every, self.title = out, every, title
        self.rows = {"steps": [], "grad_norms": [], "lrs": [], "evals": []}
        self.fig = None

    def on_step_end(self, t: Trainer) -> None:
        norms = t.grad_norms() if t.cfg.record_grad_norms else {}
        self.rows["steps"].append((t.step, t.loss))
        self.rows["grad_norms"] += [(t.step, group, norm) for group, norm in norms.items()]
        self.rows["lrs"].append((t.step, t.optimizer.param_groups[-1]["lr"]))
        if t.step % self.every == 0:
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
            self.fig, self.axes = plt.subplots(1, 4, figsize=(13, 2.8), layout="constrained")
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
                display(self.fig)
        return self.fig


def train_live(cfg: RunConfig, *, out=None, every: int = 5, title: str = ""):
    """Train ``cfg`` now (never from the cache: the point is to watch it), drawing live curves into
    ``out``. Returns ``(record, live)``; the record is the same a ``ftcore.run`` would store."""
    live = LiveCurves(out, every=every, title=title)
    trainer = build(cfg)
    trainer.add_callback(live)
    return train(cfg, trainer=trainer), live
