"""A ``transformers`` ``TrainerCallback`` that writes ftcore's RunRecord from a ``Trainer`` run.

A user of Hugging Face ``Trainer`` gets the same tables (and so the same figures) as an ftcore
run::

    rec_cb = RecordingCallback(task="my-task")
    Trainer(model=model, args=TrainingArguments(..., logging_steps=1), callbacks=[rec_cb], ...).train()
    rec_cb.record.save("runs/my-run")

Two differences from ftcore's own loop, both documented in the record's ``provenance``:
``Trainer`` clips gradients *before* callbacks see them, so per-group gradient norms are taken
with gradient hooks as each parameter's gradient is accumulated (before clipping, as in ftcore);
and the training loss reaches callbacks only through logs, so pass ``logging_steps=1`` for a
loss on every step (other steps get NaN).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings

import torch
from transformers import TrainerCallback

from . import provenance
from .layers import layer_groups
from ..records.record import RunRecord, table_from_rows


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
            if key.startswith("eval_") and isinstance(value, (int, float)):
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
        device = next(model.parameters()).device
        prov = provenance.collect(device, model_fingerprint="unknown", data_fingerprint="unknown",
                                  task_source=self.task, model_path=config["model"])
        prov["trainer"] = "transformers.Trainer via ftcore.engine.hf.RecordingCallback"
        prov["grad_norms"] = "per-parameter post-accumulate-grad hooks, before clipping"
        summary = {"status": "completed", "steps": state.global_step, "wall_s": time.perf_counter() - self.t0,
                   "epochs": state.epoch}
        self.record = RunRecord(rid, config, prov, "completed", summary, tables)
