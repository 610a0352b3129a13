"""Where a stored result came from, the torch-free part: code, libraries, machine, when.

Every record and every study carries it (:mod:`ftcore.engine.provenance` adds what only torch can
say: threads, device, bf16 support), so a claim about a number can name the code and the machine
behind it whether the number is a run's or a study's.
"""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

LIBRARIES = ("torch", "transformers", "datasets", "numpy", "pandas", "pyarrow", "peft", "accelerate", "lightning")


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


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def code_and_machine(started_at: dt.datetime | None = None) -> dict:
    """The provenance every stored result shares: ftcore's version and commit, library versions,
    the platform and CPU, and when the computation started (default: now)."""
    from .. import __version__

    return {"ftcore_version": __version__, "git_commit": git_commit(), "libraries": library_versions(),
            "platform": platform.platform(), "cpu_name": cpu_name(), "started_at": stamp(started_at or now())}


__all__ = ["LIBRARIES", "code_and_machine", "cpu_name", "git_commit", "library_versions", "now", "stamp"]
