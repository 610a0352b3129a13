"""Every figure of section 3.2 (``shared/FIGURES.md``): the runs it needs and what to report.

Grids vary one knob of the scale's base run (``scale.FULL.base``) and repeat noisy comparisons over
the scale's seeds. Captions and the chapter's claims are written in our words; the chapter's own
numbers were invented, so a claim is described, and the measurement beside it comes from records.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import viz
from ftcore import RunConfig
from ftcore.analysis import figure_studies as analyses
from ftcore.analysis.continual import ContinualConfig
from ftcore.analysis.landscape import LandscapeConfig
from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
from ftcore.records.queries import mean_sd, run_failed
from .claims import Claim, RateClaim
from .registry import FigureSpec, Grid, LandscapeNeed, Sequences, StudyNeed, Value, figure

# Each method at the learning rate that suits it, from the recorded sweep on the base regime
# (``python -m chapter.pilot --sweep``, seed 0, test accuracy): full fine-tuning 3e-5 .778 / 1e-4 .788
# / 3e-4 .794 (the base keeps 1e-4, the pilot's choice over 5 seeds); a head on the frozen encoder's
# mean-pooled features, 20 epochs: .738-.746 for any LR in 1e-3..3e-2; random init 3e-4 (1e-3
# collapses); LoRA r=8 3e-3 .796; BitFit 3e-3 .780; prompt tuning 3e-2, 6 epochs .752.
HEAD_LR, RANDOM_LR, LORA_LR, BITFIT_LR, PROMPT_LR = 1e-3, 3e-4, 3e-3, 3e-3, 3e-2
# chapter.pilot --sweep (seed 0, test accuracy): adapters 3e-4 0.766, 1e-3 0.802, 3e-3 0.752; prefix
# tuning 1e-3 0.762, 3e-3 0.754, 1e-2 collapsed to one class. At 1e-3 × 2 epochs prefix tuning
# collapsed in seed 3 of 5 (record kept): it trains 6 epochs, as slow-starting prompt tuning does (seed 0:
# 3e-4 0.772, 1e-3 0.778), at the lower LR, the further one from the collapse.
ADAPTER_LR, PREFIX_LR, PREFIX_EPOCHS = 1e-3, 3e-4, 6
PROMPT_EPOCHS = 6  # prompt tuning was still learning at 2 epochs (.718) and reached .752 at 6
# "Frozen encoder + head": the checkpoint's own mean pooling over the frozen encoder, a linear head
# trained to convergence at its own LR. With frozen dropout off the encoder's features are computed
# once and cached, so 20 epochs cost seconds.
FROZEN = {"freeze": "head_only", "frozen_dropout": False, "lr": HEAD_LR, "epochs": 20}
RISKY_LR = 6e-4  # pilot (500 reviews × 2 epochs, no clipping, no warmup, constant LR, fp32): 1 of 2
# seeds collapsed to the majority class at 6e-4, both at 1.5e-3 and 3e-3


def all_runs(labels: dict) -> bool:
    """must_learn predicate: every run of the input."""
    return True


def arms(key: str, *names) -> Callable[[dict], bool]:
    """must_learn predicate: the runs whose ``key`` label is one of ``names``."""
    return lambda labels: labels.get(key) in names


def but(key: str, *names) -> Callable[[dict], bool]:
    """must_learn predicate: every run except those whose ``key`` label is one of ``names``."""
    return lambda labels: labels.get(key) not in names


def seeds_grid(S, variants: dict[str, dict], key: str, seeds=None, base: RunConfig | None = None) -> Grid:
    base = base or S.base
    return Grid([({key: name, "seed": s}, base.replace(seed=s, **kw))
                 for name, kw in variants.items() for s in (seeds or S.seeds)])


def with_curves(S, every: int = 8) -> RunConfig:
    """The base run, also evaluated on a fixed 250 validation examples every ``every`` steps."""
    return S.base.replace(eval_splits=("validation",), eval_every=S.pick(every, 1), eval_size=S.pick(250, 32))


def finals_by(inputs, name, key, metric="accuracy", split="test"):
    return mean_sd(inputs[name].finals(metric, split), key).set_index(key)


def _zh(prefix: str, key: str, lang: str = "zh") -> str:
    """The reader's label of a grid value (from viz's string table), so no code name reaches a note."""
    from viz.text import t
    try:
        return t(f"{prefix}.{key}", lang=lang)
    except KeyError:
        return key


def _en(prefix: str, key: str) -> str:
    return _zh(prefix, key, "en")


def _text(zh: str, en: str, differs: bool | None = None) -> dict:
    return {"zh": zh, "en": en, "differs": differs}


# ------------------------------------------------------------------------------------ 3.2.1
def _concept_meta():
    from ftcore.engine.models import resolve_model
    from ftcore.engine.tasks import load_task
    import json
    src = resolve_model(FULL_MODEL)
    cfg = json.loads((Path(src.path) / "config.json").read_text()) if src.path else {}
    task = load_task("rt-sentiment")
    return {"model": FULL_MODEL, "layers": cfg.get("num_hidden_layers"), "hidden": cfg.get("hidden_size"),
            "vocab": cfg.get("vocab_size"), "task": task.name, "labels": list(task.label_names),
            "sizes": task.sizes()}


FULL_MODEL = RunConfig().model

figure(FigureSpec(
    "concept", "3.2.1", {"zh": "微调流程：预训练模型 + 新任务头", "en": "Fine-tuning: a pretrained model plus a new head"},
    {"zh": "图中的名称与数字均取自真实资产与记录：模型层数、各层组参数量、数据集大小、一次基准微调的结果。",
     "en": "Names and numbers come from the real assets and a recorded run: layers, parameters per layer "
           "group, dataset sizes and the result of one base fine-tuning run."},
    lambda S: {"runs": seeds_grid(S, {"base": {}}, "run", seeds=S.seeds[:1]), "meta": Value(_concept_meta)},
    draw=viz.concept, must_learn={"runs": all_runs}))


FULL_SPLIT = 8925  # reviews in the rt-sentiment training split
STRATEGY_SIZES = (100, 300, 1000, 3000, None)  # None: the whole training split


def _strategy_epochs(S, size: int | None) -> int:
    """Epochs at one training-set size: enough to see about 2,000 examples (the base run's 126 steps)
    and at least one pass, so a small set is not stopped before it has learned."""
    n = size or FULL_SPLIT
    return max(1, math.ceil(2 * S.base.train_size / n))


def _strategies(S):
    cells = []
    sizes = S.pick(STRATEGY_SIZES, (16, 48))
    for size in sizes:
        epochs = _strategy_epochs(S, size)
        arms_ = {"full": ({}, S.seeds),
                 "frozen": (dict(FROZEN, epochs=max(FROZEN["epochs"], 20 * epochs)), S.seeds),
                 # from scratch: its own LR, the same steps as fine-tuning; on the whole split (534
                 # steps of a full backward pass each) 3 seeds, where its gap is already clear
                 "random": ({"init": "random", "lr": RANDOM_LR}, S.seeds[:3] if size is None else S.seeds)}
        for name, (kw, seeds) in arms_.items():
            for s in seeds:
                cells.append(({"strategy": name, "size": size or FULL_SPLIT, "seed": s},
                              S.base.replace(train_size=size, seed=s, **{"epochs": epochs, **kw})))
    return {"runs": Grid(cells)}


def _strategies_measure(inputs):
    f = inputs["runs"].finals()
    small = f[f["size"] == f["size"].min()].groupby("strategy")["value"].mean()
    large = f[f["size"] == f["size"].max()].groupby("strategy")["value"].mean()
    frozen_beats = large.get("frozen", 0) > large.get("full", 1)
    return _text(
        f"最小训练集 ({f['size'].min()} 条) 上：预训练+微调 {small['full']:.3f}，冻结+头部 {small['frozen']:.3f}，"
        f"从头训练 {small['random']:.3f}；最大训练集上依次为 {large['full']:.3f} / {large['frozen']:.3f} / {large['random']:.3f}。"
        + ("冻结编码器在最大训练集上反而更好，与教材的排序不同。" if frozen_beats else ""),
        f"At the smallest size ({f['size'].min()} examples): fine-tuning {small['full']:.3f}, frozen encoder "
        f"{small['frozen']:.3f}, from scratch {small['random']:.3f}; at the largest {large['full']:.3f} / "
        f"{large['frozen']:.3f} / {large['random']:.3f}."
        + (" The frozen encoder wins at the largest size, unlike the chapter's ordering." if frozen_beats else ""),
        bool(frozen_beats))


figure(FigureSpec(
    "strategies", "3.2.1", {"zh": "从头训练、预训练+微调、冻结+微调", "en": "From scratch, fine-tuning, frozen encoder"},
    {"zh": f"同一结构，三种起点，训练集从 100 条到全部 8,925 条（对数横轴）。预训练+微调：学习率 {1e-4:g}，"
           "每个大小至少约 2,000 个样本次（小数据集多轮）；从头训练：学习率 3e-4（扫描所得），步数相同（全部数据时 3 个种子）；"
           f"冻结+头部：冻结编码器的均值池化特征上训练线性头部 {FROZEN['epochs']} 轮以上，学习率 {HEAD_LR:g}。"
           "误差线为 95% t 区间。右：实测训练时间与可训练参数量。",
     "en": f"One architecture, three starting points, 100 to all 8,925 training reviews (log axis). Fine-tuning: "
           f"LR {1e-4:g}, at least about 2,000 examples seen at every size (more epochs for small sets); from "
           "scratch: LR 3e-4 (swept), the same steps (3 seeds on the whole split); frozen encoder: a linear head on the frozen "
           f"encoder's mean-pooled features, at least {FROZEN['epochs']} epochs at LR {HEAD_LR:g}. Error bars: "
           "95% t intervals. Right: measured training time and trainable parameters."},
    _strategies,
    {"zh": "教材（模拟数据）称：任何数据量下预训练+微调都最好，冻结+微调次之，从头训练在小数据上远远落后；冻结的成本只有全量微调的约四分之一。",
     "en": "The chapter (simulated) claims fine-tuning wins at every size, the frozen encoder comes second, "
           "training from scratch lags far behind with little data, and freezing costs about a quarter of "
           "full fine-tuning."},
    _strategies_measure,
    draw=viz.strategies,
    # from scratch is expected to stay near the majority class on little data (that is the chapter's
    # point); it must learn on the whole split
    must_learn={"runs": lambda lab: lab["strategy"] != "random" or lab["size"] == FULL_SPLIT},
    claims=[Claim({"zh": "100 条时，微调优于冻结+头部", "en": "At 100 examples fine-tuning beats the frozen encoder"},
                  {"strategy": "full"}, {"strategy": "frozen"}, where={"size": 100}),
            Claim({"zh": "全部数据时，微调优于冻结+头部", "en": "On the whole split fine-tuning beats the frozen encoder"},
                  {"strategy": "full"}, {"strategy": "frozen"}, where={"size": FULL_SPLIT}),
            Claim({"zh": "100 条时，微调远优于从头训练", "en": "At 100 examples fine-tuning beats training from scratch"},
                  {"strategy": "full"}, {"strategy": "random"}, where={"size": 100}),
            Claim({"zh": "全部数据时，微调仍优于从头训练", "en": "On the whole split fine-tuning still beats training from scratch"},
                  {"strategy": "full"}, {"strategy": "random"}, where={"size": FULL_SPLIT})]))

# Seed 001's rule of thumb by data size: freeze the encoder below ~1k examples, layer-wise LRs from
# 1k to 10k, full fine-tuning above. The frozen and full arms are the `strategies` runs; the layer-wise
# arm decays the LR by LLRD_DECAY per layer down from the top, at the top LR its sweep chose (base
# regime, 2 seeds, validation accuracy). The whole split is 8,925 reviews: the ">10k" zone is unmeasured.
DSS_SIZES = (300, 1000, 3000, None)
LLRD_DECAY = 0.9
LLRD_SWEEP = (1e-4, 2e-4, 4e-4)
LLRD_LR = 2e-4  # sweep (validation, 2 seeds): 1e-4 0.787, 2e-4 0.791, 4e-4 0.782


def _llrd(lr: float) -> dict:
    return {"lr_strategy": "layerwise", "layer_decay": LLRD_DECAY, "lr": lr}


def _data_size_strategy(S):
    sizes = set(S.pick([s or FULL_SPLIT for s in DSS_SIZES], [48]))
    shared = [c for c in _strategies(S)["runs"].cells if c[0]["strategy"] in ("full", "frozen") and c[0]["size"] in sizes]
    layerwise = [({"strategy": "layerwise", "size": lab["size"], "seed": lab["seed"]}, cfg.replace(**_llrd(LLRD_LR)))
                 for lab, cfg in shared if lab["strategy"] == "full"]
    # chosen on validation (500 reviews, evaluated after each epoch), never on the test split
    sweep = [({"lr": lr, "seed": s, "train_size": S.base.train_size},
              S.base.replace(seed=s, eval_splits=("validation",), eval_size=S.pick(500, 32), **_llrd(lr)))
             for lr in LLRD_SWEEP for s in S.seeds[:2]]
    return {"runs": Grid(shared + layerwise), "sweep": Grid(sweep)}


def _dss_measure(inputs):
    f = inputs["runs"].finals()
    m = f.groupby(["size", "strategy"])["value"].mean().unstack()
    best = {int(size): row.idxmax() for size, row in m.iterrows()}
    zh = {"full": "全参数微调", "frozen": "冻结编码器", "layerwise": "逐层学习率"}
    rule = {size: ("frozen" if size < 1000 else "layerwise") for size in best}  # below 10k: the rule never says full
    agree = sum(best[k] == rule[k] for k in best)
    return _text("各训练集大小上均值最高的策略：" + "，".join(f"{k:,} 条 {zh[v]}" for k, v in best.items())
                 + f"；与经验规则一致的大小 {agree}/{len(best)}（是否可分辨见下方配对结论）。",
                 "Best mean per size: " + ", ".join(f"{k:,}: {v}" for k, v in best.items())
                 + f"; the rule's pick has the best mean at {agree}/{len(best)} sizes (see the paired verdicts "
                 "for which differences are detectable).", agree < len(best))


figure(FigureSpec(
    "data-size-strategy", "seed 001", {"zh": "按数据量选策略：冻结、逐层学习率、全参数微调",
                                       "en": "Choosing by data size: frozen, layer-wise LRs, full fine-tuning"},
    {"zh": f"训练集 300 / 1,000 / 3,000 / 全部 8,925 条，每个大小 5 个配对种子，误差线为 95% t 区间。全参数微调与冻结编码器即"
           f"「预训练策略」图的运行（学习率 1e-4；冻结 = 均值池化特征上的线性头部，学习率 {HEAD_LR:g}）；逐层学习率：顶层学习率 "
           f"{LLRD_LR:g}（右图扫描所得，基准设置、2 个种子、验证准确率），向下每层乘 {LLRD_DECAY:g}，轮数与全参数微调相同。"
           "中图：各策略减去全参数微调（同种子配对）。全部数据不足 1 万条，规则的「>1 万条全参数微调」一档无法测量。",
     "en": f"300 / 1,000 / 3,000 / all 8,925 training reviews, 5 paired seeds per size, error bars 95% t intervals. "
           f"Full fine-tuning and the frozen encoder are the `strategies` runs (LR 1e-4; frozen = a linear head on "
           f"mean-pooled features at LR {HEAD_LR:g}); layer-wise LRs: top LR {LLRD_LR:g} (swept on the right: base "
           f"regime, 2 seeds, validation accuracy), times {LLRD_DECAY:g} per layer down, the same epochs as full "
           "fine-tuning. Middle: each strategy minus full fine-tuning, seed-paired. The whole split is under "
           "10,000 reviews, so the rule's \">10k: full fine-tuning\" zone is not measured."},
    _data_size_strategy,
    {"zh": "种子 001 的经验规则：少于 1 千条冻结编码器，1 千到 1 万条用逐层学习率，多于 1 万条全参数微调。",
     "en": "Seed 001's rule of thumb: under 1k examples freeze the encoder, 1k-10k use layer-wise LRs, over 10k "
           "fine-tune everything."},
    _dss_measure,
    draw=viz.data_size_strategy, must_learn={"runs": all_runs},
    claims=[Claim({"zh": "300 条时冻结编码器优于全参数微调", "en": "At 300 examples the frozen encoder beats full fine-tuning"},
                  {"strategy": "frozen"}, {"strategy": "full"}, where={"size": 300}),
            Claim({"zh": "300 条时冻结编码器优于逐层学习率", "en": "At 300 examples the frozen encoder beats layer-wise LRs"},
                  {"strategy": "frozen"}, {"strategy": "layerwise"}, where={"size": 300}),
            *[Claim({"zh": f"{n:,} 条时逐层学习率优于全参数微调", "en": f"At {n:,} examples layer-wise LRs beat full fine-tuning"},
                    {"strategy": "layerwise"}, {"strategy": "full"}, where={"size": n}) for n in (1000, 3000, FULL_SPLIT)],
            *[Claim({"zh": f"{n:,} 条时逐层学习率优于冻结编码器", "en": f"At {n:,} examples layer-wise LRs beat the frozen encoder"},
                    {"strategy": "layerwise"}, {"strategy": "frozen"}, where={"size": n}) for n in (1000, 3000)]]))

figure(FigureSpec(
    "layer-lr", "3.2.1", {"zh": "每层的学习率：统一、逐层衰减、判别式", "en": "Per-layer learning rates"},
    {"zh": "学习率直接读自优化器的真实参数组（第 1 步）。", "en": "Read from the optimizer's real parameter groups at step 1."},
    lambda S: {"runs": Grid([({"strategy": name}, S.base.replace(
        max_steps=1, warmup="none", schedule="constant", test_at_end=False, **kw)) for name, kw in {
            "uniform": {"lr_strategy": "uniform"},
            "layerwise_0.95": {"lr_strategy": "layerwise", "layer_decay": 0.95},
            "layerwise_0.8": {"lr_strategy": "layerwise", "layer_decay": 0.8},
            "discriminative": {"lr_strategy": "discriminative", "discriminative_factor": 2.6}}.items()])},
    draw=viz.layer_lr, must_learn={}))  # one optimizer step: it shows the optimizer, not a result

DECAYS = {"constant": {"schedule": "constant"}, "linear": {"schedule": "linear"},
          "cosine": {"schedule": "cosine"}, "exponential": {"schedule": "exponential", "gamma": 0.05},
          "polynomial": {"schedule": "polynomial", "poly_power": 2.0},
          "step": {"schedule": "step", "step_every": 0.25, "gamma": 0.5}}


def _decay_grid(S):
    return {"runs": seeds_grid(S, DECAYS, "schedule", base=with_curves(S))}


DECAY_TARGET = 0.75  # validation accuracy whose first crossing measures convergence speed (figure and claim)


def _steps_to(target: float) -> Callable:
    """record -> the first step whose validation accuracy reaches ``target`` (the run's length + 1
    when it never does), for claims about how fast a schedule converges."""
    def steps(rec) -> float:
        ev = rec.evals
        v = ev[(ev["split"] == "validation") & (ev["metric"] == "accuracy")]
        hit = v[v["value"] >= target]
        return float(hit["step"].min()) if len(hit) else float(rec.steps["step"].max() + 1)
    return steps


figure(FigureSpec(
    "schedules-basic", "3.2.1", {"zh": "四种基本衰减调度", "en": "Four basic decay schedules"},
    {"zh": "每一步的学习率，记录自训练中的真实调度器（含 6% 线性预热）。",
     "en": "The learning rate at every step, recorded from the real schedulers during training (6% linear warmup)."},
    lambda S: {"runs": Grid([c for c in _decay_grid(S)["runs"].cells
                             if c[0]["seed"] == S.seeds[0] and c[0]["schedule"] in ("constant", "linear", "cosine", "exponential")])},
    draw=viz.schedules_basic, must_learn={"runs": all_runs}))

figure(FigureSpec(
    "landscape", "3.2.1", {"zh": "微调的损失地形", "en": "The loss landscape of fine-tuning"},
    {"zh": "穿过预训练点 θ₀ 与微调后 θ₁ 的平面上的验证损失（256 条），真实优化路径投影其上；右：θ₀→θ₁ 的一维插值。"
           "α 以微调位移 θ₁−θ₀ 为单位；β 沿按 Li 等人滤波归一化的随机方向，β = 1 时每一行权重移动其自身的范数。"
           "微调位移远小于权重本身（‖θ₁−θ₀‖ 约为 ‖θ₁‖ 的 1%），所以两条轴的尺度不同。",
     "en": "Validation loss (256 examples) on the plane through θ₀ (pretrained) and θ₁ (fine-tuned), with the real "
           "path projected; right: the 1-D interpolation θ₀→θ₁. α is in units of the fine-tuning displacement "
           "θ₁−θ₀; β follows a random direction filter-normalised as Li et al. do, β = 1 moving every weight row by "
           "its own norm. Fine-tuning moves the weights far less than their size (‖θ₁−θ₀‖ is about 1% of ‖θ₁‖), "
           "so the two axes have different scales."},
    lambda S: {"land": LandscapeNeed(S.base, LandscapeConfig(grid=S.pick(9, 3), n_eval=S.pick(256, 16),
                                                             n1d=S.pick(13, 3), beta_range=(-1.0, 1.0)))},
    {"zh": "教材用一个虚构的二次函数画地形。", "en": "The chapter draws an invented quadratic bowl."},
    draw=viz.landscape, must_learn={}))  # θ₁ is the base run (seed 0), which the concept figure gates

# ------------------------------------------------------------------------------------ 3.2.2
def _unfreeze_grid(S):
    """Gradual unfreezing against full fine-tuning for the same 4 epochs (the same optimizer steps)."""
    return {"runs": seeds_grid(S, {"gradual": GRADUAL, "none": {"epochs": GRADUAL["epochs"]}}, "strategy",
                               base=with_curves(S))}


def _memory(S, configs: dict[str, RunConfig]) -> StudyNeed:
    """Bytes training keeps for one step of each arm (ftcore.analysis.memory), on the base batch."""
    cfgs = {k: c.replace(threads=S.base.threads) for k, c in configs.items()}
    return StudyNeed("memory", {k: c.identity_dict() for k, c in cfgs.items()},
                     lambda: analyses.memory(cfgs))


# ULMFiT unfreezes one layer group per epoch, top down. Seven frozen groups (embeddings + six layers)
# would need eight epochs, so groups are unfrozen three at a time: epoch 1 the head alone, epoch 2 +
# layers 5-3, epoch 3 + layers 2-0, epoch 4 + embeddings: four epochs, twice the base run's steps.
GRADUAL = {"freeze": "gradual", "unfreeze_unit": "epoch", "unfreeze_every": 1, "unfreeze_groups": 3, "epochs": 4}
FREEZES = {"none": {}, "bottom": {"freeze": "bottom", "freeze_layers": 3},
           "middle": {"freeze": "middle", "freeze_layers": 2},
           "head_only": FROZEN,
           "gradual": GRADUAL}


def _freeze_grid(S):
    return {"runs": seeds_grid(S, FREEZES, "strategy", base=with_curves(S))}


def _freeze_measure(inputs):
    m = finals_by(inputs, "runs", "strategy")["mean"]
    order = list(m.sort_values(ascending=False).index)
    claimed = ["none", "gradual", "bottom", "middle", "head_only"]
    return _text("实测测试准确率排序：" + " > ".join(f"{_zh('freeze-map', k)} {m[k]:.3f}" for k in order)
                 + ("（与教材的排序不同）" if order != claimed else ""),
                 "Measured test accuracy, best first: " + " > ".join(f"{_en('freeze-map', k)} {m[k]:.3f}" for k in order)
                 + (" (the chapter's order differs)" if order != claimed else ""), order != claimed)


figure(FigureSpec(
    "freeze-map", "3.2.2", {"zh": "冻结策略图：真实的层组", "en": "Freezing map of the real layer groups"},
    {"zh": "颜色取自训练开始时各层组参数的 requires_grad，标注为参数量；渐进解冻一行标出真实的解冻步。",
     "en": "Colour from each group's requires_grad at the start of training, annotated with parameter counts; "
           "the gradual row marks the recorded unfreezing steps."},
    lambda S: {"runs": Grid([c for c in _freeze_grid(S)["runs"].cells if c[0]["seed"] == S.seeds[0]])},
    draw=viz.freeze_map, must_learn={"runs": all_runs}))

figure(FigureSpec(
    "freeze-effects", "3.2.2", {"zh": "冻结策略的实测效果", "en": "Measured effects of freezing strategies"},
    {"zh": "测试准确率（95% t 区间）、训练时间、训练时保存的内存（参数、梯度、优化器状态、为反向传播保存的激活，按字节计数），"
           f"以及各随机种子之间的离散度。底层 = 冻结嵌入层与第 0-2 层，中间 = 冻结第 2-3 层，学习率 {1e-4:g}；"
           f"只训练头部 = 冻结编码器上的线性头部，{FROZEN['epochs']} 轮，学习率 {HEAD_LR:g}；"
           "渐进解冻按 ULMFiT 每轮解冻一组（三层一组），共 4 轮，其余 2 轮。",
     "en": "Test accuracy (95% t intervals), training time, the memory training keeps (parameters, gradients, "
           "optimizer state and activations saved for backward, counted in bytes) and the spread across seeds. "
           f"Bottom = embeddings and layers 0-2 frozen, middle = layers 2-3 frozen, LR {1e-4:g}; head only = a "
           f"linear head on the frozen encoder, {FROZEN['epochs']} epochs at LR {HEAD_LR:g}; gradual unfreezing "
           "as ULMFiT, one group per epoch (three layers per group), 4 epochs; the others 2."},
    lambda S: {**_freeze_grid(S), "memory": _memory(S, {k: S.base.replace(**v) for k, v in FREEZES.items()})},
    {"zh": "教材（模拟数据）称准确率依次为：全部微调 > 渐进解冻 > 冻结底层 > 冻结中间层 > 只训练头部，且只训练头部最“稳定”。",
     "en": "The chapter (simulated) ranks accuracy full > gradual > bottom frozen > middle frozen > head only, "
           "and calls head-only the most stable."},
    _freeze_measure,
    draw=viz.freeze_effects, must_learn={"runs": all_runs},
    claims=[Claim({"zh": "全部微调优于渐进解冻", "en": "Full fine-tuning beats gradual unfreezing"},
                  {"strategy": "none"}, {"strategy": "gradual"}),
            Claim({"zh": "渐进解冻优于冻结底层", "en": "Gradual unfreezing beats freezing the bottom"},
                  {"strategy": "gradual"}, {"strategy": "bottom"}),
            Claim({"zh": "冻结底层优于冻结中间层", "en": "Freezing the bottom beats freezing the middle"},
                  {"strategy": "bottom"}, {"strategy": "middle"}),
            Claim({"zh": "冻结中间层优于只训练头部", "en": "Freezing the middle beats training the head only"},
                  {"strategy": "middle"}, {"strategy": "head_only"})]))

figure(FigureSpec(
    "unfreeze", "3.2.2", {"zh": "渐进解冻：何时解冻、每层的学习率", "en": "Gradual unfreezing: when, and each group's LR"},
    {"zh": "左：记录的解冻事件与每个层组逐步的学习率（冻结时为 0）；右：渐进解冻与全部微调的验证准确率，"
           "两者都训练 4 轮（相同的优化步数），学习率 1e-4。ULMFiT 每轮解冻一组；这里三层一组，否则需要 8 轮。",
     "en": "Left: recorded unfreezing events and each group's LR per step (0 while frozen); right: validation "
           "accuracy of gradual unfreezing vs full fine-tuning, both trained for 4 epochs (the same optimizer "
           "steps) at LR 1e-4. ULMFiT unfreezes one group per epoch; here three layers form a group, which "
           "would otherwise take 8 epochs."},
    _unfreeze_grid,
    {"zh": "教材称渐进解冻能更稳妥地适应新任务。", "en": "The chapter presents gradual unfreezing as a safer way to adapt."},
    draw=viz.unfreeze, must_learn={"runs": all_runs},
    claims=[Claim({"zh": "同样 4 轮，渐进解冻优于全部微调", "en": "At the same 4 epochs gradual unfreezing beats full fine-tuning"},
                  {"strategy": "gradual"}, {"strategy": "none"})]))


def _finetuned(S):
    return StudyNeed("finetuned", {"run": S.base.identity_dict(), "model": S.base.model, "n": S.pick(256, 32)},
                     lambda: analyses.finetuned(S.base, n_examples=S.pick(256, 32)))


figure(FigureSpec(
    "layer-drift", "3.2.2", {"zh": "每一层改变了多少", "en": "How much each layer changed"},
    {"zh": "基准运行（1,000 条、2 轮、学习率 1e-4）全量微调后，各预训练层组权重的相对变化 ‖Δw‖/‖w‖，以及与预训练模型表示的线性 CKA。"
           "新的分类头没有预训练权重（它从随机初始化出发），均值池化下不使用的 pooler 没有变化，二者都不画。",
     "en": "Relative weight change ‖Δw‖/‖w‖ of each pretrained layer group after full fine-tuning (the base run: "
           "1,000 reviews, 2 epochs, LR 1e-4), and linear CKA to the pretrained model's representations. The new "
           "head has no pretrained weights (it starts from a random init) and the pooler, unused under mean "
           "pooling, does not move: neither is drawn."},
    lambda S: {"study": _finetuned(S), "gate_run": seeds_grid(S, {"base": {}}, "run", seeds=S.seeds[:1])},
    draw=viz.layer_drift, must_learn={"gate_run": all_runs}))

# ------------------------------------------------------------------------------------ 3.2.3
figure(FigureSpec(
    "task-formats", "3.2.3", {"zh": "不同任务的数据格式：真实分词器与整理器的输出", "en": "Data formats: what the tokenizer and collators produce"},
    {"zh": "同一条真实影评：序列分类、词元分类（片名标注对齐到子词，-100 表示不计损失）和掩码语言模型。",
     "en": "One real review: sequence classification, token classification (film title tags aligned to word "
           "pieces, -100 = ignored) and masked language modelling."},
    lambda S: {"study": StudyNeed("task-formats", {"model": S.base.model, "max_length": S.base.max_length},
                                  lambda: analyses.task_formats(S.base.model, max_length=S.base.max_length))},
    draw=viz.task_formats, must_learn={}))  # no training

figure(FigureSpec(
    "augmentation", "3.2.3", {"zh": "真实的数据增强与模型的判断", "en": "Real augmentations and the model's verdicts"},
    {"zh": "同义词替换、随机插入、删除、交换作用于一条真实影评，并给出微调后模型对每个版本的预测。回译需要翻译模型，离线不可用，故省略。",
     "en": "Synonym replacement, random insertion, deletion and swap applied to a real review, with the "
           "fine-tuned model's prediction for each. Back-translation needs a translation model that is not "
           "available offline, so it is left out."},
    lambda S: {"study": _finetuned(S), "gate_run": seeds_grid(S, {"base": {}}, "run", seeds=S.seeds[:1])},
    draw=viz.augmentation, must_learn={"gate_run": all_runs}))

NOISE = (0.0, 0.1, 0.2, 0.4)
QUALITY_SIZES = (250, 500, 1000, 2000)


def _quality(S):
    """Every size trained for the base run's 126 steps (more epochs on small sets); the two ends of
    the noise range over all seeds (the claims compare them), 10% and 20% over three."""
    cells = []
    for size in S.pick(QUALITY_SIZES, (32, 48)):
        for noise in NOISE:
            for s in (S.seeds if noise in (0.0, 0.4) else S.seeds[:3]):
                cells.append(({"noise": noise, "size": size, "seed": s}, S.base.replace(
                    train_size=size, epochs=2 * S.base.train_size / size, label_noise=noise,
                    score_train=True, seed=s)))
    return {"runs": Grid(cells)}


figure(FigureSpec(
    "data-quality", "3.2.3", {"zh": "标签噪声的代价", "en": "What label noise costs"},
    {"zh": "左：随机翻转 0/10/20/40% 训练标签后的测试准确率（每个大小都训练 126 步，学习率 1e-4；0% 与 40% 各 5 个种子，"
           "10% 与 20% 各 3 个，误差线为 95% t 区间）；右：按训练结束时的单样本损失排序，能多准地找出被翻转的标签（precision@k）。",
     "en": "Left: test accuracy with 0/10/20/40% of training labels flipped (126 steps at every size, LR 1e-4; 0% "
           "and 40% over 5 seeds, 10% and 20% over 3; error bars 95% t intervals); right: how well the per-example "
           "training loss at the end finds the flipped labels (precision at k)."},
    _quality,
    {"zh": "教材（模拟数据）为四个虚构的“质量等级”画出随数据量上升的曲线：质量越高，准确率越高。",
     "en": "The chapter draws curves for four invented quality levels: the cleaner, the more accurate."},
    draw=viz.data_quality,
    must_learn={"runs": lambda lab: lab["noise"] < 0.4},  # 40% flipped is shown whatever it reaches
    claims=[Claim({"zh": f"{n} 条时，干净标签优于 40% 噪声", "en": f"At {n} examples clean labels beat 40% noise"},
                  {"noise": 0.0}, {"noise": 0.4}, where={"size": n}) for n in (250, 2000)]))

# ------------------------------------------------------------------------------------ 3.2.4
WARMUP_BASE = dict(lr=RISKY_LR, warmup_ratio=0.25)


def _warmup(S):
    kinds = {k: {"warmup": k} for k in ("none", "linear", "cosine", "exponential", "sqrt")}
    base = S.base.replace(**WARMUP_BASE)
    cells = [c for c in seeds_grid(S, kinds, "warmup", base=base).cells
             if c[0]["warmup"] in ("none", "linear") or c[0]["seed"] == S.seeds[0]]
    return {"runs": Grid(cells)}


def _warmup_measure(inputs):
    m = finals_by(inputs, "runs", "warmup")
    return _text(f"学习率 {RISKY_LR:g} 下，无预热 {m.loc['none', 'mean']:.3f} ± {m.loc['none', 'sd']:.3f}，"
                 f"线性预热 {m.loc['linear', 'mean']:.3f} ± {m.loc['linear', 'sd']:.3f}（n = {int(m.loc['linear', 'n'])}）。",
                 f"At LR {RISKY_LR:g}: no warmup {m.loc['none', 'mean']:.3f} ± {m.loc['none', 'sd']:.3f}, linear warmup "
                 f"{m.loc['linear', 'mean']:.3f} ± {m.loc['linear', 'sd']:.3f} (n = {int(m.loc['linear', 'n'])}).",
                 bool(m.loc["linear", "mean"] <= m.loc["none", "mean"]))


figure(FigureSpec(
    "warmup", "3.2.4", {"zh": "学习率预热：曲线与实测作用", "en": "Warmup: curves and measured effect"},
    {"zh": f"在过高的学习率 ({RISKY_LR:g}，基准的 6 倍，预热占前 25% 的步数) 下：记录的预热曲线、预热期前后的梯度范数（阴影 = 预热期）"
           "与最终测试准确率（无预热与线性预热各 5 个种子，其余 1 个）。这个学习率下各臂都可能坍缩到多数类：图展示的正是这种风险，"
           "坍缩的运行照实画出。",
     "en": f"At a learning rate that is too high ({RISKY_LR:g}, 6× the base, warmup over the first 25% of the steps): "
           "recorded warmup curves, gradient norms during and after warmup (shaded: the warmup steps) and final test "
           "accuracy (no warmup and linear warmup over 5 seeds, the others 1). At this LR runs of every arm may "
           "collapse to the majority class: the figure is about that risk, and collapsed runs are drawn as they are."},
    _warmup,
    {"zh": "教材（模拟数据）称预热全面提升梯度稳定性、收敛速度和最终性能。",
     "en": "The chapter (simulated) claims warmup improves gradient stability, convergence speed and final performance."},
    _warmup_measure,
    draw=viz.warmup,
    # 6× the base LR is a learning rate that is too high: runs of every arm may collapse to the
    # majority class (1 of 5 with linear warmup, 2 of 5 without); the figure is about that risk
    must_learn={},
    claims=[Claim({"zh": f"学习率 {RISKY_LR:g} 下，线性预热的测试准确率高于无预热",
                   "en": f"At LR {RISKY_LR:g} linear warmup ends above no warmup"},
                  {"warmup": "linear"}, {"warmup": "none"}),
            RateClaim({"zh": "线性预热坍缩到多数类的比例低于无预热", "en": "Linear warmup collapses less often than none"},
                      {"warmup": "linear"}, {"warmup": "none"}, failed=run_failed)]))


def _decay_measure(inputs):
    m = finals_by(inputs, "runs", "schedule")["mean"]
    best = m.idxmax()
    return _text(f"最终测试准确率最高的是{_zh('decay', best)} ({m[best]:.3f})，最低{_zh('decay', m.idxmin())} ({m.min():.3f})。"
                 + ("教材称余弦最好；实测不同。" if best != "cosine" else "与教材一致，余弦最好。"),
                 f"Best final test accuracy: {_en('decay', best)} ({m[best]:.3f}); lowest: {_en('decay', m.idxmin())} ({m.min():.3f})."
                 + (" The chapter says cosine is best; the measurement differs." if best != "cosine" else ""),
                 best != "cosine")


figure(FigureSpec(
    "decay", "3.2.4", {"zh": "衰减调度：曲线与实测结果", "en": "Decay schedules: curves and results"},
    {"zh": "六种衰减调度（基准设置，峰值学习率 1e-4，6% 线性预热；指数 γ = 0.05/轮，多项式 2 次，阶梯每 1/4 轮减半）"
           "记录的学习率曲线、验证准确率（250 条，每 8 步评估）、最终测试准确率，以及首次达到验证准确率 0.75 所需的步数；"
           "5 个种子，95% t 区间。",
     "en": "Six decay schedules (base settings, peak LR 1e-4, 6% linear warmup; exponential γ = 0.05 per epoch, "
           "polynomial power 2, step halving every quarter epoch): recorded LR curves, validation accuracy (250 "
           "examples, every 8 steps), final test accuracy and the steps to first reach 0.75 validation accuracy; "
           "5 seeds, 95% t intervals."},
    _decay_grid,
    {"zh": "教材（模拟数据）称余弦衰减收敛最快、最终性能最好。", "en": "The chapter (simulated) says cosine decay converges fastest and ends best."},
    _decay_measure,
    draw=functools.partial(viz.decay, target=DECAY_TARGET), must_learn={"runs": all_runs},
    claims=[Claim({"zh": "余弦的测试准确率高于线性", "en": "Cosine ends above linear (test accuracy)"},
                  {"schedule": "cosine"}, {"schedule": "linear"}),
            Claim({"zh": "余弦的测试准确率高于恒定", "en": "Cosine ends above constant (test accuracy)"},
                  {"schedule": "cosine"}, {"schedule": "constant"}),
            Claim({"zh": "余弦比线性更早达到验证准确率 0.75（步数）", "en": "Cosine reaches 0.75 validation accuracy in fewer steps than linear"},
                  {"schedule": "cosine"}, {"schedule": "linear"}, expected=-1, metric=_steps_to(DECAY_TARGET), digits=0)]))

# Each as its authors define it, around the base LR 1e-4. Plateau: ReduceLROnPlateau on the validation
# loss every 8 steps (16 evaluations), patience 2, factor 0.5. Cyclic (Smith 2017, triangular): between
# 2.5e-5 and 1e-4, a half cycle of half an epoch (two cycles). One-cycle (Smith & Topin; fastai's
# fit_one_cycle): peak 2e-4, twice the base LR, 30% of the steps rising from peak/25, then annealing
# to peak/25/1e4 (with a 3e-4 peak, the sweep's best constant-after-warmup LR, 1 of 5 seeds collapsed
# to the majority class; those records stay in runs/reference). Cosine with restarts: 3 cycles.
ADAPTIVE = {"plateau": {"schedule": "plateau", "plateau_patience": 2, "plateau_factor": 0.5},
            "cyclic": {"schedule": "cyclic", "cycle_epochs": 0.5, "min_lr_ratio": 0.25},
            "one_cycle": {"schedule": "one_cycle", "lr": 2e-4, "warmup_ratio": 0.3, "warmup": "cosine"},
            "cosine_restarts": {"schedule": "cosine_restarts"}}

figure(FigureSpec(
    "adaptive", "3.2.4", {"zh": "自适应与周期调度", "en": "Adaptive and cyclic schedules"},
    {"zh": "ReduceLROnPlateau 由真实的验证损失驱动（每 8 步评估一次，耐心 2 次，标出降低点）；与循环"
           "（2.5e-5 到 1e-4 的三角波，每半轮一个半周期）、单周期（峰值 2e-4，即基准的 2 倍，前 30% 上升，按 Smith 与 fastai 的定义）"
           "和带重启余弦（3 个周期）的实测比较，5 个种子，95% t 区间。",
     "en": "ReduceLROnPlateau driven by the real validation loss (evaluated every 8 steps, patience 2; reductions "
           "marked); measured against cyclic (triangular between 2.5e-5 and 1e-4, half an epoch per half cycle), "
           "one-cycle (peak 2e-4, twice the base, rising for the first 30%, as Smith and fastai define it) and cosine with 3 "
           "restarts; 5 seeds, 95% t intervals."},
    lambda S: {"runs": seeds_grid(S, ADAPTIVE, "schedule", base=with_curves(S, every=8))},
    {"zh": "教材（模拟数据）称 OneCycle 效果最好。", "en": "The chapter (simulated) rates one-cycle the most effective."},
    draw=viz.adaptive, must_learn={"runs": all_runs},
    claims=[Claim({"zh": f"单周期优于{_zh('adaptive', k)}", "en": f"One-cycle beats {_en('adaptive', k)}"},
                  {"schedule": "one_cycle"}, {"schedule": k}) for k in ("plateau", "cyclic", "cosine_restarts")]))

figure(FigureSpec(
    "lr-finder", "3.2.4", {"zh": "学习率范围测试", "en": "Learning-rate range test"},
    {"zh": "从基准模型出发，学习率在 240 步内按指数从 1e-7 增加到 0.1（每个数量级 40 步，每步一个新批次），记录每一步的损失；"
           "标出建议值（平滑损失下降最陡处）。",
     "en": "From the base model, the LR grows exponentially from 1e-7 to 0.1 over 240 steps (40 per decade, a new "
           "batch each step) while the loss is recorded; the suggestion (steepest descent of the smoothed loss) is marked."},
    lambda S: {"runs": Grid([({"test": "range"}, S.base.replace(
        train_size=S.pick(3840, 160), schedule="range_test", lr=0.1, range_start_lr=1e-7,
        max_steps=S.pick(240, 10), warmup="none", test_at_end=False, divergence_factor=4.0))])},
    draw=viz.lr_finder, must_learn={}))  # a range test is meant to diverge at its end

# ------------------------------------------------------------------------------------ 3.2.5
figure(FigureSpec(
    "fitting", "3.2.5", {"zh": "正常拟合、过拟合与欠拟合：真实曲线", "en": "Good fit, overfitting, underfitting: real curves"},
    {"zh": "训练与验证损失（各 250 条，每 10 步评估）；正常 = 基准设置，最多 5 轮，验证损失连续 4 次评估不再下降即早停并恢复最佳权重"
           "（不早停时，这个设置在第 2 轮后验证损失就开始回升）；"
           "过拟合 = 64 条样本训练 40 轮；欠拟合 = 学习率 2e-6 训练 2 轮；标出验证损失最低点（早停点）。",
     "en": "Training and validation loss (250 examples each, every 10 steps); good = the base settings for at most "
           "5 epochs, stopped early after 4 evaluations without a lower validation loss, best weights restored "
           "(without early stopping this setting's validation loss rises again after epoch 2); overfitting = 64 examples for 40 epochs; underfitting = LR "
           "2e-6 for 2 epochs; the lowest validation loss (the early-stopping point) is marked."},
    lambda S: {"runs": Grid([({"regime": name}, S.base.replace(
        eval_splits=("train", "validation"), eval_every=S.pick(10, 1), eval_size=S.pick(250, 32), **kw))
        for name, kw in {"good": {"epochs": S.pick(5, 2), "early_stopping_patience": S.pick(4, 2)}, "overfit": {"train_size": S.pick(64, 16), "epochs": S.pick(40, 3)},
                         "underfit": {"lr": 2e-6}}.items()])},
    draw=viz.fitting, must_learn={"runs": arms("regime", "good")}))

REGULARIZERS = {"none": {"dropout": 0.0, "weight_decay": 0.0}, "dropout": {"dropout": 0.3, "weight_decay": 0.0},
                "weight_decay": {"dropout": 0.0, "weight_decay": 0.1},
                # patience 4 of the 10 evaluations, watching validation accuracy: on 200 examples the
                # validation loss is lowest at the first evaluation, while the model still predicts the
                # majority class, so watching loss restored collapsed weights in 2 of 5 seeds at patience 2
                # and again at patience 4 (records kept in runs/reference)
                "early_stopping": {"dropout": 0.0, "weight_decay": 0.0, "early_stopping_patience": 4,
                                   "early_stopping_metric": "accuracy"},
                "augmentation": {"dropout": 0.0, "weight_decay": 0.0, "augment": ("synonym", "insert", "delete", "swap")},
                "label_smoothing": {"dropout": 0.0, "weight_decay": 0.0, "label_smoothing": 0.1},
                "combined": {"dropout": 0.3, "weight_decay": 0.1, "label_smoothing": 0.1, "early_stopping_patience": 4,
                             "early_stopping_metric": "accuracy"}}


def _regularization(S):
    base = S.base.replace(train_size=S.pick(200, 16), epochs=S.pick(10, 2), eval_splits=("train", "validation"),
                          eval_every=S.pick(12, 1), eval_size=S.pick(250, 32))
    return {"runs": seeds_grid(S, REGULARIZERS, "method", base=base)}


def _reg_measure(inputs):
    f = inputs["runs"].finals("accuracy", "test")
    m = f.groupby("method", sort=False)["value"].mean()
    best = m.idxmax()
    return _text(f"测试准确率最高：{_zh('regularization.method', best)} ({m[best]:.3f})；无正则化 {m['none']:.3f}；组合 {m['combined']:.3f}。"
                 + ("教材称组合策略最好；实测不同。" if best != "combined" else ""),
                 f"Best test accuracy: {_en('regularization.method', best)} ({m[best]:.3f}); none {m['none']:.3f}; combined {m['combined']:.3f}."
                 + (" The chapter says the combination is best; the measurement differs." if best != "combined" else ""),
                 best != "combined")


figure(FigureSpec(
    "regularization", "3.2.5", {"zh": "正则化：训练与验证的差距", "en": "Regularization: the generalization gap"},
    {"zh": "200 条样本训练 10 轮（125 步，容易过拟合），学习率 1e-4，每 12 步评估；各方法的训练、验证准确率与差距，"
           "5 个种子，95% t 区间。dropout 0.3，权重衰减 0.1，标签平滑 0.1，早停看验证准确率、耐心 4 次评估（恢复最佳权重；看验证损失时损失在模型仍只预测多数类时最低），"
           "增强 = 每条样本加一份增强副本，四种操作（同义词替换、随机插入、删除、交换）轮流使用（每轮步数因此翻倍）。",
     "en": "200 examples for 10 epochs (125 steps, prone to overfit) at LR 1e-4, evaluated every 12 steps; training "
           "and validation accuracy and their gap per method, 5 seeds, 95% t intervals. Dropout 0.3, weight decay "
           "0.1, label smoothing 0.1, early stopping on validation accuracy with patience 4 evaluations (best weights restored; "
           "watching validation loss, the loss is lowest while the model still predicts the majority class), "
           "augmentation = one augmented copy per example, the four ops (synonym replacement, insertion, deletion, "
           "swap) taking turns (which doubles the steps per epoch)."},
    _regularization,
    {"zh": "教材（模拟数据）称无正则化差距最大，组合策略的验证表现最好。",
     "en": "The chapter (simulated) says no regularization has the largest gap and the combination validates best."},
    _reg_measure,
    draw=viz.regularization, must_learn={"runs": all_runs},
    claims=[Claim({"zh": f"{_zh('regularization.method', k)}的测试准确率高于无正则化",
                   "en": f"{_en('regularization.method', k)} ends above no regularization (test accuracy)"},
                  {"method": k}, {"method": "none"})
            for k in ("combined", "dropout", "weight_decay", "early_stopping", "augmentation", "label_smoothing")]))

CL_TASKS = ("rt-sentiment", "bbc-topic", "rt-subjectivity")
# Every task with the base run's settings (1,000 examples, 2 epochs, LR 1e-4); replay keeps 5% of each
# finished task. LoRA per task at 1e-3: the sentiment sweep's 3e-3 left rt-subjectivity at chance in
# seed 2 (that record is kept), 1e-3 learns every task (sentiment 0.778 at seed 0). Three paired seeds.
CL_LORA_LR = 1e-3
# label: (method, settings). EWC's default λ = 1e6 is the measured one (ftcore.analysis.continual:
# at 1e4 it kept nothing here); seed 001's λ = 1,000 and replay 3% sit beside them in the table, and
# joint multi-task training is the upper bound every sequential method is measured against.
CL_METHODS = {"naive": ("naive", {}), "ewc": ("ewc", {}), "replay": ("replay", {"replay_memory": 0.05}),
              "lwf": ("lwf", {}), "lora": ("lora", {"lora_lr": CL_LORA_LR}),
              "replay_ewc": ("replay_ewc", {"replay_memory": 0.05}), "joint": ("joint", {}),
              "ewc_1000": ("ewc", {"ewc_lambda": 1000.0}), "replay_3": ("replay", {"replay_memory": 0.03})}
# The rows each figure shows: the forgetting figure the five families plus replay + EWC and the joint
# upper bound; the table every variant, so seed 001's λ = 1,000 and replay 3% sit beside the measured ones.
FORGETTING_METHODS = ("naive", "ewc", "replay", "lwf", "lora", "replay_ewc", "joint")
TABLE_METHODS = tuple(CL_METHODS)
CL_SEEDS = 3


def _sequences(S, labels=tuple(CL_METHODS)):
    base = S.base.replace(test_size=S.pick(500, 32))
    return {"runs": Sequences([({"method": label, "seed": s}, ContinualConfig(
        base=base.replace(seed=s), tasks=CL_TASKS, method=CL_METHODS[label][0], **CL_METHODS[label][1]))
        for label in labels for s in S.seeds[:CL_SEEDS]])}


def _cl_name(lang: str, label: str) -> str:
    """A method's label in ``lang``, replay variants with their memory share."""
    pct = 100 * CL_METHODS[label][1].get("replay_memory", 0.05)
    return (_zh if lang == "zh" else _en)("continual.method", label).format(pct=f"{pct:g}")


def mean_forgetting(rec) -> float:
    """A task sequence's mean forgetting (best accuracy on each old task minus its last)."""
    return forgetting_metrics(accuracy_matrix(rec))["mean_forgetting"]


def _forgetting_measure(inputs):
    f = pd.DataFrame([{**labels, "value": mean_forgetting(rec)} for labels, rec in inputs["runs"]])
    m = f.groupby("method", sort=False)["value"].mean()
    n = f.groupby("method", sort=False)["value"].size().min()
    return _text("平均遗忘：" + "，".join(f"{_cl_name('zh', k)} {v:.3f}" for k, v in m.items())
                 + f"（{n} 个种子的均值）。",
                 "Mean forgetting: " + ", ".join(f"{_cl_name('en', k)} {v:.3f}" for k, v in m.items())
                 + f" (mean of {n} seeds).", bool(m.get("ewc", 0) >= m.get("naive", 1)))


FORGETTING_CLAIMS = [
    Claim({"zh": f"{name[0]}的平均遗忘少于 naive", "en": f"{name[1]} forgets less than naive (mean forgetting)"},
          {"method": k}, {"method": "naive"}, expected=-1, metric=mean_forgetting)
    for k, name in {"ewc": ("EWC", "EWC"), "replay": ("回放", "Replay"), "lwf": ("LwF", "LwF"),
                    "lora": ("每任务 LoRA", "LoRA per task")}.items()]
REPLAY_EWC_CLAIM = Claim({"zh": "回放+EWC 的平均遗忘少于 naive", "en": "Replay + EWC forgets less than naive (mean forgetting)"},
                         {"method": "replay_ewc"}, {"method": "naive"}, expected=-1, metric=mean_forgetting)


def final_average(rec) -> float:
    """A task sequence's average accuracy over all tasks after the last one."""
    return forgetting_metrics(accuracy_matrix(rec))["average_accuracy"]


JOINT_CLAIM = Claim({"zh": "多任务联合训练的最终平均准确率高于直接顺序微调", "en": "Joint multi-task training ends above naive (average accuracy)"},
                    {"method": "joint"}, {"method": "naive"}, metric=final_average)
TABLE_CLAIMS = [
    Claim({"zh": "回放+EWC 的平均遗忘少于单独回放 5%", "en": "Replay + EWC forgets less than replay alone"},
          {"method": "replay_ewc"}, {"method": "replay"}, expected=-1, metric=mean_forgetting),
    Claim({"zh": "种子 001 的 λ = 1,000 时 EWC 的平均遗忘少于 naive", "en": "EWC at seed 001's λ = 1,000 forgets less than naive"},
          {"method": "ewc_1000"}, {"method": "naive"}, expected=-1, metric=mean_forgetting),
    Claim({"zh": "回放 5% 的平均遗忘少于回放 3%", "en": "Replay 5% forgets less than replay 3%"},
          {"method": "replay"}, {"method": "replay_3"}, expected=-1, metric=mean_forgetting)]


figure(FigureSpec(
    "forgetting", "3.2.5", {"zh": "灾难性遗忘：真实任务序列的准确率矩阵", "en": "Catastrophic forgetting: accuracy matrices"},
    {"zh": "情感 → 新闻主题 → 主观性，每个任务一个分类头，每个任务 1,000 条训练 2 轮（学习率 1e-4；每任务 LoRA 为 1e-3）；"
           "回放保留每个已学任务 5% 的样本，占之后每个批次的 25%；EWC λ = 1e6；回放+EWC 两者同时使用；"
           "多任务联合训练在训练第 t 个任务时混入之前各任务的全部训练数据（各自的分类头），"
           "学完最后一个任务时模型已同时见过所有任务，是顺序方法的上界（代价约为 naive 的 2 倍）。"
           "第 t 行 = 训练完任务 t 后在各任务测试集上的准确率（3 个种子的均值）。右：最终平均准确率与实测训练时间。",
     "en": "Sentiment → news topic → subjectivity, one head per task, 1,000 examples × 2 epochs per task (LR 1e-4; "
           "LoRA per task 1e-3); replay keeps 5% of each finished task as 25% of every later batch; EWC λ = 1e6; replay + EWC "
           "uses both; joint multi-task training trains task t mixed with all earlier tasks' whole training data (a head "
           "each), so after the last task the model has seen every task together: the upper bound of the sequential "
           "methods (about twice naive's cost). Row t = test "
           "accuracy on each task after training task t (mean of 3 seeds). Right: final average accuracy vs measured "
           "training time."},
    functools.partial(_sequences, labels=FORGETTING_METHODS),
    {"zh": "教材（模拟数据）画出 4 个任务上 naive 与 EWC 的虚构曲线。", "en": "The chapter draws invented naive vs EWC curves over 4 tasks."},
    _forgetting_measure,
    draw=viz.forgetting, must_learn={"runs": all_runs}, claims=FORGETTING_CLAIMS + [REPLAY_EWC_CLAIM, JOINT_CLAIM]))

PROBE_TASK = "bbc-topic"
# Three LRs of full fine-tuning that all learn (the sweep's 3e-5, the base 1e-4, 3e-4), LoRA at its
# LR and the frozen encoder (whose features cannot change: the reference line).
PROBE_RUNS = {"full_3e-05": {"lr": 3e-5}, "full_0.0001": {}, "full_0.0003": {"lr": 3e-4},
              "lora_0.003": {"peft": "lora", "lr": LORA_LR}, "frozen_0.001": FROZEN}


def _probes(S, names=tuple(PROBE_RUNS)):
    """A probe study per fine-tuning run, and (``gate_runs``) those runs for the validity gate."""
    n_train, n_test = S.pick(500, 32), S.pick(400, 32)
    needs = {"gate_runs": Grid([({"run": name}, S.base.replace(**PROBE_RUNS[name])) for name in names])}
    for name in names:
        kw = PROBE_RUNS[name]
        cfg = S.base.replace(**kw)
        needs[name] = StudyNeed("probe", {"run": cfg.identity_dict(), "probe_task": PROBE_TASK,
                                          "n_train": n_train, "n_test": n_test},
                                (lambda cfg=cfg: analyses.pretrained_probe(cfg, PROBE_TASK, n_train=n_train, n_test=n_test)))
    return needs


figure(FigureSpec(
    "forgetting-pretrained", "3.2.5", {"zh": "预训练知识的遗忘", "en": "Forgetting what pretraining knew"},
    {"zh": f"在影评情感上微调（基准设置：1,000 条，2 轮）前后，编码器均值池化特征在另一任务（{PROBE_TASK}）上的线性探针与 kNN 准确率，"
           "随学习率（全量 3e-5/1e-4/3e-4）与方法（LoRA 3e-3；冻结编码器为参照）变化；每个微调运行都学会了情感任务。",
     "en": f"Linear-probe and kNN accuracy of the encoder's mean-pooled features on a held-out task ({PROBE_TASK}) "
           "before and after fine-tuning on review sentiment (base settings: 1,000 examples, 2 epochs), by LR (full "
           "3e-5/1e-4/3e-4) and method (LoRA 3e-3; the frozen encoder as the reference); every fine-tuning run "
           "learned the sentiment task."},
    _probes,
    {"zh": "教材称微调可能抹去预训练学到的通用知识，学习率越大越严重。",
     "en": "The chapter warns that fine-tuning can erase general knowledge from pretraining, more so at a high LR."},
    draw=viz.forgetting_pretrained, must_learn={"gate_runs": all_runs}))

# Exploding gradients: AdamW normalises each step, so even LR 1e-2 collapses rather than explodes. Plain
# SGD (momentum 0.9) at LR 1.0 without clipping, warmup or decay, in fp32, explodes: in the pilot the
# global gradient norm went 1.0 → 16 → 43 → 4,054 in 9 steps and the loss from 0.67 to 173.
INSTABILITY = {"stable": {}, "too_high_lr": {"lr": 3e-3, "clip_grad_norm": None, "warmup": "none"},
               "exploding": {"optimizer": "sgd", "lr": 1.0, "clip_grad_norm": None, "warmup": "none",
                             "schedule": "constant", "precision": "fp32", "divergence_factor": 100.0},
               "too_low_lr": {"lr": 1e-6}}

figure(FigureSpec(
    "instability", "3.2.5", {"zh": "训练不稳定：真实的损失与梯度范数", "en": "Training instability: real loss and gradient norms"},
    {"zh": "四个真实运行：稳定（基准设置）、学习率过高（AdamW 3e-3，无裁剪无预热）、梯度爆炸（带动量的 SGD，学习率 1.0，"
           "无裁剪、无预热、恒定学习率、fp32；损失超过初始值 100 倍时停止）、学习率过低（1e-6）；标出发散或坍缩到多数类之处。"
           "只有“稳定”一行需要学会。",
     "en": "Four real runs: stable (the base settings), LR too high (AdamW 3e-3, no clipping or warmup), exploding "
           "gradients (SGD with momentum at LR 1.0, no clipping, warmup or decay, fp32; stopped when the loss exceeds "
           "100× its start), LR too low (1e-6); divergence or collapse to the majority class is marked. Only the "
           "stable run must learn."},
    lambda S: {"runs": Grid([({"setting": k}, with_curves(S, every=8).replace(**kw)) for k, kw in INSTABILITY.items()])},
    draw=viz.instability, must_learn={"runs": arms("setting", "stable")}))

# Accumulating 4 batches per step makes a quarter of the optimizer steps per epoch: its arm trains 4×
# the epochs, so every arm takes the same 63 optimizer steps.
FIXES = {"baseline": {}, "clipping": {"clip_grad_norm": 1.0}, "warmup": {"warmup": "linear", "warmup_ratio": 0.25},
         "schedule": {"schedule": "linear"}, "bf16": {"precision": "bf16"},
         "accumulation": {"grad_accum": 4, "epochs": 8}, "reinit_top": {"reinit_top": 1}}
FRAGILE = dict(train_size=500, epochs=2, lr=RISKY_LR, clip_grad_norm=None, warmup="none", schedule="constant",
               precision="fp32")
FIX_SEEDS = tuple(range(10))  # failure rates need more seeds than mean differences


def _fixes_measure(inputs):
    f = pd.DataFrame([{**labels, "failed": run_failed(rec)} for labels, rec in inputs["runs"]])
    rate = f.groupby("fix", sort=False)["failed"].mean()
    return _text("失败率（发散或全部预测为一类）：" + "，".join(f"{_zh('stability-fixes.fix', k)} {v:.0%}"
                                                           for k, v in rate.items()),
                 "Failure rate (diverged or one class predicted for all): " + ", ".join(
                     f"{_en('stability-fixes.fix', k)} {v:.0%}" for k, v in rate.items()))


figure(FigureSpec(
    "stability-fixes", "3.2.5", {"zh": "稳定训练的手段：实测失败率", "en": "Stability fixes: measured failure rates"},
    {"zh": f"脆弱的基线（500 条训练 2 轮 = 63 步，学习率 {RISKY_LR:g}，无裁剪、无预热、恒定学习率、fp32）上各加一种手段，"
           "每种 10 个种子：失败率（发散或全部预测为一类，95% Wilson 区间）与最终准确率的离散度。"
           "梯度累积（4 批一步）训练 8 轮，使每种手段的优化步数相同。",
     "en": f"A fragile baseline (500 examples × 2 epochs = 63 steps, LR {RISKY_LR:g}, no clipping, no warmup, constant "
           "LR, fp32) plus one fix at a time, 10 seeds each: failure rate (diverged or one class predicted for all; "
           "95% Wilson intervals) and spread of final accuracy. Accumulation (4 batches per step) trains 8 epochs, "
           "so every arm takes the same optimizer steps."},
    lambda S: {"runs": seeds_grid(S, FIXES, "fix", base=S.base.replace(**dict(FRAGILE, train_size=S.train_size(500))),
                                  seeds=S.pick(FIX_SEEDS, S.seeds))},
    {"zh": "教材（模拟数据）用虚构的“效果/难度”散点和雷达图比较这些手段。", "en": "The chapter compares these with an invented effect/difficulty scatter and radar."},
    _fixes_measure,
    draw=viz.stability_fixes, must_learn={},  # about failure: the fragile runs are meant to fail
    claims=[RateClaim({"zh": f"{_zh('stability-fixes.fix', k)}比脆弱基线更少失败",
                       "en": f"{_en('stability-fixes.fix', k)} fails less often than the fragile baseline"},
                      {"fix": k}, {"fix": "baseline"}, failed=run_failed)
            for k in ("clipping", "warmup", "schedule", "bf16", "accumulation", "reinit_top")]))

# ------------------------------------------------------------------------------------ seeds 001, 003
# Each method at its swept LR on the base regime (1,000 reviews, 2 epochs); prompt tuning, which was
# still learning at 2 epochs, trains 6.
PEFT = {"full": {}, "lora_r2": {"peft": "lora", "lora_r": 2, "lr": LORA_LR},
        "lora_r8": {"peft": "lora", "lora_r": 8, "lr": LORA_LR}, "lora_r32": {"peft": "lora", "lora_r": 32, "lr": LORA_LR},
        "prompt": {"peft": "prompt", "lr": PROMPT_LR, "epochs": PROMPT_EPOCHS}, "bitfit": {"peft": "bitfit", "lr": BITFIT_LR},
        "adapter": {"peft": "adapter", "lr": ADAPTER_LR},
        "prefix": {"peft": "prefix", "lr": PREFIX_LR, "epochs": PREFIX_EPOCHS}}


def _peft(S):
    probes = _probes(S, names=("full_0.0001", "lora_0.003"))
    probes.pop("gate_runs")  # the same runs as the grid's full and lora_r8 arms, seed 0
    return {"runs": seeds_grid(S, PEFT, "method"), "memory": _memory(S, {k: S.base.replace(**v) for k, v in PEFT.items()}),
            **probes}


figure(FigureSpec(
    "peft", "seed 003", {"zh": "参数高效微调与全量微调", "en": "Parameter-efficient fine-tuning vs full"},
    {"zh": f"LoRA（秩 2/8/32，query 与 value，学习率 {LORA_LR:g}）、提示微调（20 个虚拟词元，{PROMPT_LR:g}，{PROMPT_EPOCHS} 轮）、"
           f"BitFit（{BITFIT_LR:g}）、瓶颈适配器（Houlsby：每层注意力与前馈输出之后各一个，瓶颈 64，LayerNorm 一起训练，{ADAPTER_LR:g}）、"
           f"前缀微调（每层键和值前各 20 个前缀，训练时经 MLP 重参数化，可训练占比按 MLP 计，训练后只需保留 92,160 个数，{PREFIX_LR:g}，{PREFIX_EPOCHS} 轮）"
           f"与全量微调（1e-4）：可训练参数占比、测试准确率（5 个种子，95% t 区间）、训练时间、"
           "训练时保存的内存（按字节计数），以及对预训练知识的遗忘（探针）。学习率均取自扫描；除提示微调与前缀微调外都训练 2 轮。",
     "en": f"LoRA (rank 2/8/32 on query and value, LR {LORA_LR:g}), prompt tuning (20 virtual tokens, {PROMPT_LR:g}, "
           f"{PROMPT_EPOCHS} epochs), BitFit ({BITFIT_LR:g}), bottleneck adapters (Houlsby: after the attention and the FFN "
           f"output of every layer, bottleneck 64, LayerNorms trained, {ADAPTER_LR:g}), prefix tuning (20 key and 20 value "
           f"prefixes per layer, MLP-reparameterized while training, so its trainable share counts the MLP; 92,160 numbers "
           f"are kept after training, {PREFIX_LR:g}, {PREFIX_EPOCHS} epochs) and full fine-tuning (1e-4): trainable share, test accuracy "
           "(5 seeds, 95% t intervals), training time, the memory training keeps (counted in bytes), and forgetting "
           "of pretrained knowledge (probe). LRs from the sweep; all but prompt and prefix tuning train 2 epochs."},
    _peft,
    {"zh": "种子材料称 LoRA 以极少的可训练参数达到接近全量微调的效果。",
     "en": "The seed material says LoRA comes close to full fine-tuning with very few trainable parameters."},
    draw=viz.peft, must_learn={"runs": all_runs},
    claims=[Claim({"zh": "全量微调优于 LoRA（秩 8）", "en": "Full fine-tuning beats LoRA (rank 8)"},
                  {"method": "full"}, {"method": "lora_r8"}),
            Claim({"zh": "LoRA 秩 32 优于秩 2", "en": "LoRA rank 32 beats rank 2"},
                  {"method": "lora_r32"}, {"method": "lora_r2"}),
            Claim({"zh": "LoRA（秩 8）优于提示微调", "en": "LoRA (rank 8) beats prompt tuning"},
                  {"method": "lora_r8"}, {"method": "prompt"}),
            Claim({"zh": "全量微调优于瓶颈适配器", "en": "Full fine-tuning beats bottleneck adapters"},
                  {"method": "full"}, {"method": "adapter"}),
            Claim({"zh": "LoRA（秩 8）优于前缀微调", "en": "LoRA (rank 8) beats prefix tuning"},
                  {"method": "lora_r8"}, {"method": "prefix"})]))


def _table_measure(inputs):
    acc = pd.DataFrame([{"method": labels["method"], "old": accuracy_matrix(rec).iloc[1, 0],
                         "new": accuracy_matrix(rec).iloc[1, 1]} for labels, rec in inputs["runs"]])
    rows = {m: (g["old"].mean(), g["new"].mean()) for m, g in acc.groupby("method", sort=False)}
    return _text("学完第二个任务后，旧任务准确率：" + "，".join(f"{_cl_name('zh', k)} {v[0]:.3f}" for k, v in rows.items()),
                 "Old-task accuracy after the second task: " + ", ".join(
                     f"{_cl_name('en', k)} {v[0]:.3f}" for k, v in rows.items()))


figure(FigureSpec(
    "continual-table", "seed 001", {"zh": "持续学习方法对照表", "en": "Continual-learning methods, measured"},
    {"zh": "学完第二个任务后：旧任务准确率、新任务准确率、相对 naive 的训练时间（3 个种子）。EWC λ = 1e6（实测所需：此编码器的 Fisher 很小），"
           "旁边是种子 001 建议的 λ = 1,000；回放保留 5%，旁边是 3%；回放 5% + EWC 为组合；"
           "多任务联合训练（所有任务同时训练）是上界。",
     "en": "After the second task: old-task accuracy, new-task accuracy, training time relative to naive (3 seeds). EWC "
           "λ = 1e6 (what this encoder's tiny Fisher needs) beside seed 001's λ = 1,000; replay keeps 5%, beside 3%; "
           "replay 5% + EWC combines them; joint multi-task training (all tasks at once) is the upper bound."},
    functools.partial(_sequences, labels=TABLE_METHODS),
    {"zh": "教材给出一张虚构百分比的表（基础 / 回放 5% / EWC / 组合）。", "en": "The chapter gives a table of invented percentages (basic / replay 5% / EWC / combined)."},
    _table_measure,
    draw=viz.continual_table, must_learn={"runs": all_runs}, claims=FORGETTING_CLAIMS[:2] + TABLE_CLAIMS))

# Seed 003's systems, one module each (they register their figures on import).
from . import specs_pretraining, specs_quantization, specs_alignment, specs_engines  # noqa: E402,F401
