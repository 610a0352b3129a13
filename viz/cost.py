"""What a method costs, read from its records, never the wall time a busy machine happened to take:
the process's CPU seconds (``summary["cpu_s"]``, recorded by newer runs) where every record of a
panel has them, else the optimizer steps it took, else the training examples it saw. A panel draws
one kind for all its records, and its axis label says which (:func:`cost_label`)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .text import t

COST_KINDS = ("cpu_s", "steps", "examples_seen")  # in order of preference


def run_cost(rec, kind: str, n_tasks: int | None = None) -> float:
    """One record's cost of ``kind``: for a task sequence (``summary["per_task"]``) the sum over its
    first ``n_tasks`` tasks (all by default); nan where the record lacks it."""
    s = rec.summary
    per = s.get("per_task")
    if per:
        per = per[:n_tasks] if n_tasks is not None else per
        vals = [p.get(kind) for p in per]
        if all(v is not None for v in vals):
            return float(sum(vals))
        if n_tasks is not None:
            return np.nan
    v = s.get(kind)
    return float(v) if v is not None else np.nan


def cost_kind(records: Iterable, n_tasks: int | None = None) -> str | None:
    """The first kind of :data:`COST_KINDS` every record has (a finite value), else None."""
    records = list(records)
    for kind in COST_KINDS:
        if records and all(np.isfinite(run_cost(r, kind, n_tasks)) for r in records):
            return kind
    return None


def cost_label(kind: str | None) -> str:
    """The axis label of a cost kind: "CPU time (s)", "optimizer steps", "training examples seen"."""
    return t(f"cost.{kind}") if kind else t("cost.none")


__all__ = ["COST_KINDS", "cost_kind", "cost_label", "run_cost"]
