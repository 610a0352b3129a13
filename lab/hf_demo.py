"""Monitoring a Hugging Face ``Trainer`` run (seed 004): the same data and model as an ftcore run,
trained by ``transformers.Trainer`` with ``ftcore.engine.hf.RecordingCallback``, so the result is a
RunRecord that viz and the run doctor read like any other."""
from __future__ import annotations

import math
import tempfile

from ftcore import RunConfig
from ftcore.engine.data import prepare_data
from ftcore.engine.hf import RecordingCallback
from ftcore.engine.models import load_model


def train_with_hf_trainer(cfg: RunConfig):
    """Train ``cfg``'s model and data with HF Trainer (AdamW, linear schedule, warmup ratio and
    clipping from ``cfg``) and return the recorded RunRecord."""
    from transformers import Trainer, TrainingArguments

    data = prepare_data(cfg)
    model = load_model(cfg.model, data.num_labels, seed=cfg.seed)
    ds = [{"input_ids": i, "labels": y} for i, y in zip(data.train["input_ids"], data.train["label"])]
    total = math.ceil(len(ds) / cfg.batch_size) * math.ceil(cfg.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=cfg.batch_size,
                                 num_train_epochs=cfg.epochs, learning_rate=cfg.lr, weight_decay=cfg.weight_decay,
                                 warmup_steps=round(cfg.warmup_ratio * total), lr_scheduler_type="linear",
                                 max_grad_norm=cfg.clip_grad_norm or 0.0, logging_steps=1, report_to=[],
                                 save_strategy="no", use_cpu=True, seed=cfg.seed, bf16=cfg.precision == "bf16",
                                 disable_tqdm=False)
        cb = RecordingCallback(task=cfg.task)
        Trainer(model=model, args=args, train_dataset=ds, data_collator=data.collator, callbacks=[cb]).train()
    return cb.record


__all__ = ["train_with_hf_trainer"]
