"""Train what the figures need in parallel, through an existing engine: joblib (loky processes) on
one machine, Ray on a cluster. No scheduler of our own.

The build first resolves every figure's needs into the distinct stored results (runs, task
sequences, landscapes; the cache's :class:`~ftcore.records.cache.Stored` items) and loads those
already stored (:func:`plan`). The missing ones are trained in worker processes with the threads
split between them (:func:`train_missing`): each job's config gets ``threads = total // workers``
(``threads`` is not part of a run's identity, so its id, and its folder, stay the same). Then the
build collects as before, now from the cache.

Where records are written:

* ``joblib`` (default): each worker calls the ordinary cached path
  (:func:`~ftcore.records.cache.fetch_or_compute`), so records are saved atomically into the runs
  folder by the worker, under the result's lock: a build killed at any moment keeps every finished
  run, and two builds on one folder never train the same run twice or corrupt each other.
* ``ray``: a worker may be on another machine, so it computes and returns the result, and the
  driver saves it into its runs folder (under the same lock). No shared filesystem is needed.

What a need resolves to, and how each kind of job finds its stored result, is said by the need
types themselves (:mod:`chapter.needs`). Studies (``StudyNeed``) are not parallelised: their compute
functions are closures over the scale, and they are few; they run in the parent during collection,
when the runs they share with the figures are cache hits.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from ftcore.records.cache import fetch_or_compute, load_valid, measure_cost, write_cost
from ftcore.records.record import RecordError

from .needs import JOB_KINDS, RUN_KIND, Job  # noqa: F401 (JOB_KINDS, RUN_KIND: re-exported)
from .registry import REGISTRY

BACKENDS = ("joblib", "ray")


def jobs_of(spec, S) -> list[Job]:
    """The stored results a figure needs that workers can compute (each need's ``jobs()``: none for
    studies and values)."""
    return [job for need in spec.needs(S).values() for job in need.jobs()]


def plan(col, ids: list[str]) -> list[Job]:
    """The distinct results the figures ``ids`` need that the runs folder lacks (all of them with
    ``force``), in the figures' order. Those already stored are loaded into ``col.results``, so the
    collection that follows loads nothing twice. A corrupt or stale stored result counts as missing
    (and is reported and recomputed by the worker, as everywhere)."""
    seen: set[Path] = set()
    missing = []
    for fid in ids:
        for job in jobs_of(REGISTRY[fid], col.S):
            item = job.stored(col.S.runs_dir)
            if item.path in seen or item.path in col.results:
                continue
            seen.add(item.path)
            if not col.force:
                try:
                    col.results[item.path] = load_valid(item)
                    continue
                except (FileNotFoundError, RecordError):  # missing, or corrupt or stale: the worker's
                    pass  # fetch_or_compute reports which and recomputes it
            missing.append(job)
    return missing


# ---------------------------------------------------------------------------- the worker
def _work(job: Job, runs_dir: str, force: bool, ship: bool) -> tuple[Job, bool, float, Any]:
    """Runs in a worker process. ``ship`` (Ray): compute and return the result for the driver to
    save; else fetch or compute it through the cache here. Returns (job, computed here?, seconds,
    the result when shipped)."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    t = time.perf_counter()
    item = job.stored(runs_dir)
    if ship:  # the driver saves it, with what it cost here
        with measure_cost() as cost:
            obj = item.compute()
        return job, True, time.perf_counter() - t, (obj, cost)
    computed = []

    def compute():
        computed.append(True)
        return item.compute()
    fetch_or_compute(dataclasses.replace(item, compute=compute), force=force)
    return job, bool(computed), time.perf_counter() - t, None


def split_threads(total: int, workers: int) -> int:
    """Threads per worker: the total split evenly, at least one."""
    return max(1, total // max(1, workers))


def _joblib_results(jobs: list[Job], args: tuple, *, workers: int, threads: int):
    """joblib's loky processes (fresh interpreters: no fork of a process holding torch threads;
    with one worker joblib runs the jobs here, in this process); results as they finish."""
    from joblib import Parallel, delayed, parallel_backend
    with parallel_backend("loky", n_jobs=workers, inner_max_num_threads=threads):
        yield from Parallel(return_as="generator_unordered")(delayed(_work)(job, *args) for job in jobs)


def _ray_results(jobs: list[Job], args: tuple, *, workers: int, threads: int, address: str | None):
    """Ray tasks, at most ``workers`` in flight, each asking Ray for ``threads`` CPUs; results as
    they finish."""
    try:
        import ray
    except ImportError:
        raise SystemExit("error: --backend ray needs Ray: pip install -e '.[ray]'") from None
    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[1])
        # Workers import chapter/ftcore from the same path on every node (the repo installed there).
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": root, "TOKENIZERS_PARALLELISM": "false"}})
    remote = ray.remote(num_cpus=threads, max_retries=1)(_work)
    todo, running = list(jobs), []
    while todo or running:
        while todo and len(running) < workers:
            running.append(remote.remote(todo.pop(0), *args))
        ready, running = ray.wait(running, num_returns=1)
        yield ray.get(ready[0])


def train_missing(col, jobs: list[Job], *, workers: int, threads: int, backend: str = "joblib",
                  address: str | None = None, progress: bool = True) -> int:
    """Compute ``jobs`` in ``workers`` processes of ``threads`` threads each; every finished result
    is loaded into ``col.results`` (and counted in ``col.trained`` when it was computed by this
    build). Returns how many were computed."""
    from tqdm.auto import tqdm

    if not jobs:
        return 0
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {BACKENDS}")
    runs_dir, ship = str(col.S.runs_dir), backend == "ray"
    if not col.render_only:
        from ftcore.records.cache import check_writable
        check_writable(runs_dir)  # before any worker starts
    n_workers = max(1, min(workers, len(jobs)))
    jobs = [job.with_threads(threads) for job in jobs]
    args = (runs_dir, col.force, ship)
    results = (_ray_results(jobs, args, workers=n_workers, threads=threads, address=address) if ship
               else _joblib_results(jobs, args, workers=n_workers, threads=threads))
    done = 0
    with contextlib.closing(results):
        bar = tqdm(results, total=len(jobs), desc=f"training ({n_workers} workers × {threads} threads)",
                   unit="run", disable=not progress)
        for job, computed, secs, obj in bar:
            item = job.stored(runs_dir)
            if ship:  # save here what the remote worker computed (locked, atomic; kept if another build saved it first)
                computed, (obj, cost) = [], obj
                fetch_or_compute(dataclasses.replace(item, compute=lambda obj=obj: (computed.append(1), obj)[1]),
                                 force=col.force)
                if computed:  # the cost file the save wrote timed the hand-over: the worker's is the real one
                    write_cost(item.path, cost)
            col.results[item.path] = load_valid(item)
            if computed:
                done += 1
                col.trained += 1
            bar.set_postfix_str(f"{job.kind} {item.id} {secs:.0f}s", refresh=False)
    return done


def default_threads(S) -> int:
    """The build's thread budget: the scale's (``S.base.threads``), else the CPU count."""
    return S.base.threads or os.cpu_count() or 1


__all__ = ["BACKENDS", "Job", "default_threads", "jobs_of", "plan", "split_threads", "train_missing"]
