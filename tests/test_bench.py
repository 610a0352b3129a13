"""The benchmark's pure functions (bench/bench_engine.py): timing windows, ratios, batch-order check,
FLOP count, argument handling. No training here: speed targets live in the benchmark itself."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_engine.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_engine"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_timed_window_starts_at_the_end_of_the_last_warmup_step(bench):
    times = [1.0, 2.0, 2.5, 3.0, 3.5]  # ends of steps 1..5
    w = bench.timed_window(times, warmup=2, steps=3)
    assert w["timed_s"] == pytest.approx(1.5)
    assert w["steps_per_s"] == pytest.approx(2.0)
    assert w["step_s"] == [0.5, 0.5, 0.5]
    with pytest.raises(RuntimeError, match="only 5 steps ran"):
        bench.timed_window(times, warmup=3, steps=3)


def test_run_timing_counts_setup_and_warmup_in_the_whole_run(bench):
    t = bench.run_timing([1.0, 2.0, 2.5, 3.0, 3.5], start=0.0, setup_s=1.5, warmup=2, steps=3)
    assert t["whole_s"] == pytest.approx(5.0)  # 1.5 s features + 3.5 s of steps
    assert t["whole_steps_per_s"] == pytest.approx(1.0)
    assert t["warmup_s"] == pytest.approx(2.0) and t["setup_s"] == 1.5


def test_same_batches_ignores_token_counts_only_where_a_side_has_none(bench):
    a = [(16, 40, 500, 7), (4, 12, 30, 9)]
    assert bench.same_batches(a, list(a))
    assert bench.same_batches(a, [(16, None, None, 7), (4, None, None, 9)])  # pooled features
    assert not bench.same_batches(a, [(16, 40, 501, 7), (4, 12, 30, 9)])
    assert not bench.same_batches(a, [(16, 40, 500, 8), (4, 12, 30, 9)])  # other labels
    assert not bench.same_batches(a, a[:1])


def test_ratios_are_paired_by_repeat_and_the_order_rotates(bench):
    ft = [{"v": 2.0}, {"v": 4.0}, {"v": 3.0}]
    hf = [{"v": 1.0}, {"v": 4.0}, {"v": 6.0}]
    assert bench.paired_ratios(ft, hf, "v") == [2.0, 1.0, 0.5]
    assert bench.rotated(("a", "b", "c"), 0) == ("a", "b", "c")
    assert bench.rotated(("a", "b", "c"), 4) == ("b", "c", "a")
    runs = [{"step_s": [1.0, 3.0]}, {"step_s": [2.0, 2.0]}]
    assert bench.best_step_times(runs) == [1.0, 2.0]


def _run(sps, whole, setup=0.0, warmup_s=1.0, batches=((16, 40, 500, 1),)):
    return {"steps_per_s": sps, "whole_steps_per_s": whole, "whole_s": 10 / whole, "setup_s": setup,
            "warmup_s": warmup_s, "step_s": [1 / sps] * 3, "batches": list(batches), "other_cpu_pct": 0.0,
            "threads": 2, "optimizer": "AdamW(fused)", "loss_first": 0.7, "loss_last": 0.4}


def test_summarize_pair_applies_the_target_to_the_right_ratio(bench):
    pair = bench.PAIRS["head_only"]
    res = {"ftcore": [_run(100.0, 20.0, setup=0.5) for _ in range(3)],
           "hf": [_run(10.0, 10.0) for _ in range(3)]}
    s = bench.summarize_pair(pair, res, warmup=1, steps=3)
    assert s["ratio"] == pytest.approx(10.0) and s["whole_ratio"] == pytest.approx(2.0)
    assert s["target_on"] == "whole" and not s["pass"]  # 2x whole run < 10x, whatever the steps say
    assert s["same_batches_same_order"]
    # one-time cost: setup + warm-up time beyond the warm-up's steady-state cost
    assert s["one_time_s_median"]["ftcore"] == pytest.approx(0.5 + 1.0 - 0.01)
    s = bench.summarize_pair(bench.PAIRS["bottom4"], res, warmup=1, steps=3)
    assert s["target_on"] == "steady" and s["pass"]


def test_batch_flops_counts_dense_and_attention_work(bench):
    fm = {"per_token": 10, "per_example": 3, "layers": 2, "hidden": 4}
    assert bench.batch_flops(2, 5, fm) == 6 * (10 * 2 * 5 + 3 * 2) + 12 * 2 * 4 * 25 * 2


def test_parse_args_pairs_and_quick(bench):
    a = bench.parse_args(["--quick"])
    assert a.pairs == bench.default_pairs() and a.repeats == 1
    # every pair where bf16 is native; no bf16 pair where it is not (fp32 is the headline there)
    assert bench.default_pairs(native=True) == list(bench.PAIRS)
    assert bench.default_pairs(native=False) == [p for p in bench.PAIRS if p != "bf16"]
    assert bench.parse_args([]).repeats >= 3  # the ratios are medians of >= 3 repeats by default
    assert bench.parse_args(["--pairs", "bf16, head_only"]).pairs == ["bf16", "head_only"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--pairs", "fp16"])


def test_pair_configs_are_valid_and_like_for_like(bench):
    args = bench.parse_args(["--quick"])
    for name, pair in bench.PAIRS.items():
        cfg = bench.pair_config(pair, args)
        assert cfg.precision == ("bf16" if name == "bf16" else "fp32")  # never "auto": a pair means one thing
        train_size, warmup, steps = pair.sizes(quick=True)
        assert cfg.max_steps == warmup + steps and cfg.train_size == train_size
        assert cfg.eval_splits == () and not cfg.test_at_end
    head = bench.pair_config(bench.PAIRS["head_only"], bench.parse_args([]))
    assert (head.freeze, head.frozen_dropout, head.pooling) == ("head_only", False, "mean")
    assert head.max_steps >= 300  # long enough for a head to converge
    assert bench.PAIRS["bf16"].hf == {"bf16": True} and bench.PAIRS["compile"].hf == {"torch_compile": True}
    assert not math.isnan(bench.PAIRS["bottom4"].target)


@pytest.fixture()
def regeneration(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("regeneration", BENCH.parent / "regeneration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(mod, "RUNS", runs)
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "regeneration.jsonl")
    return mod


def test_regeneration_times_a_batch_its_cpu_and_the_records_it_added(regeneration, tmp_path):
    import json
    old = regeneration.RUNS / "old"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"summary": {"cpu_s": 99.0}}))
    script = ("import json, pathlib, sys; sum(i * i for i in range(2_000_000)); "
              f"d = pathlib.Path({str(regeneration.RUNS)!r}) / 'new'; d.mkdir(); "
              "(d / 'meta.json').write_text(json.dumps({'summary': {'cpu_s': 1.5}}))")
    row = regeneration.run([sys.executable, "-c", script], "tiny")
    assert row["rc"] == 0 and row["runs"] == 1 and row["runs_cpu_s"] == 1.5  # only the record it added
    assert row["cpu_s"] > 0.05 and row["wall_s"] >= row["cpu_s"] * 0.5  # the child's CPU time is counted
    assert row["cores"] >= 1 and row["cpu_model"]
    assert json.loads(regeneration.RESULTS.read_text())["label"] == "tiny"
    table = regeneration.summary()
    assert len(table) == 3 and "| tiny |" in table[2]
