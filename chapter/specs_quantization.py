"""The ``quantization`` figure (issue 15): int8 post-training quantization vs quantization-aware fine-tuning.

The base run's classifier (``S.base``: all-MiniLM-L6-v2, 1,000 reviews × 2 epochs, LR 1e-4, mean
pooling, bf16 autocast, 48 tokens) is fine-tuned again per seed in a cached study
(:func:`ftcore.analysis.quantization.quantization_study`), once as it is and once with
quantization-aware training, and every arm is measured: test accuracy, bytes on disk, CPU latency.
The study's arms are not run records, so the figure presents them to the validity gate and the
claims as a RunSet of light results (:class:`ArmResult`), one per (arm, seed): input ``gate_arms``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import viz
from ftcore.analysis import quantization as quant
from ftcore.records.runset import RunSet

from .claims import Claim
from .registry import FigureSpec, StudyNeed, Value, figure
from .specs import all_runs

N_LATENCY, REPEATS, THREADS = 64, 7, 1  # 64 test reviews timed, 7 interleaved repeats, 1 thread
PREFIX = "study_"  # inputs named study_<seed>


def study_need(S, seed: int) -> StudyNeed:
    cfg = S.base.replace(seed=seed)
    n, reps = S.pick(N_LATENCY, 8), S.pick(REPEATS, 2)
    return StudyNeed("quantization", {"run": cfg.identity_dict(), "model": cfg.model, "n_latency": n,
                                      "repeats": reps, "threads": THREADS},
                     lambda: quant.quantization_study(cfg, n_latency=n, repeats=reps, threads=THREADS))


def needs(S) -> dict:
    """One study per paired seed (each resumable on its own), then ``gate_arms``: the same studies
    read back as a RunSet of (arm, seed) results for the validity gate and the claims (the studies
    are collected first, so this only loads what is stored)."""
    from ftcore.records.studies import study
    out = {f"{PREFIX}{s}": study_need(S, s) for s in S.seeds}

    def arms():
        return arms_runset([study(n.name, n.params, n.compute, runs_dir=S.runs_dir, render_only=True)
                            for n in out.values()])
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
        return float(self.row.get(name, math.nan)) if split == "test" else math.nan


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


CAPTION = {
    "zh": "基准分类器（all-MiniLM-L6-v2，1,000 条影评训练 2 轮，学习率 1e-4，均值池化，bf16 自动混合精度，48 个词元）"
          "的五种形态，每个种子重新微调一次：fp32；bf16（全部权重转为 bf16）；int8 训练后动态量化（torch.ao 的 quantize_dynamic："
          "全部 37 个 nn.Linear——6 层 × query/key/value/注意力输出/中间层/输出，加分类头——权重为 int8、每个矩阵一个对称尺度，"
          "输入在每次调用时按张量动态量化（x86 内核用 7 位）；嵌入、LayerNorm 保持 fp32）；同上并把嵌入表也存为 8 位"
          "（仅权重，每行一个尺度）；int8 量化感知微调（同一配方与种子，训练全程对同样的 37 个线性层的权重与输入做伪量化，"
          "观测器为无记忆的当前最小/最大值，学习率 1e-4，2 轮；训练后经同一 quantize_dynamic 调用转为 int8）。"
          "测试准确率为 500 条测试影评逐条输入（种子配对，95% t 区间）；大小为 torch.save(state_dict) 的字节数；"
          "延迟为 1 个线程、64 条测试影评、批大小 1 与 32 下每条的中位数（7 次交错重复 × 各种子，误差线为四分位距），"
          "黑色菱形为计时线程自身的 CPU 时间（不受其他进程抢占影响）；只对测量所用的这台 CPU 成立，测量时其他进程也在运行。",
    "en": "The base classifier (all-MiniLM-L6-v2, 1,000 reviews × 2 epochs, LR 1e-4, mean pooling, bf16 autocast, "
          "48 tokens) in five forms, fine-tuned anew per seed: fp32; bf16 (every weight cast); int8 post-training "
          "dynamic quantization (torch.ao quantize_dynamic on all 37 nn.Linear layers, i.e. 6 layers × query/key/value/"
          "attention output/intermediate/output plus the classifier head: int8 weights with one symmetric scale per "
          "matrix, inputs quantized per tensor at every call, 7-bit on the x86 kernel; embeddings and LayerNorm stay "
          "fp32); the same with the embedding tables also stored in 8 bits (weight-only, one scale per row); and int8 "
          "quantization-aware fine-tuning (same recipe and seed, weights and inputs of the same 37 Linear layers "
          "fake-quantized throughout training with memoryless min/max observers, LR 1e-4, 2 epochs, then converted by "
          "the same quantize_dynamic call). Test accuracy on 500 test reviews fed one at a time (seed-paired, 95% t "
          "intervals); size = bytes of torch.save(state_dict); latency = median per review on 1 thread over 64 test "
          "reviews at batch 1 and 32 (7 interleaved repeats × seeds; bars show the interquartile range; black "
          "diamonds: the timing thread's own CPU time, which other processes do not inflate), valid for the CPU it "
          "was measured on only, with other processes running.",
}

figure(FigureSpec(
    "quantization", "seed 003", {"zh": "量化：训练后 int8 与量化感知微调", "en": "Quantization: post-training int8 vs quantization-aware fine-tuning"},
    CAPTION, needs,
    {"zh": "种子材料称量化感知微调能让模型为低精度部署做好准备（暗示它比直接量化保留更多准确率）。",
     "en": "The seed material presents quantization-aware fine-tuning as preparing a model for low-precision "
           "deployment (implying it keeps more accuracy than quantizing afterwards)."},
    _measure,
    draw=viz.quantization,
    # every compared arm (each seed's five) must have learned the task
    must_learn={"gate_arms": all_runs},
    claims=[Claim({"zh": "fp32 优于训练后 int8", "en": "fp32 beats post-training int8"},
                  {"arm": "fp32"}, {"arm": "int8_ptq"}, input="gate_arms"),
            Claim({"zh": "量化感知微调的 int8 优于训练后 int8", "en": "Quantization-aware int8 beats post-training int8"},
                  {"arm": "int8_qat"}, {"arm": "int8_ptq"}, input="gate_arms"),
            Claim({"zh": "fp32 优于量化感知微调的 int8", "en": "fp32 beats quantization-aware int8"},
                  {"arm": "fp32"}, {"arm": "int8_qat"}, input="gate_arms"),
            Claim({"zh": "fp32 优于 bf16", "en": "fp32 beats bf16"},
                  {"arm": "fp32"}, {"arm": "bf16"}, input="gate_arms")]))

__all__ = ["ArmResult", "arms_runset", "needs", "study_need"]
