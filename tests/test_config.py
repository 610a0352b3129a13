"""Bad configuration values fail at construction with a message naming field, value and range."""
import dataclasses
import json

import pytest

from ftcore import ConfigError, RunConfig, load_config


@pytest.mark.parametrize("field, value, words", [
    ("lr", -1e-5, "RunConfig.lr=-1e-05"),
    ("lr", float("nan"), "RunConfig.lr=nan"),
    ("batch_size", 0, "batch_size=0"),
    ("freeze", "sideways", "'none', 'bottom'"),
    ("schedule", "zigzag", "'cosine'"),
    ("warmup", "quadratic", "'sqrt'"),
    ("lr_strategy", "random", "'layerwise'"),
    ("layer_decay", 1.5, "layer_decay=1.5"),
    ("label_noise", 1.0, "label_noise=1.0"),
    ("dropout", 1.0, "dropout=1.0"),
    ("augment", ("shout",), "'synonym'"),
    ("eval_splits", ("dev",), "'validation'"),
    ("precision", "fp8", "'bf16'"),
    ("train_size", 0, "train_size=0"),
    ("epochs", True, "epochs=True"),
    ("grad_accum", 2.5, "an integer"),
])
def test_bad_values_name_the_field(field, value, words):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{field: value})
    assert f"RunConfig.{field}=" in str(err.value)
    assert words in str(err.value)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="freeze_layers"):
        RunConfig(freeze="bottom")
    with pytest.raises(ConfigError, match="frozen_groups"):
        RunConfig(freeze="list")
    with pytest.raises(ConfigError, match="validation"):
        RunConfig(schedule="plateau", eval_splits=("train",))


def test_replace_is_validated_and_repr_shows_changes():
    cfg = RunConfig().replace(lr=1e-4, freeze="head_only")
    assert repr(cfg) == "RunConfig(lr=0.0001, freeze='head_only')"
    with pytest.raises(ConfigError):
        dataclasses.replace(cfg, lr=0)


def test_identity_ignores_execution_fields():
    a, b = RunConfig(threads=1, progress=False), RunConfig(threads=4)
    assert a.identity_dict() == b.identity_dict()
    assert a.identity_dict() != RunConfig(seed=1).identity_dict()


def test_load_config_json_and_yaml(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"lr": 1e-4, "augment": ["swap"]}))
    assert load_config(str(tmp_path / "c.json")).augment == ("swap",)
    (tmp_path / "c.yaml").write_text("task: bbc-topic\nfreeze: gradual\n")
    assert load_config(str(tmp_path / "c.yaml")).freeze == "gradual"
    (tmp_path / "bad.json").write_text(json.dumps({"learning_rate": 1e-4}))
    with pytest.raises(ConfigError, match="unknown config field.*learning_rate"):
        load_config(str(tmp_path / "bad.json"))


def test_every_field_is_documented_with_its_allowed_values():
    from ftcore.engine.config import CHOICES, ITEM_CHOICES, RANGES, allowed, describe
    names = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(RANGES) | set(CHOICES) | set(ITEM_CHOICES) <= names
    for f in dataclasses.fields(RunConfig):
        assert len(f.metadata.get("doc", "")) > 10, f.name
        assert allowed(f.name) and describe(f.name).startswith(f.metadata["doc"])
        if "None" in str(f.type):
            assert "none" in f.metadata, f"{f.name}: say what None means"


def test_error_messages_repeat_the_allowed_values():
    from ftcore.engine.config import allowed
    for field, value in [("clip_grad_norm", 0), ("eval_size", 0), ("seed", -1), ("divergence_factor", 1e9)]:
        with pytest.raises(ConfigError) as err:
            RunConfig(**{field: value})
        assert str(err.value).endswith(allowed(field))
