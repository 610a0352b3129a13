"""Settings of the notebooks' live runs and the version banner."""
from __future__ import annotations

import os
import platform
from importlib import metadata

from ftcore import RunConfig

QUICK = os.environ.get("FTLAB_QUICK", "0") not in ("", "0")  # the tests' quick mode: tiny live runs
THREADS = int(os.environ.get("FTLAB_THREADS", str(min(2, os.cpu_count() or 1))))


def live_config(**changes) -> RunConfig:
    """A live run for class: the default model on 800 Rotten Tomatoes reviews, one epoch (50 steps
    of 16), LR 2e-4, bf16 autocast, validated every 10 steps on 200 reviews, tested on 500: about
    15 s on 2 CPU cores. In quick mode: 32 reviews, 2 steps. ``changes`` override any field."""
    base = RunConfig(task="rt-sentiment", train_size=32 if QUICK else 800, epochs=1, lr=2e-4, max_length=48,
                     precision="bf16", eval_splits=("validation",), eval_every=1 if QUICK else 10,
                     eval_size=32 if QUICK else 200, test_size=32 if QUICK else 500, threads=THREADS)
    return base.replace(**changes)


def versions() -> str:
    """One line per library the notebooks rely on (printed in every notebook's first cell)."""
    names = ["torch", "transformers", "datasets", "peft", "matplotlib", "seaborn", "ipywidgets", "pandas"]
    lines = [f"python {platform.python_version()}"]
    for n in names:
        try:
            lines.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{n} (not installed)")
    mode = "quick (FTLAB_QUICK=1)" if QUICK else "normal"
    return " · ".join(lines) + f"\nlive runs: {mode}, torch threads: {THREADS}"
