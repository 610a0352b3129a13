"""Settings of the notebooks' live runs and the version banner."""
from __future__ import annotations

import os
import platform
from importlib import metadata

from chapter.figures.base import LORA_LR, regime  # noqa: F401  (LORA_LR: the swept LR, one place for figures and widgets)
from chapter.scale import FULL
from ftcore import RunConfig

QUICK = os.environ.get("FTLAB_QUICK", "0") not in ("", "0")  # the tests' quick mode: tiny live runs
def fair_threads(cap: int = 2) -> int:
    """Torch threads for this kernel's live runs: the cores this process may use, shared with the
    other kernels a parallel test run starts (``pytest -n N`` → N kernels at once), at most ``cap``
    (the live runs were timed on 2). Processes × threads never exceed the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, min(cap, cores // max(1, workers)))


# FTLAB_THREADS overrides (a laptop with 8 cores: FTLAB_THREADS=4 makes live runs about twice as fast)
THREADS = int(os.environ.get("FTLAB_THREADS") or fair_threads())


# Each method at its own learning rate on the live regime, the figures' base regime (the recorded
# sweep: full 1e-4 -> 0.801 over 5 seeds, LoRA r=8 3e-3 -> 0.796; LoRA at 3e-4 ends at the majority
# class): full fine-tuning at the base run's LR, LoRA at chapter.figures.base.LORA_LR.
LIVE_LR = FULL.base.lr
# Mean pooling, where the figures' base run uses the CLS pooler (chosen on validation for full
# fine-tuning only): the live widgets also train LoRA and frozen heads, which the reviewed selections
# found to learn with mean pooling and to collapse at most LRs under the frozen CLS pooler.
LIVE_POOLING = "mean"


def live_config(**changes) -> RunConfig:
    """A live run for class, on the figures' base regime (``chapter.scale.FULL.base``, chosen on
    validation by the reviewed protocol: the default model on 1,000 Rotten Tomatoes reviews, two epochs
    (126 steps of 16), LR 1e-4) with mean pooling, the checkpoint's own (:data:`LIVE_POOLING`), ``precision="auto"`` (bf16 autocast
    where this CPU has native bf16 and it is faster, fp32 elsewhere: see ``ftcore.engine.precision``),
    validated every 25 steps on 200 reviews and tested on 500 (test accuracy ~0.80 against a majority
    class of 0.578; about 20-60 s on 2 idle CPU cores).
    In quick mode (the tests): 32 reviews, one epoch, 2 steps. ``changes`` override any field."""
    figures = regime(FULL.base)  # task, train size, epochs, LR, max length: the figures' base run
    figures["pooling"] = LIVE_POOLING
    if QUICK:
        figures.update(train_size=32, epochs=1)
    base = RunConfig(**figures, precision="auto", eval_splits=("validation",),
                     eval_every=1 if QUICK else 25, eval_size=32 if QUICK else 200,
                     test_size=32 if QUICK else 500, threads=THREADS)
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
    return " · ".join(lines) + f"\nlive runs: {mode}, torch threads: {THREADS}, {precision_line()}"


def precision_line() -> str:
    """What ``precision="auto"`` means on this machine, for the first cell (measured once, cached)."""
    from ftcore.engine.precision import auto_choice
    c = auto_choice("cpu")
    return f"precision auto -> {c.precision} ({c.reason})"
