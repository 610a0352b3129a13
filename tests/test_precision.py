"""``precision="auto"`` (issue 22): bf16 autocast only where the hardware has it natively and it
measures faster, fp32 everywhere else; the precision used is what the run id and the record hold; no
tracked config pins bf16 outside the figures about precision and the benchmark."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ftcore import RunConfig, run_id
from ftcore.engine import precision
from ftcore.engine.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine whose native bf16 and micro-benchmark the test decides (its own choice cache)."""
    monkeypatch.setenv("FTCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FTCORE_AUTO_PRECISION", raising=False)
    monkeypatch.setattr(precision, "_MEMO", {})
    state = {"native": True, "gflops": (100.0, 250.0), "measured": 0}

    def measure(device="cpu", seconds=0.2):
        state["measured"] += 1
        return state["gflops"]
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": state["native"])
    monkeypatch.setattr(precision, "measure", measure)
    return state


def test_auto_is_fp32_without_native_bf16_and_measures_nothing(machine):
    machine["native"] = False
    choice = precision.auto_choice("cpu")
    assert choice.precision == "fp32" and not choice.native_bf16
    assert machine["measured"] == 0  # the slow path is never timed: it always loses
    assert RunConfig().precision == "auto"
    assert RunConfig().identity_dict()["precision"] == "fp32"


@pytest.mark.parametrize("gflops, expected", [((100.0, 250.0), "bf16"), ((100.0, 110.0), "fp32"),
                                              ((100.0, 20.0), "fp32")])
def test_auto_takes_bf16_only_when_native_and_clearly_faster(machine, gflops, expected):
    machine["gflops"] = gflops
    choice = precision.auto_choice("cpu")
    assert choice.precision == expected
    assert choice.bf16_speedup == pytest.approx(gflops[1] / gflops[0])
    assert RunConfig().identity_dict()["precision"] == expected


def test_the_choice_is_measured_once_per_machine_then_read_from_the_cache(machine, monkeypatch):
    assert precision.auto_choice("cpu").precision == "bf16"
    assert machine["measured"] == 1
    stored = json.loads((Path(os.environ["FTCORE_CACHE_DIR"]) / "precision.json").read_text())
    assert [v["precision"] for v in stored.values()] == ["bf16"]
    monkeypatch.setattr(precision, "_MEMO", {})  # a new process: reads the file, measures nothing
    machine["gflops"] = (100.0, 10.0)
    assert precision.auto_choice("cpu").precision == "bf16"
    assert machine["measured"] == 1


def test_the_environment_can_force_the_choice(machine, monkeypatch):
    monkeypatch.setenv("FTCORE_AUTO_PRECISION", "fp32")
    assert precision.auto_choice("cpu").precision == "fp32" and machine["measured"] == 0
    monkeypatch.setenv("FTCORE_AUTO_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="FTCORE_AUTO_PRECISION='fp16'.*fp32 or bf16"):
        precision.auto_choice("cpu")


def test_two_machines_that_resolve_differently_make_two_runs(machine, tiny, monkeypatch):
    auto = tiny.replace(precision="auto")
    assert run_id(auto) == run_id(tiny.replace(precision="bf16"))
    monkeypatch.setattr(precision, "_MEMO", {})
    monkeypatch.setenv("FTCORE_AUTO_PRECISION", "fp32")
    assert run_id(auto) == run_id(tiny.replace(precision="fp32")) != run_id(tiny.replace(precision="bf16"))


def test_a_run_records_the_precision_it_used_and_why(tiny, monkeypatch):
    from ftcore import train
    monkeypatch.setenv("FTCORE_AUTO_PRECISION", "fp32")
    rec = train(tiny.replace(precision="auto", max_steps=2))
    assert rec.config["precision"] == "fp32"  # what was used, never "auto"
    assert rec.run_id == run_id(tiny.replace(precision="fp32", max_steps=2))
    ev = rec.events
    assert "auto -> fp32" in " ".join(ev.loc[ev["kind"] == "precision_auto", "detail"])
    assert "native_bf16" in rec.provenance and "cpu_flags" in rec.provenance


def test_pinning_bf16_without_native_support_says_how_much_slower(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    monkeypatch.setattr(precision, "measure", lambda device="cpu", seconds=0.2: (120.0, 4.0))
    monkeypatch.setattr(precision, "_WARNED", set())
    with pytest.warns(UserWarning, match=r"about 30x slower here than fp32.*use --precision fp32 or auto"):
        precision.warn_if_slow(RunConfig(precision="bf16"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.warn_if_slow(RunConfig(precision="bf16"))  # once per process
        precision.warn_if_slow(RunConfig(precision="fp32"))


def test_cli_run_with_bf16_on_a_cpu_without_it_trains_after_one_line(monkeypatch, toy_task, tmp_path, capsys):
    from ftcore.cli import main
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    monkeypatch.setattr(precision, "measure", lambda device="cpu", seconds=0.2: (120.0, 6.0))
    monkeypatch.setattr(precision, "_WARNED", set())
    rc = main(["run", "--model", "tiny-bert", "--task", toy_task, "--train-size", "32", "--max-steps", "2",
               "--test-size", "32", "--eval-size", "32", "--threads", "1", "--max-length", "16",
               "--progress", "false", "--precision", "bf16", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 0
    lines = [x for x in err.splitlines() if "slower here than fp32" in x]
    assert len(lines) == 1 and lines[0].startswith("ftcore: warning:") and "20x" in lines[0]


def test_onednn_isa_cap_simulates_a_cpu_without_native_bf16():
    """The documented way to measure the slow path on a CPU that has bf16 (README, benchmark)."""
    code = "from ftcore.engine.precision import native_bf16; print(native_bf16())"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------------- what the project pins
# Tracked files allowed to pin bf16, and why. Everything else trains in fp32 or auto.
BF16_ALLOWED = {
    "chapter/pilot.py": "the earlier protocol's pilot, kept as recorded (its records' ids)",
    "ftcore/pretraining/mlm.py": "the recorded pretraining recipes (same)",
    "chapter/figures/problems.py": "stability-fixes' bf16 arm: a figure about precision as a fix",
    "bench/bench_engine.py": "the benchmark's bf16 pair",
    "bench/profile_step.py": "profiles the benchmark's pairs",
    "tests/test_engine.py": "a test of the bf16 autocast path itself (tiny model)",
    "tests/test_continual.py": "a test of the bf16 autocast path itself (tiny model)",
    "tests/test_gpu.py": "CUDA only",
    "tests/test_precision.py": "this file",
    "tests/test_memory_figures.py": "metadata of a drawn figure, no training",
}
PIN = re.compile(r"""precision\s*=\s*["']bf16["']|["']precision["']\s*:\s*["']bf16["']|precision:\s*bf16""")


def test_no_tracked_config_pins_bf16_outside_the_precision_figures_and_the_benchmark():
    files = subprocess.run(["git", "-c", "core.quotePath=false", "ls-files", "-z", "*.py", "*.json", "*.yaml", "*.yml", "*.ipynb", "Makefile"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    pinned = {f for f in files if f and not f.startswith(("runs/", "tests/fixtures/", "figures/", "docs/"))
              and PIN.search((ROOT / f).read_text(encoding="utf-8", errors="replace"))}
    assert PIN.search('x.replace(precision="bf16")') and PIN.search("{'precision': 'bf16'}")
    assert "bench/bench_engine.py" in pinned  # the scan sees what it must allow
    assert pinned <= set(BF16_ALLOWED), f"bf16 pinned outside the allowed places: {sorted(pinned - set(BF16_ALLOWED))}"


def _trained_configs(fid, spec, S):
    """The config each job of figure ``fid`` at scale ``S`` trains with; a study of the tiny GPT
    (job kind "study") has no precision setting, being fp32 throughout, which is checked here."""
    from chapter.parallel import jobs_of
    for job in jobs_of(spec, S):
        if job.kind == "study":
            assert "precision" not in json.dumps(job.spec.params()), (fid, job.spec)
            continue
        yield job.spec[0] if isinstance(job.spec, tuple) else getattr(job.spec, "base", job.spec)


def test_quick_figures_train_in_fp32_except_their_precision_arms():
    from chapter import specs  # noqa: F401 (registers the figures)
    from chapter.registry import REGISTRY
    from chapter.scale import QUICK
    assert QUICK.base.precision == "fp32"
    bf16 = []
    for fid, spec in REGISTRY.items():
        for cfg in _trained_configs(fid, spec, QUICK):
            assert cfg.precision in ("fp32", "bf16"), (fid, cfg)  # never auto: fixtures are shared
            if cfg.precision == "bf16":
                bf16.append(fid)
    assert set(bf16) <= {"stability-fixes"}, bf16


def test_live_runs_use_auto():
    from lab.env import live_config
    assert live_config().precision == "auto"


def test_the_reference_regime_is_fp32():
    """The book's figures train in fp32, which every CPU runs fast (the protocol regeneration, issue
    24): the base run and every run and study of every figure, except the arms about precision."""
    from chapter import specs  # noqa: F401 (registers the figures)
    from chapter.registry import REGISTRY
    from chapter.scale import FULL
    assert FULL.base.precision == "fp32"
    bf16 = set()
    for fid, spec in REGISTRY.items():
        assert spec.reviewed, fid  # every figure is built on the reviewed protocol's scale
        for cfg in _trained_configs(fid, spec, FULL):
            if getattr(cfg, "precision", "fp32") != "fp32":
                bf16.add(fid)
    assert bf16 <= {"stability-fixes"}, bf16


def test_live_runs_share_the_cores_with_parallel_kernels(monkeypatch):
    from lab import env
    monkeypatch.setattr(env.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert env.fair_threads() == 2
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")  # nbval under pytest -n 2: a kernel each
    assert env.fair_threads() == 1
    monkeypatch.setattr(env.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert env.fair_threads() == 2 and env.fair_threads(cap=8) == 8
