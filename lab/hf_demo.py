"""Monitoring a Hugging Face ``Trainer`` run (seed 004): the same data and model as an ftcore run,
trained by ``transformers.Trainer`` through :func:`ftcore.engine.hf.train_hf` (evaluation during
training, ``compute_metrics`` with per-class precision/recall/F1, early stopping with the best
weights loaded at the end, label smoothing and layer-wise param groups when the config asks for
them), so the result is a RunRecord that viz and the run doctor read like any other.

This module only adds what a notebook needs: a handful of log lines instead of the Trainer's
per-step table, and a progress bar moved every step."""
from __future__ import annotations

import math

from ftcore import RunConfig
from ftcore.engine.hf import train_hf

from .strings import tr


def train_with_hf_trainer(cfg: RunConfig, *, log=print, progress=None, n_logs: int = 6, n_evals: int = 4):
    """Train ``cfg`` with HF Trainer and return its RunRecord: validation about ``n_evals`` times
    during training (unless ``cfg.eval_every`` says otherwise), the test split at the end.

    ``log``: called with about ``n_logs`` progress lines and one line per evaluation (``print`` by
    default; a widget passes its own). ``progress``: an ``ipywidgets.IntProgress`` moved every step."""
    from transformers import TrainerCallback

    state = {}

    class SparseLog(TrainerCallback):
        def on_train_begin(self, args, st, control, **kw):
            state["total"] = st.max_steps
            state["every"] = max(1, math.ceil(st.max_steps / n_logs))

        def on_log(self, args, st, control, logs=None, **kw):
            step, total = st.global_step, state["total"]
            if progress is not None:
                progress.max, progress.value = total, step
            if logs and "loss" in logs and (step % state["every"] == 0 or step == total):
                log(tr("hf_log", step=step, total=total, loss=float(logs["loss"])))

        def on_evaluate(self, args, st, control, metrics=None, **kw):
            if metrics and "eval_accuracy" in metrics:
                log(tr("hf_eval", step=st.global_step, loss=metrics.get("eval_loss", float("nan")),
                       acc=metrics["eval_accuracy"]))

    if cfg.eval_every is None and cfg.train_size:  # the recorded config says how often it evaluated
        steps = cfg.max_steps or math.ceil(cfg.epochs * math.ceil(cfg.train_size / cfg.batch_size) / cfg.grad_accum)
        cfg = cfg.replace(eval_every=max(1, math.ceil(steps / n_evals)))
    return train_hf(cfg, callbacks=[SparseLog()])


__all__ = ["train_with_hf_trainer"]
