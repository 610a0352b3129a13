"""One record builder for every training loop (ftcore.engine.record_builder): the same provenance
keys, summary layout and adjustment events whichever loop trained; studies carry provenance too."""
import warnings

import pandas as pd
import pytest

from ftcore import train
from ftcore.config import TRAINING_LOOPS


def _short(tiny):
    return tiny.replace(max_steps=3, warmup_steps=10, eval_every=3)  # a warmup longer than the run


@pytest.fixture(scope="module")
def records(toy_task, tmp_path_factory):
    """The same short config trained by each loop, and a two-task sequence."""
    from ftcore import RunConfig
    from ftcore.analysis.continual import ContinualConfig, train_sequence
    from ftcore.engine.hf import train_hf
    from ftcore.engine.lightning import train_lightning

    tiny = RunConfig(model="tiny-bert", task=toy_task, train_size=None, batch_size=16, lr=3e-3, eval_size=None,
                     max_length=16, progress=False, threads=1, precision="fp32")
    cfg = _short(tiny)
    other = tmp_path_factory.mktemp("seq") / "other.csv"
    pd.read_csv(toy_task).assign(label=lambda d: d["label"].map({"pos": "x", "neg": "y"})).to_csv(other, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"ftcore": train(cfg), "hf": train_hf(cfg), "lightning": train_lightning(cfg),
                "sequence": train_sequence(ContinualConfig(base=tiny.replace(max_steps=2), tasks=(toy_task, str(other))))}


def test_every_loop_writes_the_same_provenance(records):
    keys = {name: set(rec.provenance) for name, rec in records.items()}
    assert len({frozenset(k) for k in keys.values()}) == 1, keys
    assert {"loop", "trainer", "grad_norms", "started_at", "git_commit", "model_fingerprint", "data_fingerprint",
            "threads", "device"} <= keys["ftcore"]
    for name, rec in records.items():
        loop = "ftcore" if name == "sequence" else name
        assert rec.provenance["loop"] == loop
        assert rec.provenance["trainer"] == TRAINING_LOOPS[loop].trainer
        assert rec.provenance["grad_norms"] == TRAINING_LOOPS[loop].grad_norms
    assert records["lightning"].provenance["libraries"]["lightning"]
    assert "," in records["sequence"].provenance["data_fingerprint"]  # both tasks' data


def test_every_loop_writes_one_summary_layout(records):
    single = {k: r for k, r in records.items() if k != "sequence"}
    first = ["status", "steps", "total_steps_planned", "steps_per_epoch", "warmup_steps", "epochs", "examples_seen",
             "train_examples", "eval_examples", "num_labels", "label_names", "total_params",
             "trainable_params_at_end", "trainable_pct_at_end", "wall_s"]
    for name, rec in single.items():
        keys = [k for k in rec.summary if k != "trainer"]
        assert keys[:len(first)] == first, name
        assert "test_accuracy" in rec.summary and rec.summary["status"] == rec.status
        assert rec.summary.get("trainer") == (name if TRAINING_LOOPS[name].marks_records else None)
        assert rec.summary["warmup_steps"] == 2 and rec.summary["total_steps_planned"] == 3
    assert records["ftcore"].run_id != records["hf"].run_id != records["lightning"].run_id
    seq = records["sequence"]
    assert list(seq.summary)[:2] == ["status", "method"] and "test_accuracy" not in seq.summary
    assert seq.run_id.startswith("seq-")


def test_every_loop_records_the_clamped_warmup(records):
    for name in ("ftcore", "hf", "lightning"):
        ev = records[name].events
        clamped = ev[ev.kind == "warmup_clamped"]
        assert len(clamped) == 1 and clamped.step.iloc[0] == 0, name
        assert clamped.detail.iloc[0].startswith("warmup of 10 steps asked for but the run has 3 steps"), name
        assert ev.step.is_monotonic_increasing


def test_studies_carry_provenance(tmp_path):
    from ftcore.records.studies import load_study, study

    table = pd.DataFrame({"x": [1, 2]})
    st = study("probe-x", {"a": 1}, lambda: ({"t": table}, {"note": "n"}), runs_dir=tmp_path)
    prov = load_study(st.path).meta["provenance"]
    assert {"ftcore_version", "git_commit", "libraries", "platform", "cpu_name", "started_at"} <= set(prov)
    assert load_study(st.path).meta["note"] == "n"
    # a computation's own provenance wins (a checkpoint's curves name its pretraining)
    st = study("probe-y", {"a": 1}, lambda: ({"t": table}, {"provenance": {"started_at": "then", "threads": 1}}),
               runs_dir=tmp_path)
    prov = load_study(st.path).meta["provenance"]
    assert prov["started_at"] == "then" and prov["threads"] == 1 and "git_commit" in prov


def test_hand_loops_set_their_threads_and_give_study_provenance(records):
    import torch

    from ftcore.engine.record_builder import hand_loop

    torch.set_num_threads(1)
    with hand_loop("causal-lm", threads=2) as prov:
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    assert prov["loop"] == "causal-lm" and prov["threads"] == 2
    # the code-and-machine keys of a run's provenance, without the run's model and data
    run_keys = set(records["ftcore"].provenance) - {"model_fingerprint", "model_path", "data_fingerprint",
                                                   "data_source", "trainer", "grad_norms"}
    assert set(prov) == run_keys
