"""Shared fixtures: a tiny random BERT and a small, clearly learnable task (seconds per run)."""
from __future__ import annotations

import os
import random

import pandas as pd
import pytest
import torch

from ftcore import RunConfig

POS = "good great excellent wonderful superb delightful brilliant moving charming fine".split()
NEG = "bad awful terrible boring dull weak poor clumsy tedious bland".split()
FILLER = "the film story cast plot movie acting script director scene".split()


# Subprocesses (the CLI, notebook kernels) start with torch's default of one thread per core: under
# `pytest -n 2` that would be 2 workers x 2 threads on 2 cores. One thread each, unless set already.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# precision="auto" means fp32 in the tests on every machine (the same numbers whatever the CPU);
# tests/test_precision.py unsets it where it tests the choice itself.
os.environ.setdefault("FTCORE_AUTO_PRECISION", "fp32")


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run in parallel (xdist): one thread each keeps them fast and deterministic.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def toy_task(tmp_path_factory) -> str:
    """A CSV task with 300 short texts whose label is given by sentiment words."""
    rng = random.Random(0)
    rows = []
    for i in range(300):
        label = i % 2
        words = rng.sample(FILLER, 4) + rng.sample(POS if label else NEG, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + f" {i}", "label": "pos" if label else "neg"})
    path = tmp_path_factory.mktemp("task") / "toy.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.fixture
def tiny(toy_task) -> RunConfig:
    """Tiny model on the toy task: 2 epochs of ~13 steps each."""
    return RunConfig(model="tiny-bert", task=toy_task, train_size=None, epochs=2, batch_size=16,
                     lr=3e-3, eval_size=None, max_length=16, progress=False, threads=1, precision="fp32")


# ---- figures: the inputs of every figure, read from the committed quick-mode records (no training)
@pytest.fixture(scope="session")
def figure_inputs():
    """``figure_inputs("warmup")`` → the dict of inputs the figure function takes (RunSets, studies,
    metadata), from tests/fixtures/quick-runs (written by ``python -m chapter --quick``)."""
    from chapter import figures  # noqa: F401 (registers the figures)
    from chapter.build import Collector
    from chapter.registry import REGISTRY
    from chapter.scale import QUICK

    col, cache = Collector(QUICK, render_only=True), {}

    def get(fid: str) -> dict:
        if fid not in cache:  # what the figure function draws (gate_* inputs are the gate's only)
            cache[fid] = {k: v for k, v in col.collect(REGISTRY[fid]).items() if not k.startswith("gate_")}
        return cache[fid]
    return get


@pytest.fixture(params=("zh", "en"))
def lang(request, lang_theme) -> str:
    """Each language in turn, with viz's theme set for it (matplotlib's defaults restored afterwards)."""
    lang_theme(request.param)
    return request.param


@pytest.fixture
def lang_theme():
    """Set the viz theme for a language and restore matplotlib's defaults afterwards."""
    import matplotlib
    import matplotlib.pyplot as plt

    import viz

    def apply(lang: str):
        viz.set_theme(lang)
    yield apply
    plt.close("all")
    matplotlib.rcdefaults()
