"""Monitoring a Hugging Face ``Trainer`` run (seed 004): the same data and model as an ftcore run,
trained by ``transformers.Trainer`` with ``ftcore.engine.hf.RecordingCallback``, so the result is a
RunRecord that viz and the run doctor read like any other.

The Trainer evaluates on the validation subset a few times during training (the record's
validation curve) and once on the test subset at the end (appended to the record as ``test``
rows), and logs sparsely: a handful of lines instead of its per-step notebook table."""
from __future__ import annotations

import math
import tempfile

import numpy as np

from ftcore import RunConfig
from ftcore.engine.data import prepare_data
from ftcore.engine.hf import RecordingCallback
from ftcore.engine.models import load_model
from ftcore.engine.pooling import apply_pooling

from .strings import tr


def _metrics(logits: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """ftcore's evaluation metrics (``ftcore.engine.trainer.evaluate``) from predictions."""
    pred = logits[:, :k].argmax(-1)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    n = conf.sum()
    tp = np.diag(conf).astype(float)
    prec, rec = tp / np.maximum(conf.sum(0), 1), tp / np.maximum(conf.sum(1), 1)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    return {"accuracy": float(tp.sum() / n), "macro_f1": float(f1.mean()),
            "max_class_frac": float(conf.sum(0).max() / n), "majority_frac": float(conf.sum(1).max() / n)}


def train_with_hf_trainer(cfg: RunConfig, *, log=print, progress=None, n_logs: int = 6, n_evals: int = 4):
    """Train ``cfg``'s model and data with HF Trainer (AdamW, linear schedule, warmup ratio and
    clipping from ``cfg``) and return the recorded RunRecord, with validation evaluations during
    training and a test evaluation at the end.

    ``log``: called with about ``n_logs`` progress lines and one line per evaluation (``print`` by
    default; a widget passes its own). ``progress``: an ``ipywidgets.IntProgress`` moved every step.
    The Trainer's own per-step table and log printing are off."""
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    data = prepare_data(cfg)
    k = data.num_labels
    model = apply_pooling(load_model(cfg.model, k, seed=cfg.seed), cfg.pooling)
    as_rows = lambda part: [{"input_ids": i, "labels": y} for i, y in zip(part["input_ids"], part["label"])]  # noqa: E731
    ds = as_rows(data.train)
    val = as_rows(data.evals["validation"]) if "validation" in data.evals else None
    test = as_rows(data.evals["test"]) if "test" in data.evals else None
    total = math.ceil(len(ds) / cfg.batch_size) * math.ceil(cfg.epochs)
    every_eval = max(1, math.ceil(total / n_evals))
    every_log = max(1, math.ceil(total / n_logs))

    class SparseLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            step = state.global_step
            if progress is not None:
                progress.max, progress.value = total, step
            if logs and "loss" in logs and (step % every_log == 0 or step == total):
                log(tr("hf_log", step=step, total=total, loss=float(logs["loss"])))

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if metrics and "eval_accuracy" in metrics:
                log(tr("hf_eval", step=state.global_step, loss=metrics.get("eval_loss", float("nan")),
                       acc=metrics["eval_accuracy"]))

    def compute_metrics(p):
        return _metrics(np.asarray(p.predictions), np.asarray(p.label_ids), k)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=cfg.batch_size,
                                 per_device_eval_batch_size=64,
                                 num_train_epochs=cfg.epochs, learning_rate=cfg.lr, weight_decay=cfg.weight_decay,
                                 warmup_steps=round(cfg.warmup_ratio * total), lr_scheduler_type="linear",
                                 max_grad_norm=cfg.clip_grad_norm or 0.0, logging_steps=1, report_to=[],
                                 eval_strategy="steps" if val else "no", eval_steps=every_eval,
                                 save_strategy="no", use_cpu=True, seed=cfg.seed, bf16=cfg.precision == "bf16",
                                 disable_tqdm=True)
        cb = RecordingCallback(task=cfg.task)
        trainer = Trainer(model=model, args=args, train_dataset=ds, eval_dataset=val, data_collator=data.collator,
                          compute_metrics=compute_metrics, callbacks=[cb, SparseLog()])
        for noisy in (PrinterCallback, ProgressCallback):  # one printed line per step otherwise
            trainer.remove_callback(noisy)
        trainer.train()
        rec = cb.record
        if test:
            out = trainer.predict(test, metric_key_prefix="test")
            m = {"loss": float(out.metrics.get("test_loss", float("nan"))),
                 **_metrics(np.asarray(out.predictions), np.asarray(out.label_ids), k)}
            rec = _with_test(rec, m, cfg.task)
    return rec


def _with_test(rec, metrics: dict[str, float], task: str):
    """The record with the test evaluation added as ``evals`` rows at its last step."""
    from ftcore.records.record import RunRecord, table_from_rows
    step = int(rec.summary.get("steps") or (rec.steps["step"].max() if len(rec.steps) else 0))
    rows = [tuple(r) for r in rec.evals.itertuples(index=False)]
    rows += [(step, task, "test", name, float(v)) for name, v in metrics.items()]
    tables = dict(rec.tables)
    tables["evals"] = table_from_rows("evals", rows)
    summary = {**rec.summary, "test_accuracy": metrics["accuracy"]}
    return RunRecord(rec.run_id, rec.config, rec.provenance, rec.status, summary, tables)


__all__ = ["train_with_hf_trainer"]
