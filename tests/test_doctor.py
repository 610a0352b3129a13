"""The run doctor reads crafted records (no training) and names what went wrong, and where."""
import json
import math

import numpy as np
import pytest

from ftcore.cli import main
from ftcore.records.doctor import Diagnosis, Finding, diagnose
from ftcore.records.record import RunRecord, table_from_rows

GROUPS = ("embeddings", "layer.0", "layer.1", "head")
SPE = 20  # steps per epoch of the crafted runs


def fabricate(losses, *, val_losses=None, val_every=SPE, val_acc=None, max_class_frac=None,
              grad=None, lr=2e-5, status="completed", events=(), extra_evals=(), layer_changes=(),
              num_labels=2, summary=None):
    """A RunRecord from a list of training losses (one per step, starting at step 1).

    ``val_losses``/``val_acc``/``max_class_frac``: one value per evaluation at steps
    val_every, 2*val_every, ...; ``grad``: total gradient norm per step (split over GROUPS)."""
    n = len(losses)
    steps = [(i + 1, (i + 1) / SPE, 16 * (i + 1), float(v), 0.1 * (i + 1)) for i, v in enumerate(losses)]
    lrs = [(i + 1, g, g, lr) for i in range(n) for g in GROUPS]
    if grad is None:
        grad = 1.0 + 0.1 * np.sin(np.arange(n))
    share = np.array([0.4, 0.3, 0.2, 0.1])
    norms = [(i + 1, g, float(grad[i] * math.sqrt(s))) for i in range(n) for g, s in zip(GROUPS, share)]
    evals = []
    for k, v in enumerate(val_losses or ()):
        step = (k + 1) * val_every
        acc = 0.8 if val_acc is None else val_acc[k]
        frac = 0.5 if max_class_frac is None else max_class_frac[k]
        evals += [(step, "toy", "validation", "loss", v), (step, "toy", "validation", "accuracy", acc),
                  (step, "toy", "validation", "macro_f1", acc),
                  (step, "toy", "validation", "max_class_frac", frac)]
    evals += list(extra_evals)
    layer_state = [(0, g, True, 100) for g in GROUPS] + list(layer_changes)
    tables = {"steps": table_from_rows("steps", steps), "lrs": table_from_rows("lrs", lrs),
              "grad_norms": table_from_rows("grad_norms", norms),
              "layer_state": table_from_rows("layer_state", layer_state),
              "evals": table_from_rows("evals", evals), "events": table_from_rows("events", list(events))}
    summ = {"steps": n, "steps_per_epoch": SPE, "num_labels": num_labels,
            "label_names": [f"c{i}" for i in range(num_labels)], **(summary or {})}
    return RunRecord("crafted", {"task": "toy"}, {}, status, summ, tables)


def healthy_losses(n=200, seed=0):
    """Loss falls from ln 2 towards ~0.05 with mini-batch noise, then flattens."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return list(0.05 + 0.64 * np.exp(-t / 40) + rng.normal(0, 0.03, n).clip(-0.04, 0.04))


def healthy_grad(n=200, seed=1):
    """Gradient norm grows ~10x within a few dozen steps (as in the stored rt-sentiment run, where
    it went from ~0.5 to ~5 in epoch 1), with batch-to-batch noise of up to 2x. A long running
    median lags behind this trend (about 17x here with 100 steps); the 20-step one does not."""
    rng = np.random.default_rng(seed)
    return 0.5 + 4.5 / (1 + np.exp(-(np.arange(n) - 65) / 5)) * rng.uniform(0.5, 2.2, n)


def problems(d):
    return [f for f in d if f.severity != "info"]


def only(d, kind):
    found = [f for f in d if f.kind == kind]
    assert len(found) == 1, f"expected one {kind!r} finding, got {d}"
    return found[0]


@pytest.fixture
def healthy():
    val = [0.45, 0.36, 0.33, 0.32, 0.32, 0.315, 0.318, 0.316, 0.32, 0.317]
    return fabricate(healthy_losses(), val_losses=val, val_acc=[0.8 + 0.01 * k for k in range(10)],
                     grad=healthy_grad())


def test_healthy_run_has_no_problems(healthy):
    d = diagnose(healthy)
    assert len(problems(d)) == 0, str(d)
    assert "stagnation" not in d.kinds() and "exploding_gradients" not in d.kinds()
    assert "no problems found" in str(d)


def test_overfitting_onset_is_the_validation_minimum():
    losses = list(np.linspace(0.69, 0.02, 200))  # training loss keeps falling
    val = [0.50, 0.40, 0.35, 0.30, 0.33, 0.37, 0.42, 0.48, 0.55, 0.61]  # U-shape, minimum at step 80
    d = diagnose(fabricate(losses, val_losses=val))
    f = only(d, "overfitting")
    assert f.severity == "warning" and f.step == 80 and f.epoch == pytest.approx(4.0)
    assert f.evidence["best_val_loss"] == pytest.approx(0.30)
    assert f.evidence["last_val_loss"] == pytest.approx(0.61)
    assert f.evidence["n_rising_evals"] == 6
    assert f.evidence["train_loss_at_last"] < f.evidence["train_loss_at_best"]
    assert "step 80" in str(d) and "0.3" in f.message and "0.61" in f.message
    # a larger tolerated rise makes the same run acceptable
    assert "overfitting" not in diagnose(fabricate(losses, val_losses=val), overfit_rise=1.5).kinds()


def test_overfitting_needs_falling_training_loss_and_two_rising_evals():
    val = [0.50, 0.40, 0.35, 0.30, 0.33, 0.37, 0.42, 0.48, 0.55, 0.61]
    rising_train = list(np.linspace(0.3, 0.9, 200))  # both rise: instability, not overfitting
    assert "overfitting" not in diagnose(fabricate(rising_train, val_losses=val)).kinds()
    # one late rise only: an info hint, not an overfitting warning
    once = [0.50, 0.40, 0.35, 0.30, 0.30, 0.301, 0.30, 0.302, 0.30, 0.36]
    d = diagnose(fabricate(list(np.linspace(0.69, 0.02, 200)), val_losses=once))
    assert "overfitting" not in d.kinds()
    hint = only(d, "val_loss_rising")
    assert hint.severity == "info" and hint.evidence["n_rising_evals"] == 1


def test_overfitting_undone_by_early_stopping_is_info():
    val = [0.50, 0.40, 0.35, 0.30, 0.33, 0.37, 0.42]
    events = [(140, "early_stop", "no better validation loss for 3 evaluations; best 0.3000 at step 80"),
              (140, "restored_best", "weights of step 80")]
    d = diagnose(fabricate(list(np.linspace(0.69, 0.1, 140)), val_losses=val, events=events,
                           status="early_stopped", summary={"restored_step": 80}))
    f = only(d, "overfitting")
    assert f.severity == "info" and f.step == 80 and "restored" in f.message
    assert {"early_stop", "restored_best"} <= set(d.kinds())
    assert len(problems(d)) == 0


def test_generalization_gap_from_train_split_evals():
    extra = [(s, "toy", "train", "accuracy", a) for s, a in ((100, 0.90), (200, 0.99))]
    d = diagnose(fabricate(healthy_losses(), val_losses=[0.4] * 10, val_acc=[0.75] * 10, extra_evals=extra))
    f = only(d, "generalization_gap")
    assert f.step == 200 and f.severity == "warning" and f.evidence["gap"] == pytest.approx(0.24)
    small = [(200, "toy", "train", "accuracy", 0.78)]
    g = only(diagnose(fabricate(healthy_losses(), val_losses=[0.4] * 10, val_acc=[0.75] * 10,
                                extra_evals=small)), "generalization_gap")
    assert g.severity == "info"


def test_divergence_from_nan_loss_and_from_status():
    losses = healthy_losses(60)
    losses[30] = float("nan")  # step 31
    f = only(diagnose(fabricate(losses)), "divergence")
    assert f.severity == "error" and f.step == 31 and f.evidence["first_loss"] == pytest.approx(losses[0])
    ev = [(12, "diverged", "loss 9.1 > 10 x first loss 0.69")]
    d = diagnose(fabricate(healthy_losses(12), status="diverged", events=ev))
    f = only(d, "divergence")
    assert f.step == 12 and "9.1" in f.message and d[0] is f  # errors come first
    assert "divergence" not in diagnose(fabricate(healthy_losses(60))).kinds()


def test_stagnation_on_flat_loss_with_tiny_lr(healthy):
    rng = np.random.default_rng(3)
    flat = list(0.693 + rng.normal(0, 0.01, 200))
    f = only(diagnose(fabricate(flat, lr=1e-7)), "stagnation")
    assert f.severity == "warning" and f.evidence["max_lr"] == pytest.approx(1e-7)
    assert "1e-07" in f.message and "raise it" in f.message
    assert f.evidence["chance_loss"] == pytest.approx(math.log(2)) and "ln(2)" in f.message
    # the same flat loss with a normal LR is still stagnation, but the advice changes
    g = only(diagnose(fabricate(flat, lr=3e-3)), "stagnation")
    assert "not small" in g.message
    # a run that learned a lot and then flattened near 0 is not stagnant, even in its last half
    assert "stagnation" not in diagnose(healthy).kinds()
    plateau_low = list(np.r_[np.linspace(0.69, 0.05, 20), np.full(180, 0.05)])
    assert "stagnation" not in diagnose(fabricate(plateau_low, lr=1e-7)).kinds()
    # a loss still falling steadily (-12% over the run) is not flat, even close to chance level
    assert "stagnation" not in diagnose(fabricate(list(np.linspace(0.80, 0.70, 200)), lr=1e-7)).kinds()
    # a loss that rises away from where it started is a different problem, not a flat loss
    assert "stagnation" not in diagnose(fabricate(list(np.linspace(0.3, 0.5, 200)), lr=1e-7)).kinds()


def test_exploding_gradient_spike_is_located():
    grad = healthy_grad()
    grad[130] = 200.0  # step 131
    f = only(diagnose(fabricate(healthy_losses(), grad=grad)), "exploding_gradients")
    assert f.step == 131 and f.severity == "warning"
    assert f.evidence["norm"] == pytest.approx(200.0) and f.evidence["ratio"] > 10
    assert f.evidence["group"] == "embeddings" and "embeddings" in f.message
    inf = healthy_grad()
    inf[5] = float("inf")  # non-finite counts even during the first steps
    assert only(diagnose(fabricate(healthy_losses(), grad=inf)), "exploding_gradients").step == 6


def test_unfreezing_jump_is_not_an_explosion():
    grad = np.r_[np.full(50, 0.3), np.full(150, 5.0)]  # 16x jump when the encoder unfreezes at step 50
    changes = [(50, "embeddings", True, 100)]
    assert "exploding_gradients" in diagnose(fabricate(healthy_losses(), grad=grad)).kinds()
    assert "exploding_gradients" not in diagnose(fabricate(healthy_losses(), grad=grad,
                                                           layer_changes=changes)).kinds()


def test_collapse_to_majority_class():
    val = [0.69] * 10
    d = diagnose(fabricate(healthy_losses(), val_losses=val, val_acc=[0.55] * 10,
                           max_class_frac=[0.5, 0.8, 1.0] + [1.0] * 7))
    f = only(d, "collapse")
    assert f.severity == "warning" and f.step == 60 and f.evidence["max_class_frac"] == 1.0
    assert f.evidence["still_collapsed_at_end"] is True
    # a near-perfect classifier on an imbalanced set predicts the majority class 96% of the time
    good = fabricate(healthy_losses(), val_losses=[0.1] * 10, val_acc=[0.99] * 10, max_class_frac=[0.96] * 10)
    assert "collapse" not in diagnose(good).kinds()
    # a collapse the model trained its way out of is reported as info
    transient = fabricate(healthy_losses(), val_losses=val, val_acc=[0.5, 0.8] + [0.9] * 8,
                          max_class_frac=[1.0, 0.6] + [0.5] * 8)
    t = only(diagnose(transient), "collapse")
    assert t.severity == "info" and t.step == 20


def test_forgetting_event_and_evals():
    ev = [(120, "forgetting_warning", "task sst2 test accuracy 0.91 -> 0.58")]
    d = diagnose(fabricate(healthy_losses(), events=ev))
    f = only(d, "forgetting")
    assert f.severity == "warning" and f.step == 120 and "0.91 -> 0.58" in f.message
    # continual learning without the event: old task A's accuracy falls below 70% of its best
    extra = [(100, "A", "test", "accuracy", 0.90), (100, "B", "test", "accuracy", 0.50),
             (200, "A", "test", "accuracy", 0.55), (200, "B", "test", "accuracy", 0.88)]
    g = only(diagnose(fabricate(healthy_losses(), extra_evals=extra)), "forgetting")
    assert g.step == 200 and g.evidence["task"] == "A" and g.evidence["best_accuracy"] == 0.90
    # no duplicate when the continual-learning loop already warned about task A
    both = diagnose(fabricate(healthy_losses(), extra_evals=extra,
                              events=[(200, "forgetting_warning", "A: accuracy 0.90 -> 0.55")]))
    assert len([x for x in both if x.kind == "forgetting"]) == 1


def test_old_task_losses_in_continual_learning_are_not_overfitting():
    # task A is trained on steps 1-100, then task B on steps 101-200; A's validation loss rises
    # while B trains (forgetting, not overfitting), B's own validation loss is U-shaped.
    a = [0.6, 0.5, 0.4, 0.35, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    b = [0.7, 0.7, 0.7, 0.7, 0.7, 0.5, 0.4, 0.5, 0.6, 0.7]
    extra = [(20 * (k + 1), t, "validation", "loss", v) for t, vals in (("A", a), ("B", b))
             for k, v in enumerate(vals)]
    events = [(0, "task_start", "A"), (100, "task_end", "A"), (100, "task_start", "B"),
              (200, "task_end", "B")]
    d = diagnose(fabricate(list(np.linspace(0.69, 0.02, 200)), extra_evals=extra, events=events))
    f = only(d, "overfitting")
    assert f.evidence["task"] == "B" and f.step == 140
    # without task events the doctor cannot tell which task was training, so it stays silent
    assert "overfitting" not in diagnose(fabricate(list(np.linspace(0.69, 0.02, 200)),
                                                   extra_evals=extra)).kinds()


def test_stagnation_is_judged_per_task_in_a_sequence():
    rng = np.random.default_rng(4)
    losses = list(np.r_[np.linspace(0.69, 0.05, 100), 0.693 + rng.normal(0, 0.01, 100)])  # B never learns
    events = [(0, "task_start", "A"), (100, "task_end", "A"), (100, "task_start", "B"),
              (200, "task_end", "B")]
    f = only(diagnose(fabricate(losses, events=events)), "stagnation")
    assert f.step == 101 and f.evidence["task"] == "B" and "[task B]" in f.message
    # task A alone (a healthy fall) is not stagnant
    assert "stagnation" not in diagnose(fabricate(losses[:100], events=events[:2])).kinds()


def test_empty_record_has_no_findings():
    d = diagnose(RunRecord("empty", {}, {}))
    assert len(d) == 0 and len(d.to_frame()) == 0
    assert "no evaluation to judge" in str(d) and "no problems found" not in str(d)  # nothing was evaluated
    e = only(diagnose(RunRecord("bad", {}, {}, "diverged")), "divergence")
    assert e.severity == "error" and e.step is None


def test_lr_reductions_are_info():
    ev = [(60, "lr_reduced", "head lr -> 1e-05"), (140, "lr_reduced", "head lr -> 5e-06")]
    d = diagnose(fabricate(healthy_losses(), events=ev))
    steps = [f.step for f in d if f.kind == "lr_reduced"]
    assert steps == [60, 140] and all(f.severity == "info" for f in d if f.kind == "lr_reduced")


def test_str_frame_and_chinese():
    val = [0.50, 0.40, 0.35, 0.30, 0.33, 0.37, 0.42, 0.48, 0.55, 0.61]
    grad = healthy_grad()
    grad[150] = 300.0
    d = diagnose(fabricate(list(np.linspace(0.69, 0.02, 200)), val_losses=val, grad=grad))
    text = str(d)
    assert "step 80" in text and "step 151" in text and len(text.splitlines()) == len(d) + 1
    df = d.to_frame()
    assert list(df.columns[:6]) == ["kind", "severity", "step", "epoch", "message", "evidence"]
    assert len(df) == len(d) == 2 and set(df["kind"]) == {"overfitting", "exploding_gradients"}
    assert json.loads(df.loc[df["kind"] == "overfitting", "evidence"].iloc[0])["best_step"] == 80
    for f in d:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f.message_zh) and str(f.step) in f.message_zh
    assert "第 80 步" in d.to_text("zh")
    empty = Diagnosis([])
    assert "no problems found" in str(empty) and len(empty) == 0 and list(empty) == []
    assert isinstance(d[0], Finding)


def test_unknown_threshold_is_rejected(healthy):
    with pytest.raises(TypeError, match="overfit_rsie"):
        diagnose(healthy, overfit_rsie=0.1)


def test_cli_doctor(tmp_path, capsys):
    val = [0.50, 0.40, 0.35, 0.30, 0.33, 0.37, 0.42, 0.48, 0.55, 0.61]
    path = fabricate(list(np.linspace(0.69, 0.02, 200)), val_losses=val).save(tmp_path / "rec")
    assert main(["doctor", str(path)]) == 0
    out = capsys.readouterr().out
    assert "overfitting at step 80" in out
    assert main(["doctor", "--lang", "zh", str(path)]) == 0
    assert "过拟合" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ftcore: error:") and "Traceback" not in err


def test_a_record_without_evaluation_says_there_is_nothing_to_judge():
    """Training curves alone cannot show overfitting, collapse or forgetting: the doctor says the
    record has no evaluation instead of "no problems found" (the HF Trainer demo once trained
    without one and was declared healthy)."""
    d = diagnose(fabricate(healthy_losses(), grad=healthy_grad()))  # no validation or test rows
    assert d.evaluated is False and len(problems(d)) == 0
    text, zh = d.to_text("en"), d.to_text("zh")
    assert "no evaluation to judge" in text and "no problems found" not in text
    assert "没有可评判的评估" in zh and "未发现问题" not in zh
    assert "training loss and gradients show no problems" in text
    # a problem the training curves do show is still reported under the note
    grad = healthy_grad()
    grad[150] = 300.0
    spiky = diagnose(fabricate(healthy_losses(), grad=grad))
    lines = spiky.to_text("en").splitlines()
    assert "no evaluation to judge" in lines[0] and "show no problems" not in lines[0]
    assert any("exploding_gradients" in line for line in lines[1:])
    # with evaluations the usual text comes back
    val = [0.45, 0.36, 0.33, 0.32, 0.32, 0.315, 0.318, 0.316, 0.32, 0.317]
    ok = diagnose(fabricate(healthy_losses(), val_losses=val, grad=healthy_grad()))
    assert ok.evaluated is True and "no problems found" in str(ok)
    # only training-split evaluations are not an evaluation of the model either
    train_only = [(20, "toy", "train", "accuracy", 0.9)]
    assert diagnose(fabricate(healthy_losses(), extra_evals=train_only)).evaluated is False
