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
    with pytest.warns(UserWarning) as caught:
        task = load_task(str(path))
    said = " ".join(str(w.message) for w in caught)
    assert "30 labels had surrounding spaces removed" in said and "1 of 61 rows dropped (1 with an empty text)" in said
    assert task.label_names == ("neg", "pos")
    assert sum(task.sizes().values()) == 60
    numeric = tmp_path / "numeric.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(40)] + ["t nan"],
                  "label": [i % 2 for i in range(40)] + [None]}).to_csv(numeric, index=False)
    with pytest.warns(UserWarning, match=r"rows_dropped: .* 1 of 41 rows dropped \(1 with an empty label\)"):
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


# =========================================================================== issue 26: second round
# predict, tensorboard, doctor, Ctrl-C, user task files and the cache's completeness check.
def _quick(kind: str) -> Path:
    """A committed quick-mode folder: a ``study``, a ``landscape`` or a plain ``run`` record."""
    if kind == "run":
        return next(p for p in sorted(QUICK_RUNS.iterdir()) if len(p.name) == 16 and (p / "meta.json").is_file())
    return next(QUICK_RUNS.glob(f"{kind}-*"))


def _record_of(runs: Path) -> list[Path]:
    """Record folders (and lock files) under a runs folder."""
    return sorted(runs.iterdir()) if runs.exists() else []


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    """A folder as --save-model writes it (untrained tiny-bert: predict only needs it to load)."""
    from ftcore.engine.export import save_model
    from ftcore.engine.models import load_model
    model = load_model("tiny-bert", 2, seed=0)
    out = tmp_path_factory.mktemp("saved") / "model"
    return str(save_model(model, out, cfg=RunConfig(model="tiny-bert", max_length=16), label_names=("neg", "pos")))


@pytest.fixture
def no_prediction(monkeypatch):
    """Fail the test if predict() runs (a refusal must come before the model is loaded)."""
    from ftcore.engine import export

    def refuse(*a, **k):
        raise AssertionError("predict ran")
    monkeypatch.setattr(export, "predict", refuse)
    monkeypatch.setattr(export, "load_saved", refuse)


@pytest.fixture
def texts(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n   \n\t\n")
    (tmp_path / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("un film trop léger\n".encode("latin-1"))
    (tmp_path / "utf16.txt").write_text("a good film\n", encoding="utf-16")
    (tmp_path / "a-folder").mkdir()
    return tmp_path


PREDICT_REFUSED = [  # (arguments after the model folder, words of the one error line)
    ([], "no texts to label: give TEXT arguments or --file FILE"),
    (["--file", "{tmp}/empty.txt"], "empty.txt has no text (it is empty or blank)"),
    (["--file", "{tmp}/blank.txt"], "blank.txt has no text"),
    (["--file", "{tmp}/missing.txt"], "missing.txt does not exist; give a UTF-8 text file"),
    (["--file", "{tmp}/a-folder"], "a-folder is a folder; give a UTF-8 text file with one text per line"),
    (["--file", "{tmp}/binary.bin"], "is a binary file (it contains NUL bytes)"),
    (["--file", "{tmp}/latin1.txt"], "is not UTF-8 text (byte 0xe9 at offset 14); re-save it as UTF-8"),
    (["--file", "{tmp}/utf16.txt"], "is UTF-16 text; re-save it as UTF-8"),
    (["some text", "--file", "{tmp}/missing.txt"], "missing.txt does not exist"),
]


@pytest.mark.parametrize("args, words", PREDICT_REFUSED, ids=[" ".join(a) or "no texts" for a, _ in PREDICT_REFUSED])
def test_predict_refuses_bad_texts_in_one_line(saved_model, texts, args, words, no_prediction, capsys):
    args = [a.replace("{tmp}", str(texts)) for a in args]
    assert main(["predict", saved_model, *args]) == 2
    assert words in _one_error_line(capsys)


def _broken_model(tmp_path, saved_model, name, damage):
    import shutil
    folder = tmp_path / name
    shutil.copytree(saved_model, folder)
    damage(folder)
    return folder


MODEL_DAMAGE = {  # folder damage -> words of the one error line
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "has no model weights"),
    "bad config": (lambda f: (f / "config.json").write_text("{"), "config.json cannot be read"),
    "bad ftcore.json": (lambda f: (f / "ftcore.json").write_text("[1,"), "ftcore.json cannot be read"),
}


@pytest.mark.parametrize("case", MODEL_DAMAGE)
def test_predict_refuses_a_damaged_model_folder_before_loading(saved_model, tmp_path, case, no_prediction, capsys):
    damage, words = MODEL_DAMAGE[case]
    folder = _broken_model(tmp_path, saved_model, case.replace(" ", "-"), damage)
    assert main(["predict", str(folder), "a text"]) == 2
    line = _one_error_line(capsys)
    assert words in line and "--save-model" in line, line


def test_predict_model_path_that_is_a_file_or_has_garbage_weights(saved_model, tmp_path, capsys):
    (tmp_path / "model.txt").write_text("not a model")
    assert main(["predict", str(tmp_path / "model.txt"), "a text"]) == 2
    assert "is not a saved model folder (it is a file)" in _one_error_line(capsys)
    garbage = _broken_model(tmp_path, saved_model, "garbage", lambda f: (f / "model.safetensors").write_bytes(b"xx"))
    assert main(["predict", str(garbage), "a text"]) == 2  # transformers' own error, in one line
    line = _one_error_line(capsys)
    assert "cannot be loaded" in line and "save it again" in line


def test_predict_still_labels_good_input(saved_model, texts, capsys):
    (texts / "ok.txt").write_text("\ufeffa good film\n\n  a bad film  \n", encoding="utf-8")  # with a BOM
    assert main(["predict", saved_model, "fine", "--file", str(texts / "ok.txt")]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.strip().splitlines()]
    assert [r[-1] for r in rows] == ["fine", "a good film", "a bad film"]


# --------------------------------------------------------------------------- tensorboard
@pytest.mark.parametrize("logdir, words", [
    ("/proc/tb", "TensorBoard log folder /proc/tb cannot be written: it cannot be created"),
    ("{tmp}/a-file", "a file is in the way (a TensorBoard log folder must be a folder)"),
    ("{tmp}/a-file/tb", "cannot be written"),
])
def test_tensorboard_logdir_that_cannot_be_written(tmp_path, logdir, words, capsys):
    pytest.importorskip("torch.utils.tensorboard")
    (tmp_path / "a-file").write_text("x")
    logdir = logdir.replace("{tmp}", str(tmp_path))
    assert main(["tensorboard", str(_quick("run")), "--logdir", logdir]) == 2
    line = _one_error_line(capsys)
    assert words in line and "give --logdir a folder you can write to" in line, line


@pytest.mark.parametrize("stored, kind", [("study", "saved study"), ("landscape", "saved loss landscape")])
def test_doctor_and_tensorboard_name_studies_and_landscapes(stored, kind, tmp_path, capsys):
    folder = _quick(stored)
    for argv in (["doctor", str(folder)], ["tensorboard", str(_quick("run")), str(folder), "--logdir", str(tmp_path / "tb")]):
        assert main(argv) == 2
        line = _one_error_line(capsys)
        assert f"is a {kind}, not a run record" in line and f"use `ftcore show {folder}`" in line, line
        assert "schema version" not in line
    assert not (tmp_path / "tb").exists()  # the good record before it was not written either
    assert main(["show", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(kind)


def test_show_and_doctor_on_a_folder_that_is_no_record(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["doctor", str(tmp_path / "empty")]) == 2
    assert "is not a run record (no meta.json)" in _one_error_line(capsys)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text('{"hello": 1}')
    assert main(["show", str(tmp_path / "other")]) == 2
    assert "is not a run record, landscape or study" in _one_error_line(capsys)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "meta.json").write_text('{"schema_ver')
    assert main(["show", str(tmp_path / "corrupt")]) == 2
    assert "is corrupt" in _one_error_line(capsys)


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_during_run_is_one_line_and_leaves_nothing(S, tmp_path, monkeypatch, capsys):
    from ftcore.engine import trainer
    fire = trainer.Trainer.fire

    def interrupt_at_step_2(self, event):
        fire(self, event)
        if event == "step_end" and self.step == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(trainer.Trainer, "fire", interrupt_at_step_2)
    assert main(["run", *S]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == "ftcore: interrupted at step 2; nothing was stored; rerun to start again"
    runs = tmp_path / "runs"
    assert [p.name for p in _record_of(runs)] == []  # no record, no lock, no temporary folder
    monkeypatch.setattr(trainer.Trainer, "fire", fire)
    assert main(["run", *S]) == 0  # the rerun trains
    assert len(_record_of(runs)) == 1


def test_ctrl_c_in_other_commands(monkeypatch, tmp_path, capsys):
    from ftcore.records import doctor, tensorboard

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(doctor, "diagnose", interrupt)
    assert main(["doctor", str(_quick("run"))]) == 130
    assert capsys.readouterr().err == "ftcore: interrupted; nothing was stored; rerun to start again\n"
    monkeypatch.setattr(tensorboard, "write_record", interrupt)
    pytest.importorskip("torch.utils.tensorboard")
    assert main(["tensorboard", str(_quick("run")), "--logdir", str(tmp_path / "tb")]) == 130
    assert capsys.readouterr().err == f"ftcore: interrupted; {tmp_path / 'tb'} may be incomplete; rerun to write it again\n"


def test_a_real_sigint_during_ftcore_run(S, tmp_path):
    """SIGINT from outside (what Ctrl-C sends), in a fresh process running the command line."""
    # a terminal's process handles SIGINT; one started in the background by a non-interactive shell
    # inherits it ignored (POSIX), and Python then installs no handler: restore what a terminal gives
    script = ("import os, signal, sys\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from ftcore.engine import trainer\n"
              "fire = trainer.Trainer.fire\n"
              "def fire_and_signal(self, event):\n"
              "    fire(self, event)\n"
              "    if event == 'step_end' and self.step == 1:\n"
              "        os.kill(os.getpid(), signal.SIGINT)\n"
              "trainer.Trainer.fire = fire_and_signal\n"
              "from ftcore.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", script, "run", *S], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 130, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ftcore:")]
    assert lines == ["ftcore: interrupted at step 1; nothing was stored; rerun to start again"], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _record_of(tmp_path / "runs") == []


# --------------------------------------------------------------------------- user task files
def _task_file(path: Path, n: int = 120, **columns) -> str:
    rows = {"text": [f"an example text number {i}" for i in range(n)], "label": [("pos", "neg")[i % 2] for i in range(n)]}
    rows.update(columns)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_rows_dropped_from_a_task_file_are_counted_printed_once_and_recorded(tmp_path, capsys):
    texts = [None if i % 4 == 0 else f"an example text number {i}" for i in range(120)]
    task = _task_file(tmp_path / "holes.csv", text=texts)
    argv = ["run", "--model", "tiny-bert", "--task", task, "--train-size", "none", "--max-steps", "2", "--threads", "1",
            "--max-length", "16", "--progress", "false", "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    notes = [ln for ln in captured.err.splitlines() if ln.startswith("ftcore: warning: rows_dropped")]
    assert notes == [f"ftcore: warning: rows_dropped: task file {task!r}: 30 of 120 rows dropped (30 with an "
                     "empty text); 90 used. Fill in or remove those rows to silence this"], captured.err
    assert "event:    step 0: rows_dropped" in captured.out and "30 of 120 rows dropped" in captured.out
    from ftcore.records.doctor import diagnose
    rec = RunRecord_load_only(tmp_path / "runs")
    assert _events(rec, "rows_dropped")["detail"].iloc[0].startswith(f"task file {task!r}: 30 of 120")
    assert "rows_dropped" in diagnose(rec).kinds()
    assert main(argv) == 0  # load_task is cached per process: the warning is not repeated
    assert "warning: rows_dropped" not in capsys.readouterr().err


def RunRecord_load_only(runs: Path):
    from ftcore import RunRecord
    (folder,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    return RunRecord.load(folder)


def test_every_kind_of_dropped_or_changed_row_is_counted(tmp_path):
    from ftcore import load_task
    texts = [f"text {i}" for i in range(100)]
    labels = [("pos", "neg")[i % 2] for i in range(100)]
    texts[1], texts[2] = "   ", None  # 2 empty texts
    labels[3], labels[4] = None, "  "  # 2 empty labels
    texts[5] = texts[7] = "text 6"  # 2 repeats of row 6's text
    labels[10], labels[12] = " pos", "pos "  # 2 trimmed labels
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    with pytest.warns(UserWarning) as caught:
        task = load_task(str(path))
    assert sum(task.sizes().values()) == 94
    notes = dict(task.notes)
    assert notes["rows_dropped"] == (f"task file {str(path)!r}: 6 of 100 rows dropped (2 with an empty text, 2 with "
                                     "an empty label, 2 repeating an earlier row's text); 94 used. Fill in or "
                                     "remove those rows to silence this")
    assert notes["labels_trimmed"].endswith("2 labels had surrounding spaces removed, joining the class of the "
                                            "same label without them")
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["labels_trimmed", "rows_dropped"]


def test_texts_and_labels_that_look_like_missing_values_are_kept(tmp_path):
    from ftcore import load_task
    texts = ["NA", "null", "None", "nan", "N/A"] + [f"text {i}" for i in range(55)]
    path = tmp_path / "na.csv"
    pd.DataFrame({"text": texts, "label": [("None", "NA")[i % 2] for i in range(60)]}).to_csv(path, index=False)
    task = load_task(str(path))
    assert task.notes == () and task.label_names == ("NA", "None") and sum(task.sizes().values()) == 60


def test_a_clean_task_file_has_no_notes(toy_task):
    from ftcore import load_task
    assert load_task(toy_task).notes == ()


@pytest.fixture
def task_files(tmp_path):
    body = "".join(f"example text {i},{('pos', 'neg')[i % 2]},{i % 3}\n" for i in range(60))
    (tmp_path / "dup.csv").write_text("text,label,label\n" + body)
    (tmp_path / "cased.csv").write_text("text,label,Label\n" + body)
    (tmp_path / "two-texts.csv").write_text("text,Text ,label\n" + body)
    with open(tmp_path / "nested.jsonl", "w") as f:
        for i in range(60):
            f.write(json.dumps({"text": [f"part {i}", "more"], "label": {"x": i % 2}}) + "\n")
    with open(tmp_path / "dict-label.jsonl", "w") as f:
        for i in range(60):
            f.write(json.dumps({"text": f"text {i}", "label": {"x": i % 2}}) + "\n")
    (tmp_path / "task.txt").write_text("text,label\n" + body)
    (tmp_path / "latin1.csv").write_bytes(("text,label\n" + "".join(f"café {i},{i % 2}\n" for i in range(60))).encode("latin-1"))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "a-folder").mkdir()
    return tmp_path


TASK_REFUSED = [
    ("dup.csv", "has 2 columns named 'label': keep exactly one column named 'label'"),
    ("cased.csv", "has 2 columns that could be the label ('label', 'Label'): keep exactly one"),
    ("two-texts.csv", "has 2 columns that could be the text ('text', 'Text ')"),
    ("nested.jsonl", "the text of row 1 is a list (['part 0', 'more']); each row needs one text and one label"),
    ("dict-label.jsonl", "the label of row 1 is a dict ({'x': 0}); each row needs one text and one label"),
    ("task.txt", "has the unsupported extension '.txt' (supported: .csv, .tsv, .json, .jsonl, .parquet)"),
    ("latin1.csv", "could not read task file"),
    ("empty.csv", "as CSV (No columns to parse from file): save it as UTF-8 CSV"),
    ("folder.csv", "is a folder: give a .csv, .tsv"),
    ("a-folder", "is a folder, and loading it as a Hugging Face dataset folder failed"),
]


@pytest.mark.parametrize("name, words", TASK_REFUSED, ids=[n for n, _ in TASK_REFUSED])
def test_task_files_refused_in_one_line(S, task_files, name, words, nothing_loaded, capsys, tmp_path):
    assert main(["run", *S, "--task", str(task_files / name)]) == 2
    line = _one_error_line(capsys)
    assert words in line, line
    assert "Hugging Face Hub" not in line
    assert nothing_loaded == [] and _record_of(tmp_path / "runs") == []


def test_tsv_task_files_are_read(tmp_path, capsys):
    from ftcore import load_task
    path = tmp_path / "task.tsv"
    pd.DataFrame({"text": [f"a text, with commas {i}" for i in range(60)], "label": [i % 2 for i in range(60)]}) \
        .to_csv(path, sep="\t", index=False)
    task = load_task(str(path))
    assert task.label_names == ("0", "1") and sum(task.sizes().values()) == 60
    assert task.splits["train"][0]["text"].startswith("a text, with commas")


# --------------------------------------------------------------------------- cache completeness
def _grad_rows(rec) -> int:
    return len(rec.grad_norms)


def test_a_cached_record_without_grad_norms_is_recomputed_when_they_are_asked_for(tiny, tmp_path):
    from ftcore.engine.runs import run
    from ftcore.records.cache import StaleResultWarning
    cfg = tiny.replace(max_steps=3, test_at_end=False, eval_splits=())
    bare = run(cfg.replace(record_grad_norms=False), runs_dir=tmp_path)
    assert _grad_rows(bare) == 0
    with pytest.warns(StaleResultWarning, match="no gradient-norm rows .* record_grad_norms=True asks for them"):
        full = run(cfg, runs_dir=tmp_path)
    assert full.run_id == bare.run_id and _grad_rows(full) > 0
    again = run(cfg.replace(record_grad_norms=False), runs_dir=tmp_path)  # holds more than asked: reused
    assert _grad_rows(again) > 0 and again.provenance == full.provenance
    assert _grad_rows(run(cfg, runs_dir=tmp_path, render_only=True)) > 0


def test_cli_record_grad_norms_true_after_false(S, tmp_path, capsys):
    assert main(["run", *S, "--record-grad-norms", "false"]) == 0
    capsys.readouterr()
    assert main(["doctor", str(RunRecord_load_only(tmp_path / "runs").path)]) == 0
    assert "no gradient-norm rows (made with record_grad_norms=False)" in capsys.readouterr().out
    assert main(["run", *S, "--record-grad-norms", "true"]) == 0
    err = capsys.readouterr().err
    assert "ftcore: warning: ignoring stored run" in err and "no gradient-norm rows" in err
    assert _grad_rows(RunRecord_load_only(tmp_path / "runs")) > 0


def test_a_cached_record_without_per_example_losses_is_recomputed(tiny, tmp_path):
    from ftcore.engine.runs import run
    from ftcore.records.cache import StaleResultWarning
    from ftcore.records.record import empty_table
    cfg = tiny.replace(max_steps=2, test_at_end=False, eval_splits=(), score_train=True)
    rec = run(cfg, runs_dir=tmp_path)
    assert len(rec.examples)
    rec.tables["examples"] = empty_table("examples")  # as if made by a loop that does not score
    rec.save(rec.path)
    with pytest.warns(StaleResultWarning, match="no per-example losses and score_train=True asks for them"):
        assert len(run(cfg, runs_dir=tmp_path).examples)


def test_render_only_refuses_a_record_missing_what_is_asked(tiny, tmp_path):
    from ftcore.engine.runs import run
    from ftcore.records.cache import MissingRecordError
    cfg = tiny.replace(max_steps=2, test_at_end=False, eval_splits=(), record_grad_norms=False)
    run(cfg, runs_dir=tmp_path)
    with pytest.raises(MissingRecordError, match="no gradient-norm rows"):
        run(cfg.replace(record_grad_norms=True), runs_dir=tmp_path, render_only=True)


def test_reference_records_hold_what_their_configs_ask_for():
    """Every committed record stays reusable by `python -m chapter --render-only`: none lacks what
    its own config asks for (row counts read from the Parquet footers: no table is loaded)."""
    import pyarrow.parquet as pq

    checked = 0
    for meta_file in [*(ROOT / "runs" / "reference").glob("*/meta.json"), *QUICK_RUNS.glob("*/meta.json")]:
        meta = json.loads(meta_file.read_text())
        if "summary" not in meta:
            continue  # a study or a landscape
        cfg = meta["config"]
        rows = {t: pq.read_metadata(meta_file.parent / f"{t}.parquet").num_rows
                for t in ("steps", "grad_norms", "examples")}
        if cfg.get("record_grad_norms", True) and rows["steps"]:
            assert rows["grad_norms"], meta_file.parent
        if cfg.get("score_train"):
            assert rows["examples"], meta_file.parent
        checked += 1
    assert checked > 500


def test_doctor_reports_what_a_record_lacks(tiny):
    from ftcore import train
    from ftcore.records.doctor import diagnose
    from ftcore.records.record import empty_table
    rec = train(tiny.replace(max_steps=2, test_size=32, eval_size=32))
    assert not [f for f in diagnose(rec) if f.kind == "record_incomplete"]  # a record of today has it all
    rec.tables["grad_norms"] = empty_table("grad_norms")
    ev = rec.evals
    rec.tables["evals"] = ev[(ev["metric"] != "max_class_frac") & ~ev["metric"].str.contains("/", regex=False)]
    missing = {f.evidence["missing"] for f in diagnose(rec) if f.kind == "record_incomplete"}
    assert missing == {"grad_norms", "max_class_frac", "per_class"}
    assert all(f.severity == "info" for f in diagnose(rec) if f.kind == "record_incomplete")
    text = diagnose(rec).to_text("zh")
    assert "记录中没有梯度范数" in text
