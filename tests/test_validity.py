"""The validity gate on crafted records: a run that ends in one class, near the majority share or
diverged fails; a learned run passes; the gate names what failed."""
from __future__ import annotations

from ftcore.records.record import RunRecord, table_from_rows
from ftcore.records.validity import Gate, check_runs, learned


def record(acc, share, *, majority=0.578, status="completed", rid="r"):
    evals = [(100, "rt", "test", "accuracy", acc), (100, "rt", "test", "max_class_frac", share)]
    if majority is not None:
        evals.append((100, "rt", "test", "majority_frac", majority))
    return RunRecord(rid, {"task": "rt"}, {}, status, {}, {"evals": table_from_rows("evals", evals)})


def test_learned_run_passes():
    assert learned(record(0.80, 0.55)).passed


def test_one_class_collapse_fails_even_with_plausible_accuracy():
    c = learned(record(0.70, 0.90))
    assert not c.passed and "one class" in c.reason


def test_barely_above_majority_fails():
    c = learned(record(0.60, 0.70))
    assert not c.passed and "majority" in c.reason
    assert learned(record(0.60, 0.70, majority=0.5)).passed  # a balanced split: 0.60 is learning


def test_diverged_fails_and_missing_accuracy_is_not_a_pass():
    assert learned(record(0.8, 0.5, status="diverged")).reason == "diverged"
    empty = RunRecord("e", {}, {}, "completed", {}, {})
    assert not learned(empty).passed


def test_gate_checks_only_must_learn_arms_and_says_why():
    items = [({"arm": "full", "seed": 0}, record(0.80, 0.55)),
             ({"arm": "prompt", "seed": 0}, record(0.578, 1.0)),
             ({"arm": "too_high_lr", "seed": 0}, record(0.42, 1.0))]
    gate = Gate("peft", check_runs(items, lambda lab: lab["arm"] != "too_high_lr"))
    assert len(gate.checks) == 2 and not gate.passed
    assert "1 of 2" in gate.reason() and "arm=prompt" in gate.reason()
    assert Gate("ok", check_runs(items[:1], lambda lab: True)).passed
