"""What the figures measured, as one Markdown table per figure: the validity gate, each must-learn
arm's test accuracy (mean with its 95% t interval over seeds) and each claim's verdict.

    python -m chapter.report                 # every figure, from runs/reference (never trains)
    python -m chapter.report --only warmup   # some figures
    python -m chapter.report --quick         # the quick records (CI's)
    python -m chapter.report --cost          # each figure's cost: optimizer steps and CPU seconds

A figure whose records are not all stored yet is listed with the first missing one.
"""
from __future__ import annotations

import argparse
import math
import sys

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
    """What a stored run, task sequence or landscape cost, from its meta: optimizer steps, CPU
    seconds (``cpu_s``; records made before it was measured lack it: None), wall seconds, threads."""
    import json
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if "summary" in meta:
        sm = meta["summary"]
        return {"steps": int(sm.get("steps") or 0), "cpu_s": sm.get("cpu_s"),
                "wall_s": float(sm.get("wall_s", math.nan)), "threads": int(meta.get("provenance", {}).get("threads", 0))}
    timings = meta.get("timings") or {}
    return {"steps": 0, "cpu_s": None, "threads": int(meta.get("threads", 0)),
            "wall_s": float(sum(v for v in timings.values() if isinstance(v, (int, float))))}


def cost_table(ids: list[str], S) -> list[str]:
    """Per figure: its stored results, their optimizer steps and CPU seconds, each result counted
    once (with the first figure that needs it) so the columns sum to the regeneration's cost. CPU
    seconds are the cost that does not depend on what else the machine was doing; wall time does
    (it is shown for records made before CPU time was recorded). Cached studies are computed in the
    drawing process and are not counted."""
    from .parallel import jobs_of
    seen: set = set()
    rows, missing = [], 0
    tot = {"steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0}
    for fid in ids:
        spec = REGISTRY[fid]
        own = {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0, "wall_s": 0.0}
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
            own["n"] += 1
            own["steps"] += got["steps"]
            own["wall_s"] += got["wall_s"] if math.isfinite(got["wall_s"]) else 0.0
            if got["cpu_s"] is None:
                own["no_cpu"] += 1
            else:
                own["cpu_s"] += float(got["cpu_s"])
        for k in ("steps", "cpu_s", "no_cpu", "wall_s"):
            tot[k] += own[k]
        cpu = f"{own['cpu_s'] / 60:.1f}" + (f" (+{own['no_cpu']} unmeasured)" if own["no_cpu"] else "")
        protocol = "reviewed" if spec.reviewed else "earlier"
        rows.append(f"| {fid} | {protocol} | {n_all} | {own['n']} | {own['steps']:,} | {cpu} | {own['wall_s'] / 60:.1f} |")
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


def selection_cost_table() -> list[str]:
    """The reviewed protocol's selection runs (``chapter.protocol``): per selection, the runs
    stored, their optimizer steps and CPU minutes (each run counted once)."""
    from ftcore.records.cache import fetch as fetch_stored

    from .protocol import SELECTIONS, _Placeholder, outcome, stored_of
    from .scale import REVIEWED
    seen: set = set()
    rows, tot = [], {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0}
    for name, sel in SELECTIONS.items():
        own = {"n": 0, "steps": 0, "cpu_s": 0.0, "no_cpu": 0}
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
            own["n"] += 1
            own["steps"] += got["steps"]
            if got["cpu_s"] is None:
                own["no_cpu"] += 1
            else:
                own["cpu_s"] += float(got["cpu_s"])
        for k in own:
            tot[k] += own[k]
        cpu = f"{own['cpu_s'] / 60:.1f}" + (f" (+{own['no_cpu']} unmeasured)" if own["no_cpu"] else "")
        rows.append(f"| {name} | {own['n']} | {own['steps']:,} | {cpu} |")
    cpu = f"{tot['cpu_s'] / 60:.1f}" + (f" (+{tot['no_cpu']} unmeasured)" if tot["no_cpu"] else "")
    return ["| selection (reviewed protocol) | runs stored | optimizer steps | CPU min |", "|---|---:|---:|---:|",
            *rows, f"| **all** | {tot['n']} | **{tot['steps']:,}** | **{cpu}** |"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapter.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick-mode records (tests/fixtures/quick-runs)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="these figure ids only")
    ap.add_argument("--cost", action="store_true",
                    help="instead: each figure's results, their optimizer steps and CPU minutes")
    args = ap.parse_args(argv)
    from . import figures  # noqa: F401 (registers the figures)
    from .build import Collector, _quiet_loading

    ids = args.only or list(REGISTRY)
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        ap.error(f"unknown figure id(s) {unknown}; known: {', '.join(REGISTRY)}")
    _quiet_loading()
    if args.cost:
        print("\n".join(cost_table(ids, SCALES["quick" if args.quick else "full"])))
        if not args.quick:
            print("\n" + "\n".join(selection_cost_table()))
        return 0
    col = Collector(SCALES["quick" if args.quick else "full"], render_only=True)
    for fid in ids:
        print("\n".join(report(fid, col)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
