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
