"""The committed reference records (runs/reference) are what the committed code produces: retrain a
sample of them and compare every recorded loss and evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chapter import specs  # noqa: F401 (registers the figures)
from chapter.registry import REGISTRY
from chapter.scale import FULL
from ftcore.engine.precision import cpu_flags, native_bf16
from ftcore.engine.runs import cached, train

# cheap cells: one optimizer step of each LR strategy, the base run of the chapter (126 steps; fp32
# under the reviewed protocol, which concept and layer-lr follow), and the exploding-gradient run (9 steps, fp32)
SAMPLE = [("layer-lr", {"strategy": "discriminative"}), ("concept", {"run": "base"}),
          ("instability", {"setting": "exploding"})]


def _cfg(fid: str, labels: dict):
    grid = REGISTRY[fid].needs(FULL)["runs"]
    (cfg,) = [c for lab, c in grid.cells if all(lab.get(k) == v for k, v in labels.items())]
    return cfg


def same_kernels(ref) -> bool:
    """Whether this CPU runs the kernels the record was made with. Records from before issue 22 name
    no SIMD flags; they were all made on CPUs with AVX-512 and native bf16."""
    here = {"cpu_flags": cpu_flags(), "native_bf16": native_bf16("cpu")}
    if "cpu_flags" not in ref.provenance:
        return here["native_bf16"] and "avx512f" in here["cpu_flags"]
    return all(ref.provenance.get(k) == v for k, v in here.items())


@pytest.mark.parametrize("fid,labels", SAMPLE, ids=[s[0] for s in SAMPLE])
def test_reference_record_reproduces(fid, labels):
    cfg = _cfg(fid, labels)
    ref = cached(cfg, FULL.runs_dir)
    assert ref is not None, f"runs/reference lacks the record of {cfg!r}: run `make figures`"
    if not same_kernels(ref):
        pytest.skip("this CPU computes with other kernels than the record's (instruction set or native bf16 "
                    "differ): CPU training reproduces bit for bit only on the same kind of CPU")
    # the thread count changes the numbers (not the id): retrain with the one the record was made with
    again = train(cfg.replace(progress=False, threads=ref.provenance["threads"]))
    assert again.run_id == ref.run_id
    np.testing.assert_allclose(again.steps["loss"], ref.steps["loss"], rtol=1e-5)
    pd.testing.assert_frame_equal(again.lrs, ref.lrs)
    # metrics added to evaluations after a reference was recorded (majority_frac) are additions:
    # every number the reference holds must come out the same
    new = again.evals[again.evals["metric"].isin(set(ref.evals["metric"]))].reset_index(drop=True)
    np.testing.assert_allclose(new["value"], ref.evals["value"], rtol=1e-5)
    assert list(new["metric"]) == list(ref.evals["metric"])
    if len(ref.predictions):  # the reviewed protocol's records keep each test example's prediction
        pd.testing.assert_frame_equal(again.predictions, ref.predictions)
    assert again.provenance["threads"] == ref.provenance["threads"]
