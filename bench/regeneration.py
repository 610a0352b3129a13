"""Time a stretch of the from-empty regeneration on this machine, and say whether the machine was idle.

The whole regeneration (every figure's runs and the protocol's selections) takes many hours on 2
cores, longer than one sitting, so it is timed in batches: each batch is the training command itself,
run under this wrapper, which records

* ``wall_s``: the command's wall time;
* ``cpu_s``: the CPU time of the command and everything it started (its workers);
* ``other_cpu_s``: CPU time the rest of the machine used meanwhile (from ``/proc/stat``): near zero
  means the cores were idle apart from the batch, the condition the times are quoted for;
* ``runs_cpu_s`` / ``runs``: the CPU seconds the batch's new records say they used, so that
  ``wall_s / (runs_cpu_s / cores)`` calibrates how well the workers fill the cores;
* ``from_empty``: whether the records folder (the command's ``--runs-dir``) was empty: a figure
  trained into an empty folder is timed from empty, shared runs included.

One JSON line per batch goes to ``bench/results/regeneration.jsonl``; ``--summary`` prints them and the
estimate for the whole regeneration (``python -m chapter.report --cost`` counts its CPU minutes)::

    python bench/regeneration.py -- .venv/bin/python -m chapter --collect-only --only data-size-strategy --jobs 2 --threads 2
    python bench/regeneration.py -- .venv/bin/python -m chapter --collect-only --only forgetting --runs-dir build/empty --jobs 2 --threads 2
    python bench/regeneration.py --summary
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "regeneration.jsonl"
RUNS = ROOT / "runs" / "reference"


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle or iowait) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def runs_dir_of(cmd: list[str]) -> Path:
    """The records folder the command writes: its ``--runs-dir``, else ``runs/reference``."""
    if "--runs-dir" in cmd and cmd.index("--runs-dir") + 1 < len(cmd):
        return (ROOT / cmd[cmd.index("--runs-dir") + 1]).resolve()
    return RUNS


def new_records(runs: Path, before: set[str]) -> list[dict]:
    """The CPU seconds of the records the batch added to ``runs``: a run's or a sequence's
    ``summary.cpu_s``, else the cache's ``cost.json`` (studies); None where neither was written."""
    out = []
    for d in sorted(runs.iterdir()) if runs.exists() else []:
        if d.name not in before and (d / "meta.json").exists():
            cpu = json.loads((d / "meta.json").read_text()).get("summary", {}).get("cpu_s")
            if cpu is None and (d / "cost.json").exists():
                cpu = json.loads((d / "cost.json").read_text()).get("cpu_s")
            out.append({"cpu_s": cpu})
    return out


def run(cmd: list[str], label: str) -> dict:
    runs = runs_dir_of(cmd)
    before = {d.name for d in runs.iterdir()} if runs.exists() else set()
    busy0, t0 = busy_cpu_s(), time.perf_counter()
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc = subprocess.call(cmd, cwd=ROOT)
    wall = time.perf_counter() - t0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd_cpu = (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime)
    busy = busy_cpu_s() - busy0
    recs = new_records(runs, before)
    measured = [r["cpu_s"] for r in recs if r.get("cpu_s") is not None]
    row = {"label": label, "command": " ".join(cmd), "rc": rc, "from_empty": not before,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "cpu_model": cpu_model(), "cores": os.cpu_count(),
           "avx512_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text(),
           "wall_s": round(wall, 1), "cpu_s": round(cmd_cpu, 1), "other_cpu_s": round(busy - cmd_cpu, 1),
           "runs": len(recs), "runs_cpu_s": round(sum(measured), 1), "runs_unmeasured": len(recs) - len(measured)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return row


def summary() -> list[str]:
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()] if RESULTS.exists() else []
    lines = ["| batch | from empty | date | CPU | runs | wall min | command CPU min | runs' CPU min | other CPU min | "
             "wall ÷ (runs' CPU ÷ cores) |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fill = r["wall_s"] / (r["runs_cpu_s"] / r["cores"]) if r["runs_cpu_s"] else float("nan")
        lines.append(f"| {r['label']} | {'yes' if r.get('from_empty') else 'no'} | {r['date'][:10]} | {r['cpu_model']} ({r['cores']} cores) | {r['runs']} | "
                     f"{r['wall_s'] / 60:.1f} | {r['cpu_s'] / 60:.1f} | {r['runs_cpu_s'] / 60:.1f} | "
                     f"{r['other_cpu_s'] / 60:.1f} | {fill:.2f} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/regeneration.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default=None, help="the batch's name in the results (default: the command's --only ids)")
    ap.add_argument("--summary", action="store_true", help="print the batches timed so far")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="after --: the training command to time")
    args = ap.parse_args(argv)
    if args.summary:
        print("\n".join(summary()))
        return 0
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the command to time after --, e.g. -- .venv/bin/python -m chapter --collect-only --only ID --jobs 2 --threads 2")
    label = args.label or (" ".join(cmd[cmd.index("--only") + 1:]).split(" --")[0] if "--only" in cmd else "all")
    row = run(cmd, label)
    print(json.dumps(row, ensure_ascii=False, indent=1))
    return row["rc"]


if __name__ == "__main__":
    sys.exit(main())
