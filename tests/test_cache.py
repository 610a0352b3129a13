"""The one cache: ids, the runs folder, fetch-or-compute (render-only, force, locking), a build that
loads each result once, and one clear line for a missing or corrupt result or an unwritable folder."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from ftcore.records import cache
from ftcore.records.cache import (MissingRecordError, StaleResultWarning, Stored, check_writable, fetch_or_compute,
                                  key_id)
from ftcore.records.record import RecordError

ROOT = Path(__file__).resolve().parents[1]


class Box:
    """A tiny storable result: one JSON file in its folder."""

    def __init__(self, value):
        self.value = value

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "box.json").write_text(json.dumps({"value": self.value}))

    @staticmethod
    def load(path: Path) -> "Box":
        try:
            return Box(json.loads((path / "box.json").read_text())["value"])
        except (OSError, json.JSONDecodeError) as exc:
            raise RecordError(f"{path}: unreadable box ({exc})") from None


def _item(tmp_path, calls: list, value=1, delay=0.0, name="box-0123") -> Stored:
    def compute():
        calls.append(value)
        time.sleep(delay)
        return Box(value)

    def check(box):
        if box.value != value:
            raise RecordError("it holds another value")
    return Stored("box", tmp_path / name, Box.load, compute, check)


def test_key_id_is_the_sha256_prefix_of_the_sorted_json():
    key = {"b": [1, 2], "a": "x"}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    assert key_id(key) == digest and key_id(key, prefix="seq-") == "seq-" + digest
    assert key_id({"a": "x", "b": [1, 2]}) == digest  # order of the keys does not matter


def test_default_runs_dir_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FTCORE_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cache.default_runs_dir() == ROOT / "runs" / "cache"
    monkeypatch.setenv("FTCORE_RUNS_DIR", "some/where")
    assert cache.default_runs_dir() == tmp_path / "some" / "where"  # made absolute once, here
    monkeypatch.delenv("FTCORE_RUNS_DIR")
    monkeypatch.setattr(cache, "__file__", str(tmp_path / "site-packages" / "ftcore" / "records" / "cache.py"))
    assert cache.default_runs_dir() == Path.home() / ".cache" / "ftcore" / "runs"  # not in a checkout


def test_fetch_or_compute_computes_once_then_reuses_and_force_replaces(tmp_path):
    calls = []
    assert fetch_or_compute(_item(tmp_path, calls)).value == 1
    assert fetch_or_compute(_item(tmp_path, calls)).value == 1 and calls == [1]
    fetch_or_compute(_item(tmp_path, calls), force=True)
    assert calls == [1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box-0123"]  # no lock file left


def test_corrupt_or_mismatched_is_warned_and_recomputed(tmp_path):
    calls = []
    fetch_or_compute(_item(tmp_path, calls))
    (tmp_path / "box-0123" / "box.json").write_text("{oops")
    with pytest.warns(StaleResultWarning, match="ignoring stored box box-0123: .*unreadable"):
        fetch_or_compute(_item(tmp_path, calls))
    with pytest.warns(StaleResultWarning, match="another value"):
        assert fetch_or_compute(_item(tmp_path, calls, value=2)).value == 2
    assert calls == [1, 1, 2]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "mismatched"])
def test_render_only_never_computes_and_says_so_in_one_line(tmp_path, damage):
    calls = []
    if damage != "missing":
        fetch_or_compute(_item(tmp_path, calls, value=5 if damage == "mismatched" else 1))
        calls.clear()
    if damage == "corrupt":
        (tmp_path / "box-0123" / "box.json").write_bytes(b"\x00")
    with pytest.raises(MissingRecordError) as info:
        fetch_or_compute(_item(tmp_path, calls), render_only=True)
    msg = str(info.value)
    assert calls == [] and "\n" not in msg
    assert "box box-0123" in msg and "make figures" in msg
    assert ("no record of box" if damage == "missing" else "the record of box box-0123 in") in msg
    assert damage == "missing" or "is unusable" in msg


def test_an_identical_computation_waits_for_the_first_and_reuses_it(tmp_path):
    calls, results = [], []
    threads = [threading.Thread(target=lambda: results.append(fetch_or_compute(_item(tmp_path, calls, delay=0.5))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == [1] and [r.value for r in results] == [1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["box-0123"]


@pytest.mark.parametrize("how", ["file", "under-file", "read-only"])
def test_an_unwritable_runs_folder_fails_before_computing(tmp_path, how):
    if how == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    target = tmp_path / "f"
    if how in ("file", "under-file"):
        target.write_text("not a folder")
        target = target if how == "file" else target / "sub"
    else:
        target.mkdir()
        target.chmod(0o500)
    calls = []
    with pytest.raises(RecordError, match="cannot be written") as info:
        fetch_or_compute(_item(target, calls))
    assert calls == [] and "\n" not in str(info.value)
    with pytest.raises(RecordError):
        check_writable(target)


def test_cli_run_into_a_file_fails_in_one_line_before_training(tiny, tmp_path, capsys, monkeypatch):
    import ftcore.engine.runs as runs
    from ftcore.cli import main
    monkeypatch.setattr(runs, "train", lambda c: pytest.fail("trained"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for where in (blocker, blocker / "sub"):
        code = main(["run", "--model", "tiny-bert", "--task", tiny.task, "--max-steps", "3", "--threads", "1",
                     "--progress", "false", "--runs-dir", str(where)])
        err = capsys.readouterr().err
        assert code == 2 and "cannot be written" in err and "Traceback" not in err
        assert [ln for ln in err.splitlines() if ln.startswith("ftcore: error")] == [err.splitlines()[-1]]


def test_a_build_loads_each_result_once(tmp_path, monkeypatch):
    from chapter.build import Collector
    from chapter.scale import QUICK
    loads, calls = [], []
    col = Collector(QUICK.__class__(QUICK.name, QUICK.seeds, QUICK.base, str(tmp_path)))
    item = _item(tmp_path, calls)
    fetch_or_compute(item)
    counted = Stored(item.kind, item.path, lambda p: loads.append(p) or Box.load(p), item.compute, item.check)
    assert col.fetch(counted) is col.fetch(counted)
    assert len(loads) == 1 and col.trained == 0


def _needing(kind: type):
    from chapter import specs  # noqa: F401 (registers the figures)
    from chapter.registry import REGISTRY
    from chapter.scale import QUICK
    return next(fid for fid, spec in REGISTRY.items() if any(isinstance(n, kind) for n in spec.needs(QUICK).values()))


@pytest.mark.parametrize("kind", ["run", "task sequence", "study", "landscape"])
def test_render_only_build_with_a_corrupt_record_is_one_line_and_trains_nothing(kind, tmp_path, capsys, monkeypatch):
    from chapter.build import main
    from chapter.registry import Grid, LandscapeNeed, Sequences, StudyNeed
    need, prefix = {"run": (Grid, ""), "task sequence": (Sequences, "seq-"), "study": (StudyNeed, "study-"),
                    "landscape": (LandscapeNeed, "landscape-")}[kind]
    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "tests" / "fixtures" / "quick-runs", runs)
    for p in runs.iterdir():
        is_run = "-" not in p.name and (p / "meta.json").exists()  # (models/ holds weights, not a record)
        if (is_run and not prefix) or (prefix and p.name.startswith(prefix)):
            meta = json.loads((p / "meta.json").read_text())
            if kind == "run":  # an edited number: the evals table says otherwise
                meta["summary"]["test_accuracy"] = 0.999
                (p / "meta.json").write_text(json.dumps(meta))
            else:
                (p / "meta.json").write_text("{not json")
    import ftcore.analysis.continual as continual
    import ftcore.engine.runs as engine_runs
    monkeypatch.setattr(engine_runs, "train", lambda *a: pytest.fail("trained"))
    monkeypatch.setattr(continual, "train_sequence", lambda *a: pytest.fail("trained"))
    code = main(["--quick", "--render-only", "--collect-only", "--only", _needing(need), "--runs-dir", str(runs),
                 "--out", str(tmp_path / "out")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert code == 2 and len(err) == 1
    assert f"the record of {kind} " in err[0] and "is unusable" in err[0] and "make figures" in err[0]
    assert ("test_accuracy" if kind == "run" else "corrupt") in err[0]


def test_a_computed_result_gets_its_cost_beside_it_and_a_fetched_one_keeps_it(tmp_path):
    def compute():
        sum(i * i for i in range(300_000))  # some CPU time
        return Box(7)
    item = Stored("box", tmp_path / "box-cost", Box.load, compute)
    fetch_or_compute(item)
    cost = cache.read_cost(item.path)
    assert cost is not None and cost["cpu_s"] > 0 and cost["wall_s"] >= cost["cpu_s"] * 0.5
    assert Box.load(item.path).value == 7  # the record itself is untouched by the cost file
    before = (item.path / cache.COST_FILE).read_text()
    fetch_or_compute(item)  # a hit computes nothing and rewrites nothing
    assert (item.path / cache.COST_FILE).read_text() == before
    assert cache.read_cost(tmp_path / "nothing-here") is None  # results stored before costs were measured
    assert not [p for p in item.path.iterdir() if p.name.startswith(".cost-")]  # no temporary file left
