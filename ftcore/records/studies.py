"""Cached studies: measurements that are not one run's record (drift per layer, probes of the
pretrained encoder, a model's predictions on augmented text, a tokenizer's output...).

A study is a named computation with JSON parameters; its result is a set of tidy tables plus a
``meta`` dict, stored like a record (Parquet + meta.json with checksums, written atomically) under
``<runs_dir>/study-<name>-<hash>``. The hash covers the name, the parameters (which should include
the run ids the study depends on: they carry the model and data fingerprints) and the schema, so a
changed input never reuses an old result. Torch-free: the computation is passed in.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .record import RecordError, load_folder, save_folder

STUDY_SCHEMA = 1


class StaleStudyWarning(UserWarning):
    """A stored study could not be used and is being recomputed."""


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


def study_path(name: str, params: dict[str, Any], runs_dir: str | os.PathLike) -> Path:
    key = json.dumps({"name": name, "params": params, "schema": STUDY_SCHEMA}, sort_keys=True, default=str)
    return Path(runs_dir) / f"study-{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def load_study(path: str | os.PathLike) -> Study:
    meta, tables = load_folder(path, what="study", schema_version=STUDY_SCHEMA,
                               required_meta=("name", "params"))
    return Study(meta.pop("name"), meta.pop("params"), tables, meta, Path(path))


def study(name: str, params: dict[str, Any], compute: Callable[[], tuple[dict[str, pd.DataFrame], dict]],
          *, runs_dir: str | os.PathLike, force: bool = False) -> Study:
    """The stored result of ``compute()`` for (name, params), computing and saving it if needed.

    ``compute`` returns ``(tables, meta)``. A corrupt or mismatched stored study is warned about
    and recomputed, never used."""
    path = study_path(name, params, runs_dir)
    params_json = json.loads(json.dumps(params, default=str))
    if path.exists() and not force:
        try:
            st = load_study(path)
            if st.name != name or st.params != params_json:
                raise RecordError(f"{path} holds a study with other parameters")
            return st
        except RecordError as exc:
            warnings.warn(f"ignoring stored study: {exc}; recomputing it", StaleStudyWarning, stacklevel=2)
    tables, meta = compute()
    meta = {**meta, "name": name, "params": params_json, "schema_version": STUDY_SCHEMA}
    save_folder(path, tables, meta)
    return load_study(path)


__all__ = ["STUDY_SCHEMA", "StaleStudyWarning", "Study", "load_study", "study", "study_path"]
