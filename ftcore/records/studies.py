"""Cached studies: measurements that are not one run's record (drift per layer, probes of the
pretrained encoder, a model's predictions on augmented text, a tokenizer's output...).

A study is a named computation with JSON parameters; its result is a set of tidy tables plus a
``meta`` dict, stored like a record (Parquet + meta.json with checksums, written atomically) under
``<runs_dir>/study-<name>-<hash>``, through the one cache (:mod:`.cache`). The hash covers the name, the parameters (which should include
the run ids the study depends on: they carry the model and data fingerprints) and the schema, so a
changed input never reuses an old result. Its meta holds a ``provenance`` as a run's record does
(code, libraries, machine, when it was computed: :mod:`.provenance`). Torch-free: the computation is
passed in.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .cache import Stored, fetch_or_compute, key_id, runs_dir_or_default
from .provenance import code_and_machine, now
from .record import RecordError, load_folder, save_folder

STUDY_SCHEMA = 1


@dataclass
class Study:
    name: str
    params: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

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


__all__ = ["STUDY_SCHEMA", "Study", "load_study", "stored_study", "study", "study_path"]
