"""The registries of schedules, warmups, PEFT methods and training loops: an entry's flags drive the
config's validation and --help, the engine's dispatch and what another loop refuses."""
import contextlib
import subprocess
import sys

import pytest

from ftcore import RunConfig
from ftcore.config import CHOICES, PEFT_METHODS, SCHEDULES, TRAINING_LOOPS, WARMUPS, ConfigError, allowed, refusal
from ftcore.config.peft_kinds import PeftMethod
from ftcore.config.schedule_kinds import Schedule


@contextlib.contextmanager
def entry(registry, e):
    registry.add(e)
    try:
        yield e
    finally:
        registry.remove(e.name)


def test_config_choices_are_the_registries_read_live():
    assert CHOICES["schedule"] is SCHEDULES and CHOICES["warmup"] is WARMUPS and CHOICES["peft"] is PEFT_METHODS
    assert list(SCHEDULES)[:3] == ["constant", "linear", "cosine"] and "plateau" in SCHEDULES
    assert [1, 2] not in SCHEDULES  # an unhashable value (a YAML list) is refused, not a TypeError
    with entry(SCHEDULES, Schedule("halfway", "half the peak", lambda c, q, k, spe: 0.5)):
        assert "halfway" in allowed("schedule")
        assert RunConfig(schedule="halfway").schedule == "halfway"
    with pytest.raises(ConfigError, match="RunConfig.schedule='halfway'"):
        RunConfig(schedule="halfway")
    with pytest.raises(KeyError, match="unknown schedule 'nope'; known: constant, linear"):
        SCHEDULES["nope"]
    with pytest.raises(ValueError, match="registered twice"):
        SCHEDULES.add(SCHEDULES["linear"])


def test_schedule_flags_drive_validation():
    sweep = Schedule("sweep2", "a second LR finder", warms_up=False, sweep=True)
    val = Schedule("watch", "reacts to validation", lambda c, q, k, spe: 1.0, on_validation=True)
    ramp = Schedule("ramp", "its own ramp", warmups=("cosine",))
    with entry(SCHEDULES, sweep), entry(SCHEDULES, val), entry(SCHEDULES, ramp):
        with pytest.raises(ConfigError, match="below lr=0.001 for schedule='sweep2'"):
            RunConfig(schedule="sweep2", lr=1e-3, range_start_lr=1e-2)
        with pytest.raises(ConfigError, match='include "validation" when schedule="watch"'):
            RunConfig(schedule="watch", eval_splits=("test",))
        with pytest.raises(ConfigError, match='"cosine" for schedule="ramp"'):
            RunConfig(schedule="ramp", warmup="linear")
        RunConfig(schedule="ramp", warmup="cosine")
    assert SCHEDULES.where(warms_up=False) == ("cyclic", "range_test")


def test_schedule_entry_shapes_the_lr_the_engine_drives():
    from ftcore.engine.schedules import LRSchedule, num_warmup_steps, preview

    with entry(SCHEDULES, Schedule("halfway", "half the peak after warmup", lambda c, q, k, spe: 0.5)):
        cfg = RunConfig(schedule="halfway", warmup_steps=2, lr=1.0)
        lrs = preview(cfg, 6, 3)["all"]
        assert lrs == pytest.approx([0.5, 1.0, 0.5, 0.5, 0.5, 0.5])  # linear warmup, then the entry's shape
    # flags, not names: no warmup before a sweep, ReduceLROnPlateau on top of an on_validation kind
    assert num_warmup_steps(RunConfig(schedule="range_test", lr=1e-3, warmup_steps=5), 20) == 0
    import torch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert LRSchedule(opt, RunConfig(schedule="plateau"), 10, 5).plateau is not None


def test_peft_flags_drive_validation_and_dispatch(tiny):
    from ftcore.engine.export import not_mergeable
    from ftcore.engine.peft_methods import apply_peft
    from ftcore.engine.features import frozen_prefix

    with pytest.raises(ConfigError, match="lora_targets"):
        RunConfig(peft="lora_scratch", lora_targets=())
    method = PeftMethod("head_only_by_peft", "freezes all but the head", f"{__name__}:_freeze_all_but_head",
                        lora_targets=True, unmergeable="it is a test")
    with entry(PEFT_METHODS, method):
        with pytest.raises(ConfigError, match="lora_targets"):
            RunConfig(peft="head_only_by_peft", lora_targets=())
        with pytest.raises(ConfigError, match="PEFT decides what trains"):
            RunConfig(peft="head_only_by_peft", freeze="bottom", freeze_layers=1)
        cfg = tiny.replace(peft="head_only_by_peft", frozen_dropout=False)
        from ftcore.engine.models import load_model
        model = apply_peft(load_model("tiny-bert", 2, seed=0), cfg)
        assert getattr(model, "applied_by") == "head_only_by_peft"  # the entry's function ran
        assert frozen_prefix(cfg, model) is None  # a method that changes the model: no feature cache
        assert not_mergeable("head_only_by_peft").startswith(
            "RunConfig.peft='head_only_by_peft' cannot be saved as a plain transformers model: it is a test; "
            "use lora, bitfit, lora_scratch or none")
    assert not_mergeable("lora") is None and "extra attention inputs" in not_mergeable("prefix")


def _freeze_all_but_head(model, cfg, adapter_name):
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier"))
    model.applied_by = cfg.peft
    return model


def test_training_loops_refuse_by_flags():
    assert list(TRAINING_LOOPS) == ["ftcore", "hf", "lightning"]
    assert [loop.label for loop in TRAINING_LOOPS.values()] == ["ftcore", "HF Trainer", "Lightning"]
    assert refusal("ftcore", RunConfig(schedule="plateau", freeze="gradual")) is None
    assert refusal("hf", RunConfig()) is None
    msg = refusal("hf", RunConfig(schedule="step", warmup="cosine"))
    assert msg.startswith("RunConfig schedule='step' (Trainer: constant, linear, cosine), warmup='cosine'")
    assert msg.endswith("not supported by the HF Trainer path (ftcore.engine.hf); use `ftcore run` for it")
    assert "schedule='plateau'" in refusal("lightning", RunConfig(schedule="plateau"))
    # a new schedule with transformers' equivalent is accepted by the HF path; one moved by validation
    # loss is refused by Lightning, whatever its name
    with entry(SCHEDULES, Schedule("poly_hf", "polynomial", hf="polynomial")), \
            entry(SCHEDULES, Schedule("watch", "validation", on_validation=True)):
        assert refusal("hf", RunConfig(schedule="poly_hf")) is None
        assert "schedule='watch'" in refusal("lightning", RunConfig(schedule="watch"))


def test_each_loop_names_its_cache_entry(tiny, tmp_path):
    from ftcore.engine.runs import loop_run_id, run_id, stored_for

    kinds = {loop: stored_for(loop, tiny, tmp_path) for loop in TRAINING_LOOPS}
    assert {k: s.kind for k, s in kinds.items()} == {"ftcore": "run", "hf": "hf run", "lightning": "lightning run"}
    assert kinds["ftcore"].path.name == run_id(tiny)
    assert kinds["hf"].path.name == loop_run_id("hf", tiny) != kinds["lightning"].path.name


def test_config_and_records_import_without_torch():
    code = ("import sys; import ftcore.records.record, ftcore.config, ftcore.engine.config, ftcore.records.doctor; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "from ftcore.records.record import RunRecord; from ftcore.config import RunConfig; "
            "assert RunRecord.run_config.fget is not None and RunConfig(precision='fp32').identity_dict()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pretraining_registers_its_model_resolver():
    """The engine does not import pretraining: ``pretrained-here:`` names reach the resolver that
    ftcore.pretraining.mlm registers, in a fresh process too (without torch)."""
    code = ("import sys; from ftcore.engine.model_sources import resolve_model; "
            "src = resolve_model('pretrained-here:roberta-quick'); "
            "assert src.fingerprint.startswith('here-') and src.path.endswith(src.fingerprint[5:]), src; "
            "assert 'ftcore.pretraining.mlm' in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    from ftcore.engine import model_sources
    from ftcore.pretraining import mlm
    assert model_sources._RESOLVERS["pretrained-here:"] is mlm.resolve


def test_mlm_recipes_share_their_base_and_keep_their_fingerprints():
    from ftcore.pretraining.mlm import RECIPES, REVIEWS, REVIEWS_QUICK, fingerprint
    assert RECIPES["minilm-reviews-1e-04"].to_dict() == {**REVIEWS.to_dict(), "lr": 1e-4}
    assert RECIPES["minilm-reviews-quick-1e-05"].to_dict() == {**REVIEWS_QUICK.to_dict(), "lr": 1e-5}
    # the fingerprints that name the committed checkpoints (a recipe's to_dict() is hashed into them)
    assert {name: fingerprint(cfg) for name, cfg in RECIPES.items()} == {
        "roberta-small": "7c0618986f45bcca", "roberta-small-fp32": "5700fc8314141470", "roberta-quick": "a18653f3862ee271",
        "minilm-reviews-1e-05": "65b4a8cfc4ccaac4", "minilm-reviews-1e-04": "5c385b3c79a6285a",
        "minilm-reviews-quick-1e-05": "4539f51faf22ba6f", "minilm-reviews-quick-1e-04": "98bfc1d33ce5844a",
        "minilm-reviews-fp32-1e-05": "0abad7ded0c8cbe6", "minilm-reviews-fp32-1e-04": "67a7e732a22661ac"}
    assert RECIPES["minilm-reviews-fp32-1e-04"].to_dict() == {**REVIEWS.to_dict(), "lr": 1e-4, "precision": "fp32"}
