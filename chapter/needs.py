"""What a figure needs, kind by kind: each need type carries its own behaviour, so the build, the
workers and the tests never dispatch on its type and a new kind of need is one class here.

A need says two things:

* :meth:`Need.jobs`: the stored results it resolves to that worker processes may compute ahead of
  the collection (:mod:`chapter.parallel`), each a :class:`Job`: a kind of :data:`JOB_KINDS` and
  the config that computes it. Values and closure studies have none (see :class:`StudyNeed`).
* :meth:`Need.collect`: the figure's input, fetched through the build's one cache
  (:class:`chapter.build.Collector`: ``col.fetch(stored)``, each result loaded once per build).

A job kind names the cache entry of a spec (its folder, check, compute and save: the cache's
:class:`~ftcore.records.cache.Stored`) and the same spec on another thread count; threads are part of
no result's identity, so a worker splitting the thread budget still finds and writes the same folder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftcore import RunConfig
from ftcore.config import TRAINING_LOOPS, Registry


# ------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class JobKind:
    """A kind of stored result a worker computes: ``stored(spec, runs_dir)`` is its cache entry,
    ``with_threads(spec, threads)`` the same spec on ``threads`` CPU threads."""

    name: str  # the cache entry's kind: "run", "hf run", "task sequence", ...
    stored: Callable[[Any, Any], Any]
    with_threads: Callable[[Any, int], Any]


def _run_kind(loop: str) -> JobKind:
    """A RunConfig trained by one training loop of ``ftcore.config.TRAINING_LOOPS``."""
    def stored(cfg, runs_dir):
        from ftcore.engine.runs import stored_for
        return stored_for(loop, cfg, runs_dir)
    return JobKind("run" if loop == "ftcore" else f"{loop} run", stored, lambda cfg, n: cfg.replace(threads=n))


def _stored_sequence(ccfg, runs_dir):
    from ftcore.analysis.continual import stored_sequence
    return stored_sequence(ccfg, runs_dir)


def _stored_landscape(spec, runs_dir):
    from ftcore.analysis.landscape import stored_landscape
    cfg, lcfg = spec
    return stored_landscape(cfg, lcfg, runs_dir)


# training loop -> the job kind of a run it trains
RUN_KIND: dict[str, str] = {loop: _run_kind(loop).name for loop in TRAINING_LOOPS}

JOB_KINDS: Registry[JobKind] = Registry("job kind", [
    *(_run_kind(loop) for loop in TRAINING_LOOPS),
    JobKind("task sequence", _stored_sequence,  # a ContinualConfig: its base config holds the threads
            lambda ccfg, n: dataclasses.replace(ccfg, base=ccfg.base.replace(threads=n))),
    JobKind("landscape", _stored_landscape,  # (RunConfig, LandscapeConfig): the run's config holds them
            lambda spec, n: (spec[0].replace(threads=n), spec[1])),
    # a study with a picklable spec that says where it is stored (``spec.stored(runs_dir)``: an
    # InstructionRun); its thread count is one of its parameters (the stored studies' keys hold it),
    # so it keeps its own
    JobKind("study", lambda spec, runs_dir: spec.stored(runs_dir), lambda spec, n: spec),
])


@dataclass(frozen=True)
class Job:
    """One stored result a worker can compute: its kind (a name of :data:`JOB_KINDS`) and what
    computes it (a RunConfig, a ContinualConfig, or a (RunConfig, LandscapeConfig) pair).
    Picklable: it crosses to the worker."""

    kind: str
    spec: Any

    def stored(self, runs_dir):
        """Its cache entry (:class:`~ftcore.records.cache.Stored`) in ``runs_dir``."""
        return JOB_KINDS[self.kind].stored(self.spec, runs_dir)

    def with_threads(self, threads: int) -> Job:
        """The same job on ``threads`` CPU threads (not part of any result's identity)."""
        return Job(self.kind, JOB_KINDS[self.kind].with_threads(self.spec, threads))


# ------------------------------------------------------------------------------------ needs
class Need:
    """A figure's input. Subclasses say what it resolves to (:meth:`jobs`) and how the fetched
    results become the input (:meth:`collect`)."""

    def jobs(self) -> list[Job]:
        """The stored results workers may compute before the collection (none by default)."""
        return []

    def collect(self, col) -> Any:
        """The input, fetched through ``col`` (a :class:`chapter.build.Collector`)."""
        raise NotImplementedError


def _fetch(col, job: Job):
    return col.fetch(job.stored(col.S.runs_dir))


@dataclass
class Grid(Need):
    """Runs: ``(labels, RunConfig)`` cells; arrives in the figure as a ``viz.RunSet``.

    ``engine_label``: the label naming each cell's training loop: "ftcore", "hf" (HF Trainer,
    ``ftcore.engine.hf``) or "lightning" (``ftcore.engine.lightning``); without it every cell is an
    ftcore run."""
    cells: list[tuple[dict[str, Any], RunConfig]]
    engine_label: str | None = None

    def engine(self, labels: dict[str, Any]) -> str:
        return labels[self.engine_label] if self.engine_label else "ftcore"

    def jobs(self) -> list[Job]:
        return [Job(RUN_KIND[self.engine(labels)], cfg) for labels, cfg in self.cells]

    def collect(self, col):
        from tqdm.auto import tqdm

        from ftcore.records.runset import RunSet
        cells = tqdm(list(zip(self.cells, self.jobs())), desc=f"  {col.current}", unit="run", leave=False,
                     disable=len(self.cells) < 2)
        return RunSet((labels, _fetch(col, job)) for (labels, _), job in cells)


@dataclass
class Sequences(Need):
    """Task sequences (continual learning): ``(labels, ContinualConfig)`` cells → a RunSet."""
    cells: list[tuple[dict[str, Any], Any]]

    def jobs(self) -> list[Job]:
        return [Job("task sequence", ccfg) for _, ccfg in self.cells]

    def collect(self, col):
        from ftcore.records.runset import RunSet
        return RunSet((labels, _fetch(col, job)) for (labels, _), job in zip(self.cells, self.jobs()))


@dataclass
class StudyNeed(Need):
    """A cached study: ``compute()`` → (tables, meta), keyed on ``name`` and ``params``.

    No jobs: its compute function is a closure over the scale, which a worker process cannot
    receive, and studies are few; it runs in the parent during collection, when the runs it shares
    with the figures are cache hits."""
    name: str
    params: dict[str, Any]
    compute: Callable[[], tuple[dict, dict]]

    def collect(self, col):
        from ftcore.records.studies import stored_study
        return col.fetch(stored_study(self.name, self.params, self.compute, col.S.runs_dir))


@dataclass
class StudyJob(Need):
    """A study a worker can compute: ``spec`` is picklable, unlike a :class:`StudyNeed`'s closure, and
    says where it is stored (``spec.stored(runs_dir)``; an ``ftcore.alignment.instructions.InstructionRun``)."""
    spec: Any

    def jobs(self) -> list[Job]:
        return [Job("study", self.spec)]

    def collect(self, col):
        return _fetch(col, self.jobs()[0])

    @property
    def params(self) -> dict:
        return self.spec.params()


@dataclass
class LandscapeNeed(Need):
    """A loss landscape around the run of ``cfg`` (``lcfg``: a LandscapeConfig) → a dict of its
    ``surface``, ``path`` and ``line`` tables and its ``meta``."""
    cfg: RunConfig
    lcfg: Any

    def jobs(self) -> list[Job]:
        return [Job("landscape", (self.cfg, self.lcfg))]

    def collect(self, col):
        land = _fetch(col, self.jobs()[0])
        return {"surface": land.surface, "path": land.path, "line": land.line, "meta": land.meta}


@dataclass
class Value(Need):
    """Something already at hand (metadata read from the assets)."""
    get: Callable[[], Any]

    def collect(self, col):
        return self.get()


__all__ = ["Grid", "JOB_KINDS", "Job", "JobKind", "LandscapeNeed", "Need", "RUN_KIND", "Sequences", "StudyJob", "StudyNeed",
           "Value"]
