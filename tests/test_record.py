"""Records: save/load round-trips, corruption is detected, the cache reuses or recomputes."""
import json
import os
import warnings

import pandas as pd
import pytest

from ftcore import RecordError, RunRecord, run, train
from ftcore.records.record import TABLES
from ftcore.engine.runs import record_path
from ftcore.records.cache import StaleResultWarning


@pytest.fixture(scope="module")
def record(toy_task):
    from ftcore import RunConfig
    cfg = RunConfig(model="tiny-bert", task=toy_task, train_size=None, epochs=1, batch_size=32, lr=1e-3,
                    eval_size=None, max_length=16, progress=False, threads=1, eval_at_start=True)
    return train(cfg)


def test_round_trip(record, tmp_path):
    record.save(tmp_path / "r")
    back = RunRecord.load(tmp_path / "r")
    assert back.run_id == record.run_id and back.status == record.status
    assert back.config == record.config and back.summary == json.loads(json.dumps(record.summary))
    for name in TABLES:
        pd.testing.assert_frame_equal(back.tables[name], record.tables[name], check_dtype=True)
        assert list(back.tables[name].columns) == list(TABLES[name])
    assert back.provenance["threads"] == 1 and back.provenance["data_fingerprint"]


def test_eval_at_start_is_step_zero(record):
    assert record.evals["step"].min() == 0


def test_corrupt_and_foreign_records_are_rejected(record, tmp_path):
    p = record.save(tmp_path / "r")
    (p / "steps.parquet").write_bytes(b"garbage")
    with pytest.raises(RecordError, match="checksum"):
        RunRecord.load(p)
    record.save(p)
    meta = json.loads((p / "meta.json").read_text())
    meta["schema_version"] = 99
    (p / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RecordError, match="schema version 99"):
        RunRecord.load(p)
    (p / "meta.json").write_text("{not json")
    with pytest.raises(RecordError, match="corrupt"):
        RunRecord.load(p)
    with pytest.raises(RecordError, match="not a run record"):
        RunRecord.load(tmp_path / "nowhere")


def test_save_is_atomic_and_replaces(record, tmp_path):
    p = record.save(tmp_path / "r")
    record.save(p)  # overwrite in place
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r"]  # no temporary folders left


def test_cache_hit_skips_training_and_corrupt_is_recomputed(tiny, tmp_path, monkeypatch):
    cfg = tiny.replace(epochs=1)
    first = run(cfg, runs_dir=tmp_path)
    assert record_path(cfg, tmp_path).exists()

    import ftcore.engine.runs as run_mod
    calls = []
    real_train = run_mod.train
    monkeypatch.setattr(run_mod, "train", lambda c: calls.append(c) or real_train(c))
    again = run_mod.run(cfg.replace(threads=2, progress=False), runs_dir=tmp_path)
    assert calls == [] and again.steps["loss"].tolist() == first.steps["loss"].tolist()

    (record_path(cfg, tmp_path) / "evals.parquet").write_bytes(b"\x00")
    with pytest.warns(StaleResultWarning, match="checksum"):
        fresh = run_mod.run(cfg, runs_dir=tmp_path)
    assert len(calls) == 1 and fresh.steps["loss"].tolist() == first.steps["loss"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunRecord.load(record_path(cfg, tmp_path))  # the recomputed record is valid again
    run_mod.run(cfg, runs_dir=tmp_path, force=True)
    assert len(calls) == 2


@pytest.mark.parametrize("edit", ["test_accuracy", "status", "summary", "steps"])
def test_an_edited_meta_json_is_corruption_and_is_recomputed(tiny, tmp_path, monkeypatch, capsys, edit):
    import ftcore.engine.runs as run_mod
    from ftcore.cli import main
    cfg = tiny.replace(epochs=1)
    first = run(cfg, runs_dir=tmp_path)
    path = record_path(cfg, tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    if edit == "test_accuracy":
        meta["summary"]["test_accuracy"] = 0.999
    elif edit == "status":
        meta["status"] = "bogus"
    elif edit == "summary":
        meta["summary"] = "oops"
    else:
        meta["summary"]["steps"] += 1
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RecordError, match="corrupt or edited"):
        RunRecord.load(path)
    assert main(["show", str(path)]) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt or edited" in err
    calls = []
    real_train = run_mod.train
    monkeypatch.setattr(run_mod, "train", lambda c: calls.append(c) or real_train(c))
    with pytest.warns(StaleResultWarning, match="corrupt or edited"):
        fresh = run_mod.run(cfg, runs_dir=tmp_path)
    assert len(calls) == 1 and fresh.summary["test_accuracy"] == first.summary["test_accuracy"]
    assert RunRecord.load(path).status == "completed"


def test_status_must_agree_with_the_events(record, tmp_path):
    p = record.save(tmp_path / "r")
    meta = json.loads((p / "meta.json").read_text())
    meta["status"] = meta["summary"]["status"] = "diverged"  # a completed run has no diverged event
    (p / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RecordError, match="events, which say 'completed'"):
        RunRecord.load(p)


def test_replacing_a_record_leaves_a_record_at_the_path_throughout(record, tmp_path, monkeypatch):
    import ftcore.records.record as rmod
    p = record.save(tmp_path / "r")
    seen = []
    monkeypatch.setattr(rmod, "_save_hook", lambda stage: seen.append((stage, RunRecord.load(p).run_id)))
    record.save(p)
    assert [s for s, _ in seen] == ["tables", "meta", "swapped"] and {r for _, r in seen} == {record.run_id}
    # without the atomic exchange: the old record is renamed aside, and a crash puts it back
    seen.clear()
    monkeypatch.setattr(rmod, "_exchange", lambda a, b: False)

    def crash(stage):
        seen.append(stage)
        if stage == "old_aside":
            assert not p.exists()
            raise KeyboardInterrupt
    monkeypatch.setattr(rmod, "_save_hook", crash)
    with pytest.raises(KeyboardInterrupt):
        record.save(p)
    assert seen == ["tables", "meta", "old_aside"] and RunRecord.load(p).run_id == record.run_id
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r"]


def test_leftovers_of_killed_saves_are_restored_or_removed(record, tmp_path):
    from ftcore.records.record import clean_leftovers
    p = record.save(tmp_path / "r")
    p.rename(tmp_path / ".r.old-1234abcd")  # killed between the two renames
    dead = tmp_path / ".r.tmp-999999999-0000aaaa"  # its writer (no such pid) is gone
    dead.mkdir()
    alive = tmp_path / f".q.tmp-{os.getpid()}-0000bbbb"  # a save in progress here: kept
    alive.mkdir()
    assert clean_leftovers(p, dry_run=True) and not p.exists()
    assert clean_leftovers(p) and RunRecord.load(p).run_id == record.run_id
    assert sorted(x.name for x in tmp_path.iterdir()) == [alive.name, "r"]
    os.utime(alive, (0, 0))  # older than STALE_TMP_S: a leftover whatever its pid
    (tmp_path / ".r.old-5678abcd").mkdir()  # its record is in place: the save had finished
    assert not clean_leftovers(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r"]
