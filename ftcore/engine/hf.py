"""Hugging Face ``Trainer`` runs written down as ftcore's RunRecord.

Two ways in. A user of ``Trainer`` with a model and data of their own adds the callback and gets
the same tables (and so the same figures and ``ftcore doctor``) as an ftcore run::

    rec_cb = RecordingCallback(task="my-task")
    Trainer(model=model, args=TrainingArguments(..., logging_steps=1), callbacks=[rec_cb], ...).train()
    rec_cb.record.save("runs/my-run")

Or :func:`train_hf` trains a ``RunConfig`` with the whole recipe seeds 001 and 003 use (the same
data, model, pooling and param groups as ftcore's run, so the two loops can be compared)::

    from ftcore import RunConfig
    from ftcore.engine.hf import train_hf, run_hf
    cfg = RunConfig(lr_strategy="layerwise", label_smoothing=0.1, early_stopping_patience=2,
                    early_stopping_metric="accuracy", eval_every=16)
    rec = train_hf(cfg)      # Trainer trains, evaluates, stops early, keeps the best weights
    rec = run_hf(cfg)        # the same through the run cache (its id differs from ftcore's run)

What :func:`train_hf` hands to ``Trainer``: ``eval_strategy`` ("steps" every ``eval_every`` updates,
else "epoch"), ``compute_metrics`` with accuracy, macro-F1 and per-class precision/recall/F1 (test:
the confusion matrix too), ``EarlyStoppingCallback`` with ``load_best_model_at_end`` (checkpoints in
a temporary folder) when ``early_stopping_patience`` is set, ``label_smoothing_factor``, and ftcore's
optimizer with its layer-wise param groups (``optimizers=(optimizer, None)``: Trainer builds the
warmup + decay schedule over those groups, so each keeps its own peak LR). The Trainer draws its own
data order and evaluates with its own loss (label-smoothed when ``label_smoothing`` > 0, where
ftcore's evaluation loss is plain cross-entropy), and it does not stop a diverging run
(``divergence_factor`` is ftcore's rule). What it cannot do as the config says (other schedules and
warmups, gradual unfreezing, SGD, frozen layers without dropout, ...) is refused with a ConfigError
before anything is loaded.

Two differences from ftcore's own loop, both documented in the record's ``provenance``:
``Trainer`` clips gradients *before* callbacks see them, so per-group gradient norms are taken
with gradient hooks as each parameter's gradient is accumulated (before clipping, as in ftcore);
and the training loss reaches callbacks only through logs, so pass ``logging_steps=1`` for a
loss on every step (other steps get NaN).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
import warnings

import numpy as np
import torch
from transformers import TrainerCallback

from ..config import SCHEDULES, ConfigError, RunConfig, refusal
from .layers import layer_groups
from ..records.cache import Stored, fetch_or_compute
from ..records.provenance import now as provenance_now
from ..records.record import RunRecord, table_from_rows

# ftcore schedule -> Trainer's lr_scheduler_type (the others have no Trainer equivalent)
HF_SCHEDULES = {name: kind.hf for name, kind in SCHEDULES.items() if kind.hf}


class RecordingCallback(TrainerCallback):
    """Records an HF ``Trainer`` run; the finished record is ``self.record`` after training."""

    def __init__(self, task: str = "custom", *, record_grad_norms: bool = True):
        self.task, self.record_grad_norms = task, record_grad_norms
        self.record: RunRecord | None = None

    # -- setup
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if args.logging_steps != 1:
            warnings.warn(f"logging_steps={args.logging_steps}: only logged steps will have a loss in "
                          "the record; pass logging_steps=1 for every step", stacklevel=2)
        self.groups = layer_groups(model)
        self.rows = {k: [] for k in ("steps", "lrs", "grad_norms", "layer_state", "evals", "events")}
        self.losses: dict[int, float] = {}
        self.state: dict[str, bool] = {}
        self.t0 = time.perf_counter()
        self.args, self.model = args, model
        self._sq: dict[int, torch.Tensor] = {}
        self._hooks = []
        if self.record_grad_norms:
            for g in self.groups:
                for _, p in g.params:
                    # Fires after each backward has accumulated p.grad: the last call before the
                    # optimizer step sees the full, unclipped gradient.
                    self._hooks.append(p.register_post_accumulate_grad_hook(self._grad_hook))
        self._layer_state(0)

    def _grad_hook(self, p: torch.nn.Parameter) -> None:
        self._sq[id(p)] = p.grad.detach().float().pow(2).sum()

    def _layer_state(self, step: int) -> None:
        for g in self.groups:
            if self.state.get(g.name) != g.trainable:
                self.state[g.name] = g.trainable
                self.rows["layer_state"].append((step, g.name, g.trainable, g.n_params))

    # -- every step
    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        step = state.global_step + 1
        for i, pg in enumerate(optimizer.param_groups):
            name = pg.get("name", f"group.{i}")
            self.rows["lrs"].append((step, name, pg.get("layer", "all"), pg["lr"]))
        if self.record_grad_norms:
            for g in self.groups:
                sq = [self._sq[id(p)] for _, p in g.params if id(p) in self._sq]
                norm = math.sqrt(float(torch.stack(sq).sum())) if sq else 0.0
                self.rows["grad_norms"].append((step, g.name, norm))
            self._sq.clear()

    def on_step_end(self, args, state, control, **kwargs):
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        self.rows["steps"].append([state.global_step, state.epoch or 0.0, state.global_step * per_step,
                                   math.nan, time.perf_counter() - self.t0])
        self._layer_state(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        for key, value in (metrics or {}).items():
            if key.startswith("eval_") and isinstance(value, (int, float)) and _is_metric(key[5:]):
                self.rows["evals"].append((state.global_step, self.task, "validation", key[5:], float(value)))

    # -- the end
    def on_train_end(self, args, state, control, model=None, **kwargs):
        for h in self._hooks:
            h.remove()
        for row in self.rows["steps"]:
            row[3] = self.losses.get(row[0], math.nan)
        tables = {k: table_from_rows(k, [tuple(r) for r in rows]) for k, rows in self.rows.items()}
        config = {"source": "transformers.Trainer", "task": self.task,
                  "model": getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__),
                  "training_args": json.loads(args.to_json_string())}
        rid = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
        from .record_builder import loop_provenance

        started = provenance_now() - dt.timedelta(seconds=time.perf_counter() - self.t0)
        prov = {**loop_provenance("hf", next(model.parameters()).device, model=None, tasks=[], started_at=started),
                "data_source": self.task, "model_path": config["model"],
                "trainer": "transformers.Trainer via ftcore.engine.hf.RecordingCallback"}
        summary = {"status": "completed", "steps": state.global_step, "wall_s": time.perf_counter() - self.t0,
                   "epochs": state.epoch}
        self.record = RunRecord(rid, config, prov, "completed", summary, tables)


# ------------------------------------------------------------------ a RunConfig trained by Trainer
def hf_run_id(cfg: RunConfig) -> str:
    """Like :func:`ftcore.engine.runs.run_id`, marked as a Trainer run (never the same record)."""
    from .runs import loop_run_id
    return loop_run_id("hf", cfg)


def _compute_metrics(k: int, per_class: bool):
    from .trainer import metrics_from_logits

    def compute_metrics(p) -> dict[str, float]:
        m = metrics_from_logits(torch.as_tensor(np.asarray(p.predictions)), torch.as_tensor(np.asarray(p.label_ids)),
                                k, per_class=per_class)
        m.pop("loss")  # Trainer reports its own eval loss (with label smoothing when it trains with it)
        return m
    return compute_metrics


def train_hf(cfg: RunConfig, *, callbacks: list | None = None) -> RunRecord:
    """Train ``cfg`` with ``transformers.Trainer`` now (no cache) and return its RunRecord (not saved).

    Validation every ``eval_every`` updates (else each epoch), early stopping on
    ``early_stopping_metric`` with the best weights loaded at the end when
    ``early_stopping_patience`` is set, then the test split (``test_at_end``) with per-class
    metrics. ``callbacks``: more ``TrainerCallback`` objects of your own (e.g. progress in a widget)."""
    import tempfile

    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as hf_logging

    from .data import prepare_data
    from .optim import build_optimizer
    from .preflight import check
    from .record_builder import build_record, run_summary
    from .runs import init_model, seed_everything, setup
    from .schedules import num_warmup_steps, planned_adjustments
    from .trainer import prediction_rows

    if refused := refusal("hf", cfg):
        raise ConfigError(refused)
    from .precision import resolve, warn_if_slow
    cfg = resolve(cfg)  # auto -> what is fast here; the record holds the precision used
    warn_if_slow(cfg)
    check(cfg)
    device = setup(cfg)
    data = prepare_data(cfg)
    k = data.num_labels
    model = init_model(cfg, k)
    seed_everything(cfg.seed)
    rows = lambda part: [{"input_ids": i, "labels": y} for i, y in zip(part["input_ids"], part["label"])]  # noqa: E731
    train_rows = rows(data.train)
    val = rows(data.evals["validation"]) if "validation" in data.evals else None
    steps_per_epoch = math.ceil(math.ceil(len(train_rows) / cfg.batch_size) / cfg.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = num_warmup_steps(cfg, total)
    adjusted = planned_adjustments(cfg, data, total)  # recorded as events at step 0
    by_steps = cfg.eval_every is not None
    early = cfg.early_stopping_patience is not None and val is not None
    optimizer = build_optimizer(layer_groups(model), cfg)  # ftcore's param groups: layer-wise LRs, no decay on norms
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=64,
            gradient_accumulation_steps=cfg.grad_accum, max_steps=total, learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay, warmup_steps=warmup, lr_scheduler_type=HF_SCHEDULES[cfg.schedule],
            max_grad_norm=cfg.clip_grad_norm or 0.0, label_smoothing_factor=cfg.label_smoothing,
            eval_strategy=("steps" if by_steps else "epoch") if val else "no", eval_steps=cfg.eval_every,
            save_strategy=("steps" if by_steps else "epoch") if early else "no", save_steps=cfg.eval_every,
            save_total_limit=1 if early else None, load_best_model_at_end=early,
            metric_for_best_model=("loss" if cfg.early_stopping_metric == "loss" else "accuracy") if early else None,
            greater_is_better=(cfg.early_stopping_metric != "loss") if early else None,
            train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
            logging_steps=1, report_to=[], use_cpu=device.type == "cpu", seed=cfg.seed,
            bf16=cfg.precision == "bf16", disable_tqdm=True, save_only_model=True)
        rec_cb = RecordingCallback(task=cfg.task, record_grad_norms=cfg.record_grad_norms)
        extra = [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)] if early else []
        trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=val,
                          data_collator=data.collator, compute_metrics=_compute_metrics(k, per_class=False),
                          optimizers=(optimizer, None), callbacks=[rec_cb, *extra, *(callbacks or [])])
        for noisy in (PrinterCallback, ProgressCallback):  # a printed line per step otherwise
            trainer.remove_callback(noisy)
        t0, cpu0 = time.perf_counter(), time.process_time()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Writing model shards" bar at every checkpoint otherwise
        try:
            out = trainer.train()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        train_s = time.perf_counter() - t0
        rec = rec_cb.record
        evals = [tuple(r) for r in rec.evals.itertuples(index=False)]
        events = [(0, kind, detail) for kind, detail in adjusted]
        step = trainer.state.global_step
        stop_reason, restored, predictions = None, {}, []
        if early and trainer.state.best_global_step and trainer.state.best_global_step != step:
            restored["restored_step"] = trainer.state.best_global_step
            events.append((step, "restored_best", f"weights of step {trainer.state.best_global_step} "
                                                  "(load_best_model_at_end)"))
        if early and step < total:
            stop_reason = "early_stopped"
            events.append((step, "early_stop", f"EarlyStoppingCallback: no better validation "
                                               f"{cfg.early_stopping_metric} for {cfg.early_stopping_patience} evaluations"))
        if cfg.test_at_end and "test" in data.evals:
            trainer.compute_metrics = _compute_metrics(k, per_class=True)
            # in the split's order: with group_by_length Trainer would also shuffle evaluation by length,
            # and each stored prediction must sit beside its own example
            trainer._get_eval_sampler = lambda ds: torch.utils.data.SequentialSampler(ds)
            pred = trainer.predict(rows(data.evals["test"]), metric_key_prefix="test")
            evals += [(step, cfg.task, "test", name[5:], float(v)) for name, v in pred.metrics.items()
                      if name.startswith("test_") and isinstance(v, (int, float)) and _is_metric(name[5:])]
            # each example's prediction, as ftcore's loop stores them
            logits = np.asarray(pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions)
            test = data.evals["test"]
            predictions = [(cfg.task, "test", i, y, p) for i, y, p in
                           prediction_rows(test, range(len(test["label"])), logits[:, :k].argmax(-1))]
    wall = time.perf_counter() - t0
    model.eval()
    summary = run_summary(model, data, steps=step, total_steps=total, steps_per_epoch=steps_per_epoch,
                          warmup_steps=warmup, epochs=step / steps_per_epoch,
                          examples_seen=step * cfg.batch_size * cfg.grad_accum, wall_s=wall, train_s=train_s,
                          cpu_s=time.process_time() - cpu0, extra={"train_loss": float(out.training_loss), **restored})
    return build_record("hf", cfg, device=device, tasks=[data.task],
                        tables={**rec.tables, "evals": evals, "predictions": predictions},
                        events=events, stop_reason=stop_reason, summary=summary)


def _is_metric(name: str) -> bool:
    """Metric names of an evaluation (Trainer's runtime/samples-per-second rows are not metrics)."""
    return not name.endswith(("runtime", "per_second"))


def stored_hf_run(cfg: RunConfig, runs_dir=None) -> Stored:
    from .runs import stored_loop_run
    return stored_loop_run("hf", cfg, train_hf, runs_dir)


def run_hf(cfg: RunConfig, *, runs_dir=None, force: bool = False) -> RunRecord:
    """The HF Trainer run of ``cfg`` through the run cache (trained and saved if not stored)."""
    return fetch_or_compute(stored_hf_run(cfg, runs_dir), force=force)


__all__ = ["HF_SCHEDULES", "RecordingCallback", "hf_run_id", "run_hf", "stored_hf_run", "train_hf"]
