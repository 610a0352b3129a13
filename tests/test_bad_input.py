"""Bad input ends in one clear line before anything is loaded or trained; what a run does
differently from what was asked is recorded, never silent (issue 13).

Each refusal goes through the real command line (``ftcore.cli.main``) with the tiny model and
checks: exit code 2, exactly one ``ftcore: error:`` line naming the field, no traceback, no model
loaded, no step trained and no record written.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from ftcore import ConfigError, RunConfig, load_config
from ftcore.cli import main

ROOT = Path(__file__).resolve().parent.parent
QUICK_RUNS = ROOT / "tests" / "fixtures" / "quick-runs"


@pytest.fixture
def S(toy_task, tmp_path):
    """The issue's S (tiny model, 3 steps) on the toy task, with its own runs folder."""
    return ["--model", "tiny-bert", "--task", toy_task, "--train-size", "32", "--max-steps", "3",
            "--test-size", "32", "--eval-size", "32", "--threads", "1", "--max-length", "16",
            "--progress", "false", "--runs-dir", str(tmp_path / "runs")]


@pytest.fixture
def nothing_loaded(monkeypatch):
    """Fail the test if a model is loaded or a step trained; yields the list of what was tried."""
    tried = []
    from ftcore.engine import models, runs, trainer

    def no_model(*a, **k):
        tried.append("load_model")
        raise AssertionError("a model was loaded")

    def no_fit(self):
        tried.append("fit")
        raise AssertionError("a step was trained")

    monkeypatch.setattr(models, "load_model", no_model)
    monkeypatch.setattr(runs, "load_model", no_model, raising=False)
    monkeypatch.setattr(trainer.Trainer, "fit", no_fit)
    return tried


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("ftcore") and "error:" in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def folders(tmp_path):
    no_type = tmp_path / "no-model-type"
    no_type.mkdir()
    (no_type / "config.json").write_text(json.dumps({"hidden_size": 32}))
    no_cfg = tmp_path / "no-config"
    no_cfg.mkdir()
    (tmp_path / "bad.yaml").write_text("lr: [1\n")
    (tmp_path / "bad.json").write_text('{"lr": ')
    (tmp_path / "list.yaml").write_text("- lr\n- 1e-4\n")
    (tmp_path / "c.toml").write_text("lr = 1e-4\n")
    (tmp_path / "typo.yaml").write_text("warmup-step: 10\n")
    (tmp_path / "cfgdir").mkdir()
    return tmp_path


# (flags added to S, words the one error line must contain)
REFUSED = [
    (["--betas", "abc"], "RunConfig.betas=('abc',)"),
    (["--betas", "0.9"], "two numbers in [0, 1)"),
    (["--lr", "abc"], "RunConfig.lr='abc'"),
    (["--lr", "-3"], "RunConfig.lr=-3.0"),
    (["--train-size", "1"], "RunConfig.train_size=1"),
    (["--reinit-top", "99"], "RunConfig.reinit_top=99"),
    (["--freeze", "bottom", "--freeze-layers", "5"], "RunConfig.freeze_layers=5"),
    (["--freeze", "list", "--frozen-groups", "layer.9"], "'tiny-bert' has no layer.9"),
    (["--epochs", "1e9", "--max-steps", "none"], "RunConfig.epochs=1000000000.0"),
    (["--seed", "4294967296"], "RunConfig.seed=4294967296"),
    (["--seed", "-1"], "RunConfig.seed=-1"),
    (["--clip-grad-norm", "0"], "or none (= no clipping)"),
    (["--divergence-factor", "1e300"], "RunConfig.divergence_factor=1e+300"),
    (["--progress", "maybe"], "RunConfig.progress='maybe'"),
    (["--eval-every", "2.5"], "RunConfig.eval_every='2.5'"),
    (["--schedule", "range_test", "--lr", "1e-8"], "RunConfig.range_start_lr=1e-07"),
    (["--model", "{tmp}/no-model-type"], "has no 'model_type'"),
    (["--model", "{tmp}/no-config"], "has no config.json"),
    (["--model", "{tmp}/missing-folder"], "is not a model folder"),
    (["--task", "{tmp}/missing.csv"], "does not exist"),
    (["--config", "{tmp}/missing.yaml"], "does not exist"),
    (["--config", "{tmp}/bad.yaml"], "not valid YAML"),
    (["--config", "{tmp}/bad.json"], "not valid JSON"),
    (["--config", "{tmp}/list.yaml"], "expected a mapping of RunConfig fields"),
    (["--config", "{tmp}/c.toml"], "unsupported type '.toml'"),
    (["--config", "{tmp}/cfgdir"], "is a folder"),
    (["--config", "{tmp}/typo.yaml"], "did you mean 'warmup_steps'?"),
]
if not torch.cuda.is_available():
    REFUSED.append((["--device", "cuda"], "RunConfig.device='cuda'"))


@pytest.mark.parametrize("flags, words", REFUSED, ids=[" ".join(f) for f, _ in REFUSED])
def test_refused_in_one_line_before_anything_loads(S, flags, words, folders, nothing_loaded, capsys, tmp_path):
    flags = [f.replace("{tmp}", str(folders)) for f in flags]
    assert main(["run", *S, *flags]) == 2
    line = _one_error_line(capsys)
    assert words in line, line
    assert nothing_loaded == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--no-such-flag", "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err


@pytest.mark.parametrize("flags, words", [
    (["--max-steps", "3"], "use --num-steps"),
    (["--lr", "1e-3"], "use --end-lr"),
    (["--num-steps", "2"], "num_steps=2"),
    (["--start-lr", "1", "--end-lr", "0.1"], "start_lr=1.0"),
    (["--stop-factor", "1000"], "stop_factor=1000.0"),
])
def test_lr_find_refuses_what_it_cannot_use(toy_task, tmp_path, flags, words, nothing_loaded, capsys):
    argv = ["lr-find", "--model", "tiny-bert", "--task", toy_task, "--progress", "false",
            "--runs-dir", str(tmp_path), *flags]
    assert main(argv) == 2
    assert words in _one_error_line(capsys)
    assert nothing_loaded == []


def test_lr_find_honours_its_range(toy_task, tmp_path, capsys):
    argv = ["lr-find", "--model", "tiny-bert", "--task", toy_task, "--train-size", "64", "--max-length", "16",
            "--progress", "false", "--threads", "1", "--runs-dir", str(tmp_path),
            "--start-lr", "1e-4", "--end-lr", "0.01", "--num-steps", "6", "--stop-factor", "50"]
    assert main(argv) == 0
    assert "6 steps, LR 1.0e-04 -> 1.0e-02" in capsys.readouterr().out
    from ftcore.analysis.lr_finder import lr_find
    res = lr_find(RunConfig(model="tiny-bert", task=toy_task, train_size=64, max_length=16, progress=False),
                  start_lr=1e-4, end_lr=0.01, num_steps=6, stop_factor=50, runs_dir=tmp_path)
    assert res.record.config["max_steps"] == 6 and res.record.config["divergence_factor"] == 50
    assert res.lrs[0] == pytest.approx(1e-4) and res.lrs[-1] == pytest.approx(1e-2)


# --------------------------------------------------------------------------- the Python API
def test_python_api_refuses_before_loading(tiny, nothing_loaded):
    from ftcore import build
    with pytest.raises(ConfigError, match=r"RunConfig.reinit_top=3 .*\[0, 2\]"):
        build(tiny.replace(reinit_top=3))
    with pytest.raises(ConfigError, match="RunConfig.train_size=1 "):
        build(tiny.replace(train_size=1))
    with pytest.raises(ConfigError, match="RunConfig.progress='no'"):
        RunConfig(progress="no")
    with pytest.raises(ConfigError, match="RunConfig.seed=4294967296"):
        RunConfig(seed=2**32)
    assert nothing_loaded == []


def test_lr_below_range_start_is_fine_unless_range_test():
    assert RunConfig(lr=1e-8).lr == 1e-8
    with pytest.raises(ConfigError, match=r"range_start_lr=1e-07 .*below lr=1e-08 for schedule='range_test'"):
        RunConfig(lr=1e-8, schedule="range_test")


def test_numeric_strings_from_yaml_and_json_become_numbers(tmp_path):
    # PyYAML follows YAML 1.1: 1e-4 and 9e-1 (no dot) are strings there
    (tmp_path / "c.yaml").write_text("lr: 1e-4\ntrain_size: 2e3\nhead_lr: none\nbetas: [9e-1, 0.999]\n"
                                     "progress: no\naugment: swap, delete\nwarmup: none\nmax_steps: null\n")
    cfg = load_config(str(tmp_path / "c.yaml"))
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float)
    assert cfg.train_size == 2000 and isinstance(cfg.train_size, int)
    assert cfg.head_lr is None and cfg.betas == (0.9, 0.999) and cfg.progress is False
    assert cfg.augment == ("swap", "delete") and cfg.warmup == "none" and cfg.max_steps is None
    (tmp_path / "c.json").write_text(json.dumps({"lr": "3e-5", "epochs": 2, "seed": 3.0}))
    cfg = load_config(str(tmp_path / "c.json"))
    assert cfg.lr == 3e-5 and cfg.epochs == 2 and cfg.seed == 3 and isinstance(cfg.seed, int)
    (tmp_path / "d.yaml").write_text("train_size: 2.5e3x\n")
    with pytest.raises(ConfigError, match=r"RunConfig.train_size='2.5e3x' is not allowed: expected an integer"):
        load_config(str(tmp_path / "d.yaml"))


def test_labels_that_differ_only_in_spaces_are_one_class(tmp_path):
    from ftcore import load_task
    rows = [{"text": f"example text {i}", "label": ["pos", " pos", "neg", "neg "][i % 4]} for i in range(60)]
    rows.append({"text": "   ", "label": "pos"})  # a blank text is dropped
    path = tmp_path / "spaces.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    task = load_task(str(path))
    assert task.label_names == ("neg", "pos")
    assert sum(task.sizes().values()) == 60
    numeric = tmp_path / "numeric.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(40)] + ["t nan"],
                  "label": [i % 2 for i in range(40)] + [None]}).to_csv(numeric, index=False)
    assert load_task(str(numeric)).label_names == ("0", "1")  # not "0.0" and "1.0"


# --------------------------------------------------------------------------- recorded, not silent
def _events(rec, kind):
    return rec.events[rec.events["kind"] == kind]


def test_train_size_larger_than_the_split_is_recorded(tiny):
    from ftcore import train
    with pytest.warns(UserWarning, match="train_size=100000 but the train split"):
        rec = train(tiny.replace(train_size=100000, max_steps=2, test_at_end=False, eval_splits=()))
    n = rec.summary["train_examples"]
    assert 0 < n < 100000
    assert f"has {n} examples" in _events(rec, "train_size_clamped")["detail"].iloc[0]


def test_clamped_warmup_is_recorded(tiny):
    from ftcore import train
    with pytest.warns(UserWarning, match="warmup_clamped"):
        rec = train(tiny.replace(warmup_steps=1000, max_steps=3, test_at_end=False, eval_splits=()))
    assert rec.summary["warmup_steps"] == 2
    assert "1000 steps asked for" in _events(rec, "warmup_clamped")["detail"].iloc[0]


def test_gradual_unfreezing_that_cannot_finish_is_recorded_and_diagnosed(tiny):
    from ftcore import train
    from ftcore.records.doctor import diagnose
    # tiny-bert: embeddings, layer.0, layer.1, pooler frozen; one group per epoch needs 4 epochs
    cfg = tiny.replace(freeze="gradual", unfreeze_every=1.0, epochs=3, train_size=32, test_at_end=False,
                       eval_splits=())
    with pytest.warns(UserWarning, match="unfreeze_incomplete"):
        rec = train(cfg)
    detail = _events(rec, "unfreeze_incomplete")["detail"].iloc[0]
    assert "embeddings" in detail and "layer.0" in detail and "unfreeze_every" in detail
    assert "unfreeze_incomplete" in diagnose(rec).kinds()
    # the same ladder with room to finish: no event
    ok = train(cfg.replace(unfreeze_every=0.5))
    assert _events(ok, "unfreeze_incomplete").empty and len(_events(ok, "unfreeze")) == 4


# --------------------------------------------------------------------------- show, help
def test_show_names_what_a_folder_holds(capsys):
    landscape = next(QUICK_RUNS.glob("landscape-*"))
    assert main(["show", str(landscape)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("saved loss landscape") and "old" not in out
    study = next(QUICK_RUNS.glob("study-*"))
    assert main(["show", str(study)]) == 0
    assert capsys.readouterr().out.startswith("saved study")
    assert main(["show", str(QUICK_RUNS / "no-such-record")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert main(["doctor", str(QUICK_RUNS / "no-such-record")]) == 2
    assert "does not exist" in _one_error_line(capsys)


def test_help_documents_every_field():
    from dataclasses import fields

    from ftcore.cli import _metavar
    from ftcore.engine.config import describe
    out = subprocess.run([sys.executable, "-m", "ftcore.cli", "run", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "100000", "PATH": ""}, check=True).stdout
    flat = " ".join(out.split())  # argparse wraps lines; compare the words
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        assert f"{flag} {_metavar(str(f.type))} {describe(f.name)}" in flat, flag
        assert "Allowed: " in describe(f.name) and "Default: " in describe(f.name)
    # units and meanings the issue asked about
    assert "optimizer steps between evaluations" in out
    assert "epochs or steps (unfreeze_unit)" in out
    assert "examples per forward pass (per batch)" in out
    assert "one of none, bottom, middle, head_only, gradual, list" in out
