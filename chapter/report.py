"""What the figures measured, as one Markdown table per figure: the validity gate, each must-learn
arm's test accuracy (mean with its 95% t interval over seeds) and each claim's verdict.

    python -m chapter.report                 # every figure, from runs/reference (never trains)
    python -m chapter.report --only warmup   # some figures
    python -m chapter.report --quick         # the quick records (CI's)
    python -m chapter.report --cost          # each figure's cost (optimizer steps, CPU minutes) and the from-empty estimate

A figure whose records are not all stored yet is listed with the first missing one.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ftcore.records.cache import RecordError
from ftcore.records.stats import mean_interval

from .registry import REGISTRY
from .scale import SCALES


def _arm(labels: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "seed") or "run"


def _accuracy(rec) -> float:
    if "continual" in (rec.config or {}):  # a task sequence: mean final accuracy over its tasks
        from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
        return forgetting_metrics(accuracy_matrix(rec))["average_accuracy"]
    return rec.metric("accuracy", "test")


def must_learn_table(spec, inputs: dict) -> list[str]:
    """Rows ``| input | arm | accuracy mean [95% t] (n) |`` for the arms the figure must see learn."""
    rows = []
    inputs = spec.judged_inputs(inputs)
    for name, predicate in (spec.must_learn or {}).items():
        arms: dict[str, list[float]] = {}
        for labels, rec in inputs[name]:
            if predicate(labels):
                arms.setdefault(_arm(labels), []).append(_accuracy(rec))
        for arm, values in arms.items():
            iv = mean_interval(values)
            ci = f"[{iv.low:.3f}, {iv.high:.3f}]" if math.isfinite(iv.low) else "(one run)"
            rows.append(f"| {name} | {arm} | {iv.estimate:.3f} {ci} | {iv.n} |")
    return rows


def report(fid: str, col) -> list[str]:
    spec = REGISTRY[fid]
    lines = [f"### `{fid}` ({spec.section})", ""]
    try:
        inputs = col.collect(spec)
    except RecordError as err:
        return lines + [f"Records not all stored yet: {str(err).split('. ')[0]}.", ""]
    g = spec.gate(inputs, quick=col.S.quick)
    lines.append("Gate: " + ("not declared" if g is None else ("passed" if g.passed else "FAILED") + f" ({g.reason(limit=5)})"))
    lines.append("")
    table = must_learn_table(spec, inputs)
    if table:
        lines += ["| input | must-learn arm | test accuracy, mean [95% t] | n |", "|---|---|---|---|", *table, ""]
    for j in spec.verdicts(inputs):
        lines.append(f"- {j.line('en')}")
    return lines + [""]


def _cost(path) -> dict | None:
    """What a stored run, task sequence, landscape or study cost: optimizer steps (a sequence's
    summed over its tasks; 0 where a study does not count them), CPU seconds (the record's own
    ``summary.cpu_s``, else the cache's ``cost.json``; None for results made before either was
    measured), wall seconds, threads."""
    import json

    from ftcore.records.cache import read_cost
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    side = read_cost(path) or {}
    if "summary" in meta:
        sm = meta["summary"]
        steps = sm.get("steps") or sum(t.get("steps") or 0 for t in sm.get("per_task") or [])
        return {"steps": int(steps), "cpu_s": sm.get("cpu_s", side.get("cpu_s")),
                "wall_s": float(sm.get("wall_s", math.nan)), "threads": int(meta.get("provenance", {}).get("threads", 0))}
    timings = meta.get("timings") or {}
    wall = side.get("wall_s", sum(v for v in timings.values() if isinstance(v, (int, float))))
    return {"steps": int(meta["steps"]) if isinstance(meta.get("steps"), int) else 0, "cpu_s": side.get("cpu_s"),
            "threads": int(meta.get("threads", side.get("threads", 0))), "wall_s": float(wall)}


def _tally(own: dict, got: dict) -> None:
    """Add one result's cost (:func:`_cost`) to the sums ``own``: a result without CPU time counts
    its recorded wall time apart (``unmeasured_wall_s``)."""
    wall = got["wall_s"] if math.isfinite(got["wall_s"]) else 0.0
    own["n"] += 1
    own["steps"] += got["steps"]
    own["wall_s"] += wall
    if got["cpu_s"] is None:
        own["no_cpu"] += 1
        own["unmeasured_wall_s"] += wall
    else:
        own["cpu_s"] += float(got["cpu_s"])


def cost_table(ids: list[str], S, totals: dict | None = None) -> list[str]:
    """Per figure: its stored results, their optimizer steps and CPU seconds, each result counted
    once (with the first figure that needs it) so the columns sum to the regeneration's cost. CPU
    seconds are the cost that does not depend on what else the machine was doing; wall time does
    (it is shown for records made before CPU time was recorded). Cached studies are computed in the
    drawing process and are not counted. ``totals``: filled with the sums (``unmeasured_wall_s``:
    the recorded wall seconds of the results without CPU time)."""
    from .parallel import jobs_of
    seen: set = set()
    rows, missing = [], 0
    tot = {"steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0, "unmeasured_wall_s": 0.0}
    for fid in ids:
        spec = REGISTRY[fid]
        own = {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0, "unmeasured_wall_s": 0.0}
        n_all = 0
        for job in jobs_of(spec, S):
            path = job.stored(S.runs_dir).path
            n_all += 1
            if path in seen:
                continue
            seen.add(path)
            got = _cost(path)
            if got is None:
                missing += 1
                continue
            _tally(own, got)
        for k in tot:
            tot[k] += own[k]
        cpu = f"{own['cpu_s'] / 60:.1f}" + (f" (+{own['no_cpu']} unmeasured)" if own["no_cpu"] else "")
        protocol = "reviewed" if spec.reviewed else "earlier"
        rows.append(f"| {fid} | {protocol} | {n_all} | {own['n']} | {own['steps']:,} | {cpu} | {own['wall_s'] / 60:.1f} |")
    if totals is not None:
        totals.update(tot, n=len(seen) - missing, missing=missing)
    return ["| figure | protocol | results needed | new (not needed by a figure above) | optimizer steps | "
            "CPU min | recorded wall min |",
            "|---|---|---:|---:|---:|---:|---:|", *rows,
            f"| **all** | | | {len(seen) - missing} | **{tot['steps']:,}** | **{tot['cpu_s'] / 60:.1f}**"
            + (f" (+{tot['no_cpu']} unmeasured)" if tot["no_cpu"] else "") + f" | {tot['wall_s'] / 60:.1f} |", "",
            f"{missing} result(s) not stored yet." if missing else "Every result is stored.",
            "CPU minutes are each record's own process CPU time (all its threads; `summary.cpu_s`), the cost "
            "that does not depend on machine load; records made before it was recorded are counted as unmeasured. "
            "Wall minutes are each record's own wall time: workers in parallel overlap, and a run trained while "
            "the machine was shared records the slower time it took."]


def selection_cost_table(totals: dict | None = None) -> list[str]:
    """The reviewed protocol's selection runs (``chapter.protocol``): per selection, the runs
    stored, their optimizer steps and CPU minutes (each run counted once). ``totals``: filled with
    the sums, as :func:`cost_table`'s."""
    from ftcore.records.cache import fetch as fetch_stored

    from .protocol import SELECTIONS, _Placeholder, outcome, stored_of
    from .scale import REVIEWED
    seen: set = set()
    rows, tot = [], {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0, "unmeasured_wall_s": 0.0}
    for name, sel in SELECTIONS.items():
        own = {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0, "unmeasured_wall_s": 0.0}
        asked = []

        def fetch(cfg):  # every run the selection reads, grid extensions included
            stored = stored_of(cfg, REVIEWED.runs_dir)
            asked.append(stored.path)
            return fetch_stored(stored) or _Placeholder()
        outcome(sel, REVIEWED, fetch=fetch)
        for path in asked:
            if path in seen or (got := _cost(path)) is None:
                continue
            seen.add(path)
            _tally(own, got)
        for k in own:
            tot[k] += own[k]
        cpu = f"{own['cpu_s'] / 60:.1f}" + (f" (+{own['no_cpu']} unmeasured)" if own["no_cpu"] else "")
        rows.append(f"| {name} | {own['n']} | {own['steps']:,} | {cpu} |")
    cpu = f"{tot['cpu_s'] / 60:.1f}" + (f" (+{tot['no_cpu']} unmeasured)" if tot["no_cpu"] else "")
    if totals is not None:
        totals.update(tot)
    return ["| selection (reviewed protocol) | runs stored | optimizer steps | CPU min |", "|---|---:|---:|---:|",
            *rows, f"| **all** | {tot['n']} | **{tot['steps']:,}** | **{cpu}** |"]


TIMED_BATCHES = Path(__file__).resolve().parents[1] / "bench" / "results" / "regeneration.jsonl"


def fill_factor(path: Path = TIMED_BATCHES) -> tuple[float, int]:
    """How much longer than its runs' CPU time split over the cores a training batch took, from the
    batches ``bench/regeneration.py`` timed on idle cores (CPU-weighted over the batches; 1.0 when none
    were): (factor, batches used). A batch counts when the rest of the machine used under 5% of its
    CPU time and its runs recorded their CPU time."""
    import json
    try:
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except OSError:
        return 1.0, 0
    ok = [r for r in rows if r["rc"] == 0 and r["runs_cpu_s"] > 0 and r["other_cpu_s"] < 0.05 * r["cpu_s"]]
    if not ok:
        return 1.0, 0
    return sum(r["wall_s"] for r in ok) / sum(r["runs_cpu_s"] / r["cores"] for r in ok), len(ok)


def regeneration_estimate(figs: dict, sels: dict, cores: int | None = None) -> list[str]:
    """The from-empty regeneration time on ``cores`` idle cores (default: this machine's), from the
    totals of :func:`cost_table` and :func:`selection_cost_table` and the timed batches' fill factor."""
    import os
    cores = cores or os.cpu_count() or 1
    factor, n_batches = fill_factor()
    measured = figs["cpu_s"] + sels["cpu_s"]
    unmeasured = figs["unmeasured_wall_s"] + sels["unmeasured_wall_s"]
    hours = (measured + unmeasured) / cores * factor / 3600
    how = (f"× {factor:.2f}, the wall time per CPU second the {n_batches} batch(es) timed on idle cores took "
           f"(`python bench/regeneration.py --summary`)" if n_batches else
           "(no batch timed on idle cores yet: `bench/regeneration.py`; the cores assumed fully used)")
    return [f"**From empty on {cores} idle cores: about {hours:.1f} h** (`make selections`, then `make figures-force`): "
            f"{measured / 60:,.0f} CPU min recorded by the results + {unmeasured / 60:,.0f} min of recorded wall time for the "
            f"{figs['no_cpu'] + sels['no_cpu']} results made before CPU time was recorded (contention inflates it), ÷ {cores} cores {how}. "
            "The records' CPU seconds come from the machines that made them; a machine with slower cores takes longer."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapter.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick-mode records (tests/fixtures/quick-runs)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="these figure ids only")
    ap.add_argument("--cost", action="store_true",
                    help="instead: each figure's and each selection's results, their optimizer steps and CPU "
                         "minutes, and the time a regeneration from empty takes on this machine's idle cores "
                         "(calibrated by the batches bench/regeneration.py timed)")
    args = ap.parse_args(argv)
    from . import figures  # noqa: F401 (registers the figures)
    from .build import Collector, _quiet_loading

    ids = args.only or list(REGISTRY)
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        ap.error(f"unknown figure id(s) {unknown}; known: {', '.join(REGISTRY)}")
    _quiet_loading()
    if args.cost:
        figs, sels = {}, {}
        print("\n".join(cost_table(ids, SCALES["quick" if args.quick else "full"], figs)))
        if not args.quick:
            print("\n" + "\n".join(selection_cost_table(sels)))
            if not args.only:
                print("\n" + "\n".join(regeneration_estimate(figs, sels)))
        return 0
    col = Collector(SCALES["quick" if args.quick else "full"], render_only=True)
    for fid in ids:
        print("\n".join(report(fid, col)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
