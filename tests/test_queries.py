"""ftcore.records.queries: each question of a record answered once, on small crafted records."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ftcore.records import queries
from ftcore.records.record import RunRecord, table_from_rows


def record(evals=(), grad_norms=(), steps=(), lrs=(), status="completed") -> RunRecord:
    return RunRecord("r", {}, {}, status, {}, {
        "evals": table_from_rows("evals", list(evals)), "grad_norms": table_from_rows("grad_norms", list(grad_norms)),
        "steps": table_from_rows("steps", list(steps)), "lrs": table_from_rows("lrs", list(lrs))})


def ev(step, split, metric, value, task="t"):
    return (step, task, split, metric, value)


# ------------------------------------------------------------------------------------ final metrics
def test_final_metric_is_the_last_row_and_nan_when_never_measured():
    rec = record([ev(1, "test", "accuracy", 0.5), ev(2, "validation", "accuracy", 0.7),
                  ev(3, "test", "accuracy", 0.8), ev(3, "test", "accuracy", 0.9, task="u")])
    assert queries.final_metric(rec, "accuracy", "test") == 0.9  # the last row, whatever its task
    assert queries.final_metric(rec, "accuracy", "test", task="t") == 0.8
    assert queries.final_metric(rec.evals, "accuracy", "validation") == 0.7  # a table works as well as a record
    assert math.isnan(queries.final_metric(rec, "loss", "test"))
    assert rec.metric("accuracy", "test") == 0.9  # RunRecord.metric asks the same query


def test_final_metrics_per_split_and_a_nan_does_not_replace_a_number():
    rec = record([ev(1, "validation", "loss", 0.7), ev(1, "validation", "accuracy", 0.6),
                  ev(2, "validation", "loss", 0.5), ev(3, "validation", "loss", float("nan")),
                  ev(3, "test", "loss", float("nan"))])
    out = queries.final_metrics(rec)
    assert list(out) == ["validation", "test"] and list(out["validation"]) == ["loss", "accuracy"]
    assert out["validation"] == {"loss": 0.5, "accuracy": 0.6}
    assert math.isnan(out["test"]["loss"])  # never a number: nan
    assert queries.final_metric(rec, "loss", "validation") == 0.5


# ------------------------------------------------------------------------------------ curves
def test_curve_sorts_steps_and_resolves_a_repeated_step():
    rec = record([ev(8, "validation", "loss", 0.4), ev(4, "validation", "loss", 0.6),
                  ev(8, "validation", "loss", 0.45), ev(4, "train", "loss", 0.3)])
    last = queries.curve(rec, "loss", "validation")
    assert last["step"].tolist() == [4, 8] and last["value"].tolist() == [0.6, 0.45]
    first = queries.curve(rec, "loss", "validation", keep="first")
    assert first["value"].tolist() == [0.6, 0.4]
    assert queries.curve(rec, "accuracy", "validation").empty


# ------------------------------------------------------------------------------------ gradient norm
def test_global_grad_norm_is_the_l2_norm_over_groups_per_step():
    rec = record(grad_norms=[(1, "a", 3.0), (1, "b", 4.0), (2, "a", 1.0), (2, "b", 0.0),
                             (3, "a", float("nan")), (3, "b", 1.0)])
    g = queries.global_grad_norm(rec)
    assert g["step"].tolist() == [1, 2, 3]
    assert g["norm"].tolist()[:2] == [5.0, 1.0] and g["norm"].iloc[2] == np.inf  # a bad group: not finite
    runs = pd.DataFrame({"seed": [0, 0, 1, 1], "step": [1, 1, 1, 1], "group": ["a", "b"] * 2,
                         "norm": [3.0, 4.0, 6.0, 8.0]})
    by_seed = queries.global_grad_norm(runs, ["seed"])
    assert by_seed[["seed", "step"]].values.tolist() == [[0, 1], [1, 1]] and by_seed["norm"].tolist() == [5.0, 10.0]
    assert queries.global_grad_norm(record()).empty


# ------------------------------------------------------------------------------------ collapse
def test_collapse_rule_needs_one_class_and_a_poor_score():
    assert queries.COLLAPSE_FRAC == 0.95
    assert queries.is_collapsed(0.95, 0.5, 0.3)  # at the threshold: collapsed
    assert not queries.is_collapsed(0.94, 0.5, 0.3)
    assert not queries.is_collapsed(0.99, 0.95, 0.9)  # a good classifier on an imbalanced set
    assert queries.is_collapsed(0.99, 0.95, 0.5)  # ... unless its macro-F1 gives it away
    assert not queries.is_collapsed(1.0)  # nothing says it is poor
    assert queries.is_collapsed(np.array([1.0, 0.5]), np.array([0.5, 0.5])).tolist() == [True, False]


def test_collapse_table_and_run_failed():
    rows = []
    for step, frac, acc in ((4, 1.0, 0.52), (8, 0.7, 0.75)):
        rows += [ev(step, "validation", "max_class_frac", frac), ev(step, "validation", "accuracy", acc),
                 ev(step, "validation", "macro_f1", acc - 0.1)]
    rows += [ev(8, "test", "max_class_frac", 0.97), ev(8, "test", "accuracy", 0.55),
             ev(8, "train", "max_class_frac", 1.0)]
    rec = record(rows)
    table = queries.collapse_table(rec)
    assert table[["step", "split"]].values.tolist() == [[4, "validation"], [8, "test"], [8, "validation"]]
    assert table["collapsed"].tolist() == [True, True, False]
    assert queries.collapse_table(rec, ("validation",))["collapsed"].tolist() == [True, False]
    assert queries.run_failed(rec)  # its final test evaluation collapsed
    assert not queries.run_failed(rec, split="validation")  # it recovered on validation
    assert queries.run_failed(record(status="diverged"))
    assert queries.collapse_table(record([ev(1, "test", "accuracy", 0.5)])).empty


# ------------------------------------------------------------------------------------ range test
def test_smoothing_is_a_bias_corrected_moving_average():
    assert queries.smooth_losses([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0
    sm = queries.smooth_losses([1.0, 3.0], beta=0.5)
    assert sm == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.geomspace(1e-6, 1, 40))
    losses = [1.0] * 10 + list(np.linspace(1.0, 0.2, 20)) + [0.2 * 2 ** k for k in range(9)] + [float("inf")]
    steep, valley = queries.suggest_lr(lrs, losses)
    assert lrs[10] <= steep <= lrs[30] and steep < valley * 10
    with pytest.raises(ValueError, match="fewer than 3"):
        queries.suggest_lr([1e-3, 1e-2, 1e-1], [1.0, float("nan"), float("inf")])


def test_range_curve_reads_the_last_param_group():
    rec = record(steps=[(1, 0.0, 8, 1.0, 0.1), (2, 0.0, 16, 0.9, 0.2)],
                 lrs=[(1, "g0", "head", 1e-4), (1, "g1", "head", 1e-3),
                      (2, "g0", "head", 2e-4), (2, "g1", "head", 2e-3)])
    c = queries.range_curve(rec)
    assert c["lr"].tolist() == [1e-3, 2e-3] and c["loss"].tolist() == [1.0, 0.9]


def test_mean_sd_over_seeds():
    df = pd.DataFrame({"k": ["b", "b", "a"], "value": [1.0, 3.0, 5.0]})
    out = queries.mean_sd(df, "k")
    assert out.values.tolist() == [["b", 2.0, pytest.approx(math.sqrt(2)), 2], ["a", 5.0, 0.0, 1]]


def test_suggestion_skips_the_noisy_start_of_a_flat_range_test():
    """A long flat start whose first batches wiggle must not be called the steepest descent."""
    from ftcore.records.queries import suggest_lr
    lrs = np.logspace(-7, -1, 200)
    rng = np.random.default_rng(0)
    loss = 0.69 + 0.05 * rng.standard_normal(200) * (np.arange(200) < 5)  # noisy first batches, then flat
    loss = loss - 0.15 / (1 + np.exp(-(np.log10(lrs) + 4) * 4))  # falls around 1e-4
    loss[170:] += np.linspace(0, 2, 30)  # diverges at the end
    steep, valley = suggest_lr(lrs, loss)
    assert 1e-5 < steep < 1e-3 and steep > lrs[20]
