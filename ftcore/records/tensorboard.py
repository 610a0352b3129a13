"""Open stored run records in TensorBoard: ``ftcore tensorboard RUN... --logdir DIR``.

Each record becomes one TensorBoard run (a subfolder of ``DIR`` named after the record's folder)
with these scalars, all against the optimizer step:

=============================  ===========================================================
tag                            from
=============================  ===========================================================
``train/loss``                 ``steps.loss`` (mean training loss of each update)
``train/epoch``                ``steps.epoch``
``lr/<layer group>``           ``lrs`` (every layer group's LR; no-decay twins share it)
``grad_norm/<layer group>``    ``grad_norms`` (before clipping)
``<split>/<metric>``           ``evals`` (every metric of every split; a record of several
                               tasks writes ``<task>/<split>/<metric>``)
=============================  ===========================================================

and as text: ``events`` (unfreeze, early_stop, diverged, ... at their step) and ``run`` (config,
status, summary). Then ``tensorboard --logdir DIR`` and open http://localhost:6006.

TensorBoard is optional: ``pip install tensorboard`` (or ``pip install -e '.[lab]'``).
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from .record import RunRecord, load_run_record

INSTALL_HINT = "TensorBoard is not installed: pip install tensorboard (or pip install -e '.[lab]')"


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        try:
            from tensorboardX import SummaryWriter  # type: ignore[no-redef]
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
    return SummaryWriter


def _start_time(rec: RunRecord) -> float | None:
    started = rec.provenance.get("started_at")
    try:
        return dt.datetime.fromisoformat(started).timestamp() if started else None
    except (TypeError, ValueError):
        return None


def write_record(rec: RunRecord, logdir: str | os.PathLike, name: str | None = None) -> Path:
    """Write one record's scalars and events to ``logdir/name`` (default: its folder's name or run
    id); returns that folder. An existing folder of that name is replaced."""
    import shutil

    SummaryWriter = _writer_class()
    name = name or (rec.path.name if rec.path else rec.run_id)
    out = Path(logdir) / name
    if out.exists():
        shutil.rmtree(out)  # a rewrite, not a second copy of every point
    t0 = _start_time(rec)
    wall = dict(zip(rec.steps["step"], rec.steps["wall_s"])) if len(rec.steps) else {}

    def when(step: int) -> float | None:
        return None if t0 is None else t0 + float(wall.get(step, 0.0))

    with SummaryWriter(log_dir=str(out)) as w:
        for row in rec.steps.itertuples(index=False):
            w.add_scalar("train/loss", row.loss, int(row.step), walltime=when(int(row.step)))
            w.add_scalar("train/epoch", row.epoch, int(row.step), walltime=when(int(row.step)))
        lrs = rec.lrs.drop_duplicates(["step", "layer"])  # one LR per layer group and step
        for row in lrs.itertuples(index=False):
            w.add_scalar(f"lr/{row.layer}", row.lr, int(row.step), walltime=when(int(row.step)))
        for row in rec.grad_norms.itertuples(index=False):
            w.add_scalar(f"grad_norm/{row.group}", row.norm, int(row.step), walltime=when(int(row.step)))
        several = rec.evals["task"].nunique() > 1
        for row in rec.evals.itertuples(index=False):
            tag = f"{row.task}/{row.split}/{row.metric}" if several else f"{row.split}/{row.metric}"
            w.add_scalar(tag, row.value, int(row.step), walltime=when(int(row.step)))
        for step, events in rec.events.groupby("step", sort=True):
            text = "\n\n".join(f"**{e.kind}** {e.detail}" for e in events.itertuples(index=False))
            w.add_text("events", text, int(step))
        header = {"run_id": rec.run_id, "status": rec.status, "config": rec.config,
                  "summary": rec.summary, "trainer": rec.provenance.get("trainer", "ftcore")}
        w.add_text("run", "```\n" + json.dumps(header, indent=2, default=str) + "\n```", 0)
    return out


def write_records(paths, logdir: str | os.PathLike) -> list[Path]:
    """Load each record folder in ``paths`` and write it under ``logdir``. Every record is loaded
    and ``logdir`` checked writable first, so a bad path or log folder writes nothing."""
    from .cache import check_writable

    records = [load_run_record(p, "tensorboard") for p in paths]
    check_writable(logdir, what="TensorBoard log folder", fix="give --logdir a folder you can write to")
    _writer_class()  # not installed: say so before anything is written
    return [write_record(rec, logdir) for rec in records]


__all__ = ["INSTALL_HINT", "write_record", "write_records"]
