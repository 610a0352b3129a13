"""A run's identity: a hash of what changes its numbers. Torch-free, so a record is found (and a
figure's inputs named) without loading a model.

The id covers the config fields that change a run's numbers (``RunConfig.identity_dict``), the
fingerprints of the model's files and the task's data, and the record schema. A loop other than
ftcore's own (``TRAINING_LOOPS[loop].marks_records``) is part of the key, so its record never shares a
folder with ftcore's run of the same config.
"""
from __future__ import annotations

from ..config import TRAINING_LOOPS, RunConfig
from ..records.cache import key_id
from ..records.record import SCHEMA_VERSION
from .model_sources import resolve_model
from .tasks import load_task


def run_id(cfg: RunConfig) -> str:
    """Identity of a run: config fields that change its numbers + model/data fingerprints + schema."""
    return key_id({"config": cfg.identity_dict(), "model": resolve_model(cfg.model).fingerprint,
                   "data": load_task(cfg.task).fingerprint, "schema": SCHEMA_VERSION})


def loop_run_id(loop: str, cfg: RunConfig) -> str:
    """The id of ``cfg`` trained by another training loop (``"hf"``, ``"lightning"``): like
    :func:`run_id`, marked with the loop, so it never shares a record with ftcore's run."""
    return key_id({"trainer": loop, "config": cfg.identity_dict(), "model": resolve_model(cfg.model).fingerprint,
                   "data": load_task(cfg.task).fingerprint, "schema": SCHEMA_VERSION})


def id_in_loop(loop: str, cfg: RunConfig) -> str:
    """The id of ``cfg`` trained by ``loop`` (a name in ``TRAINING_LOOPS``)."""
    return loop_run_id(loop, cfg) if TRAINING_LOOPS[loop].marks_records else run_id(cfg)


__all__ = ["id_in_loop", "loop_run_id", "run_id"]
