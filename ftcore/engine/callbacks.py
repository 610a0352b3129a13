"""The loop's policies, each a callback: what to record, when to evaluate, when to stop.

Order matters at ``fit_end``: early stopping restores the best weights (10) before the final
evaluation (20), which the recorder (90) then writes down. At ``after_backward`` the divergence
check (5) runs before the recorder reads gradient norms.
"""
from __future__ import annotations

import copy
import math
import resource
from pathlib import Path

from .layers import layer_groups
from .trainer import Callback, Trainer


class DivergenceDetector(Callback):
    """Stops cleanly when the loss is NaN/inf or exceeds ``factor`` × the first loss.

    The update that produced the bad loss is discarded, the event is recorded, and the run's
    status becomes ``diverged``: the instability figure needs such runs to end, not to crash."""

    order = 5

    def __init__(self, factor: float):
        self.factor, self.first = factor, None

    def on_after_backward(self, t: Trainer) -> None:
        loss = t.loss
        if self.first is None and math.isfinite(loss):
            self.first = max(loss, 1e-3)
        if not math.isfinite(loss):
            reason = f"loss is {loss}"
        elif loss > self.factor * self.first:
            reason = f"loss {loss:.3g} > {self.factor:g} x first loss {self.first:.3g}"
        else:
            return
        t.skip_update = True
        t.log_event("diverged", reason)
        t.stop("diverged")


class Evaluator(Callback):
    """Evaluates every ``eval_every`` steps (or each epoch), and on the test split at the end."""

    order = 20

    def __init__(self, splits, *, every: int | None, at_start: bool, test_at_end: bool):
        self.splits, self.every, self.at_start, self.test_at_end = tuple(splits), every, at_start, test_at_end
        self.last_step = None

    def _run(self, t: Trainer, splits) -> None:
        if splits:
            t.run_evaluation(splits)
            self.last_step = t.step

    def on_fit_start(self, t: Trainer) -> None:
        if self.at_start:
            self._run(t, self.splits)

    def on_step_end(self, t: Trainer) -> None:
        if t.stop_reason != "diverged" and self.every and t.step % self.every == 0:
            self._run(t, self.splits)

    def on_epoch_end(self, t: Trainer) -> None:
        if t.stop_reason != "diverged" and self.every is None and self.last_step != t.step:
            self._run(t, self.splits)

    def on_fit_end(self, t: Trainer) -> None:
        if t.stop_reason == "diverged":
            return
        restored = t.summary.get("restored_step") is not None
        final = self.splits if (self.last_step != t.step or restored) else ()
        self._run(t, tuple(final) + (("test",) if self.test_at_end else ()))


class EarlyStopping(Callback):
    """Stops after ``patience`` evaluations without improving validation ``metric`` and restores
    the weights of the best evaluation (at the end of training in any case)."""

    order = 10

    def __init__(self, patience: int, metric: str = "loss", restore_best: bool = True):
        self.patience, self.metric, self.restore_best = patience, metric, restore_best
        self.best, self.best_step, self.best_state, self.bad = None, None, None, 0

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.metric == "loss" else value > self.best

    def on_eval_end(self, t: Trainer) -> None:
        val = t.last_eval.get("validation")
        if val is None or t.step == 0 or "test" in t.last_eval:
            return
        value = val[self.metric]
        if self._better(value):
            self.best, self.best_step, self.bad = value, t.step, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(t.model.state_dict())
        else:
            self.bad += 1
            if self.bad >= self.patience:
                t.log_event("early_stop", f"no better validation {self.metric} for {self.bad} "
                                          f"evaluations; best {self.best:.4f} at step {self.best_step}")
                t.stop("early_stopped")

    def on_fit_end(self, t: Trainer) -> None:
        t.summary["best_step"] = self.best_step
        if self.restore_best and self.best_state is not None and self.best_step != t.step \
                and t.stop_reason != "diverged":
            t.model.load_state_dict(self.best_state)
            t.summary["restored_step"] = self.best_step
            t.log_event("restored_best", f"weights of step {self.best_step}")


class GradualUnfreezing(Callback):
    """ULMFiT's gradual unfreezing: training starts with the head only; every ``every`` epochs
    (or steps) the next ``groups`` layer groups down are unfrozen, until all train."""

    order = 30

    def __init__(self, every: float, unit: str = "epoch", groups: int = 1):
        self.every, self.unit, self.groups = every, unit, groups
        self.order_top_down: list[str] = []

    def on_fit_start(self, t: Trainer) -> None:
        self.order_top_down = [g.name for g in reversed(t.groups) if not g.trainable]

    def on_step_end(self, t: Trainer) -> None:
        progress = t.epoch if self.unit == "epoch" else t.step
        due = min(int(progress // self.every) * self.groups, len(self.order_top_down))
        by_name = {g.name: g for g in t.groups}
        for name in self.order_top_down[:due]:
            g = by_name[name]
            if not g.trainable:
                g.set_trainable(True)
                t.log_event("unfreeze", name)


class MemoryMonitor(Callback):
    """Peak resident memory of the process during ``fit`` (MiB), and GPU peak when on CUDA.

    On Linux the kernel's high-water mark is reset at fit start (``/proc/self/clear_refs``), so
    the peak belongs to this run even when several runs share one process."""

    order = 1
    STATUS = Path("/proc/self/status")

    def _field(self, name: str) -> float | None:
        try:
            for line in self.STATUS.read_text().splitlines():
                if line.startswith(name + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def on_fit_start(self, t: Trainer) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.start = self._field("VmRSS")
        if t.device.type == "cuda":
            import torch
            torch.cuda.reset_peak_memory_stats(t.device)

    def on_fit_end(self, t: Trainer) -> None:
        peak = self._field("VmHWM") if self.reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t.summary["rss_start_mb"] = self.start
        t.summary["peak_rss_mb"] = peak
        if t.device.type == "cuda":
            import torch
            t.summary["peak_gpu_mb"] = torch.cuda.max_memory_allocated(t.device) / 2**20


class ProgressBar(Callback):
    """A tqdm bar over optimizer steps (a widget in notebooks, text in a terminal)."""

    order = 80

    def __init__(self, desc: str = ""):
        self.desc, self.bar = desc, None

    def on_fit_start(self, t: Trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=t.total_steps, desc=self.desc or t.cfg.task, unit="step",
                        mininterval=0.5, dynamic_ncols=True, leave=True)

    def on_step_end(self, t: Trainer) -> None:
        self.bar.update(1)
        shown = {"loss": f"{t.loss:.3f}", "lr": f"{t.optimizer.param_groups[-1]['lr']:.2e}"}
        if t.penalty_sum:  # EWC / L2-SP / distillation term, kept apart from the task loss
            shown["penalty"] = f"{t.penalty_sum:.3g}"
        self.bar.set_postfix(shown, refresh=False)

    def on_eval_end(self, t: Trainer) -> None:
        val = t.last_eval.get("validation")
        if val and self.bar is not None:
            self.bar.set_postfix(loss=f"{t.loss:.3f}", val_acc=f"{val['accuracy']:.3f}", refresh=False)

    def on_fit_end(self, t: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class Recorder(Callback):
    """Writes everything the figures need into row lists (turned into RunRecord tables)."""

    order = 90

    def __init__(self, grad_norms: bool = True):
        self.record_grad_norms = grad_norms
        self.rows: dict[str, list[tuple]] = {k: [] for k in
                                             ("steps", "lrs", "grad_norms", "layer_state", "evals",
                                              "examples", "predictions")}
        self.state: dict[str, bool] = {}
        # A task sequence trains one Trainer per task into one record: steps and time continue.
        self.offset_step, self.offset_time = 0, 0.0

    def _layer_state(self, t: Trainer, step: int) -> None:
        for g in t.groups:
            trainable = g.trainable
            if self.state.get(g.name) != trainable:
                self.state[g.name] = trainable
                self.rows["layer_state"].append((step, g.name, trainable, g.n_params))

    def on_fit_start(self, t: Trainer) -> None:
        self._layer_state(t, self.offset_step + t.step)

    def on_after_backward(self, t: Trainer) -> None:
        # The LR each param group will use for this update (the schedule moves after the step).
        step = self.offset_step + t.step
        self.rows["lrs"].extend((step, pg["name"], pg["layer"], pg["lr"]) for pg in t.optimizer.param_groups)
        if self.record_grad_norms:
            self.rows["grad_norms"].extend((step, k, v) for k, v in t.grad_norms().items())

    def on_step_end(self, t: Trainer) -> None:
        step = self.offset_step + t.step
        self.rows["steps"].append((step, t.epoch, t.examples_seen, t.loss, self.offset_time + t.elapsed))
        self._layer_state(t, step)

    def on_eval_end(self, t: Trainer) -> None:
        step = self.offset_step + t.step
        for split, metrics in t.last_eval.items():
            self.rows["evals"].extend((step, t.eval_task, split, m, v) for m, v in metrics.items())
        for split, rows in getattr(t, "last_predictions", {}).items():  # the test split, once, at the end
            self.rows["predictions"].extend((t.eval_task, split, i, y, p) for i, y, p in rows)

    def on_fit_end(self, t: Trainer) -> None:
        if getattr(t.cfg, "score_train", False) and t.stop_reason != "diverged":
            from .trainer import example_losses
            train = t.data.train
            losses = example_losses(t.model, t.data, device=t.device, autocast=t.autocast)
            self.rows["examples"].extend(zip(train["index"], train["label"], train["noisy"], losses))


def default_callbacks(cfg) -> list[Callback]:
    """The callbacks a normal run uses, built from its config."""
    cbs: list[Callback] = [DivergenceDetector(cfg.divergence_factor), MemoryMonitor(),
                           Evaluator(cfg.eval_splits, every=cfg.eval_every, at_start=cfg.eval_at_start,
                                     test_at_end=cfg.test_at_end),
                           Recorder(grad_norms=cfg.record_grad_norms)]
    if cfg.early_stopping_patience is not None:
        cbs.append(EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_metric))
    if cfg.freeze == "gradual":
        cbs.append(GradualUnfreezing(cfg.unfreeze_every, cfg.unfreeze_unit, cfg.unfreeze_groups))
    if cfg.progress:
        cbs.append(ProgressBar())
    return cbs


__all__ = ["Callback", "DivergenceDetector", "EarlyStopping", "Evaluator", "GradualUnfreezing",
           "MemoryMonitor", "ProgressBar", "Recorder", "default_callbacks", "layer_groups"]
