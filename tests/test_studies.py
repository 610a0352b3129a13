"""Studies read as records do: an evals-shaped table of their final measurements and
``metric(name, split)``, so the gate and the claims take them in a RunSet beside runs (no in-memory
RunRecord made up for them)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ftcore.records.record import TABLES, RunRecord
from ftcore.records.studies import Measured, Study, study


def _pooled_study(tmp_path) -> Study:
    evals = pd.DataFrame({"task": ["a", "b", "all"], "split": "test", "metric": "accuracy",
                          "value": [0.6, 0.8, 0.7]})
    return study("toy", {"n": 1}, lambda: ({"evals": evals, "other": pd.DataFrame({"x": [1]})}, {"k": 2}),
                 runs_dir=tmp_path)


def test_a_stored_study_reads_like_a_record(tmp_path):
    st = _pooled_study(tmp_path)
    assert list(st.evals.columns) == list(TABLES["evals"]) and dict(st.evals.dtypes.astype(str)) == TABLES["evals"]
    assert (st.evals["step"] == 0).all() and list(st.evals["task"]) == ["a", "b", "all"]
    assert st.metric("accuracy", "test", task="a") == 0.6 and st.metric("accuracy", "test") == 0.7  # the last row
    assert math.isnan(st.metric("accuracy", "validation")) and math.isnan(st.metric("loss"))
    assert st.status == "completed" and st.config == {"n": 1}
    assert isinstance(st, Measured) and isinstance(RunRecord("r", {}, {}), Measured)


def test_a_study_without_evals_has_an_empty_table_and_can_be_given_one(tmp_path):
    st = study("bare", {}, lambda: ({"steps": pd.DataFrame({"step": [1, 2], "reward": [0.1, 0.5]})},
                                    {"reward_end": 0.5}), runs_dir=tmp_path)
    assert st.evals.empty and list(st.evals.columns) == list(TABLES["evals"]) and math.isnan(st.metric())
    end = st.with_evals([{"split": "test", "metric": "reward", "value": st.meta["reward_end"]}])
    assert end.metric("reward") == 0.5 and end.path == st.path and end.params == st.params
    assert "evals" not in st.tables  # the stored study itself is unchanged


@pytest.mark.parametrize("fid", ["instruction-tuning", "rlhf"])
def test_studies_figures_judge_the_studies_themselves(figure_inputs, fid):
    """The RunSet the gate and the claims read holds the figure's studies (their folders), each
    measured as the figure states it: an instruction-tuning arm by its pooled rows, an RLHF run by
    its meta's means at its end (and the starting model at its start), the reward model by its
    held-out pairwise accuracy against chance."""
    from chapter.registry import REGISTRY
    inputs = figure_inputs(fid)
    runs = REGISTRY[fid].judged_inputs(inputs)["runs"]
    studies = {v.path for v in inputs.values() if isinstance(v, Study)}
    assert len(runs) and all(isinstance(rec, Study) and rec.path in studies for _, rec in runs)
    for labels, rec in runs:
        if fid == "instruction-tuning" and labels["arm"] == "majority":
            # the majority-class answer as an arm: what held-out phrasings are judged against
            ev = inputs["untuned"].tables["evals"]
            for split in ("test", "phrasing"):
                maj = ev[(ev["task"] == "all") & (ev["split"] == split) & (ev["metric"] == "majority_frac")]["value"]
                assert rec.metric("accuracy", split) == rec.metric("choice_accuracy", split) == float(maj.iloc[0])
        elif fid == "instruction-tuning":
            src = inputs["untuned"] if labels["arm"] == "untuned" else inputs[f"{labels['arm']}_{labels['seed']}"]
            ev = src.tables["evals"]
            pooled = ev[(ev["task"] == "all") & (ev["split"] == "test") & (ev["metric"] == "accuracy")]["value"]
            assert rec.metric("accuracy", "test") == float(pooled.iloc[0])
        elif labels["arm"] == "reward_model":
            assert rec.metric("accuracy") == rec.meta["pairwise_accuracy"] and rec.metric("majority_frac") == 0.5
        elif labels["arm"] == "start":
            assert rec.metric("reward") == rec.meta["reward_start"] and rec.metric("kl") == 0.0
        else:
            assert all(rec.metric(m) == rec.meta[f"{m}_end"] for m in ("reward", "kl", "length", "repetition"))


def test_held_out_phrasings_are_judged_against_the_majority_class():
    """The un-tuned model gives no valid greedy answer, so a claim about held-out phrasings compares
    the mask arm with the majority-class answer (drawn as the dotted line), never with it."""
    from chapter.figures.alignment import INSTRUCTION_TUNING_CLAIMS, MAJORITY_ARM
    phrasing = [c for c in INSTRUCTION_TUNING_CLAIMS if c.split == "phrasing"]
    assert any(c.b == {"arm": MAJORITY_ARM} for c in phrasing)
    assert all(c.b != {"arm": "untuned"} for c in INSTRUCTION_TUNING_CLAIMS)
