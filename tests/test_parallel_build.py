"""Parallel builds (``python -m chapter --jobs N``): workers train the missing runs into the shared
runs folder; a build killed at any moment resumes without retraining what it finished; two builds
on one folder do not corrupt each other; Ray runs the same jobs (skipped where Ray cannot start).

The builds run as subprocesses on a "tiny" scale: the figures' grids on the tiny random BERT and
the toy task of conftest (seconds per run), set up by a driver script."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chapter.parallel import Job, split_threads

ROOT = Path(__file__).resolve().parents[1]
FIGS = ["decay", "layer-lr"]  # 6 + 4 runs on the tiny scale

DRIVER = textwrap.dedent('''
    import dataclasses, sys
    from chapter import scale
    from ftcore import RunConfig
    task, runs_dir = sys.argv[1], sys.argv[2]
    base = RunConfig(model="tiny-bert", task=task, train_size=None, epochs=6, batch_size=16, lr=3e-3,
                     eval_size=None, test_size=None, max_length=16, progress=False, threads=2)
    scale.SCALES["quick"] = dataclasses.replace(scale.QUICK, base=base, runs_dir=runs_dir)
    from chapter.build import main
    sys.exit(main(["--quick", *sys.argv[3:]]))
''')


@pytest.fixture
def tiny_build(tmp_path, toy_task):
    driver = tmp_path / "tiny_build.py"
    driver.write_text(DRIVER)
    runs = tmp_path / "runs"

    def start(*args: str, out: str = "out") -> subprocess.Popen:
        cmd = [sys.executable, str(driver), toy_task, str(runs), "--out", str(tmp_path / out),
               "--langs", "en", *args]
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True,  # its own process group: killed with its workers
                                env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)})
    return start, runs


def finished(runs: Path) -> dict[str, float]:
    """The record folders saved so far (a save is atomic: a folder exists only when complete)."""
    return {p.name: p.stat().st_mtime_ns for p in runs.iterdir() if not p.name.startswith(".")} \
        if runs.exists() else {}


def trained(out: str) -> int:
    return int(re.search(r"(\d+) (?:runs )?trained", out).group(1))


def all_valid(runs: Path, ids) -> None:
    from ftcore.records.record import RunRecord
    for rid in ids:
        assert RunRecord.load(runs / rid).status in ("completed", "diverged", "early_stopped")


def test_threads_split_between_workers_and_keep_the_run_id(tiny):
    from ftcore.engine.runs import run_id
    assert [split_threads(2, n) for n in (1, 2, 3)] == [2, 1, 1]
    job = Job("run", tiny.replace(threads=2)).with_threads(1)
    assert job.spec.threads == 1 and run_id(job.spec) == run_id(tiny)


def test_killed_parallel_build_resumes_without_retraining(tiny_build):
    start, runs = tiny_build
    p = start("--jobs", "2", "--collect-only", "--only", *FIGS)
    deadline = time.time() + 300
    while len(finished(runs)) < 2 and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert p.poll() is None, "the build finished before it could be killed: " + p.stdout.read()
    os.killpg(p.pid, signal.SIGKILL)  # the whole build, workers included, mid-way
    p.wait()
    time.sleep(0.5)
    before = finished(runs)
    assert 2 <= len(before) < 10
    p = start("--jobs", "2", "--collect-only", "--only", *FIGS)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    after = finished(runs)
    assert len(after) == 10 and trained(out) == 10 - len(before), out
    assert all(after[k] == v for k, v in before.items()), "a finished record was retrained"
    all_valid(runs, after)
    p = start("--jobs", "2", "--collect-only", "--only", *FIGS)  # a third build: everything is stored
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0 and trained(out) == 0, out


def test_two_builds_on_one_folder(tiny_build):
    start, runs = tiny_build
    builds = [start("--jobs", "2", "--draw-jobs", "1", "--only", *FIGS, out=f"out{i}") for i in range(2)]
    outs = [b.communicate(timeout=900)[0] for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outs
    recs = finished(runs)
    assert len(recs) == 10
    all_valid(runs, recs)
    # the per-run lock: every run was trained by exactly one of the two builds
    assert sum(trained(o) for o in outs) == 10, outs
    assert not [p for p in runs.iterdir() if p.name.startswith(".") and not p.name.startswith(".write-check")]


def _ray_or_skip():
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    except Exception as exc:  # noqa: BLE001 (whatever stops Ray from starting here)
        pytest.skip(f"a local Ray instance could not start here: {type(exc).__name__}: {exc}")
    return ray


def test_ray_backend_trains_and_the_driver_saves(tmp_path, tiny):
    ray = _ray_or_skip()
    try:
        from chapter.build import Collector
        from chapter.parallel import train_missing
        from chapter.scale import QUICK
        import dataclasses
        S = dataclasses.replace(QUICK, base=tiny, runs_dir=str(tmp_path / "runs"))
        col = Collector(S)
        jobs = [Job("run", tiny.replace(seed=s)) for s in (0, 1)]
        assert train_missing(col, jobs, workers=2, threads=1, backend="ray", progress=False) == 2
        recs = finished(tmp_path / "runs")
        assert len(recs) == 2
        all_valid(tmp_path / "runs", recs)
        assert all(r.provenance["threads"] == 1 for r in col.results.values())
    finally:
        ray.shutdown()


def test_a_sequence_trained_with_other_threads_is_the_same_stored_sequence(tiny, toy_task, tmp_path):
    """A worker trains with threads = total // N: the stored sequence must still be found."""
    from types import SimpleNamespace

    from ftcore.analysis.continual import ContinualConfig, sequence_id, stored_sequence
    second = tmp_path / "toy2.csv"
    second.write_text(Path(toy_task).read_text())
    ccfg = ContinualConfig(base=tiny.replace(threads=2), tasks=(toy_task, str(second)))
    one = Job("task sequence", ccfg).with_threads(1).spec
    assert one.base.threads == 1 and sequence_id(one) == sequence_id(ccfg)
    rec = SimpleNamespace(run_id=sequence_id(one), config={"continual": one.to_dict()})
    stored_sequence(ccfg, tmp_path).check(rec)  # no RecordError
    other = SimpleNamespace(run_id=rec.run_id, config={"continual": {**one.to_dict(), "method": "ewc"}})
    with pytest.raises(Exception, match="different sequence"):
        stored_sequence(ccfg, tmp_path).check(other)


def test_every_kind_of_job_trains_in_two_workers(tiny, toy_task, tmp_path):
    """A run, a task sequence and a landscape computed by 2 loky workers × 1 thread; a second call
    finds them stored (counts nothing), and each result records the worker's thread count."""
    import dataclasses

    from chapter.build import Collector
    from chapter.parallel import train_missing
    from chapter.scale import QUICK
    from ftcore.analysis.continual import ContinualConfig
    from ftcore.analysis.landscape import LandscapeConfig
    second = tmp_path / "toy2.csv"
    second.write_text(Path(toy_task).read_text())
    base = tiny.replace(epochs=1, threads=2)
    jobs = [Job("run", base), Job("task sequence", ContinualConfig(base=base, tasks=(toy_task, str(second)))),
            Job("landscape", (base.replace(seed=1), LandscapeConfig(grid=2, n1d=2, path_every=5, n_eval=8)))]
    S = dataclasses.replace(QUICK, base=base, runs_dir=str(tmp_path / "runs"))
    col = Collector(S)
    assert train_missing(col, jobs, workers=2, threads=1, progress=False) == 3 == col.trained
    assert len(finished(tmp_path / "runs")) == 3
    rec, seq, land = (col.results[j.stored(S.runs_dir).path] for j in jobs)
    assert rec.provenance["threads"] == seq.provenance["threads"] == land.meta["threads"] == 1
    assert train_missing(Collector(S), jobs, workers=2, threads=1, progress=False) == 0
