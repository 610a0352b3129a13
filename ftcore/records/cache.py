"""The one cache: every stored result (run, task sequence, landscape, study) is fetched or computed
the same way.

A result's identity is a hash of what it depends on (:func:`key_id`); it lives in a folder of that
name under the runs folder (:func:`default_runs_dir` unless one is given). :func:`fetch_or_compute`
takes a :class:`Stored` (where the result lives and how to load, check, compute and save it) and

1. returns the stored result when it loads and passes its check (no lock, no write);
2. with ``render_only``, never computes: a missing or corrupt result is one
   :class:`MissingRecordError` naming the kind, the id and ``make figures`` as the fix;
3. otherwise checks the runs folder is writable (before any training), takes the result's lock
   (``<runs_dir>/.<id>.lock``, ``fcntl.flock``: a second identical computation waits for the first
   and then reuses what it saved), cleans the leftovers of killed saves, loads again (another
   process may just have saved it), warns with :class:`StaleResultWarning` about a corrupt or
   mismatched result, computes and saves.

Saving is atomic (:func:`ftcore.records.record.save_folder`); the lock and the recovery of
interrupted replacements are here. Torch-free: the computation is passed in.

What a computation cost is written beside what it saved, as ``<id>/cost.json`` (:data:`COST_FILE`):
CPU seconds of the computing process (all its threads), wall seconds and the thread count. Every kind of
result gets it the same way (runs, task sequences, studies), so the regeneration's cost can be counted
(``python -m chapter.report --cost``); CPU time does not depend on what else the machine was doing.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .record import RecordError, clean_leftovers

try:
    import fcntl
except ImportError:  # not a POSIX system: results are not locked
    fcntl = None


class StaleResultWarning(UserWarning):
    """A stored result could not be used (corrupt, edited or from other inputs) and is recomputed."""


class MissingRecordError(RecordError):
    """A stored result is needed and must not be computed (``--render-only``), but it is missing or
    corrupt."""


def key_id(key: dict[str, Any], prefix: str = "") -> str:
    """The identity of a result: ``prefix`` + the first 16 hex digits of the sha256 of ``key`` as
    sorted JSON (values JSON cannot hold are written with ``str``)."""
    blob = json.dumps(key, sort_keys=True, default=str).encode()
    return prefix + hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------- the runs folder
def default_runs_dir() -> Path:
    """Where results live when no runs folder is given, whatever the working directory:
    ``$FTCORE_RUNS_DIR`` (made absolute) if set; else ``<checkout>/runs/cache`` when ftcore runs
    from a checkout (the folder above ``ftcore/`` holding ``pyproject.toml``); else
    ``~/.cache/ftcore/runs``."""
    env = os.environ.get("FTCORE_RUNS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "ftcore").is_dir():
        return root / "runs" / "cache"
    return Path.home() / ".cache" / "ftcore" / "runs"


DEFAULT_RUNS_DIR = default_runs_dir()


def runs_dir_or_default(runs_dir: str | os.PathLike | None) -> Path:
    return Path(runs_dir) if runs_dir else DEFAULT_RUNS_DIR


def check_writable(folder: str | os.PathLike, *, what: str = "runs folder",
                   fix: str = "pass a writable folder (--runs-dir, or FTCORE_RUNS_DIR)") -> Path:
    """Create ``folder`` if needed and check a file can be written in it, so that a result is never
    computed only to fail at saving. Raises a one-line RecordError (``what`` names the folder,
    ``fix`` says what to do) otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)) or exc.errno in (errno.EEXIST, errno.ENOTDIR):
            why = f"a file is in the way (a {what} must be a folder)"
        elif not folder.is_dir():  # e.g. under /proc, where mkdir says "No such file or directory"
            why = f"it cannot be created ({why})"
        raise RecordError(f"{what} {folder} cannot be written: {why}; {fix}") from None
    return folder


# ---------------------------------------------------------------------------- the lock
@contextlib.contextmanager
def result_lock(path: str | os.PathLike, *, optional: bool = False) -> Iterator[bool]:
    """Hold the exclusive lock of the result at ``path`` (``<parent>/.<name>.lock``, flock).

    The holder deletes the lock file before releasing it, so none are left behind; a waiter that
    then wakes up holding a deleted file notices (its file is no longer the one at the path) and
    locks again. ``optional``: where the lock file cannot be created (a read-only folder), go on
    without it (yields False; so too where there is no fcntl)."""
    path = Path(path)
    if fcntl is None:
        yield False
        return
    lock = path.with_name(f".{path.name}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            if not optional:
                raise
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the previous holder removed it: lock the new file
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


# ---------------------------------------------------------------------------- fetch or compute
def _save_method(obj: Any, path: Path) -> Any:
    obj.save(path)
    return obj


def _no_check(obj: Any) -> None:
    return None


@dataclass(frozen=True)
class Stored:
    """One cacheable result: its kind (for messages), where it lives, and how to load it, check it
    belongs to the inputs at hand (raise RecordError if not), compute it and save it. ``store``
    saves and returns what the caller gets (default: ``obj.save(path)``, then ``obj``)."""

    kind: str
    path: Path
    load: Callable[[Path], Any]
    compute: Callable[[], Any]
    check: Callable[[Any], None] = _no_check
    store: Callable[[Any, Path], Any] = _save_method
    describe: str = ""  # what it is, for the error of a missing result (e.g. the config's repr)

    @property
    def id(self) -> str:
        return self.path.name


_BAD = (RecordError, ValueError, TypeError, KeyError)  # a stored result that cannot be used


def load_valid(item: Stored) -> Any:
    """The stored result if it loads and passes its check; RecordError (FileNotFoundError if
    there is nothing at the path) otherwise."""
    if not item.path.exists():
        raise FileNotFoundError(item.path)
    try:
        obj = item.load(item.path)
        item.check(obj)
    except RecordError:
        raise
    except _BAD as exc:
        raise RecordError(f"{item.path}: {exc}") from exc
    return obj


def fetch(item: Stored, *, warn: bool = True) -> Any | None:
    """The valid stored result, or None (warning about a corrupt or mismatched one)."""
    try:
        return load_valid(item)
    except FileNotFoundError:
        return None
    except RecordError as exc:
        if warn:
            warnings.warn(f"ignoring stored {item.kind} {item.id}: {exc}; recomputing it",
                          StaleResultWarning, stacklevel=3)
        return None


def fetch_or_compute(item: Stored, *, force: bool = False, render_only: bool = False) -> Any:
    """The result of ``item``: stored if valid, else computed and saved (see the module docstring).

    ``force``: compute and replace even a valid stored result. ``render_only``: never compute; a
    result that is missing or unusable raises :class:`MissingRecordError`."""
    if render_only:
        return _fetch_only(item)
    if not force:
        with contextlib.suppress(FileNotFoundError, RecordError):
            return load_valid(item)  # the common case: no lock, nothing written
    check_writable(item.path.parent)
    with result_lock(item.path):
        clean_leftovers(item.path)
        if not force and (obj := fetch(item)) is not None:
            return obj  # saved by another process while this one waited for the lock
        with measure_cost() as cost:
            obj = item.compute()
        out = item.store(obj, item.path)
        write_cost(item.path, cost)
        return out


# ---------------------------------------------------------------------------- what it cost
COST_FILE = "cost.json"


@contextlib.contextmanager
def measure_cost() -> Iterator[dict]:
    """Fills the yielded dict with ``cpu_s`` (this process's CPU seconds, all threads), ``wall_s`` and
    ``threads`` (torch's intra-op threads, when torch is loaded) of the block."""
    import sys
    cost: dict = {}
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        yield cost
    finally:
        torch = sys.modules.get("torch")
        cost.update(cpu_s=round(time.process_time() - cpu0, 2), wall_s=round(time.perf_counter() - t0, 2),
                    **({"threads": torch.get_num_threads()} if torch is not None else {}))


def write_cost(path: str | os.PathLike, cost: dict) -> None:
    """Write ``cost`` (see :func:`measure_cost`) as ``path/cost.json``, atomically (nothing where the
    result is not a folder)."""
    path = Path(path)
    if not path.is_dir():
        return
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".cost-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(cost, f)
    os.replace(tmp, path / COST_FILE)


def read_cost(path: str | os.PathLike) -> dict | None:
    """What computing the result at ``path`` cost (``cost.json``), or None for results stored before
    it was measured."""
    try:
        return json.loads((Path(path) / COST_FILE).read_text())
    except (OSError, ValueError):
        return None


def _fetch_only(item: Stored) -> Any:
    where = f"{item.kind} {item.id} in {item.path.parent}"
    try:
        return load_valid(item)
    except FileNotFoundError:
        problem = f"no record of {where}"
    except RecordError as exc:
        problem = f"the record of {where} is unusable ({exc})"
    if clean_leftovers(item.path, dry_run=True):  # an interrupted save may have left it aside
        with contextlib.suppress(OSError), result_lock(item.path, optional=True) as locked:
            if locked:
                clean_leftovers(item.path)
            with contextlib.suppress(FileNotFoundError, RecordError):
                return load_valid(item)
    what = f" ({item.describe})" if item.describe else ""
    raise MissingRecordError(f"{problem}{what}. Run `make figures` (without --render-only) to compute it.")


__all__ = ["COST_FILE", "DEFAULT_RUNS_DIR", "MissingRecordError", "StaleResultWarning", "Stored", "check_writable",
           "default_runs_dir", "fetch", "fetch_or_compute", "key_id", "load_valid", "measure_cost", "read_cost",
           "result_lock", "runs_dir_or_default", "write_cost"]
