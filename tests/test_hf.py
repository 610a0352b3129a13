"""The HF Trainer adapter writes a record with exactly ftcore's schema."""
from ftcore import RunConfig, train
from ftcore.engine.data import prepare_data
from ftcore.engine.hf import RecordingCallback
from ftcore.engine.models import load_model
from ftcore.records.record import TABLES, RunRecord


def test_trainer_adapter_record_matches_schema(toy_task, tmp_path):
    from transformers import Trainer, TrainingArguments

    cfg = RunConfig(model="tiny-bert", task=toy_task, train_size=None, max_length=16, progress=False)
    data = prepare_data(cfg)
    model = load_model("tiny-bert", 2, seed=0)
    ds = [{"input_ids": i, "labels": l} for i, l in zip(data.train["input_ids"], data.train["label"])]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, max_steps=6,
                             logging_steps=1, learning_rate=1e-3, report_to=[], save_strategy="no",
                             use_cpu=True, disable_tqdm=True, max_grad_norm=1.0)
    cb = RecordingCallback(task="toy")
    Trainer(model=model, args=args, train_dataset=ds, data_collator=data.collator, callbacks=[cb]).train()
    rec = cb.record
    ours = train(cfg.replace(max_steps=6))
    for name in TABLES:
        assert list(rec.tables[name].columns) == list(ours.tables[name].columns)
        assert dict(rec.tables[name].dtypes) == dict(ours.tables[name].dtypes), name
    assert rec.steps["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert rec.steps["loss"].notna().all()
    assert set(rec.grad_norms["group"]) == {"embeddings", "layer.0", "layer.1", "pooler", "head"}
    assert (rec.grad_norms.groupby("step").size() == 5).all()
    # Pre-clipping norms: their total can exceed max_grad_norm (clipping happens after the hooks).
    totals = rec.grad_norms.groupby("step")["norm"].apply(lambda s: float((s ** 2).sum() ** 0.5))
    assert (totals > 0).all()
    assert rec.lrs.groupby("step").size().nunique() == 1
    rec.save(tmp_path / "hf")
    assert RunRecord.load(tmp_path / "hf").steps.equals(rec.steps)


def _recipe(toy_task, **kw) -> RunConfig:
    return RunConfig(model="tiny-bert", task=toy_task, train_size=None, max_length=16, progress=False, epochs=2,
                     lr=1e-3, **kw)


def test_train_hf_full_recipe(toy_task):
    """Evaluation during training, layer-wise param groups, early stopping with the best weights
    restored, label smoothing and per-class test metrics, all recorded."""
    import pytest

    from ftcore.engine.hf import hf_run_id, train_hf
    from ftcore.engine.runs import run_id
    from ftcore.records.queries import confusion_matrix, per_class_table

    cfg = _recipe(toy_task, lr_strategy="layerwise", layer_decay=0.5, label_smoothing=0.1,
                  early_stopping_patience=1, early_stopping_metric="accuracy", eval_every=2)
    rec = train_hf(cfg)
    assert rec.provenance["trainer"].startswith("transformers.Trainer")
    assert rec.run_id == hf_run_id(cfg) != run_id(cfg)
    val = rec.evals[rec.evals.split == "validation"]
    assert sorted(set(val.step)) == list(range(2, rec.summary["steps"] + 1, 2))  # every 2 updates
    assert {"accuracy", "macro_f1", "loss", "max_class_frac"} <= set(val.metric)
    assert not val.metric.str.contains("runtime|per_second").any()
    # the layer-wise groups reach the optimizer: each layer down has half the LR of the one above
    last = rec.lrs[rec.lrs.step == rec.lrs.step.max()].drop_duplicates("layer").set_index("layer")["lr"]
    assert last["layer.1"] / last["layer.0"] == pytest.approx(2.0)
    assert last["head"] / last["embeddings"] == pytest.approx(8.0)
    # a tiny random model does not improve: patience 1 stops it after its second evaluation
    assert rec.status == "early_stopped" and rec.summary["steps"] < rec.summary["total_steps_planned"]
    assert {"early_stop"} <= set(rec.events.kind)
    table = per_class_table(rec.evals, "test", rec.summary["label_names"])
    assert list(table["class"]) == ["neg", "pos"] and table["support"].sum() == rec.summary["eval_examples"]["test"]
    assert confusion_matrix(rec.evals, "test").to_numpy().sum() == rec.summary["eval_examples"]["test"]
    test_acc = rec.evals[(rec.evals.split == "test") & (rec.evals.metric == "accuracy")].value
    assert rec.summary["test_accuracy"] == pytest.approx(float(test_acc.iloc[-1]))
    # label smoothing reaches the loss: the same first batch gives another training loss without it
    plain = train_hf(cfg.replace(label_smoothing=0.0, early_stopping_patience=None, max_steps=1))
    smooth = train_hf(cfg.replace(early_stopping_patience=None, max_steps=1))
    assert smooth.steps["loss"].iloc[0] != pytest.approx(plain.steps["loss"].iloc[0], abs=1e-6)


def test_train_hf_refuses_what_trainer_cannot_do(toy_task):
    import pytest

    from ftcore.engine.config import ConfigError
    from ftcore.engine.hf import train_hf

    with pytest.raises(ConfigError, match="schedule='step'.*HF Trainer path"):
        train_hf(_recipe(toy_task, schedule="step"))


def test_run_hf_is_cached(toy_task, tmp_path):
    from ftcore.engine.hf import run_hf

    cfg = _recipe(toy_task, max_steps=3)
    first = run_hf(cfg, runs_dir=tmp_path)
    again = run_hf(cfg, runs_dir=tmp_path)  # loaded, not retrained
    assert again.summary["wall_s"] == first.summary["wall_s"]
    assert (tmp_path / first.run_id / "meta.json").exists()
