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
written to a temporary folder beside it and swapped into place (:func:`save_folder`), so a crash
never leaves half a record nor loses the previous one. meta.json is not trusted: on load its status
and summary are checked against the tables (:func:`check_summary`).
Derived quantities (forgetting matrices, generalization gaps) are computed from ``evals``.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import RunConfig
from .queries import final_metrics

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
    # each test example's prediction (index: its row in the task's test split)
    "predictions": {"task": "string", "split": "string", "index": "int64", "label": "int64", "pred": "int64"},
}
# Tables added after records were made without them: a record that lacks one reads it as empty.
ADDED_TABLES = ("predictions",)
STATUSES = ("completed", "diverged", "early_stopped")  # checked on load (check_summary)


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
    predictions = property(lambda self: self.tables["predictions"])

    def correct(self, split: str = "test", task: str | None = None) -> pd.Series:
        """1.0/0.0 per example of ``split`` (indexed by the example's row in the split) from the stored
        predictions; empty for a record made before predictions were stored."""
        p = self.predictions
        p = p[(p["split"] == split) & ((p["task"] == (task or self.config.get("task"))) if task or len(p) else True)]
        return pd.Series((p["pred"] == p["label"]).astype(float).to_numpy(), index=p["index"].to_numpy(),
                         name="correct").sort_index()

    def metric(self, metric: str = "accuracy", split: str = "test", task: str | None = None) -> float:
        """The last recorded value of a metric on a split (``nan`` if never measured)."""
        from .queries import final_metric
        return final_metric(self.evals, metric, split, task)

    @property
    def run_config(self) -> RunConfig:
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
            if name not in tables and name not in ADDED_TABLES:
                raise RecordError(f"{path}: required table {name} is missing")
        check_summary(meta, tables, where=str(path))
        return cls(meta["run_id"], meta["config"], meta["provenance"], meta["status"],
                   meta["summary"], tables, Path(path))


def status_from_events(events: pd.DataFrame) -> str:
    """A run's status as its events tell it: ``diverged``, ``early_stopped`` or ``completed``."""
    kinds = set(events["kind"])
    return "diverged" if "diverged" in kinds else "early_stopped" if "early_stop" in kinds else "completed"


def check_summary(meta: dict, tables: dict[str, pd.DataFrame], *, where: str = "record") -> None:
    """meta.json is not trusted: its status must be one of ``STATUSES`` and the one its events tell,
    and every final metric its summary reports must be the last value in ``evals`` (and its step
    count the rows of ``steps``). RecordError
    otherwise (an edited or malformed meta.json is corruption like any other)."""
    status, summary = meta.get("status"), meta.get("summary")
    if not isinstance(summary, dict):
        raise RecordError(f"{where}: meta.json's summary is not a JSON object (corrupt or edited)")
    if status not in STATUSES:
        raise RecordError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)} (corrupt or edited)")
    told = status_from_events(tables["events"])
    if status != told or summary.get("status", status) != status:
        raise RecordError(f"{where}: status {status!r} (summary: {summary.get('status')!r}) disagrees with "
                          f"its events, which say {told!r} (corrupt or edited)")
    if "steps" in summary and summary["steps"] != len(tables["steps"]):
        raise RecordError(f"{where}: summary steps={summary['steps']!r} but its steps table has "
                          f"{len(tables['steps'])} rows (corrupt or edited)")
    final = {f"{split}_{m}": v for split, metrics in final_metrics(tables["evals"]).items()
             for m, v in metrics.items()}
    for key, value in final.items():
        if key in summary:
            stored = summary[key]
            same = isinstance(stored, (int, float)) and not isinstance(stored, bool) and (
                stored == value or (math.isnan(stored) and math.isnan(value)))
            if not same:
                raise RecordError(f"{where}: summary {key}={stored!r} but its evals table says {value!r} "
                                  "(corrupt or edited)")


def save_folder(path: str | os.PathLike, tables: dict[str, pd.DataFrame], meta: dict) -> Path:
    """Write ``tables`` as Parquet files and ``meta`` (plus each table's sha256) as meta.json into
    folder ``path``, atomically.

    Everything is written to ``.<name>.tmp-<pid>-<hex>`` beside ``path`` first. A new result is
    then renamed into place. An existing one is swapped with it in one step (Linux
    ``renameat2(RENAME_EXCHANGE)``: there is no moment at which neither the old nor the new record
    is at ``path``), and the old one, now in the temporary folder, is deleted. Where the exchange is
    not available, the old record is renamed aside to ``.<name>.old-<hex>`` and the new one into
    place; a save killed between those two renames leaves ``path`` missing, and
    :func:`clean_leftovers` (run by the cache under the result's lock before it loads or computes)
    renames the old record back. Temporary folders of killed saves are removed by it too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    old = None
    try:
        hashes = {}
        for name, df in tables.items():
            f = tmp / f"{name}.parquet"
            df.to_parquet(f, index=False)
            hashes[name] = _sha256(f)
        _save_hook("tables")
        (tmp / "meta.json").write_text(json.dumps({**meta, "tables": hashes}, indent=2, ensure_ascii=False,
                                                  default=str), encoding="utf-8")
        _save_hook("meta")
        if not _rename_new(tmp, path):
            if _exchange(tmp, path):  # tmp now holds the old record
                _save_hook("swapped")
            else:
                old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
                os.rename(path, old)
                _save_hook("old_aside")
                os.rename(tmp, path)
                _save_hook("swapped")
                shutil.rmtree(old, ignore_errors=True)
                old = None
    except BaseException:
        if old is not None and not path.exists():
            os.rename(old, path)  # put the old record back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _save_hook(stage: str) -> None:
    """Called between the steps of :func:`save_folder` (tests pause or kill a save here)."""


def _rename_new(tmp: Path, path: Path) -> bool:
    """Rename ``tmp`` to ``path`` if nothing is there yet; False if something is."""
    if path.exists():
        return False
    try:
        os.rename(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):  # created meanwhile
            return False
        raise
    return True


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 with RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


STALE_TMP_S = 300  # a temporary folder this old is a leftover even if its writer's pid is in use again


def clean_leftovers(path: str | os.PathLike, *, dry_run: bool = False) -> bool:
    """Tidy what killed saves left beside ``path``; call it holding the lock of ``path``'s result.

    If ``path`` is missing and a ``.<name>.old-*`` folder exists (a save killed between its two
    renames), the newest is renamed back to ``path``. In the whole folder, ``.<id>.old-*`` folders
    whose record is in place are deleted, and so are temporary folders (``.<id>.tmp-<pid>-*``)
    whose writer is no longer running or that are older than ``STALE_TMP_S``. Returns whether a
    record was (``dry_run``: would be) restored."""
    path = Path(path)
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return False
    olds = sorted((p for p in siblings if p.name.startswith(f".{path.name}.old-")),
                  key=lambda p: p.stat().st_mtime)
    restore = bool(olds) and not path.exists()
    if dry_run:
        return restore
    if restore:
        os.rename(olds[-1], path)
    for p in siblings:
        name = p.name
        if not name.startswith(".") or p == (olds[-1] if restore else None):
            continue
        if ".old-" in name and (p.parent / name[1:].partition(".old-")[0]).exists():
            shutil.rmtree(p, ignore_errors=True)  # its record is in place: the save finished
        elif ".tmp-" in name and _is_stale(p):
            shutil.rmtree(p, ignore_errors=True)
    return restore


def _is_stale(tmp: Path) -> bool:
    try:
        age = time.time() - tmp.stat().st_mtime
    except OSError:
        return False
    pid = tmp.name.rpartition(".tmp-")[2].split("-")[0]
    if age > STALE_TMP_S or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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


FOLDER_KINDS = {"run": "run record", "landscape": "saved loss landscape", "study": "saved study"}


def folder_kind(path: str | os.PathLike) -> str | None:
    """What ftcore stored in folder ``path``, read from its meta.json: ``"run"`` (a run record,
    also a task sequence's), ``"landscape"``, ``"study"``, ``"other"`` (a JSON object that is none
    of them) or None (no readable meta.json). Each kind has its own schema version, so asking a
    study to load as a run record would only report a version mismatch."""
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if "landscape" in meta:
        return "landscape"
    if "params" in meta and "summary" not in meta:
        return "study"
    return "run" if "summary" in meta or "status" in meta else "other"


def load_run_record(path: str | os.PathLike, command: str) -> RunRecord:
    """``RunRecord.load(path)`` for ``ftcore <command>``, refusing in one line a path that does not
    exist or holds a landscape or a study (named as such, with ``ftcore show`` as what to use)."""
    if not Path(path).exists():
        raise RecordError(f"{path} does not exist (give a run record folder, e.g. runs/cache/<run id>)")
    kind = folder_kind(path)
    if kind in ("landscape", "study"):
        raise RecordError(f"{path} is a {FOLDER_KINDS[kind]}, not a run record: `ftcore {command}` reads run "
                          f"records only; use `ftcore show {path}` to summarise it")
    return RunRecord.load(path)
