"""The command line trains, summarises, and turns bad input into one clear line."""
import re

from ftcore.cli import config_from_args, main


def test_run_and_show(toy_task, tmp_path, capsys):
    argv = ["run", "--model", "tiny-bert", "--task", toy_task, "--train-size", "none", "--epochs", "1",
            "--max-length", "16", "--progress", "false", "--lr", "3e-3", "--runs-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  test +accuracy 0\.\d{4}", out, re.M) and "record:" in out
    path = out.split("record:")[1].split()[0]
    assert main(["show", path]) == 0
    assert "status:   completed" in capsys.readouterr().out


def test_bad_flag_value_is_one_line(capsys):
    assert main(["run", "--lr", "-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ftcore: error: RunConfig.lr=-3.0") and "Traceback" not in err


def test_tuple_and_optional_flags():
    import argparse
    ns = argparse.Namespace(augment="swap,delete", head_lr="none", eval_at_start="true", config=None)
    cfg = config_from_args(ns)
    assert cfg.augment == ("swap", "delete") and cfg.head_lr is None and cfg.eval_at_start is True


def test_trainer_command_trains_with_hf_trainer_and_refuses_what_it_cannot(toy_task, tmp_path, capsys):
    from ftcore.engine.hf import hf_run_id
    from ftcore import RunConfig
    args = ["--model", "tiny-bert", "--task", toy_task, "--train-size", "none", "--max-length", "16", "--max-steps", "3", "--progress", "false",
            "--runs-dir", str(tmp_path)]
    assert main(["trainer", *args, "--label-smoothing", "0.1"]) == 0
    out = capsys.readouterr().out
    rid = hf_run_id(RunConfig(model="tiny-bert", task=toy_task, train_size=None, max_length=16, max_steps=3, progress=False,
                              label_smoothing=0.1))
    assert rid in out and (tmp_path / rid / "meta.json").exists()
    assert main(["trainer", *args, "--schedule", "step"]) == 2  # one line, no traceback
    assert "HF Trainer path" in capsys.readouterr().err
