"""Seed 003's quantization (issue 15; notebook 12), the ``quantization`` figure: int8 post-training
quantization vs quantization-aware fine-tuning.

The base run's classifier (``S.base``) is fine-tuned again per seed in a cached study
(:func:`ftcore.analysis.quantization.quantization_study`), once as it is and once with
quantization-aware training, and every arm is measured: test accuracy, bytes on disk, CPU latency.
The study's arms are not run records, so the figure presents them to the validity gate and the
claims as a RunSet of light results (:class:`ArmResult`), one per (arm, seed): input ``gate_arms``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import viz
from ftcore import RunConfig
from ftcore.analysis import quantization as quant
from ftcore.records.runset import RunSet

from ..registry import FigureSpec, StudyNeed, Value, figure
from .base import LAYERS, all_runs, beats
from .captions import held_out, lr, n, one, pooling, regime_text

N_LATENCY, REPEATS, THREADS = 64, 7, 1  # 64 test reviews timed, 7 interleaved repeats, 1 thread
PREFIX = "study_"  # inputs named study_<seed>


def study_need(S, seed: int) -> StudyNeed:
    cfg = S.base.replace(seed=seed)
    n_lat, reps = S.pick(N_LATENCY, 8), S.pick(REPEATS, 2)
    return StudyNeed("quantization", {"run": cfg.identity_dict(), "model": cfg.model, "n_latency": n_lat,
                                      "repeats": reps, "threads": THREADS},
                     lambda: quant.quantization_study(cfg, n_latency=n_lat, repeats=reps, threads=THREADS))


def needs(S) -> dict:
    """One study per paired seed (each resumable on its own), then ``gate_arms``: the same studies
    read back as a RunSet of (arm, seed) results for the validity gate and the claims (the studies
    are collected first, so this only loads what is stored)."""
    from ftcore.records.studies import study
    out = {f"{PREFIX}{s}": study_need(S, s) for s in S.seeds}

    def arms():
        return arms_runset([study(need.name, need.params, need.compute, runs_dir=S.runs_dir, render_only=True)
                            for need in out.values()])
    return {**out, "gate_arms": Value(arms)}


@dataclass
class ArmResult:
    """One arm of one seed's study, read like a RunRecord by the gate and the claims (test metrics)."""
    run_id: str
    row: dict
    status: str = "completed"
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    def metric(self, name: str, split: str = "test", task=None) -> float:
        key = name if split == "test" else f"{split}_{name}"  # validation: measured where the run evaluated it
        return float(self.row.get(key, math.nan))


def arms_runset(studies) -> RunSet:
    """The studies' arms as ``({"arm", "seed"}, ArmResult)`` pairs."""
    items = []
    for st in studies:
        for row in st["arms"].to_dict("records"):
            items.append(({"arm": row["arm"], "seed": int(st.meta["seed"])},
                          ArmResult(f"{st.meta['run_id']}/{row['arm']}", row)))
    return RunSet(items)


def _measure(inputs):
    from viz.quantization import quantization_summary
    s = quantization_summary([v for k, v in inputs.items() if k.startswith(PREFIX)])
    zh = "；".join(f"{viz.t('quantization.arm.' + a, 'zh')} {r.acc:.3f}、{r.size_mb:.1f} MB、单条 {r.lat1:.2f} ms"
                  for a, r in s.iterrows())
    en = "; ".join(f"{viz.t('quantization.arm.' + a, 'en')} {r.acc:.3f}, {r.size_mb:.1f} MB, {r.lat1:.2f} ms/review at batch 1"
                   for a, r in s.iterrows())
    return {"zh": "测试准确率、磁盘大小、延迟：" + zh, "en": "Test accuracy, size on disk, latency: " + en, "differs": None}


LINEARS = 6 * LAYERS + 1  # query/key/value/attention output/intermediate/output per layer, plus the head
PRECISION = {"bf16": ("bf16 自动混合精度", "bf16 autocast"), "fp32": ("fp32", "fp32")}


def _caption(S) -> dict:
    studies = [need.params for k, need in needs(S).items() if k.startswith(PREFIX)]
    cfg = one(RunConfig.from_dict(p["run"]).replace(seed=0) for p in studies)  # the base run, per seed
    n_lat, reps = one(p["n_latency"] for p in studies), one(p["repeats"] for p in studies)
    b1, b2 = quant.BATCH_SIZES
    zh_p, en_p = PRECISION[cfg.precision]
    tested = {"zh": f"{n(cfg.test_size)} 条" if cfg.test_size else "全部", "en": n(cfg.test_size) if cfg.test_size else "all"}
    how = ({"zh": f"基准设置与其学习率在验证集上选定（{held_out('zh')}），量化感知微调沿用同一配方；各形态的验证准确率供有效性检查，测试集只测一次。",
            "en": f" The base settings and LR were chosen on the validation split ({held_out('en')}); quantization-aware "
                  "fine-tuning keeps the same recipe; each form's validation accuracy feeds the validity gate, test is measured once."}
           if S.reviewed else {"zh": "", "en": ""})
    return {
        "zh": f"基准分类器（{cfg.model}，{regime_text(cfg, 'zh', reviews=True)}，{pooling(cfg, 'zh')}，{zh_p}，{cfg.max_length} 个词元）"
              f"的五种形态，每个种子重新微调一次：fp32；bf16（全部权重转为 bf16）；int8 训练后动态量化（torch.ao 的 quantize_dynamic："
              f"全部 {LINEARS} 个 nn.Linear——{LAYERS} 层 × query/key/value/注意力输出/中间层/输出，加分类头——权重为 int8、每个矩阵一个对称尺度，"
              "输入在每次调用时按张量动态量化（x86 内核用 7 位）；嵌入、LayerNorm 保持 fp32）；同上并把嵌入表也存为 8 位"
              f"（仅权重，每行一个尺度）；int8 量化感知微调（同一配方与种子，训练全程对同样的 {LINEARS} 个线性层的权重与输入做伪量化，"
              f"观测器为无记忆的当前最小/最大值，学习率 {lr(cfg.lr)}，{n(cfg.epochs)} 轮；训练后经同一 quantize_dynamic 调用转为 int8）。"
              f"测试准确率为{tested['zh']}测试影评逐条输入（种子配对，95% t 区间）；大小为 torch.save(state_dict) 的字节数；"
              f"延迟为 {THREADS} 个线程、{n_lat} 条测试影评、批大小 {b1} 与 {b2} 下每条的中位数（{reps} 次交错重复 × 各种子，误差线为四分位距），"
              "黑色菱形为计时线程自身的 CPU 时间（不受其他进程抢占影响）；只对测量所用的这台 CPU 成立，测量时其他进程也在运行。" + how["zh"],
        "en": f"The base classifier ({cfg.model}, {regime_text(cfg, 'en', reviews=True)}, {pooling(cfg, 'en')}, {en_p}, "
              f"{cfg.max_length} tokens) in five forms, fine-tuned anew per seed: fp32; bf16 (every weight cast); int8 post-training "
              f"dynamic quantization (torch.ao quantize_dynamic on all {LINEARS} nn.Linear layers, i.e. {LAYERS} layers × query/key/value/"
              "attention output/intermediate/output plus the classifier head: int8 weights with one symmetric scale per "
              "matrix, inputs quantized per tensor at every call, 7-bit on the x86 kernel; embeddings and LayerNorm stay "
              "fp32); the same with the embedding tables also stored in 8 bits (weight-only, one scale per row); and int8 "
              f"quantization-aware fine-tuning (same recipe and seed, weights and inputs of the same {LINEARS} Linear layers "
              f"fake-quantized throughout training with memoryless min/max observers, LR {lr(cfg.lr)}, {n(cfg.epochs)} epochs, then "
              f"converted by the same quantize_dynamic call). Test accuracy on {tested['en']} test reviews fed one at a time "
              f"(seed-paired, 95% t intervals); size = bytes of torch.save(state_dict); latency = median per review on {THREADS} "
              f"thread over {n_lat} test reviews at batch {b1} and {b2} ({reps} interleaved repeats × seeds; bars show the "
              "interquartile range; black diamonds: the timing thread's own CPU time, which other processes do not inflate), "
              "valid for the CPU it was measured on only, with other processes running." + how["en"],
    }


QUANTIZATION_CLAIMS = beats(
    "arm",
    ("fp32", "int8_ptq", "fp32 优于训练后 int8", "fp32 beats post-training int8"),
    ("int8_qat", "int8_ptq", "量化感知微调的 int8 优于训练后 int8", "Quantization-aware int8 beats post-training int8"),
    ("fp32", "int8_qat", "fp32 优于量化感知微调的 int8", "fp32 beats quantization-aware int8"),
    ("fp32", "bf16", "fp32 优于 bf16", "fp32 beats bf16"), input="gate_arms")

figure(FigureSpec(id="quantization", section="seed 003", notebooks=("12",),
                  caption=_caption, needs=needs,
                  measure=_measure, draw=viz.quantization,
                  # every compared arm (each seed's five) must have learned the task
                  must_learn={"gate_arms": all_runs},
                  claims=QUANTIZATION_CLAIMS, reviewed=True, selections=("regime", "base")))

__all__ = ["ArmResult", "arms_runset", "needs", "study_need"]
