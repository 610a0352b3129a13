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


# A loop's revision, part of its records' key: a fix that changes what the loop trains must not reuse
# records made before it. Lightning 2: each batch trains in training mode (before, a pretrained
# model stayed in eval mode under Lightning 2.x and trained with dropout off).
LOOP_REVISIONS = {"lightning": 2}


def loop_run_id(loop: str, cfg: RunConfig) -> str:
    """The id of ``cfg`` trained by another training loop (``"hf"``, ``"lightning"``): like
    :func:`run_id`, marked with the loop (and its revision, :data:`LOOP_REVISIONS`), so it never
    shares a record with ftcore's run."""
    key = {"trainer": loop, "config": cfg.identity_dict(), "model": resolve_model(cfg.model).fingerprint,
           "data": load_task(cfg.task).fingerprint, "schema": SCHEMA_VERSION}
    if loop in LOOP_REVISIONS:
        key["revision"] = LOOP_REVISIONS[loop]
    return key_id(key)


def id_in_loop(loop: str, cfg: RunConfig) -> str:
    """The id of ``cfg`` trained by ``loop`` (a name in ``TRAINING_LOOPS``)."""
    return loop_run_id(loop, cfg) if TRAINING_LOOPS[loop].marks_records else run_id(cfg)


__all__ = ["LOOP_REVISIONS", "id_in_loop", "loop_run_id", "run_id"]
