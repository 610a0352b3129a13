"""Re-measure the training time of a figure's stored runs on an idle machine.

A record keeps the wall time its run took. Runs trained while other jobs shared the CPU record
inflated times (a base-run step takes about 0.12 s on two idle cores, and records trained under
contention show up to 9 s), and figures that draw training time then compare loads, not methods.
Training is deterministic on the CPU for a given config and thread count, so a run can be trained
again and only its times change::

    python -m chapter.retime --only peft                # every ftcore run the figure draws
    python -m chapter.retime --only peft --slower 2     # only runs slower than 2x their arm's fastest per step

Each run is retrained with its record's own config (thread count included) and stored only if every
test metric it had is identical; otherwise the old record is kept and the difference is printed.
Run it with nothing else on the machine: the point is an honest time.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time

from ftcore import RunConfig
from ftcore.engine.runs import stored_run, train
from ftcore.records.cache import fetch_or_compute, load_valid

from .registry import REGISTRY, Grid
from .scale import FULL


def candidates(ids, slower: float | None):
    """The distinct stored ftcore runs of the figures ``ids`` (with ``slower``: only those whose
    training seconds per step exceed ``slower`` times the fastest run of the same arm)."""
    from . import figures  # noqa: F401 (registers the figures)
    seen, out = set(), []
    for fid in ids:
        for need in REGISTRY[fid].needs(FULL).values():
            if not isinstance(need, Grid) or need.engine_label:
                continue
            arms: dict = {}
            for labels, cfg in need.cells:
                item = stored_run(cfg, FULL.runs_dir)
                if item.path in seen:
                    continue
                seen.add(item.path)
                rec = load_valid(item)
                per_step = rec.summary["train_s"] / max(1, rec.summary["steps"])
                arm = tuple(sorted((k, v) for k, v in labels.items() if k != "seed"))
                arms.setdefault(arm, []).append((per_step, rec))
            for runs in arms.values():
                fastest = min(p for p, _ in runs)
                out += [rec for p, rec in runs if slower is None or p > slower * fastest]
    return out


def retime(rec, runs_dir: str = FULL.runs_dir) -> tuple[bool, str]:
    """Train ``rec``'s config again; store the new record in ``runs_dir`` only if its test metrics
    are identical. Returns (stored?, a line saying what happened)."""
    cfg = RunConfig.from_dict(rec.config)
    t = time.perf_counter()
    new = train(cfg)
    old_m = {k: v for k, v in rec.summary.items() if k.startswith("test_")}
    diff = {k: (v, new.summary.get(k)) for k, v in old_m.items()
            if not (v == new.summary.get(k) or (isinstance(v, float) and math.isnan(v) and math.isnan(new.summary.get(k))))}
    if diff:
        return False, f"{rec.run_id}: metrics differ, kept the old record: {diff}"
    item = stored_run(cfg, runs_dir)
    fetch_or_compute(dataclasses.replace(item, compute=lambda: new), force=True)  # atomic, under the run's lock
    return True, (f"{rec.run_id}: train_s {rec.summary['train_s']:.0f} -> {new.summary['train_s']:.0f} "
                  f"({time.perf_counter() - t:.0f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapter.retime", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", required=True, metavar="ID", help="figure ids whose runs to retime")
    ap.add_argument("--slower", type=float, default=None, metavar="X",
                    help="only runs whose seconds per step exceed X times the fastest run of their arm")
    args = ap.parse_args(argv)
    from . import figures  # noqa: F401 (registers the figures)
    unknown = [i for i in args.only if i not in REGISTRY]
    if unknown:
        ap.error(f"unknown figure id(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    recs = candidates(args.only, args.slower)
    print(f"{len(recs)} run(s) to retrain")
    bad = 0
    for rec in recs:
        ok, line = retime(rec)
        bad += not ok
        print(line, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
