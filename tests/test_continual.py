"""Continual learning: penalties, replay batches, the accuracy matrix and its metrics, bad input."""
import numpy as np
import pandas as pd
import pytest
import torch

from ftcore import ConfigError, RunConfig
from ftcore.analysis.continual import (ContinualConfig, QuadraticPenalty, accuracy_matrix, forgetting_metrics,
                              multi_head_model, replay_loader, run_sequence, sequence_metrics)
from ftcore.engine.data import prepare_data


@pytest.fixture(scope="module")
def three_tasks(tmp_path_factory):
    """Three small CSV tasks with different vocabularies (2, 3 and 2 classes)."""
    import random
    rng = random.Random(1)
    vocab = [("good great fine nice", "bad awful poor weak"),
             ("cat dog horse cow", "car bus train plane", "red blue green pink"),
             ("one two three four", "north south east west")]
    paths = []
    for k, classes in enumerate(vocab):
        rows = []
        for i in range(150):
            c = i % len(classes)
            words = rng.sample(classes[c].split(), 3) + ["the", "a"]
            rng.shuffle(words)
            rows.append({"text": " ".join(words) + f" {i}", "label": f"c{c}"})
        p = tmp_path_factory.mktemp(f"task{k}") / f"task{k}.csv"
        pd.DataFrame(rows).to_csv(p, index=False)
        paths.append(str(p))
    return tuple(paths)


@pytest.fixture
def seq(three_tasks):
    base = RunConfig(model="tiny-bert", train_size=None, epochs=2, lr=3e-3, max_length=16, progress=False,
                     threads=1, eval_size=None)
    return ContinualConfig(base=base, tasks=three_tasks)


def test_ewc_penalty_zero_at_anchor_and_grows_with_fisher_weighted_distance():
    model = torch.nn.Linear(3, 1)
    names = [n for n, _ in model.named_parameters()]
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {"weight": torch.tensor([[1.0, 0.0, 4.0]]), "bias": torch.tensor([0.0])}
    ewc = QuadraticPenalty(2.0, anchor, fisher)
    assert float(ewc.penalty(model).detach()) == 0.0
    with torch.no_grad():
        model.weight += torch.tensor([[0.1, 0.1, 0.1]])
    assert float(ewc.penalty(model).detach()) == pytest.approx(0.5 * 2.0 * (1.0 * 0.01 + 0 + 4.0 * 0.01))
    with torch.no_grad():
        model.weight += torch.tensor([[0.1, 5.0, 0.0]])  # the zero-Fisher weight moves a lot: no cost
    assert float(ewc.penalty(model).detach()) == pytest.approx(0.5 * 2.0 * (1.0 * 0.04 + 4.0 * 0.01))
    assert set(names) == set(anchor)


def test_replay_batches_hold_the_configured_share_of_old_examples(seq):
    data = prepare_data(seq.task_config(seq.tasks[1]))
    memory = {"input_ids": [[101, 7, 102]] * 30, "label": [0] * 30, "task": [0] * 30}
    loader = replay_loader(data, memory, head=1, batch_size=16, fraction=0.25, seed=0)
    batches = list(loader)
    assert all((b["task"] == 0).sum().item() == 4 for b in batches)  # round(0.25 * 16)
    new_seen = sum((b["task"] == 1).sum().item() for b in batches)
    assert new_seen == len(data.train["label"])  # every new example once per epoch


def test_naive_sequence_matrix_has_one_row_per_finished_task(seq, tmp_path):
    rec = run_sequence(seq, runs_dir=tmp_path)
    m = accuracy_matrix(rec)
    assert m.shape == (3, 3) and list(m.index) == list(seq.tasks)
    assert np.isnan(m.iloc[0, 1]) and np.isnan(m.iloc[1, 2]) and not np.isnan(m.iloc[2, 0])
    assert sequence_metrics(rec)["average_accuracy"] == pytest.approx(m.iloc[2].mean())
    assert "accuracy_matrix" not in rec.summary  # derived from evals, never stored
    kinds = rec.events["kind"].tolist()
    assert kinds.count("task_start") == 3 and kinds.count("task_end") == 3
    assert (rec.steps["step"].diff().dropna() == 1).all()  # one step axis across the tasks
    again = run_sequence(seq, runs_dir=tmp_path)  # cached
    pd.testing.assert_frame_equal(accuracy_matrix(again), m)


@pytest.mark.parametrize("method", ["ewc", "replay", "lwf", "lora", "replay_ewc", "joint"])
def test_methods_run_and_report_cost(seq, method, tmp_path):
    rec = run_sequence(seq.__class__(**{**seq.__dict__, "method": method, "fisher_examples": 32}),
                       runs_dir=tmp_path)
    assert rec.status == "completed" and len(accuracy_matrix(rec)) == 3
    assert rec.summary["train_s"] > 0 and rec.summary["method_extra_s"] >= 0
    assert 0 < rec.summary["cpu_s"]  # what the sequence cost, independent of machine load (report --cost)
    if method == "ewc":
        assert rec.summary["method_extra_s"] > 0  # the Fisher costs time
    if method in ("replay", "replay_ewc"):
        assert rec.summary["replay_memory_examples"] > 0
    if method == "replay_ewc":  # both halves at work: the Fisher's time and the penalty it adds
        assert rec.summary["method_extra_s"] > 0
        assert any(t["mean_penalty"] for t in rec.summary["per_task"][1:])
    if method == "joint":  # every earlier task's whole training set stays in memory
        steps = [t["steps"] for t in rec.summary["per_task"]]
        assert steps[2] > steps[1] > steps[0]  # each task trains mixed with all before it


def test_joint_batches_mix_all_tasks_in_proportion(seq):
    from ftcore.analysis.continual import Joint
    data = prepare_data(seq.task_config(seq.tasks[2]))
    joint = Joint(seq)
    n_new = len(data.train["label"])
    joint.memory = {"input_ids": [[101, 7, 102]] * (2 * n_new), "label": [0] * (2 * n_new), "task": [0] * (2 * n_new)}
    fraction = joint.replay_fraction(2, n_new)
    assert fraction == pytest.approx(2 / 3)
    assert joint.trains_head(2, 0) and joint.trains_head(2, 2) and not joint.trains_head(1, 2)
    batches = list(replay_loader(data, joint.memory, head=2, batch_size=16, fraction=fraction, seed=0))
    old = sum((b["task"] == 0).sum().item() for b in batches)
    assert abs(old - 2 * n_new) <= 0.15 * 2 * n_new  # the whole memory about once per epoch (batches round)


def test_lora_per_task_keeps_the_encoder_and_earlier_tasks_exactly(seq, tmp_path):
    rec = run_sequence(seq.__class__(**{**seq.__dict__, "method": "lora"}), runs_dir=tmp_path)
    m = accuracy_matrix(rec)
    # Parameter isolation: a finished task's adapter and head are never touched again.
    assert m.iloc[1, 0] == m.iloc[0, 0] and m.iloc[2, 0] == m.iloc[0, 0] and m.iloc[2, 1] == m.iloc[1, 1]


def test_forgetting_and_bwt_match_hand_computation():
    a = [[0.9, np.nan, np.nan],
         [0.7, 0.8, np.nan],
         [0.6, 0.85, 0.95]]
    out = forgetting_metrics(a)
    assert out["forgetting"] == pytest.approx([0.9 - 0.6, 0.8 - 0.85])
    assert out["first_forgetting"] == pytest.approx([0.3, -0.05])
    assert out["bwt"] == pytest.approx(((0.6 - 0.9) + (0.85 - 0.8)) / 2)
    assert out["average_accuracy"] == pytest.approx((0.6 + 0.85 + 0.95) / 3)


def test_forgetting_warning_event(seq, tmp_path):
    # A threshold just under 1 turns any drop of an old task into a warning.
    rec = run_sequence(seq.__class__(**{**seq.__dict__, "forgetting_threshold": 0.999}), runs_dir=tmp_path)
    m = accuracy_matrix(rec)
    dropped = [j for j in range(2) if m.iloc[2, j] < 0.999 * m.iloc[j, j]]
    warned = rec.events[rec.events.kind == "forgetting_warning"]
    assert len(warned) >= len(dropped)


@pytest.mark.parametrize("kw, words", [
    ({"method": "sideways"}, "method='sideways'"),
    ({"tasks": ("rt-sentiment", "rt-sentiment")}, "repeated"),
    ({"tasks": ("rt-sentiment",)}, "at least 2"),
    ({"ewc_lambda": -1.0}, "ewc_lambda=-1.0"),
    ({"replay_fraction": 1.0}, "replay_fraction=1.0"),
    ({"replay_memory": 0.0}, "replay_memory=0.0"),
    ({"forgetting_threshold": 1.5}, "forgetting_threshold=1.5"),
])
def test_bad_sequence_configs(kw, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        ContinualConfig(**kw)


def test_unknown_task_in_sequence(tmp_path):
    base = RunConfig(model="tiny-bert", progress=False)
    with pytest.raises(ConfigError, match="unknown task 'no-such-task'"):
        run_sequence(ContinualConfig(base=base, tasks=("rt-sentiment", "no-such-task")), runs_dir=tmp_path)


def test_task_heads_route_mixed_batches():
    ccfg = ContinualConfig(base=RunConfig(model="tiny-bert"), tasks=("a.csv", "b.csv"))
    model = multi_head_model(ccfg)
    heads = model.classifier
    heads.add(2, seed=0)
    heads.add(5, seed=1)
    heads.route = torch.tensor([0, 1, 0])
    x = {"input_ids": torch.tensor([[101, 2000, 102]] * 3), "attention_mask": torch.ones(3, 3, dtype=torch.long)}
    logits = model(**x).logits
    assert logits.shape == (3, 5)
    assert (logits[[0, 2], 2:] == -1e4).all() and (logits[1] > -1e4).all()


def test_ewc_penalty_is_measured_per_task(seq, tmp_path):
    rec = run_sequence(seq.__class__(**{**seq.__dict__, "method": "ewc", "fisher_examples": 32}), runs_dir=tmp_path)
    per_task = rec.summary["per_task"]
    assert per_task[0]["mean_penalty"] == 0.0  # nothing to protect while training the first task
    assert per_task[1]["mean_penalty"] > 0.0 and per_task[1]["mean_task_loss"] > 0.0


def test_lora_gets_its_own_learning_rate(seq):
    lora = seq.__class__(**{**seq.__dict__, "method": "lora", "lora_lr": 2e-3})
    assert lora.task_config(seq.tasks[0]).lr == 2e-3
    assert seq.task_config(seq.tasks[0]).lr == seq.base.lr  # other methods keep the base LR
    with pytest.raises(ConfigError, match="lora_lr=0"):
        seq.__class__(**{**seq.__dict__, "lora_lr": 0})


@pytest.mark.parametrize("method", ["ewc", "replay", "lwf", "lora"])
def test_methods_run_under_bf16_autocast(seq, method, tmp_path):
    base = seq.base.replace(precision="bf16")
    rec = run_sequence(seq.__class__(**{**seq.__dict__, "base": base, "method": method, "fisher_examples": 16}),
                       runs_dir=tmp_path)
    assert rec.status == "completed" and len(accuracy_matrix(rec)) == 3


def test_render_only_never_trains_a_missing_or_corrupt_sequence(seq, tmp_path, monkeypatch):
    import ftcore.analysis.continual as cmod
    from ftcore.records.cache import MissingRecordError
    with pytest.raises(MissingRecordError, match="no record of task sequence seq-.*make figures"):
        run_sequence(seq, runs_dir=tmp_path, render_only=True)
    rec = run_sequence(seq, runs_dir=tmp_path)
    (rec.path / "evals.parquet").write_bytes(b"\x00")
    monkeypatch.setattr(cmod, "train_sequence", lambda c: pytest.fail("trained"))
    with pytest.raises(MissingRecordError, match="record of task sequence seq-.* is unusable.*checksum"):
        run_sequence(seq, runs_dir=tmp_path, render_only=True)


def test_every_method_is_a_strategy_on_the_ordinary_loop():
    from ftcore.analysis.continual import METHODS, STRATEGIES, Naive
    assert set(STRATEGIES) == set(METHODS) and all(issubclass(c, Naive) for c in STRATEGIES.values())


def test_a_sequence_that_does_not_test_measures_its_matrix_on_validation_only(seq, tmp_path):
    import dataclasses
    scoring = dataclasses.replace(seq, base=seq.base.replace(test_at_end=False, eval_splits=("validation",)))
    assert scoring.matrix_split == "validation" and seq.matrix_split == "test"
    rec = run_sequence(scoring, runs_dir=tmp_path)
    assert set(rec.evals["split"]) == {"validation"}  # never a test row
    m = accuracy_matrix(rec, split="validation")
    assert m.shape == (3, 3) and not np.isnan(m.iloc[2].to_numpy()).any() and np.isnan(m.iloc[0, 1])
    assert accuracy_matrix(rec).isna().all().all()  # the test matrix is empty
    with pytest.raises(ConfigError, match="test_at_end=False and no 'validation'"):
        dataclasses.replace(seq, base=seq.base.replace(test_at_end=False, eval_splits=("train",)))
