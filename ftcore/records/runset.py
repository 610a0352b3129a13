"""RunSet: the records behind one figure, each tagged with the labels of its grid cell.

A figure's grid (e.g. strategy × training-set size × seed) arrives here as ``(labels, record)``
pairs. RunSet turns them into the long-form frames seaborn wants: one row per run with its final
metrics (:meth:`finals`), or any record table with the labels as extra columns (:meth:`table`).
No torch: only records (``ftcore.records.record``) and pandas.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ftcore.records.queries import mean_sd
from ftcore.records.record import RunRecord

SUMMARY_NUMBERS = ("wall_s", "train_s", "eval_s", "peak_rss_mb", "trainable_params_at_end",
                   "trainable_pct_at_end", "steps", "total_params")


class RunSet:
    """``(labels, RunRecord)`` pairs; labels are dicts such as ``{"strategy": "full", "seed": 0}``."""

    def __init__(self, items: Iterable[tuple[dict[str, Any], RunRecord]]):
        self.items = [(dict(labels), rec) for labels, rec in items]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], RunRecord]]:
        return iter(self.items)

    def __repr__(self) -> str:
        keys = sorted({k for labels, _ in self.items for k in labels})
        values = {k: self.values(k) for k in keys}
        return f"RunSet({len(self)} runs; " + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"

    @property
    def records(self) -> list[RunRecord]:
        return [rec for _, rec in self.items]

    def values(self, key: str) -> list:
        """The distinct values of a label, in grid order."""
        out = []
        for labels, _ in self.items:
            if key in labels and labels[key] not in out:
                out.append(labels[key])
        return out

    def select(self, **labels) -> RunSet:
        return RunSet((lab, rec) for lab, rec in self.items
                      if all(lab.get(k) == v for k, v in labels.items()))

    def one(self, **labels) -> RunRecord:
        """The single record matching ``labels`` (an error names what matched otherwise)."""
        found = self.select(**labels)
        if len(found) != 1:
            raise LookupError(f"expected one run with {labels}, found {len(found)} in {self!r}")
        return found.records[0]

    def n_seeds(self, **labels) -> int:
        return len({lab.get("seed") for lab, _ in self.select(**labels)})

    def finals(self, metric: str = "accuracy", split: str = "test") -> pd.DataFrame:
        """One row per run: its labels, ``value`` (the last ``metric`` on ``split``), its status and
        the summary's numbers (wall_s, peak_rss_mb, trainable_pct, ...)."""
        rows = []
        for labels, rec in self.items:
            row = {**labels, "value": rec.metric(metric, split=split), "status": rec.status}
            row.update({k: rec.summary.get(k, np.nan) for k in SUMMARY_NUMBERS})
            rows.append(row)
        return pd.DataFrame(rows)

    def table(self, name: str) -> pd.DataFrame:
        """A record table (``steps``, ``lrs``, ``evals``, ...) of every run, labels as columns."""
        frames = []
        for labels, rec in self.items:
            df = rec.tables[name].copy()
            for k, v in labels.items():
                df[k] = v
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def evals(self, metric: str = "accuracy", split: str = "validation") -> pd.DataFrame:
        ev = self.table("evals")
        return ev[(ev["metric"] == metric) & (ev["split"] == split)]


__all__ = ["RunSet", "mean_sd"]  # mean_sd lives in queries; kept importable from here
