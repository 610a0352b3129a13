"""Section 3.2.1-3.2.2: the fine-tuning pipeline, starting points, per-layer learning rates,
basic schedules, the loss landscape, freezing strategies, gradual unfreezing and layer drift.

Axes-level functions (``plot_*``) draw one panel from tidy data (a RunSet's tables or a record);
figure-level functions, one per figure id (``concept``, ``strategies``, ``layer_lr``,
``schedules_basic``, ``landscape``, ``freeze_map``, ``freeze_effects``, ``unfreeze``,
``layer_drift``), compose them. Every number drawn is read from the inputs.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.ticker import MaxNLocator

from ftcore.records.record import RunRecord

from ftcore.records.runset import RunSet, mean_sd
from .text import STRINGS, register, t
from .theme import current_lang, strong

register({
    "zh": {
        # layer groups (shared by every figure of this module)
        "freeze-map.group.embeddings": "词嵌入", "freeze-map.group.layer": "第 {i} 层",
        "freeze-map.group.pooler": "池化层", "freeze-map.group.head": "分类头",
        "freeze-map.group.prompt": "提示向量",
        # concept
        "concept.title": "微调流程：预训练模型 + 新任务头",
        "concept.model": "预训练模型", "concept.model_arch": "{layers} 层 Transformer 编码器",
        "concept.model_dims": "隐藏维度 {hidden} · 词表 {vocab} 个词元",
        "concept.model_params": "参数总量 {params}",
        "concept.data": "任务数据集", "concept.data_labels": "类别：{labels}",
        "concept.data_sizes": "{splits}", "concept.split.train": "训练 {n}",
        "concept.split.validation": "验证 {n}", "concept.split.test": "测试 {n}",
        "concept.data_used": "本次运行用了 {n} 条训练样本",
        "concept.new_head": "新任务头（随机初始化，{k} 类）",
        "concept.tower": "微调时的层组与参数量",
        "concept.result": "微调结果（基准运行）",
        "concept.result_acc": "测试准确率 {acc}",
        "concept.result_n": "（测试集 {n} 条）",
        "concept.result_steps": "{steps} 步 · 训练 {secs} 秒",
        "concept.result_trainable": "可训练参数 {pct}",
        "concept.arrow_init": "载入预训练权重",
        "concept.arrow_data": "有标签的样本",
        "concept.arrow_out": "评估",
        "concept.missing": "未知",
        # strategies
        "strategies.title": "从头训练、预训练+微调、冻结+微调",
        "strategies.full": "预训练+微调", "strategies.random": "从头训练", "strategies.frozen": "冻结+微调",
        "strategies.size": "训练集大小（条，对数坐标）",
        "strategies.acc_title": "测试准确率随训练集大小的变化",
        "strategies.time_title": "训练时间（训练集 {n} 条）",
        "strategies.params_title": "可训练参数量",
        "strategies.params_axis": "可训练参数（个，对数坐标）",
        "strategies.total": "模型总参数 {n}",
        "strategies.seed_dots": "单个随机种子",
        # layer-lr
        "layer-lr.title": "每层的学习率：统一、逐层衰减、判别式",
        "layer-lr.uniform": "统一学习率", "layer-lr.layerwise": "逐层衰减（α = {a}）",
        "layer-lr.discriminative": "判别式（每层除以 {f}）",
        "layer-lr.axis": "学习率（对数坐标）",
        "layer-lr.panel": "第 {step} 步优化器参数组中的学习率",
        # schedules-basic
        "schedules-basic.title": "四种基本衰减调度",
        "schedules-basic.constant": "恒定", "schedules-basic.linear": "线性衰减",
        "schedules-basic.cosine": "余弦衰减", "schedules-basic.exponential": "指数衰减",
        "schedules-basic.panel": "分类头参数组的学习率（记录自训练过程）",
        "schedules-basic.warmup": "预热结束（第 {n} 步）",
        # landscape
        "landscape.title": "微调的损失地形",
        "landscape.alpha": "α：沿 θ₁ − θ₀ 方向",
        "landscape.beta": "β：随机方向（滤波归一化）",
        "landscape.surface": "θ₀ 与 θ₁ 所在平面上的{split}损失",
        "landscape.line": "θ₀ → θ₁ 的一维插值",
        "landscape.path": "优化路径（投影）",
        "landscape.theta0": "θ₀ 预训练", "landscape.theta1": "θ₁ 微调后",
        "landscape.norm": "‖θ₁ − θ₀‖ = {d}",
        "landscape.off_plane": "路径离开平面的最大距离 = {d} ‖θ₁ − θ₀‖",
        "landscape.loss_split": "{split}损失", "landscape.acc_split": "{split}准确率",
        "landscape.split.validation": "验证", "landscape.split.test": "测试", "landscape.split.train": "训练",
        "landscape.n_eval": "{split}集 {n} 条样本",
        # freeze-map / effects / unfreeze
        "freeze-map.title": "冻结策略图：真实的层组",
        "freeze-map.none": "全部微调", "freeze-map.bottom": "冻结底层", "freeze-map.middle": "冻结中间层",
        "freeze-map.head_only": "只训练头部（池化层+分类器）", "freeze-map.gradual": "渐进解冻",
        "freeze-map.trainable": "训练开始时可训练", "freeze-map.frozen": "训练开始时冻结",
        "freeze-map.unfrozen_at": "第 {step} 步解冻",
        "freeze-map.row_total": "可训练 {n}（{pct}）",
        "freeze-map.strategy": "冻结策略",
        "freeze-effects.title": "冻结策略的实测效果",
        "freeze-effects.acc": "测试准确率", "freeze-effects.time": "训练时间",
        "freeze-effects.memory": "训练峰值内存", "freeze-effects.spread": "随机种子之间的离散度",
        "freeze-effects.sd_axis": "测试准确率的标准差",
        "freeze-effects.need2": "需要 ≥ 2 个种子\n（n = {n}）",
        "unfreeze.title": "渐进解冻：何时解冻、每层的学习率",
        "unfreeze.lr_panel": "渐进解冻（种子 {seed}）：每个层组的实际学习率",
        "unfreeze.frozen": "冻结（学习率 0）", "unfreeze.event": "解冻事件",
        "unfreeze.val_panel": "验证准确率",
        # layer-drift
        "layer-drift.title": "每一层改变了多少",
        "layer-drift.change": "权重相对变化 ‖Δw‖ / ‖w‖（对数坐标）",
        "layer-drift.change_panel": "全量微调后各层组的权重变化",
        "layer-drift.cka": "与预训练模型的线性 CKA",
        "layer-drift.cka_panel": "各层表示与预训练模型的相似度",
        "layer-drift.note": "运行 {run} · 测试准确率 {acc} · CKA 用 {n} 条样本",
    },
    "en": {
        "freeze-map.group.embeddings": "embeddings", "freeze-map.group.layer": "layer {i}",
        "freeze-map.group.pooler": "pooler", "freeze-map.group.head": "head",
        "freeze-map.group.prompt": "prompt",
        "concept.title": "Fine-tuning: a pretrained model plus a new head",
        "concept.model": "Pretrained model", "concept.model_arch": "{layers}-layer Transformer encoder",
        "concept.model_dims": "hidden size {hidden} · vocabulary {vocab} tokens",
        "concept.model_params": "{params} parameters in total",
        "concept.data": "Task dataset", "concept.data_labels": "labels: {labels}",
        "concept.data_sizes": "{splits}", "concept.split.train": "train {n}",
        "concept.split.validation": "validation {n}", "concept.split.test": "test {n}",
        "concept.data_used": "this run trained on {n} examples",
        "concept.new_head": "new head (random init, {k} classes)",
        "concept.tower": "Layer groups and their parameters",
        "concept.result": "Result (base run)",
        "concept.result_acc": "test accuracy {acc}",
        "concept.result_n": "({n} test examples)",
        "concept.result_steps": "{steps} steps · {secs} s of training",
        "concept.result_trainable": "trainable parameters {pct}",
        "concept.arrow_init": "pretrained weights",
        "concept.arrow_data": "labelled examples",
        "concept.arrow_out": "evaluate",
        "concept.missing": "unknown",
        "strategies.title": "From scratch, fine-tuning, frozen encoder",
        "strategies.full": "pretrained + fine-tuning", "strategies.random": "from scratch",
        "strategies.frozen": "frozen encoder + head",
        "strategies.size": "training-set size (examples, log scale)",
        "strategies.acc_title": "Test accuracy vs training-set size",
        "strategies.time_title": "Training time ({n} training examples)",
        "strategies.params_title": "Trainable parameters",
        "strategies.params_axis": "trainable parameters (log scale)",
        "strategies.total": "all parameters: {n}",
        "strategies.seed_dots": "single seeds",
        "layer-lr.title": "Per-layer learning rates",
        "layer-lr.uniform": "uniform", "layer-lr.layerwise": "layer-wise decay (α = {a})",
        "layer-lr.discriminative": "discriminative (÷ {f} per layer)",
        "layer-lr.axis": "learning rate (log scale)",
        "layer-lr.panel": "Learning rate of the optimizer's parameter groups at step {step}",
        "schedules-basic.title": "Four basic decay schedules",
        "schedules-basic.constant": "constant", "schedules-basic.linear": "linear decay",
        "schedules-basic.cosine": "cosine decay", "schedules-basic.exponential": "exponential decay",
        "schedules-basic.panel": "Learning rate of the head's parameter group, recorded during training",
        "schedules-basic.warmup": "end of warmup (step {n})",
        "landscape.title": "The loss landscape of fine-tuning",
        "landscape.alpha": "α: along θ₁ − θ₀",
        "landscape.beta": "β: random direction (filter-normalized)",
        "landscape.surface": "{split} loss on the plane through θ₀ and θ₁",
        "landscape.line": "1-D interpolation θ₀ → θ₁",
        "landscape.path": "optimization path (projected)",
        "landscape.theta0": "θ₀ pretrained", "landscape.theta1": "θ₁ fine-tuned",
        "landscape.norm": "‖θ₁ − θ₀‖ = {d}",
        "landscape.off_plane": "largest distance of the path from the plane = {d} ‖θ₁ − θ₀‖",
        "landscape.loss_split": "{split} loss", "landscape.acc_split": "{split} accuracy",
        "landscape.split.validation": "validation", "landscape.split.test": "test",
        "landscape.split.train": "training",
        "landscape.n_eval": "{n} {split} examples",
        "freeze-map.title": "Freezing map of the real layer groups",
        "freeze-map.none": "nothing frozen", "freeze-map.bottom": "bottom frozen",
        "freeze-map.middle": "middle frozen", "freeze-map.head_only": "head only (pooler + classifier)",
        "freeze-map.gradual": "gradual unfreezing",
        "freeze-map.trainable": "trainable at the start", "freeze-map.frozen": "frozen at the start",
        "freeze-map.unfrozen_at": "unfrozen at\nstep {step}",
        "freeze-map.row_total": "trainable {n} ({pct})",
        "freeze-map.strategy": "freezing strategy",
        "freeze-effects.title": "Measured effects of freezing strategies",
        "freeze-effects.acc": "Test accuracy", "freeze-effects.time": "Training time",
        "freeze-effects.memory": "Peak memory during training", "freeze-effects.spread": "Spread across seeds",
        "freeze-effects.sd_axis": "s.d. of test accuracy",
        "freeze-effects.need2": "needs ≥ 2 seeds\n(n = {n})",
        "unfreeze.title": "Gradual unfreezing: when, and each group's LR",
        "unfreeze.lr_panel": "Gradual unfreezing (seed {seed}): each group's effective LR",
        "unfreeze.frozen": "frozen (LR 0)", "unfreeze.event": "unfreezing event",
        "unfreeze.val_panel": "Validation accuracy",
        "layer-drift.title": "How much each layer changed",
        "layer-drift.change": "relative weight change ‖Δw‖ / ‖w‖ (log scale)",
        "layer-drift.change_panel": "Weight change per layer group after full fine-tuning",
        "layer-drift.cka": "linear CKA to the pretrained model",
        "layer-drift.cka_panel": "Similarity of each layer's representations to the pretrained model",
        "layer-drift.note": "run {run} · test accuracy {acc} · CKA on {n} examples",
    },
})

STRATEGY_ORDER = ("full", "frozen", "random")
FREEZE_ORDER = ("none", "bottom", "middle", "head_only", "gradual")
DIVERGED_STYLE = dict(marker="X", color="#d62728", s=60, zorder=5, linewidths=0)


# ------------------------------------------------------------------------------------ helpers
def _has(key: str) -> bool:
    return key in STRINGS[current_lang()]


def _name(prefix: str, name) -> str:
    """The translated label of a run/condition name, or the name itself if none is registered."""
    key = f"{prefix}.{name}"
    return t(key) if _has(key) else str(name)


def _group_key(group: str) -> tuple:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return (1, int(m.group(1)))
    return {"prompt": (0, -1), "embeddings": (0, 0), "pooler": (2, 0), "head": (3, 0)}.get(group, (4, group))


def _group_order(groups) -> list[str]:
    """Layer groups in depth order: (prompt,) embeddings, layer.0 … layer.N, pooler, head."""
    return sorted(dict.fromkeys(groups), key=_group_key)


def _group_label(group: str) -> str:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return t("freeze-map.group.layer", i=m.group(1))
    return _name("freeze-map.group", group)


def _count(n: float) -> str:
    """A parameter count, short: 22.7M, 1.77M, 148K, 770."""
    if n is None or not np.isfinite(n):
        return t("concept.missing")
    n = float(n)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{n:.0f}"


def _pct(p: float) -> str:
    if not np.isfinite(p):
        return t("concept.missing")
    return f"{p:.0f}%" if p >= 10 else (f"{p:.1f}%" if p >= 0.1 else f"{p:.2g}%")


def _ordered(values, preferred: Sequence[str]) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def _palette(names: Sequence) -> dict:
    import seaborn as sns
    cols = sns.color_palette("colorblind", max(len(names), 1))
    return {n: cols[i] for i, n in enumerate(names)}


def _layer_lr_table(lrs: pd.DataFrame) -> pd.DataFrame:
    """One LR per (labels…, step, layer group): the max over that group's param groups."""
    keys = [c for c in lrs.columns if c not in ("group", "lr")]
    return lrs.groupby(keys, sort=False, dropna=False)["lr"].max().reset_index()


def _trainable_table(layer_state: pd.DataFrame, steps: Sequence[int]) -> pd.DataFrame:
    """Whether each group was trainable during update ``s`` (state recorded after step ``s-1``):
    a frame indexed by step with one boolean column per group."""
    ls = layer_state.sort_values("step", kind="stable")
    out = {}
    for g, df in ls.groupby("group", sort=False):
        state = df.drop_duplicates("step", keep="last").set_index("step")["trainable"]
        col = []
        for s in steps:
            before = state[state.index <= s - 1]
            col.append(bool(before.iloc[-1]) if len(before) else bool(state.iloc[0]))
        out[g] = col
    return pd.DataFrame(out, index=list(steps))


def _dots(ax: Axes, x, values, statuses, color, *, jitter: float = 0.0, shift: float = 0.0,
          log: bool = False, label: str | None = None) -> None:
    """The individual seeds: dots, with diverged runs as red crosses (at the axis bottom if their
    value is not a number)."""
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    statuses = np.asarray(statuses, dtype=object)
    offs = np.zeros(len(values))
    for u in np.unique(x):  # spread the seeds at each x
        idx = np.flatnonzero(x == u)
        offs[idx] = (np.arange(len(idx)) - (len(idx) - 1) / 2) * jitter
    xs = x * 10 ** (offs + shift) if log else x + offs + shift
    ok = statuses != "diverged"
    if ok.any():
        ax.scatter(xs[ok], values[ok], s=14, color=color, alpha=0.55, edgecolor="none", zorder=4, label=label)
    bad = ~ok
    if bad.any():
        fin = bad & np.isfinite(values)
        if fin.any():
            ax.scatter(xs[fin], values[fin], **DIVERGED_STYLE, label=t("diverged"))
        nan = bad & ~np.isfinite(values)
        if nan.any():
            ax.scatter(xs[nan], np.zeros(nan.sum()), transform=ax.get_xaxis_transform(),
                       clip_on=False, **DIVERGED_STYLE, label=None if fin.any() else t("diverged"))


def _fam() -> list[str]:
    """The theme's font list as an explicit family list, so that glyphs missing from the first
    font (θ₀'s subscripts in Noto Sans SC) fall back to the next: the generic "sans-serif" family
    resolves to its first font only."""
    return list(mpl.rcParams["font.sans-serif"])


def _fam_latin() -> list[str]:
    """DejaVu Sans first (for ‖, θ₀, Δ in mixed labels), the theme's fonts after it for the rest."""
    return ["DejaVu Sans"] + [f for f in mpl.rcParams["font.sans-serif"] if f != "DejaVu Sans"]


def _legend_dedup(ax: Axes, **kw):
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        if lab and not lab.startswith("_") and lab not in seen:
            seen[lab] = h
    return ax.legend(list(seen.values()), list(seen.keys()), **kw)


# ------------------------------------------------------------------------------------ concept
def _sizes(meta: dict) -> dict:
    sizes = meta.get("sizes") or {}
    if callable(sizes):  # a Task.sizes method passed instead of its value
        sizes = sizes()
    return dict(sizes)


def _box(ax: Axes, x, y, w, h, lines: list[str], *, face, edge, title_weight=None, fontsize=10,
         pad=0.012) -> FancyBboxPatch:
    box = FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad={pad}", facecolor=face, edgecolor=edge,
                         linewidth=1.4, transform=ax.transAxes, zorder=2)
    ax.add_patch(box)
    n = len(lines)
    for i, line in enumerate(lines):
        yy = y + h - (i + 0.5) * h / n
        ax.text(x + w / 2, yy, line, ha="center", va="center", transform=ax.transAxes, zorder=3,
                fontsize=fontsize + (1 if i == 0 else 0), fontweight=(title_weight or strong()) if i == 0 else "normal")
    return box


def _arrow(ax: Axes, start, end, text: str | None = None, *, rad=0.0, text_offset=(0, 0.03)):
    arr = FancyArrowPatch(start, end, transform=ax.transAxes, arrowstyle="-|>", mutation_scale=16,
                          linewidth=1.6, color="0.3", connectionstyle=f"arc3,rad={rad}", zorder=1)
    ax.add_patch(arr)
    if text:
        mx, my = (start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", transform=ax.transAxes, fontsize=9, color="0.25")
    return arr


def plot_concept_diagram(meta: dict, *, record: RunRecord, ax: Axes | None = None) -> Axes:
    """The fine-tuning pipeline as boxes and arrows: the pretrained model (``meta``: model, layers,
    hidden, vocab; total parameters from the record), its layer groups with their parameter counts
    (the record's ``layer_state``), the task dataset (name, labels, split sizes), the new head and
    the run's test accuracy."""
    ax = ax or plt.gca()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    miss = t("concept.missing")
    s = record.summary

    def num(v):
        return f"{v:,}" if isinstance(v, (int, np.integer)) else (miss if v is None else str(v))

    # left column: model (top) and data (bottom)
    model_lines = [t("concept.model"), str(meta.get("model") or miss),
                   t("concept.model_arch", layers=num(meta.get("layers"))),
                   t("concept.model_dims", hidden=num(meta.get("hidden")), vocab=num(meta.get("vocab"))),
                   t("concept.model_params", params=_count(s.get("total_params", np.nan)))]
    _box(ax, 0.02, 0.56, 0.25, 0.38, model_lines, face="#e8f0fa", edge="#4c72b0")
    sizes = _sizes(meta)
    split_text = " · ".join(t(f"concept.split.{k}", n=f"{v:,}") if _has(f"concept.split.{k}") else f"{k} {v:,}"
                            for k, v in sizes.items())
    labels = meta.get("labels") or s.get("label_names") or []
    data_lines = [t("concept.data"), str(meta.get("task") or record.config.get("task") or miss),
                  t("concept.data_labels", labels=" / ".join(map(str, labels)) or miss),
                  t("concept.data_sizes", splits=split_text or miss)]
    if "train_examples" in s:
        data_lines.append(t("concept.data_used", n=f"{s['train_examples']:,}"))
    _box(ax, 0.02, 0.06, 0.25, 0.38, data_lines, face="#eaf5ea", edge="#55a868")

    # middle: the layer groups as a tower, embeddings at the bottom, the new head on top
    ls = record.layer_state
    first = ls.sort_values("step", kind="stable").drop_duplicates("group", keep="first").set_index("group")
    groups = _group_order(first.index)
    x0, w, top, bottom = 0.44, 0.22, 0.90, 0.06
    gap = 0.008
    h = (top - bottom - gap * (len(groups) - 1)) / max(len(groups), 1)
    ax.text(x0 + w / 2, top + 0.035, t("concept.tower"), ha="center", va="bottom", transform=ax.transAxes,
            fontsize=10, fontweight=strong())
    for i, g in enumerate(groups):
        y = bottom + i * (h + gap)
        is_head = g == "head"
        face, edge = ("#fde9d9", "#dd8452") if is_head else ("#f2f2f2", "0.45")
        label = (t("concept.new_head", k=s.get("num_labels", len(labels) or miss)) if is_head
                 else _group_label(g))
        box = FancyBboxPatch((x0, y), w, h, boxstyle="round,pad=0.002", facecolor=face, edgecolor=edge,
                             linewidth=1.2, transform=ax.transAxes, zorder=2)
        ax.add_patch(box)
        ax.text(x0 + 0.01, y + h / 2, label, ha="left", va="center", transform=ax.transAxes, fontsize=9, zorder=3)
        ax.text(x0 + w - 0.01, y + h / 2, _count(first.loc[g, "n_params"]), ha="right", va="center",
                transform=ax.transAxes, fontsize=9, zorder=3, family="DejaVu Sans")

    # right: the result of the base run
    acc = record.metric("accuracy", "test")
    n_test = (s.get("eval_examples") or {}).get("test")
    res_lines = [t("concept.result"), t("concept.result_acc", acc=f"{acc:.3f}" if np.isfinite(acc) else miss)]
    if n_test:
        res_lines.append(t("concept.result_n", n=f"{n_test:,}"))
    if "steps" in s and "train_s" in s:
        res_lines.append(t("concept.result_steps", steps=s["steps"], secs=f"{s['train_s']:.1f}"))
    if "trainable_pct_at_end" in s:
        res_lines.append(t("concept.result_trainable", pct=_pct(s["trainable_pct_at_end"])))
    _box(ax, 0.76, 0.30, 0.22, 0.40, res_lines, face="#f4eefa", edge="#8172b3")

    _arrow(ax, (0.285, 0.75), (x0 - 0.01, 0.75), t("concept.arrow_init"), text_offset=(0, 0.012))
    _arrow(ax, (0.285, 0.25), (x0 - 0.01, 0.25), t("concept.arrow_data"), text_offset=(0, 0.012))
    _arrow(ax, (x0 + w + 0.01, 0.5), (0.745, 0.5), t("concept.arrow_out"), text_offset=(0, 0.012))
    return ax


def concept(runs: RunSet, meta: dict) -> Figure:
    """Figure ``concept``: the fine-tuning pipeline drawn from real metadata and the base run."""
    record = runs.records[0]
    fig, ax = plt.subplots(figsize=(13, 6), layout="constrained")
    plot_concept_diagram(meta, record=record, ax=ax)
    fig.suptitle(t("concept.title"))
    return fig


# ------------------------------------------------------------------------------------ strategies
def plot_accuracy_vs_size(finals: pd.DataFrame, *, by: str = "strategy", x: str = "size",
                          order: Sequence | None = None, label_prefix: str = "strategies",
                          chance: float | None = None, ax: Axes | None = None) -> Axes:
    """Test accuracy (``value``) against training-set size (log x), one line per ``by``: mean ± s.d.
    over seeds, each seed a dot, diverged runs as red crosses; ``chance`` as a dotted line."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or STRATEGY_ORDER)
    pal = _palette(order)
    n = finals["seed"].nunique() if "seed" in finals else 1
    dodge = 0.02  # decades between the strategies at one size, so their bars and dots stay apart
    for i, name in enumerate(order):
        shift = (i - (len(order) - 1) / 2) * dodge
        df = finals[finals[by] == name]
        ok = df[np.isfinite(df["value"].astype(float))]
        st = mean_sd(ok, x).sort_values(x) if len(ok) else pd.DataFrame(columns=[x, "mean", "sd"])
        ax.errorbar(st[x].astype(float) * 10 ** shift, st["mean"], yerr=st["sd"].where(st["sd"] > 0),
                    color=pal[name], marker="o", ms=6, lw=2, capsize=4, label=_name(label_prefix, name), zorder=3)
        _dots(ax, df[x], df["value"], df["status"], pal[name], jitter=0.006, shift=shift, log=True)
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, color="0.4", ls=":", lw=1.3, label=t("chance"), zorder=1)
    sizes = sorted(finals[x].unique())
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{s:,}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel(t("strategies.size"))
    ax.set_ylabel(t("test_accuracy"))
    ax.set_title(t("strategies.acc_title"))
    seed_handle = Line2D([], [], ls="none", marker="o", ms=4, color="0.5", alpha=0.6)
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels) if lab]
    keep = list(dict((lab, h) for h, lab in keep).items())
    ax.legend([h for _, h in keep] + [seed_handle], [lab for lab, _ in keep] + [t("strategies.seed_dots")],
              title=t("seeds_n", n=n), fontsize=9, title_fontsize=9, loc="best")
    return ax


def plot_metric_by_strategy(finals: pd.DataFrame, value: str, *, by: str = "strategy",
                            order: Sequence | None = None, label_prefix: str = "freeze-map",
                            ylabel: str | None = None, title: str | None = None,
                            ax: Axes | None = None) -> Axes:
    """One bar per ``by`` value: the mean of column ``value`` over seeds, s.d. error bar, seeds as
    dots (diverged runs as red crosses)."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or [])
    pal = _palette(order)
    for i, name in enumerate(order):
        df = finals[finals[by] == name]
        vals = df[value].astype(float)
        fin = vals[np.isfinite(vals)]
        mean = fin.mean() if len(fin) else np.nan
        sd = fin.std(ddof=1) if len(fin) > 1 else np.nan
        ax.bar(i, mean, color=pal[name], alpha=0.75, width=0.65, zorder=2)
        if np.isfinite(sd) and sd > 0:
            ax.errorbar(i, mean, yerr=sd, color="0.15", capsize=5, lw=1.4, zorder=3)
        _dots(ax, np.full(len(df), i, dtype=float), vals, df["status"], "0.15", jitter=0.08)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([_name(label_prefix, n) for n in order])
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if (finals["status"] == "diverged").any():
        _legend_dedup(ax, fontsize=9)
    return ax


def plot_trainable_params(finals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                          label_prefix: str = "strategies", ax: Axes | None = None) -> Axes:
    """Trainable parameters at the end of training per ``by`` value (log y), labelled with the
    count and share; the model's total parameter count as a dashed line."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or STRATEGY_ORDER)
    pal = _palette(order)
    for i, name in enumerate(order):
        df = finals[finals[by] == name]
        n = float(df["trainable_params_at_end"].median())
        pct = float(df["trainable_pct_at_end"].median())
        ax.bar(i, n, color=pal[name], alpha=0.8, width=0.65, zorder=2)
        ax.text(i, n * 1.25, f"{_count(n)}\n({_pct(pct)})", ha="center", va="bottom", fontsize=9)
    total = float(finals["total_params"].max()) if "total_params" in finals else np.nan
    ax.set_yscale("log")
    if np.isfinite(total):
        ax.axhline(total, color="0.3", ls="--", lw=1.2, zorder=1, label=t("strategies.total", n=_count(total)))
        ax.legend(fontsize=9, loc="upper center")
    lo = float(finals["trainable_params_at_end"].min())
    ax.set_ylim(max(lo / 5, 0.5), (total if np.isfinite(total) else lo) * 40)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([_name(label_prefix, n) for n in order])
    ax.set_ylabel(t("strategies.params_axis"))
    ax.set_title(t("strategies.params_title"))
    return ax


def strategies(runs: RunSet) -> Figure:
    """Figure ``strategies``: from scratch vs fine-tuning vs frozen encoder, accuracy vs size
    (left), training time (middle) and trainable parameters (right)."""
    f = runs.finals("accuracy", "test")
    order = _ordered(f["strategy"], STRATEGY_ORDER)
    n_labels = [rec.summary.get("num_labels") for rec in runs.records]
    n_labels = [k for k in n_labels if k]
    chance = 1.0 / n_labels[0] if n_labels else None
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 5.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1.7, 1, 1]})
    plot_accuracy_vs_size(f, order=order, chance=chance, ax=axes[0])
    largest = f["size"].max()
    plot_metric_by_strategy(f[f["size"] == largest], "train_s", order=order, label_prefix="strategies",
                            ylabel=t("wall_s"), title=t("strategies.time_title", n=f"{largest:,}"), ax=axes[1])
    plot_trainable_params(f[f["size"] == largest], order=order, ax=axes[2])
    for ax in axes[1:]:
        ax.tick_params(axis="x", labelsize=9)
        plt.setp(ax.get_xticklabels(), rotation=15, ha="right")
    fig.suptitle(t("strategies.title"))
    return fig


# ------------------------------------------------------------------------------------ layer-lr
def _lr_strategy_label(name: str, config: dict | None = None) -> str:
    config = config or {}
    if name.startswith("layerwise"):
        a = config.get("layer_decay")
        if a is None:
            m = re.search(r"_([\d.]+)$", name)
            a = m.group(1) if m else "?"
        return t("layer-lr.layerwise", a=f"{float(a):g}" if a != "?" else a)
    if name.startswith("discriminative"):
        f = config.get("discriminative_factor")
        return t("layer-lr.discriminative", f=f"{float(f):g}" if f is not None else "?")
    return _name("layer-lr", name)


def plot_layer_lrs(lrs: pd.DataFrame, *, by: str = "strategy", step: int = 1,
                   labels: dict | None = None, ax: Axes | None = None) -> Axes:
    """The learning rate of each layer group (max over its param groups) at ``step``, one line
    per ``by`` value, groups in depth order, log y."""
    ax = ax or plt.gca()
    df = lrs[lrs["step"] == step]
    per = _layer_lr_table(df[[by, "step", "layer", "group", "lr"]])
    groups = _group_order(per["layer"])
    pos = {g: i for i, g in enumerate(groups)}
    names = list(dict.fromkeys(per[by]))
    pal = _palette(names)
    markers = "osD^vP*"
    for k, name in enumerate(names):
        d = per[per[by] == name].copy()
        d["x"] = d["layer"].map(pos)
        d = d.sort_values("x")
        ax.plot(d["x"], d["lr"], marker=markers[k % len(markers)], color=pal[name], lw=2, ms=7,
                label=(labels or {}).get(name, _lr_strategy_label(name)))
    ax.set_yscale("log")
    ax.margins(y=0.08)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([_group_label(g) for g in groups])
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-lr.axis"))
    ax.set_title(t("layer-lr.panel", step=step))
    ax.legend(fontsize=10, loc="best")
    return ax


def layer_lr(runs: RunSet) -> Figure:
    """Figure ``layer-lr``: each layer group's LR at step 1, read from the optimizer's groups."""
    labels = {lab["strategy"]: _lr_strategy_label(lab["strategy"], rec.config) for lab, rec in runs}
    lrs = runs.table("lrs")
    step = int(lrs["step"].min())
    fig, ax = plt.subplots(figsize=(11, 5.2), layout="constrained")
    plot_layer_lrs(lrs, step=step, labels=labels, ax=ax)
    fig.suptitle(t("layer-lr.title"))
    return fig


# ------------------------------------------------------------------------------------ schedules-basic
def plot_head_lr_schedules(lrs: pd.DataFrame, *, by: str = "schedule", layer: str = "head",
                           warmup_steps: int | None = None, ax: Axes | None = None) -> Axes:
    """LR of one layer group (default the head) per step, one line per ``by`` value; the end of
    warmup (if given) as a dotted line."""
    ax = ax or plt.gca()
    d = _layer_lr_table(lrs[lrs["layer"] == layer][[by, "step", "layer", "group", "lr"]])
    names = list(dict.fromkeys(d[by]))
    pal = _palette(names)
    styles = ["-", "--", "-.", ":"]
    for k, name in enumerate(names):
        s = d[d[by] == name].sort_values("step")
        ax.plot(s["step"], s["lr"], color=pal[name], ls=styles[k % len(styles)], lw=2.2,
                marker="o" if len(s) <= 12 else None, ms=5, label=_name("schedules-basic", name))
    if warmup_steps:
        ax.axvline(warmup_steps, color="0.4", ls=":", lw=1.2, label=t("schedules-basic.warmup", n=warmup_steps))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("lr"))
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_ylim(bottom=0)
    ax.set_title(t("schedules-basic.panel"))
    ax.legend(fontsize=10, loc="best")
    return ax


def schedules_basic(runs: RunSet) -> Figure:
    """Figure ``schedules-basic``: the head group's recorded LR per step for four schedules."""
    warm = [rec.summary.get("warmup_steps") for rec in runs.records]
    warm = [w for w in warm if w]
    fig, ax = plt.subplots(figsize=(11, 5), layout="constrained")
    plot_head_lr_schedules(runs.table("lrs"), warmup_steps=max(warm) if warm else None, ax=ax)
    fig.suptitle(t("schedules-basic.title"))
    return fig


# ------------------------------------------------------------------------------------ landscape
def _split_name(meta: dict) -> str:
    split = (meta or {}).get("eval_split", "validation")
    return _name("landscape.split", split)


def plot_loss_surface(surface: pd.DataFrame, *, path: pd.DataFrame | None = None, meta: dict | None = None,
                      colorbar: bool = True, ax: Axes | None = None) -> Axes:
    """Filled contours of ``loss`` over (alpha, beta), the projected optimization path, θ₀ at (0, 0)
    and θ₁ at (1, 0)."""
    ax = ax or plt.gca()
    meta = meta or {}
    grid = surface.pivot_table(index="beta", columns="alpha", values="loss")
    A, B = np.meshgrid(grid.columns.to_numpy(float), grid.index.to_numpy(float))
    cs = ax.contourf(A, B, grid.to_numpy(float), levels=14, cmap="viridis")
    ax.contour(A, B, grid.to_numpy(float), levels=cs.levels, colors="white", linewidths=0.4, alpha=0.5)
    if colorbar:
        cb = ax.figure.colorbar(cs, ax=ax, shrink=0.9)
        cb.set_label(t("landscape.loss_split", split=_split_name(meta)), fontfamily=_fam())
    if path is not None and len(path):
        ax.plot(path["alpha"], path["beta"], color="#c44e52", lw=2, marker="o", ms=4, mec="white", mew=0.6, zorder=3,
                label=t("landscape.path"))
    ax.scatter([0], [0], marker="o", s=90, color="#4c72b0", edgecolor="white", zorder=5, label=t("landscape.theta0"))
    ax.scatter([1], [0], marker="*", s=220, color="#dd8452", edgecolor="white", zorder=5, label=t("landscape.theta1"))
    notes = []
    if "d1_norm" in meta:
        notes.append(t("landscape.norm", d=f"{meta['d1_norm']:.3g}"))
    if path is not None and "off_plane" in path and len(path):
        notes.append(t("landscape.off_plane", d=f"{path['off_plane'].max():.2g}"))
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=8.5, va="bottom",
                fontfamily=_fam_latin(),
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.8, edgecolor="none"))
    ax.set_xlabel(t("landscape.alpha"), fontfamily=_fam())
    ax.set_ylabel(t("landscape.beta"), fontfamily=_fam())
    ax.set_title(t("landscape.surface", split=_split_name(meta)), fontfamily=_fam())
    ax.legend(loc="upper left", prop={"family": _fam(), "size": 8.5}, framealpha=0.85, frameon=True)
    ax.grid(False)
    return ax


def plot_loss_line(line: pd.DataFrame, *, meta: dict | None = None, ax: Axes | None = None) -> Axes:
    """Loss along θ₀ → θ₁ (alpha) and accuracy on a twin axis; θ₀ (alpha 0) and θ₁ (alpha 1) marked
    with the losses measured there (``meta['loss_theta0']``, ``meta['loss_theta1']``)."""
    ax = ax or plt.gca()
    meta = meta or {}
    split = _split_name(meta)
    line = line.sort_values("alpha")
    c_loss, c_acc = "#4c72b0", "#55a868"
    ax.plot(line["alpha"], line["loss"], color=c_loss, lw=2.2, marker="o", ms=5,
            label=t("landscape.loss_split", split=split))
    for a, key, lab in ((0, "loss_theta0", "theta0"), (1, "loss_theta1", "theta1")):
        ax.axvline(a, color="0.5", ls=":", lw=1.2)
        ax.text(a, 1.01, t(f"landscape.{lab}"), transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=9, fontfamily=_fam())
        if key in meta and meta[key] is not None:
            ax.scatter([a], [meta[key]], marker="*" if a else "o", s=120 if a else 60, color=c_loss,
                       edgecolor="white", zorder=5)
    ax.set_xlabel(t("landscape.alpha"), fontfamily=_fam())
    ax.set_ylabel(t("landscape.loss_split", split=split), color=c_loss)
    ax.set_title(t("landscape.line"), pad=18, fontfamily=_fam())
    twin = ax.twinx()
    twin.plot(line["alpha"], line["accuracy"], color=c_acc, lw=1.8, ls="--", marker="s", ms=4,
              label=t("landscape.acc_split", split=split))
    twin.set_ylabel(t("landscape.acc_split", split=split), color=c_acc)
    twin.grid(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    title = t("landscape.n_eval", n=meta["n_eval"], split=split) if "n_eval" in meta else None
    ax.legend(h1 + h2, l1 + l2, loc="best", fontsize=9, title=title, title_fontsize=9)
    return ax


def landscape(land: dict) -> Figure:
    """Figure ``landscape``: the loss surface on the θ₀/θ₁ plane with the path (left) and the 1-D
    interpolation θ₀ → θ₁ with accuracy (right)."""
    meta = land.get("meta") or {}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), layout="constrained", gridspec_kw={"width_ratios": [1.2, 1]})
    plot_loss_surface(land["surface"], path=land.get("path"), meta=meta, ax=axes[0])
    plot_loss_line(land["line"], meta=meta, ax=axes[1])
    fig.suptitle(t("landscape.title"))
    return fig


# ------------------------------------------------------------------------------------ freeze-map
def _unfreeze_steps(layer_state: pd.DataFrame, events: pd.DataFrame | None = None) -> dict[str, int]:
    """Group → the step at which it became trainable after starting frozen."""
    out = {}
    ls = layer_state.sort_values("step", kind="stable")
    for g, df in ls.groupby("group", sort=False):
        if not bool(df["trainable"].iloc[0]):
            on = df[df["trainable"].astype(bool) & (df["step"] > df["step"].iloc[0])]
            if len(on):
                out[g] = int(on["step"].iloc[0])
    if events is not None and len(events):
        for _, e in events[events["kind"] == "unfreeze"].iterrows():
            out.setdefault(str(e["detail"]), int(e["step"]))
    return out


def plot_freeze_map(layer_state: pd.DataFrame, *, by: str = "strategy", events: pd.DataFrame | None = None,
                    order: Sequence | None = None, ax: Axes | None = None) -> Axes:
    """Rows = ``by`` values, columns = layer groups in depth order; colour = trainable at the
    first recorded step, text = the group's parameter count (and, for groups unfrozen later, the
    step they were unfrozen); right of each row, the trainable total at the start."""
    ax = ax or plt.gca()
    rows = _ordered(layer_state[by], order or FREEZE_ORDER)
    groups = _group_order(layer_state["group"])
    start = (layer_state.sort_values("step", kind="stable").drop_duplicates([by, "group"], keep="first")
             .set_index([by, "group"]))
    Z = np.full((len(rows), len(groups)), np.nan)
    for i, r in enumerate(rows):
        for j, g in enumerate(groups):
            if (r, g) in start.index:
                Z[i, j] = float(bool(start.loc[(r, g), "trainable"]))
    c_on, c_off = "#55a868", "#d9d9d9"
    cmap = mcolors.ListedColormap([c_off, c_on])
    ax.pcolormesh(np.arange(len(groups) + 1), np.arange(len(rows) + 1), np.ma.masked_invalid(Z),
                  cmap=cmap, vmin=0, vmax=1, edgecolors="white", linewidth=2)
    for i, r in enumerate(rows):
        ls_r = layer_state[layer_state[by] == r]
        ev_r = events[events[by] == r] if events is not None and len(events) and by in events else None
        later = _unfreeze_steps(ls_r, ev_r)
        total, trainable = 0, 0
        for j, g in enumerate(groups):
            if (r, g) not in start.index:
                continue
            n = int(start.loc[(r, g), "n_params"])
            on = bool(start.loc[(r, g), "trainable"])
            total += n
            trainable += n if on else 0
            text = _count(n)
            if g in later:
                text += "\n" + t("freeze-map.unfrozen_at", step=later[g])
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=8 if "\n" in text else 9.5,
                    color="white" if on else "0.15", fontweight=strong() if on else "normal")
        pct = 100.0 * trainable / total if total else np.nan
        ax.text(len(groups) + 0.1, i + 0.5, t("freeze-map.row_total", n=_count(trainable), pct=_pct(pct)),
                ha="left", va="center", fontsize=9, clip_on=False)
    ax.set_xlim(0, len(groups))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(groups)) + 0.5)
    ax.set_xticklabels([_group_label(g) for g in groups])
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([_name("freeze-map", r) for r in rows])
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("freeze-map.strategy"))
    ax.grid(False)
    ax.tick_params(length=0)
    ax.legend(handles=[Patch(facecolor=c_on, label=t("freeze-map.trainable")),
                       Patch(facecolor=c_off, label=t("freeze-map.frozen"))],
              loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, fontsize=9)
    return ax


def freeze_map(runs: RunSet) -> Figure:
    """Figure ``freeze-map``: which layer groups each freezing strategy trains, from the records."""
    first_seed = runs.values("seed")[0] if runs.values("seed") else None
    sel = runs.select(seed=first_seed) if first_seed is not None else runs
    fig, ax = plt.subplots(figsize=(13, 4.8), layout="constrained")
    plot_freeze_map(sel.table("layer_state"), events=sel.table("events"), ax=ax)
    fig.suptitle(t("freeze-map.title"))
    return fig


# ------------------------------------------------------------------------------------ freeze-effects
def plot_seed_sd(finals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                 label_prefix: str = "freeze-map", ax: Axes | None = None) -> Axes:
    """The standard deviation of ``value`` across seeds per ``by`` value (a bar where n ≥ 2, a note
    where fewer seeds finished)."""
    ax = ax or plt.gca()
    order = _ordered(finals[by], order or [])
    pal = _palette(order)
    short = []
    for i, name in enumerate(order):
        vals = finals.loc[finals[by] == name, "value"].astype(float)
        vals = vals[np.isfinite(vals)]
        if len(vals) >= 2:
            sd = float(vals.std(ddof=1))
            ax.bar(i, sd, color=pal[name], alpha=0.8, width=0.65, zorder=2)
            ax.text(i, sd, f"{sd:.3f}", ha="center", va="bottom", fontsize=9)
        else:
            short.append((i, len(vals)))
    for i, n in short:
        ax.text(i, 0.5, t("freeze-effects.need2", n=n), transform=ax.get_xaxis_transform(), ha="center",
                va="center", fontsize=8.5, color="0.35")
    ax.margins(y=0.12)
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([_name(label_prefix, n) for n in order])
    ax.set_ylabel(t("freeze-effects.sd_axis"))
    ax.set_title(t("freeze-effects.spread"))
    return ax


def freeze_effects(runs: RunSet) -> Figure:
    """Figure ``freeze-effects``: test accuracy, training time, peak memory and the spread across
    seeds per freezing strategy."""
    f = runs.finals("accuracy", "test")
    order = _ordered(f["strategy"], FREEZE_ORDER)
    n = runs.n_seeds()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 8.5), layout="constrained")
    plot_metric_by_strategy(f, "value", order=order, ylabel=t("test_accuracy"), title=t("freeze-effects.acc"),
                            ax=axes[0, 0])
    plot_metric_by_strategy(f, "train_s", order=order, ylabel=t("wall_s"), title=t("freeze-effects.time"),
                            ax=axes[0, 1])
    plot_metric_by_strategy(f, "peak_rss_mb", order=order, ylabel=t("peak_mb"), title=t("freeze-effects.memory"),
                            ax=axes[1, 0])
    plot_seed_sd(f, order=order, ax=axes[1, 1])
    fig.suptitle(t("freeze-effects.title") + "\n" + t("seeds_n", n=n))
    return fig


# ------------------------------------------------------------------------------------ unfreeze
def plot_unfreeze_lrs(record: RunRecord, *, colorbar: bool = True, ax: Axes | None = None) -> Axes:
    """Each layer group's effective LR per step (0 while frozen, grey) as a heatmap, head on top;
    the recorded unfreezing events as markers on the boundary where each group starts training."""
    ax = ax or plt.gca()
    lrs = _layer_lr_table(record.lrs[["step", "layer", "group", "lr"]])
    steps = sorted(lrs["step"].unique())
    groups = _group_order(lrs["layer"])[::-1]  # head at the top
    wide = lrs.pivot_table(index="layer", columns="step", values="lr").reindex(index=groups, columns=steps)
    if len(record.layer_state):
        tr = _trainable_table(record.layer_state, steps).T.reindex(index=groups).fillna(True).astype(bool)
        wide = wide.where(tr.to_numpy(), 0.0)
    Z = wide.to_numpy(float)
    cmap = plt.get_cmap("magma_r").with_extremes(under="#e6e6e6")
    pos = Z[Z > 0]
    vmin = float(pos.min()) if len(pos) else 1e-12
    vmax = float(pos.max()) if len(pos) else 1.0
    if vmax <= vmin:
        vmax = vmin * 1.0001
    edges = np.concatenate([[steps[0] - 0.5], np.asarray(steps, float) + 0.5]) if steps else np.array([0, 1])
    mesh = ax.pcolormesh(edges, np.arange(len(groups) + 1), np.where(Z > 0, Z, vmin * 0.5), cmap=cmap,
                         vmin=vmin, vmax=vmax, edgecolors="white", linewidth=0.3 if len(steps) < 60 else 0)
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, extend="min", shrink=0.9)
        cb.set_label(t("lr"))
        cb.formatter.set_powerlimits((-3, 3))
    ev = record.events
    ev = ev[ev["kind"] == "unfreeze"] if len(ev) else ev
    row = {g: i for i, g in enumerate(groups)}
    xs, ys = [], []
    for _, e in ev.iterrows():
        if e["detail"] in row:
            xs.append(int(e["step"]) + 0.5)
            ys.append(row[e["detail"]] + 0.5)
    if xs:
        ax.scatter(xs, ys, marker="|", s=260, linewidths=3, color="#1f77b4", zorder=4, clip_on=False,
                   label=t("unfreeze.event"))
    ax.set_yticks(np.arange(len(groups)) + 0.5)
    ax.set_yticklabels([_group_label(g) for g in groups])
    ax.set_ylim(len(groups), 0)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("layer_group"))
    ax.grid(False)
    handles = [Patch(facecolor="#e6e6e6", label=t("unfreeze.frozen"))]
    if xs:
        handles.append(Line2D([], [], marker="|", ls="none", ms=12, mew=3, color="#1f77b4", label=t("unfreeze.event")))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, fontsize=9)
    if len(steps) <= 12:
        ax.set_xticks(steps)
    return ax


def plot_val_accuracy_curves(evals: pd.DataFrame, *, by: str = "strategy", order: Sequence | None = None,
                             label_prefix: str = "freeze-map", ax: Axes | None = None) -> Axes:
    """Validation accuracy per step, one line per ``by`` value: the mean over seeds with a ± s.d.
    band (when there are ≥ 2 seeds) and each seed as a thin line."""
    ax = ax or plt.gca()
    order = _ordered(evals[by], order or FREEZE_ORDER)
    pal = _palette(order)
    n = evals["seed"].nunique() if "seed" in evals else 1
    for name in order:
        d = evals[evals[by] == name]
        if "seed" in d and n > 1:
            for _, s in d.groupby("seed"):
                ax.plot(s["step"], s["value"], color=pal[name], lw=0.7, alpha=0.35)
        st = mean_sd(d, "step").sort_values("step")
        ax.plot(st["step"], st["mean"], color=pal[name], lw=2.2, marker="o" if len(st) <= 12 else None,
                label=_name(label_prefix, name))
        if (st["n"] > 1).any():
            ax.fill_between(st["step"], st["mean"] - st["sd"], st["mean"] + st["sd"], color=pal[name], alpha=0.18,
                            lw=0)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("val_accuracy"))
    ax.set_title(t("unfreeze.val_panel"))
    ax.legend(title=t("seeds_n", n=n), fontsize=9, title_fontsize=9, loc="best")
    return ax


def unfreeze(runs: RunSet) -> Figure:
    """Figure ``unfreeze``: the gradual run's per-group LR and unfreezing events (left), validation
    accuracy of gradual unfreezing vs full fine-tuning (right)."""
    seeds = runs.values("seed")
    rec = runs.one(strategy="gradual", seed=seeds[0]) if seeds else runs.one(strategy="gradual")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained", gridspec_kw={"width_ratios": [1.25, 1]})
    plot_unfreeze_lrs(rec, ax=axes[0])
    axes[0].set_title(t("unfreeze.lr_panel", seed=seeds[0] if seeds else "-"), pad=28)
    plot_val_accuracy_curves(runs.evals("accuracy", "validation"), order=["gradual", "none"], ax=axes[1])
    fig.suptitle(t("unfreeze.title"))
    return fig


# ------------------------------------------------------------------------------------ layer-drift
def plot_layer_drift(drift: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars of ``relative_change`` (‖Δw‖/‖w‖) per layer group, depth order, log y."""
    ax = ax or plt.gca()
    groups = _group_order(drift["group"])
    d = drift.set_index("group").reindex(groups)
    ax.bar(range(len(groups)), d["relative_change"], color="#4c72b0", alpha=0.85, zorder=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([_group_label(g) for g in groups])
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-drift.change"), fontfamily=_fam_latin())
    ax.set_title(t("layer-drift.change_panel"))
    return ax


def plot_layer_cka(drift: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Linear CKA of each layer's representations to the pretrained model's (groups without a
    representation, e.g. the head, are left out)."""
    ax = ax or plt.gca()
    groups = [g for g in _group_order(drift["group"])]
    d = drift.set_index("group").reindex(groups)
    d = d[np.isfinite(d["cka"].astype(float))]
    ax.plot(range(len(d)), d["cka"], color="#dd8452", marker="o", lw=2, ms=7)
    ax.set_xticks(range(len(d)))
    ax.set_xticklabels([_group_label(g) for g in d.index])
    ax.margins(y=0.15)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel(t("layer_group"))
    ax.set_ylabel(t("layer-drift.cka"))
    ax.set_title(t("layer-drift.cka_panel"))
    return ax


def layer_drift(study) -> Figure:
    """Figure ``layer-drift``: relative weight change and CKA per layer after full fine-tuning."""
    drift = study.tables["drift"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    plot_layer_drift(drift, ax=axes[0])
    plot_layer_cka(drift, ax=axes[1])
    meta = getattr(study, "meta", {}) or {}
    title = t("layer-drift.title")
    if {"run_id", "test_accuracy", "n_examples"} <= set(meta):
        acc = meta["test_accuracy"]
        title += "\n" + t("layer-drift.note", run=meta["run_id"], acc=f"{acc:.3f}", n=meta["n_examples"])
    fig.suptitle(title)
    return fig


__all__ = [
    "concept", "strategies", "layer_lr", "schedules_basic", "landscape", "freeze_map", "freeze_effects",
    "unfreeze", "layer_drift",
    "plot_concept_diagram", "plot_accuracy_vs_size", "plot_metric_by_strategy", "plot_trainable_params",
    "plot_layer_lrs", "plot_head_lr_schedules", "plot_loss_surface", "plot_loss_line", "plot_freeze_map",
    "plot_seed_sd", "plot_unfreeze_lrs", "plot_val_accuracy_curves", "plot_layer_drift", "plot_layer_cka",
]
