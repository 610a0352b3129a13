"""Faults while storing records: a save killed (SIGKILL) at each of its steps never loses a record,
its leftovers are cleaned up, and two processes on one run id train it once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftcore import RunRecord, run
from ftcore.engine.runs import record_path

ROOT = Path(__file__).resolve().parents[1]

# A child process: runs `cfg` in `runs_dir` (force: replace the record), printing each step of the
# save; at step `stop_at` it sleeps (to be killed there). `no_exchange`: use the rename-aside
# fallback instead of the atomic exchange. `train_s`: training takes at least this long. It prints
# TRAINED when it trained and DONE <run id> at the end.
CHILD = r"""
import json, sys, time
import ftcore.engine.runs as runs
import ftcore.records.record as record
from ftcore import RunConfig
args = json.loads(sys.argv[1])

def hook(stage):
    print("STAGE", stage, flush=True)
    if stage == args["stop_at"]:
        time.sleep(600)
record._save_hook = hook
if args["no_exchange"]:
    record._exchange = lambda a, b: False
real_train = runs.train

def train(cfg):
    print("TRAINED", flush=True)
    time.sleep(args["train_s"])
    return real_train(cfg)
runs.train = train
rec = runs.run(RunConfig.from_dict(args["cfg"]), runs_dir=args["runs_dir"], force=args["force"])
print("DONE", rec.run_id, flush=True)
"""


def _child(cfg, runs_dir, *, stop_at=None, no_exchange=False, force=False, train_s=0.0) -> subprocess.Popen:
    args = {"cfg": cfg.to_dict(), "runs_dir": str(runs_dir), "stop_at": stop_at, "no_exchange": no_exchange,
            "force": force, "train_s": train_s}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _kill_at(proc: subprocess.Popen, stage: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.strip() == f"STAGE {stage}":
            break
        assert time.monotonic() < deadline, f"the child never reached {stage}"
    else:
        raise AssertionError(f"the child ended before {stage}: {proc.stderr.read()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()


def _leftovers(runs_dir: Path) -> list[str]:
    return sorted(p.name for p in runs_dir.iterdir() if p.name.startswith("."))


@pytest.fixture
def counted_train(monkeypatch):
    import ftcore.engine.runs as runs
    calls, real = [], runs.train
    monkeypatch.setattr(runs, "train", lambda c: calls.append(c) or real(c))
    return calls


# (stage at which the save is killed, the rename-aside fallback instead of the exchange)
KILLS = [("tables", False), ("meta", False), ("swapped", False), ("old_aside", True), ("swapped", True)]


@pytest.mark.parametrize("stage,no_exchange", KILLS, ids=[f"{s}{'-fallback' if f else ''}" for s, f in KILLS])
def test_replacing_a_record_killed_at_any_step_loses_nothing(tiny, tmp_path, counted_train, stage, no_exchange):
    cfg = tiny.replace(epochs=1)
    old = run(cfg, runs_dir=tmp_path)
    path = record_path(cfg, tmp_path)
    _kill_at(_child(cfg, tmp_path, stop_at=stage, no_exchange=no_exchange, force=True), stage)
    if not no_exchange:  # the exchange leaves no moment without a record at the path
        assert RunRecord.load(path).steps["loss"].tolist() == old.steps["loss"].tolist()
    # whatever the moment, the next use finds a valid record (the old or the new: same numbers)
    again = run(cfg, runs_dir=tmp_path)
    assert counted_train == [cfg] and again.steps["loss"].tolist() == old.steps["loss"].tolist()
    # the next computation in the folder removes what the killed save left
    run(cfg, runs_dir=tmp_path, force=True)
    assert _leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_first_save_killed_leaves_no_record_and_is_retrained(tiny, tmp_path, counted_train):
    cfg = tiny.replace(epochs=1)
    _kill_at(_child(cfg, tmp_path, stop_at="meta"), "meta")
    rid = record_path(cfg, tmp_path).name
    assert not record_path(cfg, tmp_path).exists()
    assert [n.split("-")[0] for n in _leftovers(tmp_path)] == [f".{rid}.lock", f".{rid}.tmp"]  # the dead writer's
    run(cfg, runs_dir=tmp_path)
    assert len(counted_train) == 1 and _leftovers(tmp_path) == []


def test_two_processes_on_one_run_train_it_once(tiny, tmp_path):
    cfg = tiny.replace(epochs=1)
    procs = [_child(cfg, tmp_path, train_s=3.0) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(out)
    assert sum(o.count("TRAINED") for o in outs) == 1
    assert all(f"DONE {record_path(cfg, tmp_path).name}" in o for o in outs)
    assert _leftovers(tmp_path) == [] and RunRecord.load(record_path(cfg, tmp_path)).status == "completed"
