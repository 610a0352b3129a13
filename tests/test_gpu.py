"""``RunConfig(device="auto")``: CUDA when a GPU is present (with ``precision="bf16"``, autocast on
the GPU in bfloat16), the CPU otherwise. Nothing else depends on a GPU: the CUDA test is skipped
without one, and the CPU half runs everywhere."""
from __future__ import annotations

import math

import pytest
import torch

from ftcore.engine.runs import build, resolve_device, to_record, train

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here (a GPU test: it runs where torch sees one)")


def test_auto_is_the_cpu_without_cuda(monkeypatch, tiny):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    rec = train(tiny.replace(device="auto", precision="bf16", epochs=1))
    assert rec.provenance["device"] == "cpu" and rec.config["device"] == "auto"
    assert "peak_gpu_mb" not in rec.summary


def test_auto_picks_cuda_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@needs_cuda
def test_a_tiny_run_trains_on_cuda_in_bf16(tiny):
    cfg = tiny.replace(device="auto", precision="bf16", threads=None)
    trainer = build(cfg)
    assert trainer.device.type == "cuda"
    assert trainer.autocast.device == "cuda" and trainer.autocast.fast_dtype == torch.bfloat16
    from ftcore.engine import provenance
    from ftcore.engine.models import resolve_model
    from ftcore.engine.runs import run_id
    prov = provenance.collect(trainer.device, model_fingerprint=resolve_model(cfg.model).fingerprint,
                              data_fingerprint=trainer.data.task.fingerprint,
                              task_source=trainer.data.task.source, model_path=None)
    trainer.fit()
    assert next(trainer.model.parameters()).device.type == "cuda"
    rec = to_record(trainer, run_id(cfg), prov)
    assert rec.provenance["device"].startswith("cuda") and rec.provenance["device_name"]
    assert rec.summary["peak_gpu_mb"] > 0
    assert all(math.isfinite(x) for x in rec.steps["loss"])
    assert rec.status == "completed" and rec.summary["test_accuracy"] > 0.5  # the toy task is learnable
    # the same run through the public path records the same device
    assert train(cfg).provenance["device"].startswith("cuda")
