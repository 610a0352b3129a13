"""The same fine-tuning run under PyTorch Lightning, written down as the same RunRecord.

Seed 002 trains its classifier with Lightning. This module shows what that looks like over ftcore's
own pieces (``RunConfig``, data, model with its freezing/PEFT/pooling, optimizer param groups and
schedule), so the two loops can be compared on one config::

    from ftcore import RunConfig
    from ftcore.engine.lightning import train_lightning, run_lightning

    cfg = RunConfig(task="bbc-topic", train_size=1000, epochs=2)   # seed 002's AG News → bbc-topic
    rec = train_lightning(cfg)      # Lightning trains; RecordingCallback writes the RunRecord
    rec = run_lightning(cfg)        # the same through the run cache (id differs from ftcore's run)

* :class:`FtcoreLightningModule` — ``training_step`` (cross-entropy with label smoothing),
  ``validation_step`` / ``test_step`` (logits → confusion matrix → accuracy, macro-F1, ... exactly as
  :func:`ftcore.engine.trainer.evaluate`), ``configure_optimizers`` (ftcore's param groups and
  :class:`~ftcore.engine.schedules.LRSchedule`, stepped once per optimizer update).
* :class:`RecordingCallback` — a ``lightning.pytorch.Callback`` that fills the RunRecord tables
  (steps, lrs, grad_norms before clipping, layer_state, evals, events), so viz and
  ``ftcore doctor`` read a Lightning run like any other.
* :class:`BestWeights` — early stopping on validation with the best weights restored (ftcore's rule).

Lightning does the rest: the loop, gradient accumulation (``accumulate_grad_batches``), clipping
(``gradient_clip_val``), bf16 autocast (``precision="bf16-mixed"``), the device. What ftcore's loop
does that this path does not: gradual unfreezing, the plateau schedule, per-example training losses
and the frozen-feature cache (a frozen bottom is recomputed every step); asking for the first three
is a ConfigError.

Install: ``pip install lightning`` (or ``pip install -e '.[lab]'``).
"""
from __future__ import annotations

import copy
import math
import time
import warnings

import torch
import torch.nn.functional as F

try:
    import lightning.pytorch as pl
except ImportError as _exc:  # pragma: no cover - the message is the point
    raise ImportError("ftcore.engine.lightning needs PyTorch Lightning: pip install lightning "
                      "(or pip install -e '.[lab]')") from _exc

from ..config import ConfigError, RunConfig, refusal
from .data import TaskData, eval_loader, prepare_data, train_loader
from .layers import frozen_eval, layer_groups
from .optim import build_optimizer
from .record_builder import build_record, run_summary
from .schedules import LRSchedule, planned_adjustments
from .trainer import metrics_from_logits, prediction_rows
from ..records.cache import Stored, fetch_or_compute
from ..records.record import RunRecord


class FtcoreLightningModule(pl.LightningModule):
    """ftcore's model, data, optimizer and schedule as a LightningModule.

    Build it with :meth:`from_config` (or pass the pieces yourself)."""

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, data: TaskData):
        super().__init__()
        self.cfg, self.model, self.data = cfg, model, data
        self.groups = layer_groups(model)
        n_batches = math.ceil(len(data.train["label"]) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        self.eval_splits = tuple(cfg.eval_splits)
        # state the RecordingCallback reads
        self.events: list[tuple[int, str, str]] = [
            (0, k, d) for k, d in planned_adjustments(cfg, data, self.total_steps)]
        self.summary: dict = {}
        self.examples_seen = 0
        self.last_eval: dict[str, dict[str, float]] = {}
        self.eval_s = 0.0
        self._loss_sum, self._loss_n = 0.0, 0  # the current update's micro-batches
        self._first_loss = None
        self._outputs: dict[str, list] = {}
        self._eval_t0 = 0.0

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "FtcoreLightningModule":
        """The module of ``cfg``: ftcore's data and model (freezing, PEFT, pooling applied)."""
        if refused := refusal("lightning", cfg):
            raise ConfigError(refused)
        from .precision import resolve, warn_if_slow
        from .preflight import check
        from .runs import init_model, seed_everything, setup
        cfg = resolve(cfg)  # auto -> what is fast here; the record holds the precision used
        warn_if_slow(cfg)
        check(cfg)
        setup(cfg)
        data = prepare_data(cfg)
        model = init_model(cfg, data.num_labels)
        seed_everything(cfg.seed)
        return cls(cfg, model, data)

    # ---------------------------------------------------------------- data
    def train_dataloader(self):
        # reload_dataloaders_every_n_epochs=1: a new shuffle each epoch, seeded as ftcore's loop does
        return train_loader(self.data, self.cfg, epoch_seed=self.cfg.seed * 1009 + self.current_epoch)

    def val_dataloader(self):
        return [eval_loader(self.data, s) for s in self.eval_splits]

    def test_dataloader(self):
        loader = eval_loader(self.data, "test")
        self._test_order = loader.order  # loader position -> split position (per-example predictions)
        return loader

    # ---------------------------------------------------------------- training
    def forward(self, **inputs) -> torch.Tensor:
        return self.model(**inputs).logits

    def on_fit_start(self):
        self.model.train()  # (the first batch sets it again; here it keeps Lightning's start-of-fit check quiet)

    def on_train_batch_start(self, batch, batch_idx):
        # as ftcore's loop: training mode (dropout on) each step. Lightning 2.x no longer calls
        # .train() at the start of fit and restores each module's mode after validation, and a
        # from_pretrained model starts in eval mode: without this the whole model trained with
        # dropout off (Lightning's "Found N module(s) in eval mode" warning)
        self.model.train()
        if not self.cfg.frozen_dropout:
            frozen_eval(self.model)  # frozen layers as a fixed feature extractor: no dropout

    def training_step(self, batch, batch_idx):
        labels = batch["labels"]
        logits = self(**{k: v for k, v in batch.items() if k != "labels"})
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
        value, n = loss.item(), len(labels)
        # divergence: end the run cleanly (returning None skips this update)
        if self._first_loss is None and math.isfinite(value):
            self._first_loss = max(value, 1e-3)
        if not math.isfinite(value) or value > self.cfg.divergence_factor * self._first_loss:
            reason = (f"loss is {value}" if not math.isfinite(value) else
                      f"loss {value:.3g} > {self.cfg.divergence_factor:g} x first loss {self._first_loss:.3g}")
            self.events.append((self.trainer.global_step + 1, "diverged", reason))
            self.summary["stop_reason"] = "diverged"
            self.trainer.should_stop = True
            return None
        self._loss_sum += value * n
        self._loss_n += n
        self.examples_seen += n
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=n)
        return loss

    def take_update_loss(self) -> float:
        """Mean training loss of the update just applied (weighted by examples); resets it."""
        loss = self._loss_sum / self._loss_n if self._loss_n else math.nan
        self._loss_sum, self._loss_n = 0.0, 0
        return loss

    def configure_optimizers(self):
        # Lightning's bf16-mixed plugin refuses to clip the gradients of a fused optimizer
        optimizer = build_optimizer(self.groups, self.cfg, fused=self.cfg.precision != "bf16")
        self.schedule = LRSchedule(optimizer, self.cfg, self.total_steps, self.steps_per_epoch)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.schedule.torch, "interval": "step", "frequency": 1}}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        self.schedule.step()  # ftcore's schedule (one-cycle's last step and warmup handled there)

    # ---------------------------------------------------------------- evaluation
    def _eval_step(self, stage: str, batch, dataloader_idx: int) -> None:
        split = "test" if stage == "test" else self.eval_splits[dataloader_idx]
        labels = batch["labels"]
        logits = self(**{k: v for k, v in batch.items() if k != "labels"})
        self._outputs.setdefault(split, []).append((logits.detach().float().cpu(), labels.cpu()))

    def on_validation_epoch_start(self):
        self._outputs, self._eval_t0 = {}, time.perf_counter()

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._eval_step("validation", batch, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._eval_step("test", batch, dataloader_idx)

    def _eval_epoch_end(self) -> None:
        self.last_eval = {}
        for split, parts in self._outputs.items():
            logits = torch.cat([p[0] for p in parts])
            labels = torch.cat([p[1] for p in parts])
            self.last_eval[split] = metrics_from_logits(logits, labels, self.data.num_labels,
                                                        per_class=split == "test")
            if split == "test":  # each example's prediction, stored as ftcore's loop stores them
                self.last_predictions = prediction_rows(self.data.evals["test"], self._test_order,
                                                        logits[:, :self.data.num_labels].argmax(-1).tolist())
            for m, v in self.last_eval[split].items():
                self.log(f"{split}_{m}", v, add_dataloader_idx=False)
        self._outputs = {}
        self.eval_s += time.perf_counter() - self._eval_t0

    def on_validation_epoch_end(self):
        self._eval_epoch_end()

    def on_test_epoch_end(self):
        self._eval_epoch_end()


class RecordingCallback(pl.Callback):
    """Writes the RunRecord tables of a Lightning run of :class:`FtcoreLightningModule`.

    Gradient norms are read in ``on_before_optimizer_step``, which Lightning calls after the
    gradients of all accumulated batches exist and before it clips them (as ftcore records them)."""

    def __init__(self, record_grad_norms: bool = True):
        self.record_grad_norms = record_grad_norms
        self.rows: dict[str, list[tuple]] = {k: [] for k in ("steps", "lrs", "grad_norms", "layer_state", "evals",
                                                             "predictions")}
        self.state: dict[str, bool] = {}
        self.last_step = 0
        self.last_eval_step: int | None = None
        self.t0 = time.perf_counter()

    def _layer_state(self, m: FtcoreLightningModule, step: int) -> None:
        for g in m.groups:
            if self.state.get(g.name) != g.trainable:
                self.state[g.name] = g.trainable
                self.rows["layer_state"].append((step, g.name, g.trainable, g.n_params))

    def on_fit_start(self, trainer, m):
        self.t0 = time.perf_counter()
        self._layer_state(m, 0)

    def on_before_optimizer_step(self, trainer, m, optimizer):
        step = trainer.global_step + 1  # the update about to be applied
        self.rows["lrs"].extend((step, pg["name"], pg["layer"], pg["lr"]) for pg in optimizer.param_groups)
        if self.record_grad_norms:
            for g in m.groups:
                grads = [p.grad for _, p in g.params if p.grad is not None]
                norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
                self.rows["grad_norms"].append((step, g.name, norm))

    def on_train_batch_end(self, trainer, m, outputs, batch, batch_idx):
        step = trainer.global_step
        if step > self.last_step:  # an optimizer update was applied with this batch
            self.last_step = step
            n_train = len(m.data.train["label"])
            self.rows["steps"].append((step, m.examples_seen / n_train, m.examples_seen, m.take_update_loss(),
                                       time.perf_counter() - self.t0))
            self._layer_state(m, step)

    def _record_eval(self, trainer, m) -> None:
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        for split, metrics in m.last_eval.items():
            self.rows["evals"].extend((step, m.cfg.task, split, k, v) for k, v in metrics.items())
        if "test" in m.last_eval:
            self.rows["predictions"].extend((m.cfg.task, "test", i, y, p) for i, y, p in m.last_predictions)
        else:
            self.last_eval_step = step

    def on_validation_end(self, trainer, m):
        self._record_eval(trainer, m)

    def on_test_end(self, trainer, m):
        self._record_eval(trainer, m)


class BestWeights(pl.Callback):
    """ftcore's early stopping: stop after ``patience`` evaluations without a better validation
    ``metric`` and, at the end, restore the weights of the best evaluation."""

    def __init__(self, patience: int | None, metric: str = "loss"):
        self.patience, self.metric = patience, metric
        self.best, self.best_step, self.best_state, self.bad = None, None, None, 0

    def on_validation_end(self, trainer, m):
        val = m.last_eval.get("validation")
        step = trainer.global_step
        if trainer.sanity_checking or val is None or step == 0:
            return
        value = val[self.metric]
        better = self.best is None or (value < self.best if self.metric == "loss" else value > self.best)
        if better:
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = copy.deepcopy(m.model.state_dict())
        else:
            self.bad += 1
            if self.patience is not None and self.bad >= self.patience:
                m.events.append((step, "early_stop", f"no better validation {self.metric} for {self.bad} "
                                                     f"evaluations; best {self.best:.4f} at step {self.best_step}"))
                m.summary["stop_reason"] = "early_stopped"
                trainer.should_stop = True

    def on_fit_end(self, trainer, m):
        m.summary["best_step"] = self.best_step
        if self.patience is None:
            return
        if self.best_state is not None and self.best_step != trainer.global_step \
                and m.summary.get("stop_reason") != "diverged":
            m.model.load_state_dict(self.best_state)
            m.summary["restored_step"] = self.best_step
            m.events.append((trainer.global_step, "restored_best", f"weights of step {self.best_step}"))


def lightning_trainer(cfg: RunConfig, callbacks: list, *, device: torch.device, max_steps: int) -> pl.Trainer:
    """The ``lightning.pytorch.Trainer`` for ``cfg``: its steps, accumulation, clipping, precision,
    evaluation cadence and device (no logger, no checkpoints: the RunRecord is the log)."""
    if cfg.eval_every is not None:  # Lightning counts training batches, ftcore optimizer updates
        cadence = dict(val_check_interval=cfg.eval_every * cfg.grad_accum, check_val_every_n_epoch=None)
    else:
        cadence = dict(check_val_every_n_epoch=1)
    return pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
        max_steps=max_steps, max_epochs=-1, accumulate_grad_batches=cfg.grad_accum,
        gradient_clip_val=cfg.clip_grad_norm, gradient_clip_algorithm="norm",
        precision="bf16-mixed" if cfg.precision == "bf16" else "32-true",
        callbacks=callbacks, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=cfg.progress, num_sanity_val_steps=0, reload_dataloaders_every_n_epochs=1,
        **cadence)


def lightning_run_id(cfg: RunConfig) -> str:
    """Like :func:`ftcore.engine.runs.run_id`, marked as a Lightning run (never the same record)."""
    from .runs import loop_run_id
    return loop_run_id("lightning", cfg)


def train_lightning(cfg: RunConfig, *, module: FtcoreLightningModule | None = None,
                    callbacks: list | None = None) -> RunRecord:
    """Train ``cfg`` with PyTorch Lightning now (no cache) and return its RunRecord (not saved).

    Validation runs as ``cfg`` says (every ``eval_every`` updates, else each epoch), once more at
    the end if the last update was not evaluated (or best weights were restored), then the test
    split (``test_at_end``). ``callbacks``: more Lightning callbacks of your own."""
    from .runs import resolve_device

    module = module or FtcoreLightningModule.from_config(cfg)
    cfg = module.cfg  # precision resolved
    device = resolve_device(cfg.device)
    recorder = RecordingCallback(cfg.record_grad_norms)
    best = BestWeights(cfg.early_stopping_patience, cfg.early_stopping_metric)
    trainer = lightning_trainer(cfg, [recorder, best, *(callbacks or [])], device=device,
                                max_steps=module.total_steps)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        trainer.fit(module)
        diverged = module.summary.get("stop_reason") == "diverged"
        if not diverged:
            if recorder.last_eval_step != trainer.global_step or "restored_step" in module.summary:
                trainer.validate(module, verbose=False)
            if cfg.test_at_end:
                trainer.test(module, verbose=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    module.model.eval()
    return _to_record(module, recorder, device, wall, cpu)


def _to_record(m: FtcoreLightningModule, rec: RecordingCallback, device: torch.device, wall: float,
               cpu: float | None = None) -> RunRecord:
    extra = dict(m.summary)
    stop_reason = extra.pop("stop_reason", None)
    summary = run_summary(m.model, m.data, steps=len(rec.rows["steps"]), total_steps=m.total_steps,
                          steps_per_epoch=m.steps_per_epoch, warmup_steps=m.schedule.warmup_steps,
                          epochs=m.examples_seen / len(m.data.train["label"]), examples_seen=m.examples_seen,
                          wall_s=wall, eval_s=m.eval_s, train_s=wall - m.eval_s, cpu_s=cpu, extra=extra)
    return build_record("lightning", m.cfg, device=device, tasks=[m.data.task], tables=rec.rows, events=m.events,
                        stop_reason=stop_reason, summary=summary)


def stored_lightning_run(cfg: RunConfig, runs_dir=None) -> Stored:
    from .runs import stored_loop_run
    return stored_loop_run("lightning", cfg, train_lightning, runs_dir)


def run_lightning(cfg: RunConfig, *, runs_dir=None, force: bool = False) -> RunRecord:
    """The Lightning run of ``cfg`` through the run cache (trained and saved if not stored)."""
    return fetch_or_compute(stored_lightning_run(cfg, runs_dir), force=force)


__all__ = ["BestWeights", "FtcoreLightningModule", "RecordingCallback", "lightning_run_id",
           "lightning_trainer", "metrics_from_logits", "run_lightning", "stored_lightning_run",
           "train_lightning"]
