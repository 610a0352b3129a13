"""One record builder for every training loop: run id, provenance, events and summary, written alike.

ftcore's Trainer (:func:`ftcore.engine.runs.train`), the HF Trainer and Lightning adapters
(:mod:`ftcore.engine.hf`, :mod:`ftcore.engine.lightning`) and the task sequences
(:mod:`ftcore.analysis.continual`) all end in :func:`build_record`, so every record has

* the run id of its loop's entry in ``TRAINING_LOOPS`` (or the id the caller names: a sequence's);
* the same provenance keys: code, libraries, machine, model and data fingerprints, when training
  started, and the loop (``loop``, ``trainer``: what applied the updates, ``grad_norms``: when the
  per-group gradient norms were read);
* its events in step order, including what the loop did differently from the config before the first
  update (:func:`ftcore.engine.schedules.planned_adjustments`: rows dropped, train size or warmup
  clamped), which every loop records the same way;
* one summary layout (:func:`run_summary`): status, the loop (other than ftcore's), steps done and
  planned, data and model sizes, time, the loop's own entries, each split's final metrics.

The loops written out by hand, whose results are studies rather than RunRecords (MLM pretraining,
the tiny GPT, instruction tuning, the reward model, RLOO), run inside :func:`hand_loop`: their torch
threads set and restored, and their provenance (the same code, machine and loop keys) for the
study's meta.
"""
from __future__ import annotations

import contextlib
import datetime as dt

import pandas as pd
import torch

from ..config import TRAINING_LOOPS, RunConfig
from ..records.provenance import code_and_machine, now
from ..records.queries import final_metrics
from ..records.record import RunRecord, table_from_rows
from . import provenance
from .model_sources import resolve_model
from .models import count_parameters
from .peft_methods import trainable_summary
from .run_ids import id_in_loop

STATUS_OF_STOP = {"diverged": "diverged", "early_stopped": "early_stopped"}  # any other stop: completed


def loop_provenance(loop: str, device: torch.device | str, *, model: str | None, tasks: list,
                    started_at: dt.datetime | None = None) -> dict:
    """Provenance of a run of ``loop`` on ``device``: ``model`` is a RunConfig model name (None: not
    known, e.g. a user's own model in HF's Trainer), ``tasks`` the Task objects it read."""
    src = resolve_model(model) if model is not None else None
    prov = provenance.collect(torch.device(device), model_fingerprint=src.fingerprint if src else "unknown",
                              data_fingerprint=",".join(t.fingerprint for t in tasks) or "unknown",
                              task_source="; ".join(t.source for t in tasks),
                              model_path=src.path if src else model, started_at=started_at)
    return {**prov, **_loop_keys(loop)}


def _loop_keys(loop: str) -> dict:
    entry = TRAINING_LOOPS[loop]
    return {"loop": loop, "trainer": entry.trainer, "grad_norms": entry.grad_norms}


def run_summary(model: torch.nn.Module, data, *, steps: int, total_steps: int, steps_per_epoch: int,
                warmup_steps: int, epochs: float, examples_seen: int, wall_s: float, train_s: float,
                eval_s: float | None = None, cpu_s: float | None = None, extra: dict | None = None) -> dict:
    """One run's summary (before its status and final metrics): steps done and planned, examples,
    labels and parameter counts, time (``eval_s`` where the loop measures it; ``cpu_s``: the process's
    CPU seconds over training and evaluation, all its threads: the cost, where wall time also
    measures what else the machine was doing), the loop's own entries."""
    timing = {"wall_s": wall_s, **({"eval_s": eval_s} if eval_s is not None else {}), "train_s": train_s,
              **({"cpu_s": round(cpu_s, 2)} if cpu_s is not None else {})}
    return {"steps": steps, "total_steps_planned": total_steps, "steps_per_epoch": steps_per_epoch,
            "warmup_steps": warmup_steps, "epochs": round(epochs, 4), "examples_seen": examples_seen,
            **model_data_summary(model, data), **timing, **(extra or {})}


def model_data_summary(model: torch.nn.Module, data) -> dict:
    """The summary entries every training loop's record has about its data and model: example
    counts, labels, parameter counts (total, trainable at the end and their share)."""
    return {"train_examples": len(data.train["label"]),
            "eval_examples": {s: len(v["label"]) for s, v in data.evals.items()},
            "num_labels": data.num_labels, "label_names": list(data.task.label_names),
            "total_params": count_parameters(model),
            "trainable_params_at_end": count_parameters(model, trainable_only=True),
            "trainable_pct_at_end": trainable_summary(model)["trainable_pct"]}


def final_summary_metrics(evals: pd.DataFrame) -> dict:
    """Each split's last metrics as summary entries ``<split>_<metric>`` (per-class rows stay in
    the evals table)."""
    return {f"{split}_{m}": v for split, metrics in final_metrics(evals).items() for m, v in metrics.items()
            if "/" not in m}


def build_record(loop: str, cfg: RunConfig, *, device: torch.device | str, tasks: list, tables: dict,
                 events: list[tuple[int, str, str]], stop_reason: str | None, summary: dict,
                 run_id: str | None = None, config: dict | None = None, with_final_metrics: bool = True,
                 prov: dict | None = None) -> RunRecord:
    """The RunRecord of a finished run of ``loop`` (a name in ``TRAINING_LOOPS``).

    ``tables``: the recorded rows (or DataFrames) by table name; ``events``: ``(step, kind, detail)``;
    ``stop_reason``: why training stopped early ("diverged", "early_stopped"; None: it completed);
    ``summary``: :func:`run_summary` (a task sequence passes its own, per task, with
    ``with_final_metrics=False``: its splits' last metrics belong to several tasks). ``run_id`` and
    ``config`` default to the loop's id of ``cfg`` and ``cfg.to_dict()``; ``prov`` to
    :func:`loop_provenance` of a training that started ``summary["wall_s"]`` ago (one given is kept,
    with the loop's keys added)."""
    tables = {name: rows if isinstance(rows, pd.DataFrame) else table_from_rows(name, rows)
              for name, rows in tables.items() if name != "events"}
    tables["events"] = table_from_rows("events", sorted(events, key=lambda e: e[0]))
    status = STATUS_OF_STOP.get(stop_reason, "completed")
    summary = {"status": status, **({"trainer": loop} if TRAINING_LOOPS[loop].marks_records else {}), **summary}
    if with_final_metrics:
        summary.update(final_summary_metrics(tables["evals"]))
    if prov is None:
        started = now() - dt.timedelta(seconds=float(summary.get("wall_s") or 0.0))
        prov = loop_provenance(loop, device, model=cfg.model, tasks=tasks, started_at=started)
    else:
        prov = {**prov, **_loop_keys(loop)}
    return RunRecord(run_id or id_in_loop(loop, cfg), cfg.to_dict() if config is None else config, prov, status,
                     summary, tables)


@contextlib.contextmanager
def hand_loop(loop: str, *, threads: int):
    """Run a hand-written training loop (``loop`` names it: "mlm", "causal-lm", ...) on ``threads``
    CPU threads (the previous count is restored after), yielding its provenance for the study's
    meta: code, libraries, machine, threads, when it started."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield {**code_and_machine(), **provenance.machine(torch.device("cpu")), "loop": loop}
    finally:
        torch.set_num_threads(before)


__all__ = ["STATUS_OF_STOP", "build_record", "final_summary_metrics", "hand_loop", "loop_provenance",
           "model_data_summary", "run_summary"]
