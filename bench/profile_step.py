"""Where a training step's time goes, ftcore vs HF ``Trainer``, with ``torch.profiler``.

Profiles a few steady-state steps of each side of a benchmark pair (same config, same batches in
the same order as ``bench_engine.py``) and prints, per step: wall time, time inside aten ops, the
rest (Python: the loop, callbacks, collation, autograd bookkeeping outside ops), the labelled
regions (forward, backward, optimizer step, zero_grad, data loading) and the ops whose self time
differs most between the two sides, with their call counts (call counts do not depend on the
machine's load; times do, so the sides are interleaved and the median over repeats is taken).

    python bench/profile_step.py                       # fp32 pair, 5 warm-up + 10 profiled steps, 3 repeats
    python bench/profile_step.py --pair bf16 --steps 20 --out bench/profile.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import PAIRS, log, pair_config, quiet_libraries, rotated, run_ftcore, run_hf  # noqa: E402

# record_function labels that torch, the DataLoader and autograd put on the regions of a step
REGIONS = {
    "data loading": ("enumerate(DataLoader)",),
    "optimizer.step": ("Optimizer.step#",),
    "zero_grad": ("Optimizer.zero_grad#",),
    "backward (autograd engine)": ("autograd::engine::evaluate_function",),
}


class StepProfiler:
    """A step hook for the benchmark's step timers: profiles steps warmup+1 .. warmup+steps."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps
        self.prof = profile(activities=[ProfilerActivity.CPU])
        self.wall = 0.0

    def __call__(self, done: int) -> None:
        if done == self.warmup:
            self.prof.start()
            self.t0 = time.perf_counter()
        elif done == self.warmup + self.steps:
            self.wall = time.perf_counter() - self.t0
            self.prof.stop()

    def summary(self) -> dict:
        """Per-step numbers (ms and calls) from the profile."""
        n = self.steps
        ops: dict[str, dict] = {}
        regions = defaultdict(float)
        inside_ops = 0.0
        for e in self.prof.key_averages():
            label = e.key
            if any(label.startswith(p) for ps in REGIONS.values() for p in ps) or label.startswith("ProfilerStep"):
                for name, prefixes in REGIONS.items():
                    if any(label.startswith(p) for p in prefixes):
                        # autograd's evaluate_function events nest ops: their inclusive CPU time
                        regions[name] += e.cpu_time_total / 1e3 / n
                continue
            ops[label] = {"self_ms": e.self_cpu_time_total / 1e3 / n, "calls": e.count / n}
            inside_ops += e.self_cpu_time_total / 1e3 / n
        wall = self.wall * 1e3 / n
        return {"wall_ms": wall, "inside_ops_ms": inside_ops, "outside_ops_ms": wall - inside_ops,
                "op_calls": sum(o["calls"] for o in ops.values()), "regions_ms": dict(regions), "ops": ops}


def med(values):
    return statistics.median(values) if values else 0.0


def combine(runs: list[dict]) -> dict:
    """Median over repeats of every per-step number."""
    out = {k: med([r[k] for r in runs]) for k in ("wall_ms", "inside_ops_ms", "outside_ops_ms", "op_calls")}
    out["regions_ms"] = {k: med([r["regions_ms"].get(k, 0.0) for r in runs])
                         for k in {k for r in runs for k in r["regions_ms"]}}
    names = {k for r in runs for k in r["ops"]}
    out["ops"] = {k: {"self_ms": med([r["ops"].get(k, {}).get("self_ms", 0.0) for r in runs]),
                      "calls": med([r["ops"].get(k, {}).get("calls", 0.0) for r in runs])} for k in names}
    return out


def print_report(sides: dict[str, dict], top: int) -> None:
    ft, hf = sides["ftcore"], sides["hf"]
    rows = [("wall per step", "wall_ms"), ("inside aten ops", "inside_ops_ms"),
            ("outside ops (Python, ...)", "outside_ops_ms")]
    lines = ["", f"{'per step':<34}{'ftcore':>10}{'HF':>10}{'ftcore-HF':>11}"]
    for label, k in rows:
        lines.append(f"{label:<34}{ft[k]:>8.2f}ms{hf[k]:>8.2f}ms{ft[k] - hf[k]:>+9.2f}ms")
    lines.append(f"{'aten op calls':<34}{ft['op_calls']:>10.0f}{hf['op_calls']:>10.0f}"
                 f"{ft['op_calls'] - hf['op_calls']:>+11.0f}")
    lines += ["", "labelled regions (inclusive)"]
    for k in sorted(set(ft["regions_ms"]) | set(hf["regions_ms"])):
        a, b = ft["regions_ms"].get(k, 0.0), hf["regions_ms"].get(k, 0.0)
        lines.append(f"  {k:<32}{a:>8.2f}ms{b:>8.2f}ms{a - b:>+9.2f}ms")
    names = set(ft["ops"]) | set(hf["ops"])
    zero = {"self_ms": 0.0, "calls": 0.0}
    diff = sorted(names, key=lambda k: -abs(ft["ops"].get(k, zero)["self_ms"] - hf["ops"].get(k, zero)["self_ms"]))
    lines += ["", f"ops with the largest self-time difference (ms per step; calls per step)",
              f"  {'op':<44}{'ftcore':>9}{'HF':>9}{'diff':>9}{'calls ft':>10}{'calls HF':>10}"]
    for k in diff[:top]:
        a, b = ft["ops"].get(k, zero), hf["ops"].get(k, zero)
        lines.append(f"  {k[:44]:<44}{a['self_ms']:>9.2f}{b['self_ms']:>9.2f}{a['self_ms'] - b['self_ms']:>+9.2f}"
                     f"{a['calls']:>10.1f}{b['calls']:>10.1f}")
    top_ft = sorted(names, key=lambda k: -ft["ops"].get(k, zero)["self_ms"])[:top]
    lines += ["", "top ops by self time (ms per step)"]
    for k in top_ft:
        a, b = ft["ops"].get(k, zero), hf["ops"].get(k, zero)
        lines.append(f"  {k[:44]:<44}{a['self_ms']:>9.2f}{b['self_ms']:>9.2f}{a['calls']:>10.1f}{b['calls']:>10.1f}")
    print("\n".join(lines), flush=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", default="fp32", choices=list(PAIRS))
    p.add_argument("--warmup", type=int, default=5, help="unprofiled steps first (5)")
    p.add_argument("--steps", type=int, default=10, help="profiled steps (10)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each side (3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recording", action=argparse.BooleanOptionalAction, default=True,
                   help="ftcore with its recording callbacks (default on)")
    p.add_argument("--sides", default="ftcore,hf", help="ftcore,hf (default) or one of them")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out", default=None, help="JSON file for the per-step numbers")
    args = p.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    pair = dataclasses.replace(PAIRS[args.pair], warmup=(args.warmup,) * 2, steps=(args.steps,) * 2)
    args.quick = False
    cfg = pair_config(pair, args)
    sides_run = tuple(x.strip() for x in args.sides.split(",") if x.strip())
    per_side: dict[str, list[dict]] = {s: [] for s in sides_run}
    with tempfile.TemporaryDirectory(prefix="ftcore-profile-hf-") as workdir:
        for r in range(args.repeats):
            for side in rotated(sides_run, r):
                prof = StepProfiler(args.warmup, args.steps)
                log(f"repeat {r + 1}/{args.repeats}: {side}")
                if side == "hf":
                    run_hf(cfg, pair, args.warmup, args.steps, workdir, hook=prof)
                else:
                    run_ftcore(cfg, pair, args.warmup, args.steps, recording=args.recording, hook=prof)
                per_side[side].append(prof.summary())
                log(f"  {per_side[side][-1]['wall_ms']:.1f} ms/step")
    sides = {k: combine(v) for k, v in per_side.items()}
    for k in ("ftcore", "hf"):  # one side alone: compare it with nothing
        sides.setdefault(k, {"wall_ms": 0.0, "inside_ops_ms": 0.0, "outside_ops_ms": 0.0, "op_calls": 0.0,
                             "regions_ms": {}, "ops": {}})
    print(f"\n{args.pair}: {cfg!r}\n{args.warmup} warm-up + {args.steps} profiled steps, median of "
          f"{args.repeats} interleaved repeats, {args.threads} threads; ftcore recording "
          f"{'on' if args.recording else 'off'}")
    print_report(sides, args.top)
    report = {"args": vars(args), "sides": sides, "runs": per_side}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
