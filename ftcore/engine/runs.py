"""One call from a config to a saved record: ``run(cfg)``.

``train(cfg)`` builds the data, model and callbacks and trains; ``run(cfg)`` does the same through
the run cache: a run's identity is a hash of its config (the fields that change its numbers), the
model and data fingerprints, and the record schema. If a record with that identity exists it is
returned without training; a corrupt or stale one is reported and recomputed, never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from . import provenance
from .callbacks import Callback, Recorder, default_callbacks
from .config import RunConfig
from .data import prepare_data
from .layers import apply_freeze, frozen_groups_for, layer_groups
from .models import count_parameters, load_model, resolve_model
from .peft_methods import apply_peft, trainable_summary
from ..records.queries import final_metrics
from ..records.record import SCHEMA_VERSION, RecordError, RunRecord, table_from_rows
from .tasks import load_task
from .trainer import Trainer

DEFAULT_RUNS_DIR = Path(os.environ.get("FTCORE_RUNS_DIR", "runs/cache"))


class StaleRecordWarning(UserWarning):
    """A cached record could not be used and is being recomputed."""


def run_id(cfg: RunConfig) -> str:
    """Identity of a run: config fields that change its numbers + model/data fingerprints + schema."""
    key = {"config": cfg.identity_dict(), "model": resolve_model(cfg.model).fingerprint,
           "data": load_task(cfg.task).fingerprint, "schema": SCHEMA_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("RunConfig.device='cuda' is not allowed here: no CUDA device is available "
                         "(use 'auto' or 'cpu')")
    return torch.device(name)


def build(cfg: RunConfig, callbacks: list[Callback] | None = None) -> Trainer:
    """The trainer for ``cfg``: data, model (with its initial freezing) and callbacks, not yet fit."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    data = prepare_data(cfg)
    model = load_model(cfg.model, data.num_labels, seed=cfg.seed, init=cfg.init, dropout=cfg.dropout,
                       reinit_top=cfg.reinit_top)
    groups = layer_groups(model)
    try:
        frozen = frozen_groups_for(cfg.freeze, groups, freeze_layers=cfg.freeze_layers,
                                   explicit=cfg.frozen_groups)
    except ValueError as exc:
        from .config import ConfigError
        raise ConfigError(str(exc)) from None
    apply_freeze(model, frozen)
    model = apply_peft(model, cfg)
    seed_everything(cfg.seed)  # dropout masks and anything else drawn during training
    cbs = default_callbacks(cfg) if callbacks is None else callbacks
    return Trainer(cfg, model, data, cbs, device)


def train(cfg: RunConfig, *, trainer: Trainer | None = None) -> RunRecord:
    """Train ``cfg`` now (no cache) and return its record (not saved).

    ``trainer``: one from :func:`build` (e.g. with callbacks of your own appended), not yet fit."""
    trainer = trainer or build(cfg)
    src = resolve_model(cfg.model)
    prov = provenance.collect(trainer.device, model_fingerprint=src.fingerprint,
                              data_fingerprint=trainer.data.task.fingerprint,
                              task_source=trainer.data.task.source, model_path=src.path)
    trainer.fit()
    return to_record(trainer, run_id(cfg), prov)


def to_record(trainer: Trainer, rid: str, prov: dict) -> RunRecord:
    """Assemble a RunRecord from a finished trainer and its Recorder."""
    rec = next((c for c in trainer.callbacks if isinstance(c, Recorder)), None)
    if rec is None:
        raise ValueError("this trainer ran without a Recorder callback, so there is nothing to record")
    cfg = trainer.cfg
    tables = {name: table_from_rows(name, rows) for name, rows in rec.rows.items()}
    tables["events"] = table_from_rows("events", trainer.events)
    status = {"diverged": "diverged", "early_stopped": "early_stopped"}.get(trainer.stop_reason, "completed")
    summary = {
        "status": status,
        "steps": trainer.step,
        "total_steps_planned": trainer.total_steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "warmup_steps": trainer.schedule.warmup_steps,
        "epochs": round(trainer.epoch, 4),
        "examples_seen": trainer.examples_seen,
        "train_examples": len(trainer.data.train["label"]),
        "eval_examples": {s: len(v["label"]) for s, v in trainer.data.evals.items()},
        "num_labels": trainer.data.num_labels,
        "label_names": list(trainer.data.task.label_names),
        "total_params": count_parameters(trainer.model),
        "trainable_params_at_end": count_parameters(trainer.model, trainable_only=True),
        "trainable_pct_at_end": trainable_summary(trainer.model)["trainable_pct"],
        "wall_s": trainer.elapsed,
        "eval_s": trainer.eval_s,
        "train_s": trainer.elapsed - trainer.eval_s,
        **trainer.summary,
    }
    final = final_metrics(tables["evals"])
    summary.update({f"{split}_{m}": v for split, metrics in final.items() for m, v in metrics.items()})
    return RunRecord(rid, cfg.to_dict(), prov, status, summary, tables)


def record_path(cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> Path:
    return Path(runs_dir or DEFAULT_RUNS_DIR) / run_id(cfg)


def cached(cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> RunRecord | None:
    """The stored record of ``cfg`` if a valid one exists; warns and returns None for a bad one."""
    path = record_path(cfg, runs_dir)
    if not path.exists():
        return None
    try:
        rec = RunRecord.load(path)
        if rec.run_id != path.name:
            raise RecordError(f"{path} holds run {rec.run_id}, not {path.name}")
        if RunConfig.from_dict(rec.config).identity_dict() != cfg.identity_dict():
            raise RecordError(f"{path} was recorded with a different config")
    except (RecordError, ValueError, TypeError) as exc:
        warnings.warn(f"ignoring cached record: {exc}; recomputing the run", StaleRecordWarning, stacklevel=3)
        return None
    return rec


def run(cfg: RunConfig, *, runs_dir: str | os.PathLike | None = None, force: bool = False) -> RunRecord:
    """Return the record of ``cfg``: from the run cache if present and valid, else trained and saved.

    ``force=True`` retrains even when a valid record exists (and replaces it)."""
    if not force and (rec := cached(cfg, runs_dir)) is not None:
        return rec
    rec = train(cfg)
    rec.save(record_path(cfg, runs_dir))
    return rec
