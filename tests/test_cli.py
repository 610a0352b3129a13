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
