"""One call from a config to a saved record: ``run(cfg)``.

``train(cfg)`` builds the data, model and callbacks and trains; ``run(cfg)`` does the same through
the run cache (:mod:`ftcore.records.cache`): a run's identity is a hash of its config (the fields
that change its numbers), the model and data fingerprints, and the record schema. If a record with
that identity exists it is returned without training; a corrupt or stale one is reported and
recomputed, never used. The record itself is written by :mod:`ftcore.engine.record_builder`, as
every training loop's is; the id by :mod:`ftcore.engine.run_ids`.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from . import precision
from .callbacks import Callback, Recorder, default_callbacks
from ..config import TRAINING_LOOPS, RunConfig
from .data import TaskData, prepare_data
from .features import attach, frozen_prefix
from .layers import apply_freeze, frozen_groups_for, layer_groups
from .models import load_model, resolve_model
from .peft_methods import apply_peft
from .pooling import apply_pooling
from .record_builder import build_record, final_summary_metrics, model_data_summary, run_summary  # noqa: F401
from .run_ids import loop_run_id, run_id
from ..records.cache import DEFAULT_RUNS_DIR, Stored, fetch, fetch_or_compute, runs_dir_or_default
from ..records.record import RecordError, RunRecord
from .trainer import Trainer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ..config import ConfigError
        raise ConfigError("RunConfig.device='cuda' is not allowed here: no CUDA device is available "
                          "(use auto or cpu)")
    return torch.device(name)


def setup(cfg: RunConfig) -> torch.device:
    """Apply the process-wide settings of ``cfg`` (thread count) and return its device."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    return resolve_device(cfg.device)


def init_model(cfg: RunConfig, num_labels: int) -> torch.nn.Module:
    """The model of ``cfg`` for ``num_labels`` classes, with its initial freezing and PEFT applied."""
    model = load_model(cfg.model, num_labels, seed=cfg.seed, init=cfg.init, dropout=cfg.dropout,
                       reinit_top=cfg.reinit_top)
    model = apply_pooling(model, cfg.pooling)
    groups = layer_groups(model)
    try:
        frozen = frozen_groups_for(cfg.freeze, groups, freeze_layers=cfg.freeze_layers,
                                   explicit=cfg.frozen_groups)
    except ValueError as exc:
        from ..config import ConfigError
        raise ConfigError(str(exc)) from None
    apply_freeze(model, frozen)
    return apply_peft(model, cfg)


def build(cfg: RunConfig, callbacks: list[Callback] | None = None, *, model: torch.nn.Module | None = None,
          data: TaskData | None = None, seed: int | None = None, trainer_cls: type[Trainer] = Trainer,
          **trainer_kw) -> Trainer:
    """The trainer for ``cfg``: data, model (with its initial freezing) and callbacks, not yet fit.

    A task sequence passes its own pieces: the shared ``model`` and the task's ``data`` (used as
    they are), the ``seed`` drawn from during training (default ``cfg.seed``), a Trainer subclass
    and its extra arguments."""
    own_pieces = model is None and data is None  # a task sequence's shared model is never bypassed
    requested, cfg = cfg.precision, precision.resolve(cfg)  # the arithmetic used is the one recorded
    if data is None:
        from .preflight import check
        check(cfg)  # device, model, reinit_top, sizes: one clear line before anything is loaded
    device = setup(cfg)
    data = prepare_data(cfg) if data is None else data
    model = init_model(cfg, data.num_labels) if model is None else model
    seed_everything(cfg.seed if seed is None else seed)  # dropout masks and anything else drawn during training
    cbs = default_callbacks(cfg) if callbacks is None else callbacks
    trainer = trainer_cls(cfg, model, data, cbs, device, **trainer_kw)
    if requested == "auto":
        trainer.log_event("precision_auto", f"auto -> {cfg.precision}: {precision.auto_choice(device).reason}")
    precision.warn_if_slow(cfg)
    if own_pieces and (prefix := frozen_prefix(cfg, trainer.model)) is not None:
        attach(trainer, prefix, resolve_model(cfg.model).fingerprint)  # the frozen-feature cache
    return trainer


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, with the step it stopped at (``ftcore run`` prints it). Still a
    KeyboardInterrupt, so code that catches those is unchanged."""

    def __init__(self, step: int, total: int):
        super().__init__(f"interrupted at step {step} of {total}")
        self.step, self.total = step, total


def train(cfg: RunConfig, *, trainer: Trainer | None = None) -> RunRecord:
    """Train ``cfg`` now (no cache) and return its record (not saved).

    ``trainer``: one from :func:`build` (e.g. with callbacks of your own appended), not yet fit.
    Ctrl-C raises :class:`RunInterrupted` (a KeyboardInterrupt) naming the step."""
    trainer = trainer or build(cfg)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        raise RunInterrupted(trainer.step, trainer.total_steps) from None
    return to_record(trainer, run_id(cfg))


def recorder_of(trainer: Trainer) -> Recorder:
    rec = next((c for c in trainer.callbacks if isinstance(c, Recorder)), None)
    if rec is None:
        raise ValueError("this trainer ran without a Recorder callback, so there is nothing to record")
    return rec


def to_record(trainer: Trainer, rid: str | None = None, prov: dict | None = None) -> RunRecord:
    """The RunRecord of a finished trainer and its Recorder, by the record builder every loop uses.
    ``rid`` defaults to the id of the trainer's config; ``prov``: provenance collected by the caller."""
    t = trainer
    summary = run_summary(t.model, t.data, steps=t.step, total_steps=t.total_steps, steps_per_epoch=t.steps_per_epoch,
                          warmup_steps=t.schedule.warmup_steps, epochs=t.epoch, examples_seen=t.examples_seen,
                          wall_s=t.elapsed, eval_s=t.eval_s, train_s=t.elapsed - t.eval_s, cpu_s=t.cpu_elapsed,
                          extra=t.summary)
    return build_record("ftcore", t.cfg, device=t.device, tasks=[t.data.task], tables=recorder_of(t).rows,
                        events=t.events, stop_reason=t.stop_reason, summary=summary, run_id=rid, prov=prov)


def record_path(cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> Path:
    return runs_dir_or_default(runs_dir) / run_id(cfg)


def lacking(rec: RunRecord, cfg: RunConfig) -> str | None:
    """What ``cfg`` asks its record to hold that the stored ``rec`` lacks, or None.

    ``record_grad_norms`` changes what is recorded, not the numbers, so it is not part of the run
    id: a record made with it off has no gradient-norm rows and cannot answer a request with it on
    (it is recomputed; the new record holds strictly more, so it replaces the old one). A request
    with it off is answered by either record."""
    if cfg.record_grad_norms and len(rec.steps) and not len(rec.grad_norms):
        return ("it has no gradient-norm rows (recorded with record_grad_norms=False) and "
                "record_grad_norms=True asks for them")
    if cfg.score_train and not len(rec.examples):
        return "it has no per-example losses and score_train=True asks for them"
    return None


def stored_run(cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> Stored:
    """The run of ``cfg`` as the cache sees it: its record folder, how to check a stored record is
    this run's (same id, same identity config, holding all the request asks for), and how to
    train it."""
    rid = run_id(cfg)

    def check(rec: RunRecord) -> None:
        if rec.run_id != rid:
            raise RecordError(f"it holds run {rec.run_id}, not {rid}")
        if RunConfig.from_dict(rec.config).identity_dict() != cfg.identity_dict():
            raise RecordError("it was recorded with a different config")
        if missing := lacking(rec, cfg):
            raise RecordError(missing)
    return Stored("run", runs_dir_or_default(runs_dir) / rid, RunRecord.load, lambda: train(cfg), check,
                  describe=repr(cfg))


def stored_loop_run(loop: str, cfg: RunConfig, train_fn, runs_dir=None) -> Stored:
    """The cache entry of ``cfg`` trained by another loop: ``train_fn(cfg)`` makes the record, whose
    provenance names the loop's trainer (``TRAINING_LOOPS[loop].trainer``)."""
    rid, trainer_name = loop_run_id(loop, cfg), TRAINING_LOOPS[loop].trainer

    def check(rec: RunRecord) -> None:
        if rec.run_id != rid or rec.provenance.get("trainer") != trainer_name:
            raise RecordError(f"it holds run {rec.run_id}, not the {loop} run {rid}")
        if missing := lacking(rec, cfg):
            raise RecordError(missing)
    return Stored(f"{loop} run", runs_dir_or_default(runs_dir) / rid, RunRecord.load, lambda: train_fn(cfg), check,
                  describe=f"{loop} {cfg!r}")


def stored_for(loop: str, cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> Stored:
    """The cache entry of ``cfg`` trained by ``loop`` (a name in ``TRAINING_LOOPS``: "ftcore", "hf",
    "lightning"), from the function the loop's entry names."""
    import importlib

    module, _, name = TRAINING_LOOPS[loop].stored.partition(":")
    return getattr(importlib.import_module(module), name)(cfg, runs_dir)


def cached(cfg: RunConfig, runs_dir: str | os.PathLike | None = None) -> RunRecord | None:
    """The stored record of ``cfg`` if a valid one exists; warns and returns None for a bad one."""
    return fetch(stored_run(cfg, runs_dir))


def run(cfg: RunConfig, *, runs_dir: str | os.PathLike | None = None, force: bool = False,
        render_only: bool = False) -> RunRecord:
    """Return the record of ``cfg``: from the run cache if present and valid, else trained and saved.

    ``force=True`` retrains even when a valid record exists (and replaces it); ``render_only=True``
    never trains (a missing or corrupt record is a MissingRecordError). The runs folder is checked
    to be writable before training, and an identical run in progress elsewhere is waited for and
    reused."""
    return fetch_or_compute(stored_run(cfg, runs_dir), force=force, render_only=render_only)


__all__ = ["DEFAULT_RUNS_DIR", "RunInterrupted", "build", "cached", "final_summary_metrics", "init_model",
           "recorder_of",
           "lacking", "loop_run_id", "model_data_summary", "record_path", "stored_loop_run",
           "resolve_device", "run", "run_id", "seed_everything", "setup", "stored_for", "stored_run", "to_record",
           "train"]
