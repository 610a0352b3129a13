"""Where a record's numbers came from: code, libraries, machine, data and model fingerprints.

The torch-free part (code, libraries, platform, time) is :mod:`ftcore.records.provenance`, shared
with the studies; this adds what torch says about the machine (threads, device, bf16 support) and
what the run read (model and data fingerprints).
"""
from __future__ import annotations

import torch

from . import precision
from ..records.provenance import (LIBRARIES, code_and_machine, cpu_name, git_commit,  # noqa: F401 (re-exported)
                                  library_versions)


def machine(device: torch.device) -> dict:
    """What torch says about where numbers are computed: threads, device, bf16 support."""
    return {
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_flags": precision.cpu_flags(),  # what decides fp32 vs bf16 speed here
        "native_bf16": precision.native_bf16(device),
    }


def collect(device: torch.device, *, model_fingerprint: str, data_fingerprint: str,
            task_source: str, model_path: str | None, started_at=None) -> dict:
    """A run's provenance; ``started_at`` (a datetime, default now): when its training started."""
    return {
        **code_and_machine(started_at),
        **machine(device),
        "model_fingerprint": model_fingerprint,
        "model_path": model_path,
        "data_fingerprint": data_fingerprint,
        "data_source": task_source,
    }
