"""The fine-tuned classifier in int8: post-training dynamic quantization and quantization-aware
fine-tuning, against the same model in fp32 and bf16 (figure ``quantization``, issue 15).

What is quantized, in both int8 arms: every ``nn.Linear`` of the fine-tuned model (in the default
MiniLM, 6 layers × query, key, value, attention output, intermediate, output = 36, plus the
classification head; mean pooling has no pooler layer). Their weights are stored as int8, one
symmetric scale per matrix; their inputs are quantized on the fly (dynamic quantization: one scale
per input tensor, computed from its min/max at every call; the x86 kernel uses 7 of the 8 bits).
Embeddings, LayerNorm and softmax stay fp32. A fifth arm, ``int8_ptq_emb``, also stores the
embedding tables in 8 bits (weight-only, per row), since in a small model they hold half the weights.

* **Post-training (PTQ)**: ``torch.ao.quantization.quantize_dynamic`` on the fine-tuned fp32 model.
* **Quantization-aware (QAT)**: the same fine-tuning recipe (same seed: same subset, data order and
  head initialisation), with every ``nn.Linear`` replaced by ``torch.ao.nn.qat.dynamic.Linear``
  (weights fake-quantized in the forward pass, the straight-through estimator in the backward) and
  its input fake-quantized the way the int8 kernel will quantize it. The observers are memoryless
  (min/max of the current tensor), so training simulates exactly the scales that conversion
  computes. Afterwards the trained weights go through the very same ``quantize_dynamic`` call.

:func:`quantization_study` trains both, measures test accuracy (one review at a time, the way a
deployed classifier sees them), the bytes of each saved state dict and CPU latency per example
(batch 1 and 32, one thread, repeats interleaved across arms), and returns ``(tables, meta)`` for
:func:`ftcore.records.studies.study`.
"""
from __future__ import annotations

import copy
import io
import os
import platform
import statistics
import time
import warnings
from contextlib import contextmanager

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

ARMS = ("fp32", "bf16", "int8_ptq", "int8_ptq_emb", "int8_qat")
BATCH_SIZES = (1, 32)  # latency: one review at a time, and a batch of 32 (per example)


@contextmanager
def _quiet():
    """torch.ao.quantization warns that it moves to torchao; it is the API that ships with torch."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao.*")
        yield


def qconfig():
    """What int8 means here, for training and conversion alike: weights int8, symmetric, one scale
    per matrix; inputs uint8 with the x86 kernel's 7-bit range (``reduce_range``), one scale per
    tensor. Both observers are memoryless (``averaging_constant=1``: the current tensor's min/max)."""
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, QConfig

    weight = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, averaging_constant=1.0,
                                    quant_min=-128, quant_max=127, dtype=torch.qint8,
                                    qscheme=torch.per_tensor_symmetric)
    activation = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, averaging_constant=1.0,
                                        quant_min=0, quant_max=127, dtype=torch.quint8,
                                        qscheme=torch.per_tensor_affine, is_dynamic=True)
    return QConfig(activation=activation, weight=weight)


def linear_layers(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules that quantization replaces (in module order)."""
    return [n for n, m in model.named_modules() if type(m) is nn.Linear]


# ------------------------------------------------------------------------------------ PTQ
def quantize_int8(model: nn.Module, *, embeddings: bool = False) -> nn.Module:
    """A CPU copy of ``model`` with every ``nn.Linear`` dynamically quantized to int8 (the model is
    untouched). Embeddings and LayerNorms stay fp32, unless ``embeddings``: then the embedding tables
    (word, position, token type) are stored as uint8 too, weight-only with a scale and offset per
    row (``float_qparams_weight_only_qconfig``), looked up and dequantized on the fly."""
    from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

    m = copy.deepcopy(model).cpu().float().eval()
    spec = {nn.Linear: qconfig(), **({nn.Embedding: float_qparams_weight_only_qconfig} if embeddings else {})}
    with _quiet():
        return quantize_dynamic(m, spec, dtype=torch.qint8)


# ------------------------------------------------------------------------------------ QAT
def _fake_quant_input(module: nn.Module, args: tuple):
    """Forward pre-hook: the input as the int8 kernel will see it (fake-quantized in fp32)."""
    x = args[0]
    return (module.input_fake_quant(x.float()).to(x.dtype), *args[1:])


def prepare_qat(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` in place by ``torch.ao.nn.qat.dynamic.Linear`` (its
    weight fake-quantized; the same Parameter objects, so an optimizer built afterwards trains them)
    with its input fake-quantized too. Returns ``model``."""
    from torch.ao.nn.qat.dynamic import Linear as QATLinear

    qc = qconfig()
    with _quiet():
        for name in linear_layers(model):
            parent, _, child = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            lin = getattr(owner, child)
            lin.qconfig = qc
            q = QATLinear.from_float(lin)
            q.input_fake_quant = qc.activation()
            q.register_forward_pre_hook(_fake_quant_input)
            setattr(owner, child, q)
    return model


def strip_qat(model: nn.Module) -> nn.Module:
    """A CPU fp32 copy of a QAT model with plain ``nn.Linear`` layers holding the trained weights."""
    from torch.ao.nn.qat.dynamic import Linear as QATLinear

    m = copy.deepcopy(model).cpu().float().eval()
    for name, mod in list(m.named_modules()):
        if isinstance(mod, QATLinear):
            lin = nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
            lin.weight, lin.bias = mod.weight, mod.bias
            parent, _, child = name.rpartition(".")
            setattr(m.get_submodule(parent) if parent else m, child, lin)
    return m


def convert_qat(model: nn.Module) -> nn.Module:
    """The QAT model in int8: its trained weights through the same call as post-training quantization."""
    return quantize_int8(strip_qat(model))


# ------------------------------------------------------------------------------------ measurements
def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the model's size on disk."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def _batch(examples: list[list[int]], pad_id: int, token_types: bool = True) -> dict[str, torch.Tensor]:
    """Padded ids and attention mask (and zero token types, passed explicitly: BERT would otherwise
    expand a buffer into a non-contiguous tensor, which the quantized embedding refuses)."""
    n = max(len(x) for x in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, x in enumerate(examples):
        ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, **({"token_type_ids": torch.zeros_like(ids)} if token_types else {})}


@torch.inference_mode()
def evaluate_one_by_one(model: nn.Module, input_ids: list[list[int]], labels: list[int],
                        num_labels: int, *, token_types: bool = True) -> tuple[dict[str, float], list[int], list[float]]:
    """Metrics of ``model`` on the examples fed one at a time (no padding; a dynamically quantized
    layer then takes one activation scale per review, as in deployment), its predictions and the
    probability of the last class."""
    from ftcore.engine.trainer import metrics_from_confusion

    model.eval()
    confusion = torch.zeros(num_labels, num_labels, dtype=torch.long)
    loss_sum, preds, p_last = 0.0, [], []
    for ids, y in zip(input_ids, labels):
        logits = model(**_batch([ids], 0, token_types)).logits.float()[:, :num_labels]
        loss_sum += F.cross_entropy(logits, torch.tensor([y])).item()
        p = int(logits.argmax(-1))
        confusion[y, p] += 1
        preds.append(p)
        p_last.append(float(logits.softmax(-1)[0, -1]))
    return metrics_from_confusion(confusion, loss_sum), preds, p_last


@torch.inference_mode()
def measure_latency(models: dict[str, nn.Module], input_ids: list[list[int]], *, pad_id: int = 0,
                    batch_sizes=BATCH_SIZES, repeats: int = 7, threads: int = 1, token_types: bool = True) -> pd.DataFrame:
    """CPU latency per example (ms) of each model on the same reviews: for each batch size the
    reviews are cut into batches (padded to the longest of each) and run in order; one repeat times
    the whole pass. Arms and batch sizes are interleaved inside each repeat (rotating which goes
    first), so load from other processes falls on all of them alike; one untimed warm-up pass first.
    ``cpu_share`` = this thread's CPU time / wall time of the repeat: below ~0.9 other processes
    took the core (the timing is suspect)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        plans = {b: [_batch(input_ids[i:i + b], pad_id, token_types) for i in range(0, len(input_ids), b)] for b in batch_sizes}
        for m in models.values():
            m.eval()
            for b, batches in plans.items():
                for x in batches[:2]:
                    m(**x)
        rows, names = [], list(models)
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                for b, batches in plans.items():
                    w0, c0 = time.perf_counter(), time.thread_time()
                    for x in batches:
                        models[name](**x)
                    wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
                    rows.append({"arm": name, "batch_size": b, "repeat": r,
                                 "ms_per_example": 1000 * wall / len(input_ids), "cpu_share": cpu / wall})
        return pd.DataFrame(rows)
    finally:
        torch.set_num_threads(old)


def machine() -> dict:
    """The CPU the latencies were measured on (they are specific to it)."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
        for line in info.splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [x for x in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if x in have]
                break
    except OSError:
        pass
    return {"cpu": name, "logical_cpus": os.cpu_count(), "simd": flags, "torch": torch.__version__,
            "quantized_engine": torch.backends.quantized.engine, "platform": platform.platform()}


def _steps(trainer) -> pd.DataFrame:
    from ftcore.engine.callbacks import Recorder
    rec = next(c for c in trainer.callbacks if isinstance(c, Recorder))
    return pd.DataFrame([{"step": r[0], "loss": r[3]} for r in rec.rows["steps"]])


def quantization_study(cfg, *, n_latency: int = 64, repeats: int = 7, threads: int = 1,
                       batch_sizes=BATCH_SIZES, arms=ARMS) -> tuple[dict, dict]:
    """Fine-tune ``cfg`` twice, as it is (→ fp32, bf16, int8 post-training) and with quantization-aware
    training (→ int8 QAT), on ``threads`` threads; then measure each arm.

    Tables: ``arms`` (one row per arm: test accuracy and the other metrics at batch 1, the same
    on validation as ``validation_<metric>`` where ``cfg`` evaluates validation, agreement of
    its predictions with fp32's, bytes of the saved state dict, parameters by storage), ``latency``
    (:func:`measure_latency` on the first ``n_latency`` test reviews), ``predictions`` (per test
    review and arm), ``train_loss`` (per step, fp32 recipe and QAT). Meta: the machine, threads,
    what was quantized, the fp32 model's test accuracy under the recipe's own evaluation (batches of
    64, autocast as trained) and timings. ``arms``: a subset of :data:`ARMS` to measure (fp32 always;
    a live demo on a CPU without native bf16 leaves out ``bf16``, whose fallback takes minutes)."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown or "fp32" not in arms:
        raise ValueError(f"arms={tuple(arms)!r}: expected fp32 and any of {', '.join(ARMS[1:])}")
    from ftcore.engine.data import prepare_data
    from ftcore.engine.runs import build, init_model, run_id

    cfg = cfg.replace(threads=threads, progress=False)
    t0 = time.perf_counter()
    trainer = build(cfg)
    trainer.fit()
    fp32 = trainer.model.cpu().float().eval()
    data, tok = trainer.data, trainer.data.tokenizer
    recipe_test = dict(trainer.last_eval.get("test", {}))
    fit_s = {"fp32": time.perf_counter() - t0}

    t0 = time.perf_counter()
    qdata = prepare_data(cfg)
    qmodel = prepare_qat(init_model(cfg, qdata.num_labels))
    qtrainer = build(cfg, model=qmodel, data=qdata)
    with _quiet():
        qtrainer.fit()
    fit_s["int8_qat"] = time.perf_counter() - t0
    steps = pd.concat([_steps(trainer).assign(training="fp32"), _steps(qtrainer).assign(training="qat")])

    quantized = linear_layers(fp32)
    forms = {"fp32": lambda: fp32, "bf16": lambda: copy.deepcopy(fp32).to(torch.bfloat16).eval(),
             "int8_ptq": lambda: quantize_int8(fp32), "int8_ptq_emb": lambda: quantize_int8(fp32, embeddings=True),
             "int8_qat": lambda: convert_qat(qtrainer.model)}
    models = {a: forms[a]() for a in ARMS if a in arms}
    test = data.evals["test"]
    token_types = "token_type_ids" in tok.model_input_names
    ids, labels = [list(x) for x in test["input_ids"]], [int(y) for y in test["label"]]
    torch.set_num_threads(threads)
    rows, preds = [], []
    val = data.evals.get("validation")
    for arm, m in models.items():
        t = time.perf_counter()
        metrics, p, p_last = evaluate_one_by_one(m, ids, labels, data.num_labels, token_types=token_types)
        row = {"arm": arm, **metrics, "eval_s": time.perf_counter() - t, "size_bytes": state_dict_bytes(m)}
        if val is not None:  # each form on validation too, the same way: what a validity gate reads, never test
            vm, _, _ = evaluate_one_by_one(m, [list(x) for x in val["input_ids"]], [int(y) for y in val["label"]],
                                           data.num_labels, token_types=token_types)
            row.update({f"validation_{k}": v for k, v in vm.items()})
        rows.append(row)
        preds.append(pd.DataFrame({"arm": arm, "example": range(len(ids)), "label": labels, "predicted": p,
                                   "p_last": p_last}))
    preds = pd.concat(preds, ignore_index=True)
    ref = preds[preds["arm"] == "fp32"].set_index("example")["predicted"]
    for row in rows:
        mine = preds[preds["arm"] == row["arm"]].set_index("example")["predicted"]
        row["agree_fp32"] = float((mine == ref).mean())
        row["trained"] = "qat" if row["arm"] == "int8_qat" else "fp32_recipe"
    arms = pd.DataFrame(rows)

    load_before = os.getloadavg()
    latency = measure_latency(models, ids[:n_latency], pad_id=tok.pad_token_id or 0, batch_sizes=batch_sizes,
                              repeats=repeats, threads=threads, token_types=token_types)
    load_after = os.getloadavg()

    n_linear = sum(fp32.get_submodule(n).weight.numel() for n in quantized)
    n_all = sum(p.numel() for p in fp32.parameters())
    emb = sum(p.numel() for n, p in fp32.named_parameters() if "embeddings" in n)
    lat_med = latency.groupby(["arm", "batch_size"])["ms_per_example"].median()
    meta = {
        "run_id": run_id(cfg), "seed": cfg.seed, "threads": threads, "machine": machine(),
        "quantized_layers": quantized, "n_quantized_layers": len(quantized),
        "params": {"total": n_all, "linear_weights_int8": n_linear, "embeddings_fp32": emb},
        "qconfig": {"weight": "int8, per-tensor symmetric, memoryless min/max",
                    "activation": "uint8 7-bit (reduce_range), per-tensor affine, per call (dynamic)",
                    "qat_module": "torch.ao.nn.qat.dynamic.Linear + input fake quantization",
                    "qat_recipe": {"lr": cfg.lr, "epochs": cfg.epochs, "precision": trainer.cfg.precision,
                                   "schedule": cfg.schedule, "warmup": cfg.warmup}},
        "recipe_test": {k: float(v) for k, v in recipe_test.items()},
        "fit_s": fit_s, "n_test": len(ids), "n_latency": n_latency, "repeats": repeats,
        "batch_sizes": list(batch_sizes), "loadavg_before": list(load_before), "loadavg_after": list(load_after),
        "latency_median_ms": {f"{a}@{b}": float(v) for (a, b), v in lat_med.items()},
        "median_cpu_share": float(statistics.median(latency["cpu_share"])),
    }
    return {"arms": arms, "latency": latency, "predictions": preds, "train_loss": steps.reset_index(drop=True)}, meta


__all__ = ["ARMS", "BATCH_SIZES", "convert_qat", "evaluate_one_by_one", "linear_layers", "machine",
           "measure_latency", "prepare_qat", "qconfig", "quantization_study", "quantize_int8",
           "state_dict_bytes", "strip_qat"]
