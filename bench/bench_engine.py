"""Speed benchmark of the ftcore training loop (CPU), in one process.

What it measures
----------------
1. **ftcore vs Hugging Face ``Trainer``** on an identical fine-tune: the default model
   (all-MiniLM-L6-v2), rt-sentiment, 2,000 training examples, batch 16, max_length 64, AdamW
   (lr 5e-5, weight decay 0.01), linear schedule with the same warmup steps, fp32, gradient
   clipping at 1.0, dynamic padding and length-grouped batches, no evaluation, no checkpoints,
   no logging. Both sides get the same tokenized data *and the same batches in the same order*.
   Steps/s over a timed window of optimizer steps after a few untimed warm-up steps; the median
   of interleaved repeats. Target: ftcore steps/s / HF steps/s >= 1.0.
2. **Recording overhead**: ftcore with full recording (``Recorder(grad_norms=True)``,
   ``DivergenceDetector``, ``MemoryMonitor``) vs no recording. Target: <= 5% more time per step.
3. **Achieved GFLOP/s** of a full fine-tuning step (forward + backward + AdamW) in the recorded
   ftcore run, against the measured fp32 matmul peak of this machine (bf16 peak for reference).

How to run
----------
    make bench                                   # = python bench/bench_engine.py
    python bench/bench_engine.py --threads 2 --steps 60 --warmup-steps 5 --repeats 2  # the defaults
    python bench/bench_engine.py --quick   # smoke test of the script (about 2 minutes)

A readable table goes to stdout, progress to stderr, and everything (per-repeat numbers, machine
info, versions, date) to ``--out`` (default ``bench/results.json``). With the defaults a full run
trains 3 x repeats = 6 short runs of 65 steps each: several minutes on 2 cores. Other processes on
the machine add noise; the repeats are interleaved so that noise hits every side alike.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import torch

# `python bench/bench_engine.py` puts bench/ (not the repo root) on sys.path: make ftcore importable
# from a checkout without PYTHONPATH or an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcore.engine.callbacks import DivergenceDetector, MemoryMonitor, Recorder
from ftcore.engine.config import RunConfig
from ftcore.engine.data import prepare_data
from ftcore.engine.models import load_model, resolve_model
from ftcore.engine.runs import build
from ftcore.engine.schedules import num_warmup_steps
from ftcore.engine.trainer import Callback

OVERHEAD_TARGET_PCT = 5.0
RATIO_TARGET = 1.0
PEAK_N = 2048  # fp32 GEMM size for the peak: 2*2048^3 = 17 GFLOP, ~0.2 s a call on 2 cores, so
# per-call overhead is nil and the blocked kernel runs at its steady-state rate (the bound).
BUSY_WARN_PCT = 5.0  # other processes' CPU share above which a run's timing is suspect
VARIANTS = ("ftcore", "hf", "ftcore_norec")  # rotated each repeat, see run_all
LABELS = {"ftcore": "ftcore, recording on", "ftcore_norec": "ftcore, recording off",
          "hf": "HF Trainer"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- configuration
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: steps 8, warmup 2, repeats 1, train_size 200")
    p.add_argument("--threads", type=int, default=2, help="torch threads, same for every run (2)")
    p.add_argument("--steps", type=int, default=None, help="timed optimizer steps per run (60)")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="untimed steps before the timed window (5); not the LR warmup")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats of each side (2)")
    p.add_argument("--out", default="bench/results.json", help="JSON results file")
    args = p.parse_args(argv)
    quick = dict(steps=8, warmup_steps=2, repeats=1, train_size=200)
    full = dict(steps=60, warmup_steps=5, repeats=2, train_size=2000)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    # The timed window starts at the end of the last warm-up step, so at least one is needed.
    if args.warmup_steps < 1 or args.steps < 1 or args.repeats < 1 or args.threads < 1:
        p.error("--steps, --warmup-steps, --repeats and --threads must be >= 1")
    return args


def bench_config(args) -> RunConfig:
    """The ftcore config both sides follow. LR warmup steps are fixed explicitly (ftcore's default
    6% of the run) so the HF scheduler gets exactly the same number."""
    total = args.warmup_steps + args.steps
    base = RunConfig(train_size=args.train_size, max_steps=total, eval_splits=(), test_at_end=False,
                     progress=False, threads=args.threads, device="cpu")
    return base.replace(warmup_steps=num_warmup_steps(base, total))


# ----------------------------------------------------------------------------- instrumentation
class StepTimer(Callback):
    """ftcore side: a time stamp at the end of every optimizer step."""

    order = 99  # after the Recorder (90): its per-step work belongs inside the measured step

    def __init__(self):
        self.times: list[float] = []
        self.threads = None

    def on_step_end(self, trainer) -> None:
        self.times.append(time.perf_counter())
        self.threads = torch.get_num_threads()


def hf_step_timer():
    """HF side: the same time stamps from ``TrainerCallback.on_step_end`` (after the optimizer
    step, the schedule step and zero_grad, as in ftcore)."""
    from transformers import TrainerCallback

    class HFStepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.threads = None

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())
            self.threads = torch.get_num_threads()

    return HFStepTimer()


class BatchLog:
    """Wraps the collator to note each batch's (examples, padded length, real tokens, checksum).

    Used for the FLOP count and to check that both loops saw the same batches in the same order.
    The checksum of 16x<=64 token ids costs microseconds and is paid equally by both sides."""

    def __init__(self, collate):
        self.collate = collate
        self.batches: list[tuple[int, int, int, int]] = []

    def __call__(self, features):
        batch = self.collate(features)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self.batches.append((ids.shape[0], ids.shape[1], int(mask.sum()),
                             zlib.crc32(ids.numpy().tobytes()) ^ zlib.crc32(batch["labels"].numpy().tobytes())))
        return batch


def timed_window(times: list[float], warmup: int, steps: int) -> dict:
    """Steps/s between the end of step ``warmup`` and the end of step ``warmup + steps``."""
    if len(times) < warmup + steps:
        raise RuntimeError(f"only {len(times)} steps ran, expected {warmup + steps}")
    window = times[warmup - 1:warmup + steps]
    seconds = window[-1] - window[0]
    return {"steps_per_s": steps / seconds, "timed_s": seconds,
            "step_s": [round(b - a, 5) for a, b in zip(window, window[1:])]}


# ----------------------------------------------------------------------------- the two loops
class TimedCallback(Callback):
    """Delegates every ``on_<event>`` to ``inner`` and adds up the wall time spent there: a direct
    measurement of what recording costs, free of the run-to-run noise of whole-run timings."""

    def __init__(self, inner: Callback):
        self.inner, self.order, self.seconds = inner, inner.order, 0.0

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)
        handler = getattr(self.inner, name)

        def timed(trainer):
            t0 = time.perf_counter()
            handler(trainer)
            self.seconds += time.perf_counter() - t0
        return timed


def run_ftcore(cfg: RunConfig, args, *, recording: bool) -> dict:
    """One ftcore run through ``runs.build``: a fresh, seeded model from the pretrained weights."""
    timer = StepTimer()
    callbacks: list[Callback] = [timer]
    recorders: list[TimedCallback] = []
    if recording:  # the default callbacks minus evaluation and the progress bar
        recorders = [TimedCallback(c) for c in
                     (Recorder(grad_norms=True), DivergenceDetector(cfg.divergence_factor), MemoryMonitor())]
        callbacks += recorders
    trainer = build(cfg, callbacks=callbacks)
    batches = BatchLog(trainer.data.collator)
    trainer.data.collator = batches  # train_loader reads data.collator at fit time
    # Gradient norms are computed once per step and shared by the recorder and clipping: time them
    # so the part of the recorder's time that clipping would spend anyway can be taken out.
    norm_s = [0.0]
    owner, compute_norms = trainer, trainer.grad_norms

    def timed_norms():
        fresh = owner._norms is None
        t0 = time.perf_counter()
        out = compute_norms()
        if fresh:
            norm_s[0] += time.perf_counter() - t0
        return out

    trainer.grad_norms = timed_norms
    trainer.fit()
    result = timed_window(timer.times, args.warmup_steps, args.steps)
    result.update(threads=timer.threads, batches=batches.batches[:cfg.max_steps],
                  optimizer=_describe_optimizer(trainer.optimizer), flop_model=flop_model(trainer.model),
                  steps_run=trainer.step, train_s=timer.times[-1] - trainer.t0,
                  recording_callbacks_s=sum(r.seconds for r in recorders), grad_norm_s=norm_s[0])
    del trainer
    gc.collect()
    return result


def run_hf(cfg: RunConfig, args, workdir: str) -> dict:
    """The same fine-tune with ``transformers.Trainer`` (its default AdamW implementation)."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class SameOrderTrainer(Trainer):
        """HF's own length-grouped sampler, seeded as ftcore seeds its first epoch.

        Stock Trainer builds ``LengthGroupedSampler`` without a generator (it draws from the global
        RNG), so its batch order differs from ftcore's. Giving it ftcore's epoch-0 generator makes
        the two loops see identical batches in identical order (checked via the batch log), as
        long as the run stays within one epoch; the sampler class, batch size and lengths are
        exactly what ``train_sampling_strategy="group_by_length"`` uses."""

        def _get_train_sampler(self, train_dataset=None):
            ds = train_dataset if train_dataset is not None else self.train_dataset
            g = torch.Generator().manual_seed(cfg.seed * 1009 + 0)  # ftcore.Trainer.fit, epoch 0
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=[len(x["input_ids"]) for x in ds], generator=g)

    torch.set_num_threads(cfg.threads)
    data = prepare_data(cfg)
    model = load_model(cfg.model, data.num_labels, seed=cfg.seed)
    train_ds = [{"input_ids": i, "labels": l} for i, l in zip(data.train["input_ids"], data.train["label"])]
    batches = BatchLog(data.collator)
    targs = TrainingArguments(
        output_dir=workdir, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, weight_decay=cfg.weight_decay,
        adam_beta1=cfg.betas[0], adam_beta2=cfg.betas[1], adam_epsilon=1e-8,
        lr_scheduler_type="linear", warmup_steps=cfg.warmup_steps, max_grad_norm=cfg.clip_grad_norm,
        train_sampling_strategy="group_by_length",  # v5 name of v4's group_by_length=True
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[],
        disable_tqdm=True, use_cpu=True, seed=cfg.seed,
        dataloader_pin_memory=False,  # no accelerator: pinning would be wasted work (and warns)
    )
    timer = hf_step_timer()
    trainer = SameOrderTrainer(model=model, args=targs, train_dataset=train_ds, data_collator=batches,
                               callbacks=[timer])
    # disable_tqdm=True swaps the bar for PrinterCallback, which prints the end-of-training
    # metrics dict to stdout (after the timed window); removed to keep the table clean.
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    result = timed_window(timer.times, args.warmup_steps, args.steps)
    result.update(threads=timer.threads, batches=batches.batches[:cfg.max_steps],
                  optimizer=_describe_optimizer(trainer.optimizer)
                  + f" (optim={getattr(targs.optim, 'value', targs.optim)})")
    del trainer, model
    gc.collect()
    return result


def _describe_optimizer(opt) -> str:
    inner = getattr(opt, "optimizer", opt)  # accelerate wraps HF's optimizer
    flags = [k for k in ("fused", "foreach") if inner.defaults.get(k)]
    return f"{type(inner).__name__}({', '.join(flags) or 'for-loop'})"


class CpuWatch:
    """Share of the machine's CPU time that went to *other* processes (and to the hypervisor,
    "steal") while a run was going: with 2 cores and 2 torch threads, any of it slows the run a
    lot (oversubscribed OpenMP threads wait on each other), so it is recorded next to each
    result to say which numbers to trust."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        try:
            f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return time.perf_counter(), float("nan"), 0.0
        user, nice, system, _idle, _iowait, irq, softirq, steal = f
        own = os.times()
        return (time.perf_counter(), (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
                own.user + own.system)

    def other_pct(self) -> float:
        (w0, b0, o0), (w1, b1, o1) = self.start, self._sample()
        return max(0.0, (b1 - b0) - (o1 - o0)) / ((w1 - w0) * (os.cpu_count() or 1)) * 100


def run_all(cfg: RunConfig, args) -> dict[str, list[dict]]:
    """Every variant ``repeats`` times, interleaved. The order rotates each repeat so no variant is
    always first (the first run in a process can pay one-time costs) or always next to the same
    neighbour."""
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="ftcore-bench-hf-") as workdir:
        for r in range(args.repeats):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for variant in order:
                log(f"repeat {r + 1}/{args.repeats}: {LABELS[variant]} "
                    f"({args.warmup_steps} + {args.steps} steps)")
                watch = CpuWatch()
                if variant == "hf":
                    res = run_hf(cfg, args, workdir)
                else:
                    res = run_ftcore(cfg, args, recording=(variant == "ftcore"))
                res["other_cpu_pct"] = watch.other_pct()
                log(f"  {res['steps_per_s']:.3f} steps/s over {res['timed_s']:.1f} s, "
                    f"{res['threads']} threads, {res['optimizer']}; "
                    f"other processes used {res['other_cpu_pct']:.0f}% of the CPUs")
                results[variant].append(res)
    return results


# ----------------------------------------------------------------------------- FLOPs and peak
def flop_model(model) -> dict:
    """What the FLOP formula needs from a BERT-style classifier.

    ``per_token``: parameters applied to every token (the encoder layers' weight matrices).
    ``per_example``: parameters applied once per example (pooler and head, on [CLS] only).
    Embedding tables are lookups, not matmuls, so they are excluded (as in
    ``Trainer.floating_point_ops``, which uses ``num_parameters(exclude_embeddings=True)`` but
    counts the pooler/head per token and has no attention term; transformers 5 has no
    per-model ``floating_point_ops``, so the count is done here)."""
    base = model.base_model
    per_token = sum(p.numel() for p in base.encoder.parameters())
    per_example = sum(p.numel() for p in model.parameters()) - per_token - sum(
        p.numel() for p in base.embeddings.parameters())
    return {"per_token": per_token, "per_example": per_example,
            "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size}


def batch_flops(b: int, seq: int, fm: dict) -> float:
    """Training FLOPs (forward + backward) of one padded batch of ``b`` x ``seq`` tokens.

    Dense layers: 2 FLOPs per weight per token forward, 4 backward (grads of inputs and of
    weights) -> 6 x params x tokens. Attention scores QK^T and the weighted sum AV are 2 x seq^2 x
    hidden FLOPs each per layer and example forward -> 4 x seq^2 x hidden, x3 with backward ->
    12 x layers x hidden x seq^2 x b. Padded positions count: the model computes on them.
    Element-wise work (softmax, GELU, LayerNorm, AdamW) is not counted, by the usual convention,
    so this is a lower bound of the work done."""
    dense = 6 * (fm["per_token"] * b * seq + fm["per_example"] * b)
    attention = 12 * fm["layers"] * fm["hidden"] * seq * seq * b
    return float(dense + attention)


@torch.no_grad()
def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float) -> float:
    """Sustained GFLOP/s of ``torch.mm`` (m x k @ k x n) repeated for about ``seconds``."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    torch.mm(a, b, out=out)  # first call: library initialisation and kernel selection
    reps, t0 = 0, time.perf_counter()
    while True:
        torch.mm(a, b, out=out)
        reps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return 2.0 * m * k * n * reps / elapsed / 1e9


def measure_peaks(args, tokens_per_batch: int, hidden: int, ffn: int) -> dict:
    seconds = 0.5 if args.quick else 2.0
    torch.set_num_threads(args.threads)
    return {
        "fp32_mm_gflops": matmul_gflops(PEAK_N, PEAK_N, PEAK_N, torch.float32, seconds),
        "bf16_mm_gflops": matmul_gflops(PEAK_N, PEAK_N, PEAK_N, torch.bfloat16, seconds),
        # The model's largest GEMM at a typical batch (tokens x hidden @ hidden x FFN): what the
        # step's own matmuls can reach at best; smaller than the 2048 cube, so usually slower.
        "fp32_ffn_shape_gflops": matmul_gflops(tokens_per_batch, hidden, ffn, torch.float32, seconds),
        "ffn_shape": [tokens_per_batch, hidden, ffn],
        "n": PEAK_N, "seconds": seconds,
    }


# ----------------------------------------------------------------------------- summary
def best_step_times(runs: list[dict]) -> list[float]:
    """For each timed step, the fastest time over the repeats. Every repeat trains on the same
    batches, so step k is the same work each time, and load from other processes only ever adds
    time: the per-step minimum is a noise-robust companion to the median of whole runs."""
    return [min(ts) for ts in zip(*(r["step_s"] for r in runs))]


def summarize(results: dict, peaks_before: dict, peaks_after: dict, args) -> dict:
    med = {v: statistics.median(r["steps_per_s"] for r in rs) for v, rs in results.items()}
    on, off, hf = med["ftcore"], med["ftcore_norec"], med["hf"]
    same = results["ftcore"][0]["batches"] == results["hf"][0]["batches"]
    best = {v: sum(best_step_times(rs)) for v, rs in results.items()}
    # Throughput of the recorded ftcore run: FLOPs of the timed batches / timed wall time.
    fm = results["ftcore"][0]["flop_model"]
    lo, hi = args.warmup_steps, args.warmup_steps + args.steps  # batch k is step k+1 (grad_accum 1)
    timed = results["ftcore"][0]["batches"][lo:hi]
    flops = sum(batch_flops(b, seq, fm) for b, seq, _, _ in timed)
    achieved = statistics.median(flops / r["timed_s"] / 1e9 for r in results["ftcore"])
    peak = {k: max(peaks_before[k], peaks_after[k]) for k in
            ("fp32_mm_gflops", "bf16_mm_gflops", "fp32_ffn_shape_gflops")}  # noise only lowers a peak
    padded = sum(b * seq for b, seq, _, _ in timed)
    return {
        "steps_per_s_median": med,
        "ratio_ftcore_over_hf": on / hf, "ratio_target": RATIO_TARGET,
        "ratio_norecording_over_hf": off / hf,
        "recording_overhead_pct": (1 / on - 1 / off) / (1 / off) * 100,
        "ratio_ftcore_over_hf_best_steps": best["hf"] / best["ftcore"],
        "recording_overhead_pct_best_steps": (best["ftcore"] - best["ftcore_norec"]) / best["ftcore_norec"] * 100,
        "overhead_target_pct": OVERHEAD_TARGET_PCT,
        # Direct: seconds inside the recording callbacks per step, less the gradient norms that
        # clipping (on in this setup) computes anyway, over the mean step time of the same runs.
        "recording_direct_ms_per_step": statistics.median(
            (r["recording_callbacks_s"] - (r["grad_norm_s"] if cfg_clip(args) else 0)) / r["steps_run"] * 1e3
            for r in results["ftcore"]),
        "recording_direct_pct": statistics.median(
            (r["recording_callbacks_s"] - (r["grad_norm_s"] if cfg_clip(args) else 0)) / r["train_s"] * 100
            for r in results["ftcore"]),
        "grad_norm_ms_per_step": statistics.median(r["grad_norm_s"] / r["steps_run"] * 1e3
                                                    for r in results["ftcore"]),
        "same_batches_same_order": same,
        "max_other_cpu_pct": max(r["other_cpu_pct"] for rs in results.values() for r in rs),
        "threads_seen": sorted({r["threads"] for rs in results.values() for r in rs}),
        "gflop_per_step_mean": flops / len(timed) / 1e9,
        "achieved_gflops": achieved,
        "peak_gflops": peak,
        "pct_of_fp32_peak": achieved / peak["fp32_mm_gflops"] * 100,
        "pct_of_ffn_shape_peak": achieved / peak["fp32_ffn_shape_gflops"] * 100,
        "mean_padded_tokens_per_batch": padded / len(timed),
        "real_token_fraction": sum(t for _, _, t, _ in timed) / padded,
        "ffn_shape": peaks_before["ffn_shape"],
    }


def cfg_clip(args) -> bool:
    """Whether the benchmarked config clips gradients (it does: clip_grad_norm=1.0, the default)."""
    return RunConfig().clip_grad_norm is not None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(s: dict, results: dict, info: dict, cfg: RunConfig, args) -> None:
    med = s["steps_per_s_median"]
    runs = {v: ", ".join(f"{r['steps_per_s']:.3f} ({r['other_cpu_pct']:.0f}%)" for r in rs)
            for v, rs in results.items()}
    busy = max(r["other_cpu_pct"] for rs in results.values() for r in rs)
    pk = s["peak_gflops"]
    lines = [
        "",
        f"ftcore engine benchmark  {info['date']}",
        f"{info['cpu_model']}, {args.threads} torch threads, torch {info['versions']['torch']}, "
        f"transformers {info['versions']['transformers']}",
        f"{args.warmup_steps} warm-up + {args.steps} timed steps, {args.repeats} repeat(s), "
        f"train_size {cfg.train_size}, batch {cfg.batch_size}, max_length {cfg.max_length}, "
        f"LR warmup {cfg.warmup_steps} steps",
        *(["--quick: a smoke test of the benchmark itself; its numbers mean little"] if args.quick else []),
        "",
        "1. ftcore vs HF Trainer             steps/s (median)   runs (CPU % used by other processes)",
    ]
    for v in ("ftcore", "ftcore_norec", "hf"):
        lines.append(f"   {LABELS[v]:<32}{med[v]:>8.3f}           {runs[v]}")
    lines += [
        f"   ratio ftcore / HF (recording on) {s['ratio_ftcore_over_hf']:>8.3f}   target >= {RATIO_TARGET:g}  "
        f"{verdict(s['ratio_ftcore_over_hf'] >= RATIO_TARGET)}",
        f"   ratio ftcore / HF (recording off){s['ratio_norecording_over_hf']:>8.3f}",
        f"   ratio from per-step minima       {s['ratio_ftcore_over_hf_best_steps']:>8.3f}   "
        "(recording on; noise-robust check)",
        f"   same batches, same order: {'yes' if s['same_batches_same_order'] else 'NO'};  "
        f"optimizers: ftcore {results['ftcore'][0]['optimizer']}, HF {results['hf'][0]['optimizer']}",
        "",
        f"2. recording overhead               {s['recording_overhead_pct']:>7.2f} %   target <= "
        f"{OVERHEAD_TARGET_PCT:g} %  {verdict(s['recording_overhead_pct'] <= OVERHEAD_TARGET_PCT)}",
        f"   from per-step minima             {s['recording_overhead_pct_best_steps']:>7.2f} %",
        f"   measured inside the callbacks    {s['recording_direct_pct']:>7.2f} %   "
        f"({s['recording_direct_ms_per_step']:.2f} ms/step; per-group gradient norms "
        f"{s['grad_norm_ms_per_step']:.2f} ms/step, shared with clipping)  "
        f"{verdict(s['recording_direct_pct'] <= OVERHEAD_TARGET_PCT)}",
        "",
        "3. throughput (ftcore, recording on)",
        f"   work per step (fwd+bwd, padded)  {s['gflop_per_step_mean']:>8.2f} GFLOP  "
        f"({s['mean_padded_tokens_per_batch']:.0f} tokens/batch, {s['real_token_fraction']:.0%} not padding)",
        f"   achieved                         {s['achieved_gflops']:>8.1f} GFLOP/s",
        f"   fp32 mm peak ({PEAK_N}^3)            {pk['fp32_mm_gflops']:>8.1f} GFLOP/s  -> "
        f"{s['pct_of_fp32_peak']:.1f} % of peak",
        f"   fp32 mm at FFN shape {'x'.join(map(str, s['ffn_shape'])):<12}"
        f"{pk['fp32_ffn_shape_gflops']:>8.1f} GFLOP/s  -> {s['pct_of_ffn_shape_peak']:.1f} %",
        f"   bf16 mm peak ({PEAK_N}^3, reference) {pk['bf16_mm_gflops']:>8.1f} GFLOP/s",
        "",
    ]
    if busy > BUSY_WARN_PCT:
        lines += [f"WARNING: other processes used up to {busy:.0f}% of the CPUs during a run; "
                  "with every core in use by torch, that distorts timings badly. Rerun on an idle machine.", ""]
    print("\n".join(lines), flush=True)


# ----------------------------------------------------------------------------- machine info
def machine_info(args) -> dict:
    import accelerate
    import numpy
    import transformers

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), [])
    except OSError:
        flags = []
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_simd": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
        "torch_threads": args.threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "accelerate": accelerate.__version__, "numpy": numpy.__version__},
        "torch_parallel_info": torch.__config__.parallel_info().splitlines()[:6],
    }


def quiet_libraries() -> None:
    """Silence output that is expected here and would bury the table."""
    from transformers.utils import logging as hf_logging

    # The "Loading weights" bar of from_pretrained, printed once per model built (6+ times).
    hf_logging.disable_progress_bar()


# ----------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    info = machine_info(args)
    cfg = bench_config(args)
    log(f"config: {cfg!r}; threads {args.threads}")
    if cfg.max_steps > -(-cfg.train_size // cfg.batch_size):
        warnings.warn("the run is longer than one epoch: from epoch 2 on, HF's batch order will "
                      "differ from ftcore's (only epoch 0 is aligned)", stacklevel=1)

    from transformers import AutoConfig

    log("matmul peaks (before training)")
    # The FFN-shape GEMM uses a typical batch's token count; known only after a run, so estimate
    # it from the data (mean length x batch, rounded up to a multiple of 64).
    data = prepare_data(cfg)
    mean_len = sum(map(len, data.train["input_ids"])) / len(data.train["input_ids"])
    tokens = int(-(-mean_len * cfg.batch_size // 64) * 64)
    model_cfg = AutoConfig.from_pretrained(resolve_model(cfg.model).path)
    peaks_before = measure_peaks(args, tokens, model_cfg.hidden_size, model_cfg.intermediate_size)

    results = run_all(cfg, args)

    log("matmul peaks (after training)")
    peaks_after = measure_peaks(args, tokens, model_cfg.hidden_size, model_cfg.intermediate_size)
    summary = summarize(results, peaks_before, peaks_after, args)
    print_table(summary, results, info, cfg, args)

    report = {
        "machine": info,
        "args": vars(args),
        "config": cfg.to_dict(),
        "summary": summary,
        "peaks_before": peaks_before,
        "peaks_after": peaks_after,
        "runs": {v: [{k: val for k, val in r.items() if k not in ("batches",)} for r in rs]
                 for v, rs in results.items()},
        "timed_batches": [list(b[:3]) for b in
                          results["ftcore"][0]["batches"][args.warmup_steps:cfg.max_steps]],
        "notes": {
            "batch_order": "identical batches in identical order on both sides (HF's LengthGroupedSampler "
                           "given ftcore's epoch-0 generator); checked: summary.same_batches_same_order",
            "timing": "steps/s between on_step_end of the last warm-up step and of the last timed step",
            "flops": "6 x encoder params x padded tokens + 6 x (pooler+head) x examples + "
                     "12 x layers x hidden x seq^2 x batch; element-wise ops not counted",
            "peaks": "best of before/after training (noise from other processes only lowers a peak)",
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
