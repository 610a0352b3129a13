"""Speed benchmark of the ftcore training loop (CPU), in one process: ftcore vs HF ``Trainer``.

What it measures
----------------
Pairs of runs, like for like: the same model, data, hyper-parameters, *the same batches in the
same order* (checked), once with ftcore and once with ``transformers.Trainer``. Each pair reports
the ratio ftcore steps/s / Trainer steps/s as the median over interleaved repeats of the per-repeat
ratios (the two sides of a repeat run next to each other, so they see the same load).

``fp32``       full fine-tuning in fp32: the default model (all-MiniLM-L6-v2), rt-sentiment, 2,000
               training examples, batch 16, max_length 64, AdamW (lr 5e-5, weight decay 0.01),
               linear schedule, clipping at 1.0, dynamic padding and length-grouped batches, no
               evaluation, no checkpoints, no logging. Target ratio >= 1.0. Also ftcore with its
               recording off (recording overhead, target <= 5 %) and the achieved GFLOP/s.
``bf16``       the same with bf16 autocast: ``RunConfig(precision="bf16")`` vs
               ``TrainingArguments(bf16=True)``. Target >= 1.0.
``compile``    the same in fp32 with ``torch.compile`` (inductor, default mode, dynamic=None) on
               both sides: ftcore's model compiled in place after ``build`` (``model.compile()``),
               Trainer with ``torch_compile=True``. Target >= 1.0 on the steady-state ratio; the
               compile time (warm-up steps beyond their steady-state cost) and the speed-up over
               the uncompiled fp32 runs are reported, to say whether compiling pays here.
``head_only``  frozen encoder + head: ``RunConfig(freeze="head_only", frozen_dropout=False,
               pooling="mean")`` at the head LR 1e-3, 500 training examples, 400 steps (12.8
               epochs, long enough for the head's loss to flatten). ftcore computes the pooled
               vectors once (the frozen-feature cache) and trains the head on them; Trainer gets the
               same model with the same parameters frozen and runs the frozen encoder forward every
               step. Ratio of **whole runs**: ftcore's time counts the one-time feature computation
               plus every step; Trainer's counts every step. Target >= 10.
``bottom4``    embeddings + bottom 4 of 6 layers frozen (``freeze="bottom", freeze_layers=4,
               frozen_dropout=False``), 500 examples, 96 steps (3 epochs), Trainer with the same
               layers frozen. Target >= 1.5 on the steady-state ratio (arithmetic limit about 1.7:
               Trainer still runs the frozen layers forward); the whole-run ratio, features
               counted, is reported next to it.

Steady state: steps/s over a timed window of optimizer steps after a few untimed warm-up steps.
Whole run: from the start of training (ftcore: plus the feature computation inside ``build``) to
the end of the last step; model loading and tokenisation are outside both.

How to run
----------
    make bench                                   # = python bench/bench_engine.py --threads 2
    python bench/bench_engine.py --pairs fp32,bf16 --repeats 5
    python bench/bench_engine.py --quick   # smoke test: every pair at tiny size (about 2 minutes)

A table goes to stdout, progress to stderr, and everything (per-repeat numbers, machine, versions,
date) to ``--out`` (default ``bench/results.json``). With the defaults a full run takes about 13-15
minutes on 2 idle cores (estimated from 0.27 s per fp32 step; the compile time is the uncertain part). Other processes on the machine add noise (each run records the CPU share
they took); the repeats are interleaved so that noise hits every side alike.
"""
from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path

import torch

# `python bench/bench_engine.py` puts bench/ (not the repo root) on sys.path: make ftcore importable
# from a checkout without PYTHONPATH or an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcore.engine import features, precision
from ftcore.engine.callbacks import DivergenceDetector, MemoryMonitor, Recorder
from ftcore.engine.config import RunConfig
from ftcore.engine.data import prepare_data
from ftcore.engine.models import resolve_model
from ftcore.engine.runs import build, init_model
from ftcore.engine.schedules import num_warmup_steps
from ftcore.engine.trainer import Callback

OVERHEAD_TARGET_PCT = 5.0
PEAK_N = 2048  # GEMM size for the peak: 2*2048^3 = 17 GFLOP, ~0.1 s a call on 2 cores, so
# per-call overhead is nil and the blocked kernel runs at its steady-state rate (the bound).
BUSY_WARN_PCT = 5.0  # other processes' CPU share above which a run's timing is suspect
HEAD_LR = 1e-3  # a new head alone needs a larger LR than the whole network (chapter.specs.HEAD_LR)
LABELS = {"ftcore": "ftcore", "ftcore_norec": "ftcore, recording off", "hf": "HF Trainer"}


@dataclass(frozen=True)
class Pair:
    """One like-for-like comparison. Sizes are (full, quick)."""

    name: str
    what: str
    cfg: dict = field(default_factory=dict)  # RunConfig overrides (both sides follow the config)
    hf: dict = field(default_factory=dict)  # extra TrainingArguments
    compile: bool = False  # torch.compile the model (ftcore: model.compile() after build)
    train_size: tuple[int, int] = (2000, 200)
    steps: tuple[int, int] = (60, 8)  # timed steps
    warmup: tuple[int, int] = (5, 2)  # untimed steps first
    target: float = 1.0
    target_on: str = "steady"  # or "whole": which ratio the target applies to
    variants: tuple[str, ...] = ("ftcore", "hf")

    def sizes(self, quick: bool) -> tuple[int, int, int]:
        i = 1 if quick else 0
        return self.train_size[i], self.warmup[i], self.steps[i]


PAIRS: dict[str, Pair] = {p.name: p for p in (
    Pair("fp32", "full fine-tune, fp32", steps=(50, 8), variants=("ftcore", "hf", "ftcore_norec")),
    Pair("bf16", "full fine-tune, bf16 autocast", cfg={"precision": "bf16"}, hf={"bf16": True}, steps=(50, 8)),
    # Compiling takes a few steps (one graph per new shape until dynamic shapes kick in): a longer
    # warm-up keeps the recompilations out of the timed window.
    Pair("compile", "full fine-tune, fp32, torch.compile", hf={"torch_compile": True}, compile=True,
         warmup=(10, 4), steps=(50, 6)),
    Pair("head_only", "frozen encoder + head (mean pooling), features cached",
         cfg={"freeze": "head_only", "frozen_dropout": False, "pooling": "mean", "lr": HEAD_LR},
         train_size=(500, 64), warmup=(5, 2), steps=(395, 30), target=10.0, target_on="whole"),
    Pair("bottom4", "bottom 4 of 6 layers frozen, their output cached",
         cfg={"freeze": "bottom", "freeze_layers": 4, "frozen_dropout": False},
         train_size=(500, 64), warmup=(5, 2), steps=(91, 10), target=1.5),
)}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- configuration
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: every pair at tiny size, 1 repeat (about 2 minutes)")
    p.add_argument("--pairs", default=None,
                   help=f"comma-separated subset of {','.join(PAIRS)} (default: all; without bf16 on a "
                        "CPU that has no native bf16, where it would take most of the time and measure "
                        "only the slow fallback)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, same for every run (2)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats of each side (3)")
    p.add_argument("--out", default="bench/results.json", help="JSON results file")
    args = p.parse_args(argv)
    if args.pairs is None:
        args.pairs = ",".join(default_pairs())
    args.pairs = [s.strip() for s in args.pairs.split(",") if s.strip()]
    unknown = [s for s in args.pairs if s not in PAIRS]
    if unknown or not args.pairs:
        p.error(f"--pairs: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(PAIRS)}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    return args


def default_pairs(native: bool | None = None) -> list[str]:
    """Every pair, less ``bf16`` where the CPU has no native bf16 (there fp32 is the headline)."""
    native = precision.native_bf16("cpu") if native is None else native
    return [n for n in PAIRS if native or n != "bf16"]


def pair_config(pair: Pair, args) -> RunConfig:
    """The ftcore config both sides of ``pair`` follow. LR warmup steps are fixed explicitly
    (ftcore's default 6% of the run) so the HF scheduler gets exactly the same number."""
    train_size, warmup, steps = pair.sizes(args.quick)
    total = warmup + steps
    # fp32 unless the pair is about bf16: never "auto", which would make "fp32" mean bf16 on some CPUs
    base = RunConfig(train_size=train_size, max_steps=total, eval_splits=(), test_at_end=False,
                     progress=False, threads=args.threads, device="cpu", **{"precision": "fp32", **pair.cfg})
    return base.replace(warmup_steps=num_warmup_steps(base, total))


# ----------------------------------------------------------------------------- instrumentation
class StepTimer(Callback):
    """ftcore side: a time stamp at the end of every optimizer step (and its loss)."""

    order = 99  # after the Recorder (90): its per-step work belongs inside the measured step

    def __init__(self, hook=None):
        self.times: list[float] = []
        self.losses: list[float] = []
        self.threads = None
        self.hook = hook  # called with the number of steps done (the profiler script uses it)

    def on_fit_start(self, trainer) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, trainer) -> None:
        self.times.append(time.perf_counter())
        self.losses.append(trainer.loss)
        self.threads = torch.get_num_threads()
        if self.hook:
            self.hook(len(self.times))


def hf_step_timer(hook=None):
    """HF side: the same time stamps from ``TrainerCallback.on_step_end`` (after the optimizer
    step, the schedule step and zero_grad, as in ftcore)."""
    from transformers import TrainerCallback

    class HFStepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.threads = None
            self.hook = hook

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())
            self.threads = torch.get_num_threads()
            if self.hook:
                self.hook(len(self.times))

    return HFStepTimer()


class BatchLog:
    """Wraps a collator to note each batch: (examples, padded length, real tokens, label checksum).

    Used for the FLOP count and to check that both loops saw the same batches in the same order.
    For cached features the real tokens come from the attention mask (pooled vectors: None)."""

    def __init__(self, collate):
        self.collate = collate
        self.batches: list[tuple[int, int | None, int | None, int]] = []

    def __call__(self, features):
        batch = self.collate(features)
        mask, labels = batch["attention_mask"], batch["labels"]
        token_level = "input_ids" in batch or mask.shape[1] > 1
        self.batches.append((mask.shape[0], mask.shape[1] if token_level else None,
                             int(mask.sum()) if token_level else None,
                             zlib.crc32(labels.numpy().tobytes())))
        return batch


def same_batches(a: list[tuple], b: list[tuple]) -> bool:
    """Both sides saw the same batches in the same order: sizes and labels equal, and token counts
    wherever both sides know them (the pooled-feature cache has no tokens)."""
    return len(a) == len(b) and all(
        x[0] == y[0] and x[3] == y[3] and (x[1] is None or y[1] is None or x[1:3] == y[1:3])
        for x, y in zip(a, b))


def timed_window(times: list[float], warmup: int, steps: int) -> dict:
    """Steps/s between the end of step ``warmup`` and the end of step ``warmup + steps``."""
    if len(times) < warmup + steps:
        raise RuntimeError(f"only {len(times)} steps ran, expected {warmup + steps}")
    window = times[warmup - 1:warmup + steps]
    seconds = window[-1] - window[0]
    return {"steps_per_s": steps / seconds, "timed_s": seconds,
            "step_s": [round(b - a, 5) for a, b in zip(window, window[1:])]}


def run_timing(times: list[float], start: float, setup_s: float, warmup: int, steps: int) -> dict:
    """Steady-state window plus the whole run: ``setup_s`` (one-time work before the loop, e.g. the
    feature cache) + loop start to the end of the last step; and the warm-up steps' time."""
    out = timed_window(times, warmup, steps)
    whole = setup_s + times[warmup + steps - 1] - start
    out.update(whole_s=whole, whole_steps_per_s=(warmup + steps) / whole, setup_s=setup_s,
               warmup_s=times[warmup - 1] - start)
    return out


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


def run_ftcore(cfg: RunConfig, pair: Pair, warmup: int, steps: int, *, recording: bool = True,
               hook=None) -> dict:
    """One ftcore run through ``runs.build``: a fresh, seeded model from the pretrained weights."""
    features.clear_memo()  # every run pays its own feature computation (no reuse across repeats)
    timer = StepTimer(hook)
    callbacks: list[Callback] = [timer]
    recorders: list[TimedCallback] = []
    if recording:  # the default callbacks minus evaluation and the progress bar
        recorders = [TimedCallback(c) for c in
                     (Recorder(grad_norms=True), DivergenceDetector(cfg.divergence_factor), MemoryMonitor())]
        callbacks += recorders
    trainer = build(cfg, callbacks=callbacks)
    if pair.compile:
        trainer.model.compile()  # in place: same module object, parameters and layer groups
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
    result = run_timing(timer.times, timer.start, trainer.summary.get("frozen_features_s", 0.0), warmup, steps)
    result.update(threads=timer.threads, batches=batches.batches[:cfg.max_steps],
                  optimizer=_describe_optimizer(trainer.optimizer), flop_model=flop_model(trainer.model),
                  steps_run=trainer.step, train_s=timer.times[-1] - trainer.t0,
                  recording_callbacks_s=sum(r.seconds for r in recorders), grad_norm_s=norm_s[0],
                  loss_first=_mean(timer.losses[:25]), loss_last=_mean(timer.losses[-25:]))
    del trainer
    gc.collect()
    return result


def _mean(xs) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def run_hf(cfg: RunConfig, pair: Pair, warmup: int, steps: int, workdir: str, *, hook=None) -> dict:
    """The same fine-tune with ``transformers.Trainer`` (its default AdamW implementation)."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededSampler(LengthGroupedSampler):
        """HF's own length-grouped sampler, seeded for each epoch as ftcore seeds it
        (``seed * 1009 + epoch``). Stock Trainer builds it without a generator (it draws from the
        global RNG), so its batch order would differ from ftcore's; with this one both loops see
        identical batches in identical order in every epoch (checked via the batch log)."""

        epoch = 0

        def __iter__(self):
            self.generator = torch.Generator().manual_seed(cfg.seed * 1009 + self.epoch)
            self.epoch += 1
            return super().__iter__()

    class SameOrderTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            ds = train_dataset if train_dataset is not None else self.train_dataset
            return EpochSeededSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                      lengths=[len(x["input_ids"]) for x in ds])

    torch.set_num_threads(cfg.threads)
    data = prepare_data(cfg)
    # ftcore's model builder, so pooling, freezing and the new head's init are exactly ftcore's;
    # Trainer then trains it as any model (frozen layers in train mode, run forward every step).
    model = init_model(cfg, data.num_labels)
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
        **pair.hf,
    )
    timer = hf_step_timer(hook)
    trainer = SameOrderTrainer(model=model, args=targs, train_dataset=train_ds, data_collator=batches,
                               callbacks=[timer])
    # disable_tqdm=True swaps the bar for PrinterCallback, which prints the end-of-training
    # metrics dict to stdout (after the timed window); removed to keep the table clean.
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    result = run_timing(timer.times, timer.start, 0.0, warmup, steps)
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


def rotated(seq: tuple, r: int) -> tuple:
    """``seq`` rotated by ``r``: repeat r starts with a different variant."""
    k = r % len(seq)
    return seq[k:] + seq[:k]


def run_all(args) -> dict[str, dict[str, list[dict]]]:
    """Every pair's variants ``repeats`` times, interleaved: the repeat loop is the outer one, so
    each pair's repeats are spread over the whole benchmark, and the order of the sides rotates
    each repeat so no side is always first (the first run in a process can pay one-time costs)."""
    results = {name: {v: [] for v in PAIRS[name].variants} for name in args.pairs}
    with tempfile.TemporaryDirectory(prefix="ftcore-bench-hf-") as workdir:
        # An untimed run first: the process's one-time costs (thread pool, allocator, kernel
        # selection for each shape) would otherwise fall on whichever run comes first.
        log("process warm-up (untimed)")
        run_ftcore(pair_config(PAIRS["fp32"], args).replace(max_steps=3 if args.quick else 12),
                   PAIRS["fp32"], 1, 1, recording=False)
        for r in range(args.repeats):
            for name in args.pairs:
                pair = PAIRS[name]
                cfg = pair_config(pair, args)
                _, warmup, steps = pair.sizes(args.quick)
                for variant in rotated(pair.variants, r):
                    log(f"repeat {r + 1}/{args.repeats}: {name}: {LABELS[variant]} ({warmup} + {steps} steps)")
                    if pair.compile:
                        # Dynamo's in-memory caches hold guards on past models: without a reset, later
                        # runs would recompile up to its limit and then silently fall back to eager.
                        # The inductor cache on disk stays (warm after the first compile).
                        torch._dynamo.reset()
                    watch = CpuWatch()
                    if variant == "hf":
                        res = run_hf(cfg, pair, warmup, steps, workdir)
                    else:
                        res = run_ftcore(cfg, pair, warmup, steps, recording=(variant == "ftcore"))
                    res["other_cpu_pct"] = watch.other_pct()
                    res["repeat"] = r
                    log(f"  {res['steps_per_s']:.3f} steps/s over {res['timed_s']:.1f} s (whole run "
                        f"{res['whole_s']:.1f} s, of which one-time setup {res['setup_s']:.1f} s), "
                        f"{res['threads']} threads, {res['optimizer']}; "
                        f"other processes used {res['other_cpu_pct']:.0f}% of the CPUs")
                    results[name][variant].append(res)
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
    # Without native bf16 one 2048^3 bf16 product takes ~20 s (about 1 GFLOP/s): a smaller one
    # measures the same slow fallback in well under a second.
    bf16_n = PEAK_N if precision.native_bf16("cpu") else 512
    return {
        "fp32_mm_gflops": matmul_gflops(PEAK_N, PEAK_N, PEAK_N, torch.float32, seconds),
        "bf16_mm_gflops": matmul_gflops(bf16_n, bf16_n, bf16_n, torch.bfloat16, seconds),
        "bf16_n": bf16_n,
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


def paired_ratios(num: list[dict], den: list[dict], key: str) -> list[float]:
    """Per-repeat ratios num[key] / den[key] (repeat r of each side ran next to each other)."""
    return [a[key] / b[key] for a, b in zip(num, den)]


def summarize_pair(pair: Pair, res: dict[str, list[dict]], warmup: int, steps: int) -> dict:
    """Ratios of one pair: steady state (median of per-repeat ratios, ratio of medians, per-step
    minima) and whole run (one-time work counted)."""
    ft, hf = res["ftcore"], res["hf"]
    steady = paired_ratios(ft, hf, "steps_per_s")
    whole = paired_ratios(ft, hf, "whole_steps_per_s")
    med = {v: statistics.median(r["steps_per_s"] for r in rs) for v, rs in res.items()}
    s = {
        "what": pair.what, "target": pair.target, "target_on": pair.target_on,
        "warmup_steps": warmup, "timed_steps": steps,
        "steps_per_s_median": med,
        "ratio": statistics.median(steady), "ratios": steady,
        "ratio_of_medians": med["ftcore"] / med["hf"],
        "ratio_best_steps": sum(best_step_times(hf)) / sum(best_step_times(ft)),
        "whole_ratio": statistics.median(whole), "whole_ratios": whole,
        "whole_s_median": {v: statistics.median(r["whole_s"] for r in rs) for v, rs in res.items()},
        "setup_s_median": {v: statistics.median(r["setup_s"] for r in rs) for v, rs in res.items()},
        "warmup_s_median": {v: statistics.median(r["warmup_s"] for r in rs) for v, rs in res.items()},
        "same_batches_same_order": all(same_batches(a["batches"], b["batches"]) for a, b in zip(ft, hf)),
        "max_other_cpu_pct": max(r["other_cpu_pct"] for rs in res.values() for r in rs),
        "threads_seen": sorted({r["threads"] for rs in res.values() for r in rs}),
        "optimizers": {v: rs[0]["optimizer"] for v, rs in res.items()},
        "loss_first_last_ftcore": [statistics.median(r["loss_first"] for r in ft),
                                   statistics.median(r["loss_last"] for r in ft)],
    }
    s["target_ratio"] = s["whole_ratio"] if pair.target_on == "whole" else s["ratio"]
    s["pass"] = s["target_ratio"] >= pair.target
    # One-time cost beyond steady state: warm-up steps' time less warm-up x steady step time
    # (compile: compilation; cached pairs: the setup is the feature computation itself).
    s["one_time_s"] = {v: [r["setup_s"] + r["warmup_s"] - warmup / r["steps_per_s"] for r in rs]
                       for v, rs in res.items()}
    s["one_time_s_median"] = {v: statistics.median(xs) for v, xs in s["one_time_s"].items()}
    return s


def summarize_fp32(res: dict[str, list[dict]], warmup: int, steps: int, peaks: dict) -> dict:
    """Recording overhead and throughput of the fp32 pair (what section 2 and 3 of the table say)."""
    ft, off = res["ftcore"], res["ftcore_norec"]
    on_m = statistics.median(r["steps_per_s"] for r in ft)
    off_m = statistics.median(r["steps_per_s"] for r in off)
    best_on, best_off = sum(best_step_times(ft)), sum(best_step_times(off))
    clip = RunConfig().clip_grad_norm is not None  # the benchmarked config clips (the default)
    direct = [(r["recording_callbacks_s"] - (r["grad_norm_s"] if clip else 0)) for r in ft]
    return {
        "ratio_norecording_over_hf": statistics.median(paired_ratios(off, res["hf"], "steps_per_s")),
        "recording_overhead_pct": (1 / on_m - 1 / off_m) / (1 / off_m) * 100,
        "recording_overhead_pct_best_steps": (best_on - best_off) / best_off * 100,
        "overhead_target_pct": OVERHEAD_TARGET_PCT,
        # Direct: seconds inside the recording callbacks per step, less the gradient norms that
        # clipping (on in this setup) computes anyway, over the mean step time of the same runs.
        "recording_direct_ms_per_step": statistics.median(d / r["steps_run"] * 1e3 for d, r in zip(direct, ft)),
        "recording_direct_pct": statistics.median(d / r["train_s"] * 100 for d, r in zip(direct, ft)),
        "grad_norm_ms_per_step": statistics.median(r["grad_norm_s"] / r["steps_run"] * 1e3 for r in ft),
        **throughput(ft, warmup, steps, peaks, "fp32"),
    }


def throughput(runs: list[dict], warmup: int, steps: int, peaks: dict, dtype: str) -> dict:
    """Achieved GFLOP/s of full fine-tuning steps (the FLOPs of the timed batches / timed time)."""
    fm = runs[0]["flop_model"]
    timed = runs[0]["batches"][warmup:warmup + steps]  # batch k is step k+1 (grad_accum 1)
    flops = sum(batch_flops(b, seq, fm) for b, seq, _, _ in timed)
    achieved = statistics.median(flops / r["timed_s"] / 1e9 for r in runs)
    padded = sum(b * seq for b, seq, _, _ in timed)
    return {
        "gflop_per_step_mean": flops / len(timed) / 1e9,
        "achieved_gflops": achieved,
        f"pct_of_{dtype}_peak": achieved / peaks[f"{dtype}_mm_gflops"] * 100,
        **({"pct_of_ffn_shape_peak": achieved / peaks["fp32_ffn_shape_gflops"] * 100} if dtype == "fp32" else {}),
        "mean_padded_tokens_per_batch": padded / len(timed),
        "real_token_fraction": sum(t for _, _, t, _ in timed) / padded,
    }


def summarize(results: dict, peaks_before: dict, peaks_after: dict, args) -> dict:
    # noise only lowers a peak: the best of before and after
    peaks = {k: max(peaks_before[k], peaks_after[k]) for k in
             ("fp32_mm_gflops", "bf16_mm_gflops", "fp32_ffn_shape_gflops")}
    out = {"peak_gflops": peaks, "ffn_shape": peaks_before["ffn_shape"], "pairs": {}}
    for name, res in results.items():
        _, warmup, steps = PAIRS[name].sizes(args.quick)
        out["pairs"][name] = summarize_pair(PAIRS[name], res, warmup, steps)
    if "fp32" in results:
        _, warmup, steps = PAIRS["fp32"].sizes(args.quick)
        out["fp32"] = summarize_fp32(results["fp32"], warmup, steps, peaks)
    if "bf16" in results:
        _, warmup, steps = PAIRS["bf16"].sizes(args.quick)
        out["bf16"] = throughput(results["bf16"]["ftcore"], warmup, steps, peaks, "bf16")
    if "compile" in results and "fp32" in results:
        # Does compiling pay? Compiled vs uncompiled, each side against itself.
        p = out["pairs"]
        gain = {v: p["compile"]["steps_per_s_median"][v] / p["fp32"]["steps_per_s_median"][v] for v in ("ftcore", "hf")}
        saved = {v: 1 / p["fp32"]["steps_per_s_median"][v] - 1 / p["compile"]["steps_per_s_median"][v]
                 for v in ("ftcore", "hf")}
        out["compile"] = {
            "speedup_over_eager": gain,
            "compile_s": p["compile"]["one_time_s_median"],
            # steps after which compiling has paid for itself (inf: the compiled step is not faster)
            "break_even_steps": {v: (p["compile"]["one_time_s_median"][v] / saved[v]) if saved[v] > 0
                                 else float("inf") for v in ("ftcore", "hf")},
        }
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(s: dict, results: dict, info: dict, args) -> None:
    pk = s["peak_gflops"]
    busy = max(r["other_cpu_pct"] for res in results.values() for rs in res.values() for r in rs)
    auto = info["auto_precision"]
    lines = [
        "",
        f"ftcore engine benchmark  {info['date']}",
        f"{info['cpu_model']} ({info['cpu_count']} CPUs), {args.threads} torch threads, torch "
        f"{info['versions']['torch']}, transformers {info['versions']['transformers']}",
        f"CPU SIMD flags: {' '.join(info['cpu_simd']) or '(none read)'}; native bf16: "
        f"{'yes' if info['native_bf16'] else 'no'}",
        f"matmul peaks: fp32 {pk['fp32_mm_gflops']:.1f} GFLOP/s, bf16 {pk['bf16_mm_gflops']:.1f} GFLOP/s "
        f"(bf16 = {pk['bf16_mm_gflops'] / pk['fp32_mm_gflops']:.2f}x fp32); precision='auto' picks "
        f"{auto['precision']} here ({auto['reason']})",
        *([] if info["native_bf16"] else ["no native bf16: the fp32 pair is the headline ratio"
                                          + ("" if "bf16" not in s["pairs"] else
                                             "; the bf16 pair below measures the slow fallback")]),
        f"{args.repeats} interleaved repeat(s); ratio = ftcore steps/s / Trainer steps/s, median of the "
        "per-repeat ratios",
        *(["--quick: a smoke test of the benchmark itself; its numbers mean little"] if args.quick else []),
        "",
        f"{'pair':<10} {'steps (warm-up+timed)':>21} {'ftcore/s':>9} {'HF/s':>8} {'ratio':>7} "
        f"{'whole run':>9}  {'target':<16} {'same batches':<12} per-repeat ratios",
    ]
    for name, p in s["pairs"].items():
        m = p["steps_per_s_median"]
        tgt = (f">= {p['target']:g} {'whole' if p['target_on'] == 'whole' else 'steady'} "
               f"{verdict(p['pass'])}")
        lines.append(
            f"{name:<10} {p['warmup_steps']:>12} + {p['timed_steps']:<6} {m['ftcore']:>9.3f} {m['hf']:>8.3f} "
            f"{p['ratio']:>7.3f} {p['whole_ratio']:>9.3f}  {tgt:<16} "
            f"{'yes' if p['same_batches_same_order'] else 'NO':<12} "
            + ", ".join(f"{x:.3f}" for x in p["ratios"]))
    lines += ["",
              "ratio: steady state (after the warm-up steps). whole run: from the start of training to the last "
              "step,",
              "ftcore's one-time work counted (the feature cache; compilation happens inside the warm-up steps).",
              ""]
    for name, p in s["pairs"].items():
        ot, su = p["one_time_s_median"], p["setup_s_median"]
        lines.append(f"{name:<10} {p['what']}; whole run ftcore {p['whole_s_median']['ftcore']:.1f} s "
                     f"(features {su['ftcore']:.1f} s), HF {p['whole_s_median']['hf']:.1f} s; "
                     f"ratio of medians {p['ratio_of_medians']:.3f}, from per-step minima "
                     f"{p['ratio_best_steps']:.3f}")
        if name == "compile":
            per = {v: ", ".join(f"{x:.0f}" for x in p["one_time_s"][v]) for v in ("ftcore", "hf")}
            lines.append(f"{'':<10} compile time (warm-up beyond steady state), median: ftcore {ot['ftcore']:.1f} s, "
                         f"HF {ot['hf']:.1f} s; per repeat ftcore {per['ftcore']} s, HF {per['hf']} s "
                         "(the process's first compile is cold)")
        if name == "head_only":
            lf, ll = p["loss_first_last_ftcore"]
            lines.append(f"{'':<10} ftcore training loss, mean of the first 25 steps {lf:.3f}, of the last 25 "
                         f"{ll:.3f}")
    if "compile" in s:
        c = s["compile"]
        lines += ["", "torch.compile against eager fp32 (each side against itself): speed-up "
                  f"ftcore {c['speedup_over_eager']['ftcore']:.3f}x, HF {c['speedup_over_eager']['hf']:.3f}x; "
                  f"pays for its compile time after ftcore {c['break_even_steps']['ftcore']:.0f} steps, "
                  f"HF {c['break_even_steps']['hf']:.0f} steps"]
    if "fp32" in s:
        f = s["fp32"]
        lines += [
            "",
            f"fp32: ftcore with recording off / HF {f['ratio_norecording_over_hf']:.3f}",
            f"recording overhead                 {f['recording_overhead_pct']:>7.2f} %   target <= "
            f"{OVERHEAD_TARGET_PCT:g} %  {verdict(f['recording_overhead_pct'] <= OVERHEAD_TARGET_PCT)}",
            f"   from per-step minima             {f['recording_overhead_pct_best_steps']:>7.2f} %",
            f"   measured inside the callbacks    {f['recording_direct_pct']:>7.2f} %   "
            f"({f['recording_direct_ms_per_step']:.2f} ms/step; per-group gradient norms "
            f"{f['grad_norm_ms_per_step']:.2f} ms/step, shared with clipping)  "
            f"{verdict(f['recording_direct_pct'] <= OVERHEAD_TARGET_PCT)}",
            "",
            "throughput (ftcore, recording on)",
            f"   fp32 work per step (fwd+bwd)     {f['gflop_per_step_mean']:>8.2f} GFLOP  "
            f"({f['mean_padded_tokens_per_batch']:.0f} tokens/batch, {f['real_token_fraction']:.0%} not padding)",
            f"   fp32 achieved                    {f['achieved_gflops']:>8.1f} GFLOP/s  -> "
            f"{f['pct_of_fp32_peak']:.1f} % of the fp32 mm peak ({PEAK_N}^3, {pk['fp32_mm_gflops']:.1f}), "
            f"{f['pct_of_ffn_shape_peak']:.1f} % of mm at the FFN shape "
            f"{'x'.join(map(str, s['ffn_shape']))} ({pk['fp32_ffn_shape_gflops']:.1f})",
        ]
    if "bf16" in s:
        b = s["bf16"]
        lines.append(f"   bf16 achieved                    {b['achieved_gflops']:>8.1f} GFLOP/s  -> "
                     f"{b['pct_of_bf16_peak']:.1f} % of the bf16 mm peak ({pk['bf16_mm_gflops']:.1f})")
    lines.append("")
    if busy > BUSY_WARN_PCT:
        lines += [f"WARNING: other processes used up to {busy:.0f}% of the CPUs during a run; "
                  "with every core in use by torch, that distorts timings badly. Rerun on an idle machine.", ""]
    print("\n".join(lines), flush=True)


# ----------------------------------------------------------------------------- machine info
def machine_info(args) -> dict:
    import accelerate
    import numpy
    import transformers

    from ftcore.records.provenance import cpu_name

    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_simd": precision.cpu_flags(),
        "native_bf16": precision.native_bf16("cpu"),
        "auto_precision": precision.auto_choice("cpu").summary(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),  # set to simulate a CPU without bf16
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

    # The "Loading weights" bar of from_pretrained, printed once per model built.
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def fresh_inductor_cache():
    """A private inductor cache for this process: the first compile of each side is a cold one (as
    on a fresh machine), later repeats reuse it (as a user's later runs would)."""
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="ftcore-bench-inductor-") as d:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = d
        try:
            yield d
        finally:
            if old is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = old


# ----------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    info = machine_info(args)
    log(f"pairs {', '.join(args.pairs)}; {args.repeats} repeat(s); threads {args.threads}")
    log(f"CPU SIMD: {' '.join(info['cpu_simd']) or '(none read)'}; precision='auto' picks "
        f"{info['auto_precision']['precision']} ({info['auto_precision']['reason']})")
    if "bf16" in args.pairs and not info["native_bf16"]:
        log("no native bf16 on this CPU: the bf16 pair measures the slow fallback and takes long")
    for name in args.pairs:
        cfg = pair_config(PAIRS[name], args)
        log(f"{name}: {cfg!r}")

    from transformers import AutoConfig

    log("matmul peaks (before training)")
    # The FFN-shape GEMM uses a typical batch's token count; known only after a run, so estimate
    # it from the data (mean length x batch, rounded up to a multiple of 64).
    cfg = pair_config(PAIRS["fp32"], args)
    data = prepare_data(cfg)
    mean_len = sum(map(len, data.train["input_ids"])) / len(data.train["input_ids"])
    tokens = int(-(-mean_len * cfg.batch_size // 64) * 64)
    model_cfg = AutoConfig.from_pretrained(resolve_model(cfg.model).path)
    peaks_before = measure_peaks(args, tokens, model_cfg.hidden_size, model_cfg.intermediate_size)

    with warnings.catch_warnings(), fresh_inductor_cache():
        warnings.filterwarnings("ignore", message=".*TF32.*")  # inductor's hint, not ours to act on
        results = run_all(args)

    log("matmul peaks (after training)")
    peaks_after = measure_peaks(args, tokens, model_cfg.hidden_size, model_cfg.intermediate_size)
    summary = summarize(results, peaks_before, peaks_after, args)
    print_table(summary, results, info, args)

    report = {
        "machine": info,
        "args": vars(args),
        "configs": {name: pair_config(PAIRS[name], args).to_dict() for name in args.pairs},
        "pairs": {name: {"what": PAIRS[name].what, "hf_args": PAIRS[name].hf, "compile": PAIRS[name].compile}
                  for name in args.pairs},
        "summary": summary,
        "peaks_before": peaks_before,
        "peaks_after": peaks_after,
        "runs": {name: {v: [{k: val for k, val in r.items() if k != "batches"} for r in rs]
                        for v, rs in res.items()} for name, res in results.items()},
        "timed_batches": {name: [list(b[:3]) for b in res["ftcore"][0]["batches"]]
                          for name, res in results.items()},
        "notes": {
            "ratio": "ftcore steps/s / HF steps/s per repeat (the two sides of a repeat run back to back), "
                     "median over repeats; ratio_of_medians and ratio_best_steps (per-step minima) as checks",
            "whole_run": "setup (ftcore's feature cache, computed inside build) + start of training to the end "
                         "of the last step; model loading and tokenisation excluded on both sides",
            "batch_order": "identical batches in identical order on both sides (HF's LengthGroupedSampler "
                           "seeded per epoch as ftcore seeds it); checked: same_batches_same_order",
            "timing": "steady state: steps/s between on_step_end of the last warm-up step and of the last "
                      "timed step",
            "compile": "torch.compile(inductor, default mode, dynamic=None) on both sides; a private inductor "
                       "cache per benchmark process, so the first repeat compiles cold, later ones warm",
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
