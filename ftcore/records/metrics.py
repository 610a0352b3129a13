"""Quantities derived from records (never stored in them), with pandas and numpy only: viz imports
this module, and viz never imports torch."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .record import RunRecord


def accuracy_matrix(record: RunRecord, split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Rows: after training task i; columns: ``split`` ``metric`` on task j (NaN where not measured).
    A sequence that scores a choice is measured on validation only (``split="validation"``).

    Read from the record's ``evals`` at the steps of its ``task_end`` events."""
    tasks = record.config["continual"]["tasks"]
    ends = record.events.loc[record.events.kind == "task_end", "step"].tolist()
    ev = record.evals
    acc = ev[(ev.split == split) & (ev.metric == metric)]
    rows = []
    for end in ends:
        at = acc[acc.step == end].drop_duplicates("task", keep="last").set_index("task")["value"]
        rows.append([float(at.get(t, np.nan)) for t in tasks])
    return pd.DataFrame(rows, index=pd.Index(tasks[:len(rows)], name="after training"),
                        columns=pd.Index(tasks, name="evaluated on"))


def sequence_metrics(record: RunRecord) -> dict[str, Any]:
    """Forgetting, BWT and average accuracy of a task-sequence record (from its accuracy matrix)."""
    return forgetting_metrics(accuracy_matrix(record))


def forgetting_metrics(matrix: pd.DataFrame | np.ndarray) -> dict[str, Any]:
    """Forgetting per task, backward transfer and average accuracy (Chaudhry et al.; Lopez-Paz & Ranzato).

    With ``a[i, j]`` the accuracy on task j after training task i and T tasks trained:
    forgetting_j = max_{i<T-1} a[i, j] − a[T-1, j] (the best it ever was minus the last), for j < T-1;
    first_forgetting_j = a[j, j] − a[T-1, j]; BWT = mean_j (a[T-1, j] − a[j, j]); average accuracy =
    mean_j a[T-1, j] over the tasks trained."""
    a = np.asarray(matrix, dtype=float)
    if a.ndim != 2 or a.shape[0] == 0:
        return {"forgetting": [], "first_forgetting": [], "mean_forgetting": float("nan"),
                "bwt": float("nan"), "average_accuracy": float("nan")}
    T = a.shape[0]
    last = a[T - 1, :T]
    forgetting = [float(np.nanmax(a[: T - 1, j]) - a[T - 1, j]) for j in range(T - 1)]
    first = [float(a[j, j] - a[T - 1, j]) for j in range(T - 1)]
    bwt = float(np.mean([a[T - 1, j] - a[j, j] for j in range(T - 1)])) if T > 1 else float("nan")
    return {"forgetting": forgetting, "first_forgetting": first,
            "mean_forgetting": float(np.mean(forgetting)) if forgetting else float("nan"),
            "bwt": bwt, "average_accuracy": float(np.mean(last))}


__all__ = ["accuracy_matrix", "forgetting_metrics", "sequence_metrics"]
