"""RunRecord: everything a run measured, as tidy tables on disk.

One long-form table per kind of fact, so pandas and seaborn read them directly:

=============  ==============================================  ======================================
table          columns                                          one row per
=============  ==============================================  ======================================
steps          step, epoch, examples_seen, loss, wall_s         optimizer step (loss of its batches)
lrs            step, group, layer, lr                           step × optimizer param group
grad_norms     step, group, norm                                step × layer group (before clipping)
layer_state    step, group, trainable, n_params                 layer group, whenever it changes
evals          step, task, split, metric, value                 evaluation × metric
events         step, kind, detail                               unfreeze, diverged, early_stop, ...
examples       index, label, noisy, loss                        training example (if score_train)
=============  ==============================================  ======================================

plus ``meta.json``: schema version, run id, status, config, provenance, summary and a sha256 of
each table file. Tables are Parquet (typed, compact, no pickle). Saving is atomic: a record is
written to a temporary folder and renamed into place, so a crash never leaves half a record.
Derived quantities (forgetting matrices, generalization gaps) are computed from ``evals``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 2  # 2: the examples table
TABLES: dict[str, dict[str, str]] = {
    "steps": {"step": "int64", "epoch": "float64", "examples_seen": "int64", "loss": "float64",
              "wall_s": "float64"},
    "lrs": {"step": "int64", "group": "string", "layer": "string", "lr": "float64"},
    "grad_norms": {"step": "int64", "group": "string", "norm": "float64"},
    "layer_state": {"step": "int64", "group": "string", "trainable": "bool", "n_params": "int64"},
    "evals": {"step": "int64", "task": "string", "split": "string", "metric": "string",
              "value": "float64"},
    "events": {"step": "int64", "kind": "string", "detail": "string"},
    "examples": {"index": "int64", "label": "int64", "noisy": "bool", "loss": "float64"},
}
STATUSES = ("completed", "diverged", "early_stopped")


class RecordError(ValueError):
    """A record on disk is missing, corrupt, or from another schema version."""


def empty_table(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TABLES[name].items()})


def table_from_rows(name: str, rows: list[tuple]) -> pd.DataFrame:
    cols = TABLES[name]
    if not rows:
        return empty_table(name)
    return pd.DataFrame(rows, columns=list(cols)).astype(cols)


@dataclass
class RunRecord:
    """A run's measurements. ``record.steps``, ``record.lrs``, … are DataFrames."""

    run_id: str
    config: dict[str, Any]
    provenance: dict[str, Any]
    status: str = "completed"
    summary: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    path: Path | None = None  # where it was loaded from / saved to

    def __post_init__(self) -> None:
        for name in TABLES:
            self.tables.setdefault(name, empty_table(name))

    # ---- tables as attributes
    steps = property(lambda self: self.tables["steps"])
    lrs = property(lambda self: self.tables["lrs"])
    grad_norms = property(lambda self: self.tables["grad_norms"])
    layer_state = property(lambda self: self.tables["layer_state"])
    evals = property(lambda self: self.tables["evals"])
    events = property(lambda self: self.tables["events"])
    examples = property(lambda self: self.tables["examples"])

    def metric(self, metric: str = "accuracy", split: str = "test", task: str | None = None) -> float:
        """The last recorded value of a metric on a split (``nan`` if never measured)."""
        ev = self.evals
        sel = (ev["metric"] == metric) & (ev["split"] == split)
        if task is not None:
            sel &= ev["task"] == task
        values = ev.loc[sel, "value"]
        return float(values.iloc[-1]) if len(values) else float("nan")

    @property
    def run_config(self):
        from ..engine.config import RunConfig
        return RunConfig.from_dict(self.config)

    def __repr__(self) -> str:
        acc = self.summary.get("test_accuracy")
        acc_s = f", test accuracy={acc:.3f}" if isinstance(acc, float) else ""
        wall = self.summary.get("wall_s")
        wall_s = f", {wall:.0f}s" if isinstance(wall, (int, float)) else ""
        return (f"RunRecord({self.run_id}, task={self.config.get('task')!r}, status={self.status!r}, "
                f"steps={len(self.steps)}{acc_s}{wall_s})")

    # ---- disk
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to folder ``path`` (replacing a previous record there)."""
        meta = {"schema_version": SCHEMA_VERSION, "run_id": self.run_id, "status": self.status,
                "config": self.config, "provenance": self.provenance, "summary": self.summary}
        self.path = save_folder(path, self.tables, meta)
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunRecord:
        """Read a record, checking its schema version and every table's checksum."""
        meta, tables = load_folder(path, what="run record", schema_version=SCHEMA_VERSION,
                                   required_meta=("run_id", "status", "config", "provenance", "summary"))
        for name in TABLES:
            if name not in tables:
                raise RecordError(f"{path}: required table {name} is missing")
        return cls(meta["run_id"], meta["config"], meta["provenance"], meta["status"],
                   meta["summary"], tables, Path(path))


def save_folder(path: str | os.PathLike, tables: dict[str, pd.DataFrame], meta: dict) -> Path:
    """Write ``tables`` as Parquet files and ``meta`` (plus each table's sha256) as meta.json into
    folder ``path``, atomically: everything goes to a temporary folder beside it, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        hashes = {}
        for name, df in tables.items():
            f = tmp / f"{name}.parquet"
            df.to_parquet(f, index=False)
            hashes[name] = _sha256(f)
        (tmp / "meta.json").write_text(json.dumps({**meta, "tables": hashes}, indent=2, ensure_ascii=False,
                                                  default=str), encoding="utf-8")
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_folder(path: str | os.PathLike, *, what: str, schema_version: int,
                required_meta: tuple[str, ...] = ()) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Read a folder written by :func:`save_folder`: its meta (without ``tables``) and its tables,
    after checking the schema version and every table's checksum. Any problem is a RecordError."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise RecordError(f"{path} is not a {what} (no meta.json)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{meta_file} is corrupt: {exc}") from exc
    if not isinstance(meta, dict):
        raise RecordError(f"{meta_file} is corrupt: not a JSON object")
    version = meta.get("schema_version")
    if version != schema_version:
        raise RecordError(f"{path} has {what} schema version {version}; this ftcore reads "
                          f"version {schema_version}. Re-run it (the cache does so).")
    missing = set(required_meta) - set(meta)
    hashes = meta.pop("tables", None)
    if missing or not isinstance(hashes, dict):
        raise RecordError(f"{meta_file} lacks {sorted(missing | ({'tables'} if not isinstance(hashes, dict) else set()))}")
    tables = {}
    for name, digest in hashes.items():
        f = path / f"{name}.parquet"
        if not f.exists():
            raise RecordError(f"{path}: table file {f.name} is missing")
        if _sha256(f) != digest:
            raise RecordError(f"{path}: table {name} does not match its checksum (corrupt or edited)")
        try:
            tables[name] = pd.read_parquet(f)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a corrupt folder
            raise RecordError(f"{path}: table {name} cannot be read: {exc}") from exc
    return meta, tables


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_record(path: str | os.PathLike) -> RunRecord:
    return RunRecord.load(path)
