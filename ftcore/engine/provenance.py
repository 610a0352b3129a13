"""Where a record's numbers came from: code, libraries, machine, data and model fingerprints."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

from . import precision

LIBRARIES = ("torch", "transformers", "datasets", "numpy", "pandas", "pyarrow", "peft", "accelerate")


def git_commit() -> str | None:
    """The project's commit (with ``-dirty`` when files differ from it), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "ftcore"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str | None]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect(device: torch.device, *, model_fingerprint: str, data_fingerprint: str,
            task_source: str, model_path: str | None) -> dict:
    from .. import __version__

    return {
        "ftcore_version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_flags": precision.cpu_flags(),  # what decides fp32 vs bf16 speed here
        "native_bf16": precision.native_bf16(device),
        "platform": platform.platform(),
        "model_fingerprint": model_fingerprint,
        "model_path": model_path,
        "data_fingerprint": data_fingerprint,
        "data_source": task_source,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
