"""Which arithmetic a run uses: ``precision="auto"`` picks what is fast on this machine.

bf16 autocast halves the bytes a matmul moves, and on CPUs with native bf16 instructions
(``avx512_bf16`` or AMX on x86, ``bf16`` on Arm) it is 2-3x faster than fp32. On the many CPUs without
them (most laptops, AVX2-only servers) PyTorch computes bf16 through a slow fallback, 20-150x *slower*
than fp32. So ``auto`` is bf16 only where the hardware has it natively *and* a short micro-benchmark
(a linear layer of the default model's FFN shape, forward and backward, about half a second) shows it
clearly faster; fp32 everywhere else. The choice is cached per machine, thread count and library
version (``~/.cache/ftcore/precision.json``; ``FTCORE_CACHE_DIR`` moves it), so a machine always
resolves the same way, and the resolved precision is what a run's id and record hold: two machines
that resolve differently make two different runs, never one record with the other's numbers.

``FTCORE_AUTO_PRECISION=fp32`` (or ``bf16``) overrides the choice of ``auto`` without measuring.
To see the slow path on a CPU that has native bf16, run with ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN then
uses no AVX-512 instruction, bf16 included (bf16 matmuls drop from ~400 to ~1 GFLOP/s on 2 cores).
"""
from __future__ import annotations

import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .config import RunConfig, register_precision_resolver

# bf16 must beat fp32 by this factor to be chosen: a near tie is not worth bf16's rounding, and the
# margin keeps a noisy measurement from flipping the choice between two runs of one machine.
MIN_SPEEDUP = 1.25
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "bf16")


@dataclass(frozen=True)
class Choice:
    """What ``precision="auto"`` resolved to here, and why."""

    precision: str  # "fp32" or "bf16"
    device: str  # "cpu" or "cuda"
    native_bf16: bool  # the hardware (and oneDNN / CUDA) computes bf16 natively
    fp32_gflops: float | None  # micro-benchmark, GFLOP/s (None: not measured)
    bf16_gflops: float | None
    reason: str

    @property
    def bf16_speedup(self) -> float | None:
        """bf16 autocast's speed as a multiple of fp32's (0.01 = 100x slower)."""
        if not self.fp32_gflops or not self.bf16_gflops:
            return None
        return self.bf16_gflops / self.fp32_gflops

    def summary(self) -> dict:
        return {**asdict(self), "bf16_speedup": self.bf16_speedup}


# ---------------------------------------------------------------------------- what the hardware has
def cpu_flags() -> list[str]:
    """The SIMD flags of this CPU that matter for fp32/bf16 speed (from /proc/cpuinfo; [] elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    have = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have.update(line.split(":", 1)[1].split())
            break
    return [f for f in CPU_FLAGS if f in have]


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively. On the CPU this asks oneDNN, which honours
    ``ONEDNN_MAX_CPU_ISA`` (so the slow path can be simulated on a CPU that has bf16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# ---------------------------------------------------------------------------- the micro-benchmark
def _time_linear(device: torch.device, bf16: bool, seconds: float, rows: int = 768, d: int = 384,
                 ff: int = 1536) -> float:
    """GFLOP/s of a linear layer's forward + backward, a batch of 16 x 48 tokens of the default model's
    FFN (384 -> 1536), under bf16 autocast or in fp32. At least one pass, however slow."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, d, generator=gen).to(device).requires_grad_(True)
    w = torch.randn(ff, d, generator=gen).to(device).requires_grad_(True)
    flops = 3 * 2 * rows * d * ff  # forward, and backward's two matmuls

    def once():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            y = torch.nn.functional.linear(x, w)
        y.float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    once()  # warm-up: kernels chosen, memory allocated
    n, t0 = 0, time.perf_counter()
    while True:
        once()
        n += 1
        if time.perf_counter() - t0 >= seconds:
            break
    return flops * n / (time.perf_counter() - t0) / 1e9


def measure(device: torch.device | str = "cpu", seconds: float = 0.2) -> tuple[float, float]:
    """(fp32, bf16-autocast) GFLOP/s on ``device`` with torch's current thread count."""
    device = torch.device(device)
    return _time_linear(device, False, seconds), _time_linear(device, True, seconds)


# ---------------------------------------------------------------------------- the choice, cached
def _cache_file() -> Path:
    root = os.environ.get("FTCORE_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ftcore"
    return Path(root) / "precision.json"


def _machine_key(device: torch.device) -> str:
    from ..records.provenance import cpu_name
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "") + "|" + os.environ.get("ATEN_CPU_CAPABILITY", "")
    return f"{device.type}|{name}|{platform.machine()}|torch {torch.__version__}|threads {torch.get_num_threads()}|{isa}"


_MEMO: dict[str, Choice] = {}


def auto_choice(device: torch.device | str = "cpu") -> Choice:
    """What ``precision="auto"`` means on ``device`` (measured once per machine key, then cached)."""
    device = torch.device(device)
    forced = os.environ.get("FTCORE_AUTO_PRECISION", "").strip().lower()
    if forced:
        if forced not in ("fp32", "bf16"):
            from .config import ConfigError
            raise ConfigError(f"FTCORE_AUTO_PRECISION={forced!r} is not allowed: expected fp32 or bf16 "
                              "(or unset it to let ftcore measure)")
        return Choice(forced, device.type, native_bf16(device), None, None, "set by FTCORE_AUTO_PRECISION")
    key = _machine_key(device)
    if key in _MEMO:
        return _MEMO[key]
    path = _cache_file()
    try:
        stored = json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        stored = None
    if stored:
        try:
            choice = Choice(**{k: stored[k] for k in Choice.__dataclass_fields__})
        except (KeyError, TypeError):
            choice = None
        if choice is not None:
            _MEMO[key] = choice
            return choice
    choice = _decide(device)
    _MEMO[key] = choice
    _store(path, key, choice)
    return choice


def _decide(device: torch.device) -> Choice:
    native = native_bf16(device)
    if not native:  # never measured: the slow path would take seconds to time, and it always loses
        return Choice("fp32", device.type, False, None, None,
                      f"no native bf16 on this {device.type} (oneDNN/CUDA report none)")
    fp32, bf16 = measure(device)
    if bf16 >= MIN_SPEEDUP * fp32:
        return Choice("bf16", device.type, True, round(fp32, 1), round(bf16, 1),
                      f"native bf16, {bf16 / fp32:.1f}x faster than fp32 in the micro-benchmark")
    return Choice("fp32", device.type, True, round(fp32, 1), round(bf16, 1),
                  f"native bf16 but only {bf16 / fp32:.2f}x fp32's speed (bf16 needs {MIN_SPEEDUP}x)")


def _store(path: Path, key: str, choice: Choice) -> None:
    """Add ``choice`` to the cache file (atomic: two processes measuring at once leave valid JSON)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        data[key] = asdict(choice)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: the choice is measured again next process, nothing is lost


def _device_of(cfg: RunConfig) -> torch.device:
    # device="cuda" without a GPU resolves as the CPU here: the preflight check refuses it in one line
    return torch.device("cuda" if cfg.device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")


def resolved_precision(cfg: RunConfig) -> str:
    """``cfg.precision`` with ``auto`` replaced by what it means on this machine."""
    if cfg.precision != "auto":
        return cfg.precision
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or before)  # the choice is per thread count: the run's own
    try:
        return auto_choice(_device_of(cfg)).precision
    finally:
        torch.set_num_threads(before)


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with a concrete precision: what is trained, recorded and hashed into the run id."""
    return cfg if cfg.precision != "auto" else cfg.replace(precision=resolved_precision(cfg))


_WARNED: set[str] = set()


def warn_if_slow(cfg: RunConfig) -> None:
    """One line (once per process) when ``cfg`` pins bf16 where it has no native support: it trains,
    but this says how much slower and what to use instead."""
    if cfg.precision == "bf16":
        warn_bf16_slow(_device_of(cfg))


def warn_bf16_slow(device: torch.device | str = "cpu") -> None:
    """The line of :func:`warn_if_slow` for any loop that pins bf16 on ``device``."""
    device = torch.device(device)
    if native_bf16(device) or device.type in _WARNED:
        return
    _WARNED.add(device.type)
    fp32, bf16 = measure(device, seconds=0.05)
    warnings.warn(f"precision bf16: this {device.type} has no native bf16, so bf16 autocast runs about "
                  f"{fp32 / max(bf16, 1e-9):.0f}x slower here than fp32 (measured {bf16:.1f} vs {fp32:.0f} "
                  "GFLOP/s); use --precision fp32 or auto (the default) unless you are measuring bf16 itself",
                  stacklevel=3)


register_precision_resolver(resolved_precision)

__all__ = ["Choice", "MIN_SPEEDUP", "auto_choice", "cpu_flags", "measure", "native_bf16", "resolve",
           "resolved_precision", "warn_bf16_slow", "warn_if_slow"]
