"""The committed reference records (runs/reference) are what the committed code produces: retrain a
sample of them and compare every recorded loss and evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chapter import specs  # noqa: F401 (registers the figures)
from chapter.registry import REGISTRY
from chapter.scale import FULL
from ftcore.engine.runs import cached, train

# cheap cells: one optimizer step of each LR strategy, and the base run of the chapter (32 steps)
SAMPLE = [("layer-lr", {"strategy": "discriminative"}), ("concept", {"run": "base"})]


def _cfg(fid: str, labels: dict):
    grid = REGISTRY[fid].needs(FULL)["runs"]
    (cfg,) = [c for lab, c in grid.cells if all(lab.get(k) == v for k, v in labels.items())]
    return cfg


@pytest.mark.parametrize("fid,labels", SAMPLE, ids=[s[0] for s in SAMPLE])
def test_reference_record_reproduces(fid, labels):
    cfg = _cfg(fid, labels)
    ref = cached(cfg, FULL.runs_dir)
    assert ref is not None, f"runs/reference lacks the record of {cfg!r}: run `make figures`"
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
    assert again.provenance["threads"] == ref.provenance["threads"]
