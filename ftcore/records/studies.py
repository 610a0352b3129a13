"""Cached studies: measurements that are not one run's record (drift per layer, probes of the
pretrained encoder, a model's predictions on augmented text, a tokenizer's output...).

A study is a named computation with JSON parameters; its result is a set of tidy tables plus a
``meta`` dict, stored like a record (Parquet + meta.json with checksums, written atomically) under
``<runs_dir>/study-<name>-<hash>``, through the one cache (:mod:`.cache`). The hash covers the name, the parameters (which should include
the run ids the study depends on: they carry the model and data fingerprints) and the schema, so a
changed input never reuses an old result. Its meta holds a ``provenance`` as a run's record does
(code, libraries, machine, when it was computed: :mod:`.provenance`). Torch-free: the computation is
passed in.

Where a study measured final metrics, it shows them as a run's record does: an ``evals`` table
(step, task, split, metric, value) and ``metric(name, split)``, with a ``status`` and a ``config``
(its parameters). So the validity gate, the claims and the report read studies and runs alike
(:class:`Measured`): a figure drawn from studies puts them in its RunSet as they are.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from .cache import Stored, fetch_or_compute, key_id, runs_dir_or_default
from .provenance import code_and_machine, now
from .queries import final_metric
from .record import TABLES, RecordError, empty_table, load_folder, save_folder

STUDY_SCHEMA = 1


@runtime_checkable
class Measured(Protocol):
    """What the validity gate (``ftcore.records.validity``), the claims and ``chapter.report`` read of
    each item of a RunSet: a :class:`~ftcore.records.record.RunRecord` and a :class:`Study` alike."""

    status: str  # "completed", "diverged", "early_stopped"
    config: dict[str, Any]  # what it was made from (a task sequence's holds "continual")

    def metric(self, metric: str = "accuracy", split: str = "test", task: str | None = None) -> float: ...


@dataclass
class Study:
    name: str
    params: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    # A stored study is a finished computation: one that fails raises and is never stored.
    status = "completed"

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    @property
    def config(self) -> dict[str, Any]:
        """Its parameters: what it was computed from, as a run's record keeps its config."""
        return self.params

    @property
    def evals(self) -> pd.DataFrame:
        """Its final measurements as a record's ``evals`` table (step, task, split, metric, value):
        the ``evals`` table its computation wrote, the columns it lacks filled (step 0, no task), or
        an empty table where it measured none."""
        ev = self.tables.get("evals")
        if ev is None:
            return empty_table("evals")
        ev = ev.assign(**{c: 0 if c == "step" else None for c in TABLES["evals"] if c not in ev})
        return ev[list(TABLES["evals"])].astype(TABLES["evals"])

    def metric(self, metric: str = "accuracy", split: str = "test", task: str | None = None) -> float:
        """The last value of ``metric`` on ``split`` in :attr:`evals` (of ``task`` if given; ``nan`` if
        never measured), read as :meth:`RunRecord.metric <ftcore.records.record.RunRecord.metric>` reads
        a record's."""
        return final_metric(self.evals, metric, split, task)

    def with_evals(self, rows: list[dict] | pd.DataFrame) -> Study:
        """The same study with ``rows`` (split, metric, value; step and task optional) as its
        ``evals``: for a computation that kept its final numbers in its meta (an RLHF run's reward at
        its end), or for one reading of them (the same run measured at its start)."""
        return Study(self.name, self.params, {**self.tables, "evals": pd.DataFrame(rows)}, self.meta, self.path)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {len(v)} rows" for k, v in self.tables.items())
        return f"Study({self.name!r}, {shapes})"


def study_path(name: str, params: dict[str, Any], runs_dir: str | os.PathLike | None = None) -> Path:
    key = {"name": name, "params": params, "schema": STUDY_SCHEMA}
    return runs_dir_or_default(runs_dir) / key_id(key, prefix=f"study-{name}-")


def load_study(path: str | os.PathLike) -> Study:
    meta, tables = load_folder(path, what="study", schema_version=STUDY_SCHEMA,
                               required_meta=("name", "params"))
    return Study(meta.pop("name"), meta.pop("params"), tables, meta, Path(path))


def stored_study(name: str, params: dict[str, Any],
                 compute: Callable[[], tuple[dict[str, pd.DataFrame], dict]],
                 runs_dir: str | os.PathLike | None = None) -> Stored:
    """The study (name, params) as the cache sees it: its folder, the check that a stored study has
    these parameters, and how to compute (``compute()`` returns ``(tables, meta)``; the meta gains
    the computation's ``provenance``) and save it."""
    params_json = json.loads(json.dumps(params, default=str))

    def computed() -> tuple[dict[str, pd.DataFrame], dict]:
        started = now()
        tables, meta = compute()
        # where it came from, as a record's provenance says it (a computation's own entries win:
        # a pretrained checkpoint's curves name the pretraining, not the reading of its files)
        return tables, {**meta, "provenance": {**code_and_machine(started), **meta.get("provenance", {})}}

    def check(st: Study) -> None:
        if st.name != name or st.params != params_json:
            raise RecordError("it holds a study with other parameters")

    def save(tables_meta: tuple[dict[str, pd.DataFrame], dict], path: Path) -> Study:
        tables, meta = tables_meta
        save_folder(path, tables, {**meta, "name": name, "params": params_json, "schema_version": STUDY_SCHEMA})
        return load_study(path)
    return Stored("study", study_path(name, params, runs_dir), load_study, computed, check, save)


def study(name: str, params: dict[str, Any], compute: Callable[[], tuple[dict[str, pd.DataFrame], dict]],
          *, runs_dir: str | os.PathLike | None = None, force: bool = False, render_only: bool = False) -> Study:
    """The stored result of ``compute()`` for (name, params), computing and saving it if needed.

    ``compute`` returns ``(tables, meta)``. A corrupt or mismatched stored study is warned about
    and recomputed, never used (with ``render_only``: a MissingRecordError)."""
    return fetch_or_compute(stored_study(name, params, compute, runs_dir), force=force, render_only=render_only)


__all__ = ["Measured", "STUDY_SCHEMA", "Study", "load_study", "stored_study", "study", "study_path"]
