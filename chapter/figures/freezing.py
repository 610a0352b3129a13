"""3.2.2 Freezing (notebook 02): ``freeze-map``, ``freeze-effects``, ``unfreeze``, ``layer-drift``."""
from __future__ import annotations

import viz
from ..claims import Claim
from ..registry import FigureSpec, Grid, figure
from .base import (LAYERS, all_runs, base_run, beats, chosen, finals_by, finetuned_need, frozen, label, measured, memory_need,
                   more_seeds,                    seeds_grid, with_curves)
from .captions import added_seeds, configs, cost_words, lr, n, one, regime_text

# ULMFiT unfreezes one layer group per epoch, top down. Seven frozen groups (embeddings + six layers)
# would need eight epochs, so groups are unfrozen three at a time: epoch 1 the head alone, epoch 2 +
# layers 5-3, epoch 3 + layers 2-0, epoch 4 + embeddings: four epochs, twice the base run's steps.
ONE_AT_A_TIME_EPOCHS = LAYERS + 2  # embeddings, each layer, the head: one group per epoch
GRADUAL = {"freeze": "gradual", "unfreeze_unit": "epoch", "unfreeze_every": 1, "unfreeze_groups": 3, "epochs": 4}
# Under the reviewed protocol the arms get equal budgets (issue 24): gradual unfreezing trains the base
# run's 2 epochs, its four stages half an epoch each (the same schedule, compressed), and "where to
# freeze" freezes equal parameter counts: two encoder layers at the bottom (0-1) or in the middle (2-3),
# the embeddings training in both. The earlier grid froze the embeddings + layers 0-2 (17.2M
# parameters) against layers 2-3 (3.5M), so it compared how much as well as where.
GRADUAL_REVIEWED = {k: v for k, v in GRADUAL.items() if k != "epochs"} | {"unfreeze_every": 0.5}  # the base's epochs
WHERE = {"bottom": ("layer.0", "layer.1"), "middle": ("layer.2", "layer.3")}


def gradual(S) -> dict:
    """Gradual unfreezing's settings at scale ``S`` (at the base run's epochs when reviewed)."""
    if S.reviewed:  # at its own LR, chosen on validation (chapter.protocol "gradual")
        return dict(GRADUAL_REVIEWED, epochs=S.base.epochs, lr=chosen(S, "gradual"))
    return dict(GRADUAL)


def freezes(S) -> dict[str, dict]:
    if S.reviewed:
        where = {k: {"freeze": "list", "frozen_groups": groups} for k, groups in WHERE.items()}
    else:
        where = {"bottom": {"freeze": "bottom", "freeze_layers": 3}, "middle": {"freeze": "middle", "freeze_layers": 2}}
    return {"none": {}, **where, "head_only": frozen(S), "gradual": gradual(S)}


def _freeze_grid(S):
    return {"runs": seeds_grid(S, freezes(S), "strategy", base=with_curves(S), seeds=more_seeds(S))}


def _layers(first: int, count: int) -> str:
    return f"{first}-{first + count - 1}"


def _named(groups: tuple[str, ...]) -> str:
    """("layer.0", "layer.1") -> "0-1": consecutive encoder layers as the caption writes them."""
    idx = [int(g.split(".")[1]) for g in groups]
    return _layers(idx[0], len(idx))


# ------------------------------------------------------------------------------------ freeze-map
def _freeze_map(S):
    """The freezing grid's first seed: which groups train is the same in every seed."""
    return {"runs": Grid([c for c in _freeze_grid(S)["runs"].cells if c[0]["seed"] == S.seeds[0]])}


figure(FigureSpec(id="freeze-map", section="3.2.2", notebooks=("02",),
                  caption={"zh": "颜色取自训练开始时各层组参数的 requires_grad，标注为参数量；渐进解冻一行标出真实的解冻步。",
                           "en": "Colour from each group's requires_grad at the start of training, annotated with parameter counts; "
                                 "the gradual row marks the recorded unfreezing steps."},
                  needs=_freeze_map,
                  draw=viz.freeze_map, must_learn={"runs": all_runs}, reviewed=True,
                  selections=("regime", "base", "head", "gradual")))


# ------------------------------------------------------------------------------------ freeze-effects
def _freeze_effects_caption(S) -> dict:
    runs = _freeze_grid(S)["runs"]
    if S.reviewed:  # equal parameter counts: two layers each, the embeddings training (freezes)
        bottom, middle = (_named(one(c.frozen_groups for c in configs(runs, strategy=k))) for k in ("bottom", "middle"))
        where = {"zh": f"底层 = 冻结第 {bottom} 层，中间 = 冻结第 {middle} 层（冻结的参数量相同，嵌入层都参与训练）",
                 "en": f"Bottom = layers {bottom} frozen, middle = layers {middle} frozen (equal frozen parameter counts; "
                       "the embeddings train in both)"}
    else:
        bottom, middle = (one(c.freeze_layers for c in configs(runs, strategy=k)) for k in ("bottom", "middle"))
        bottom, middle = _layers(0, bottom), _layers((LAYERS - middle) // 2, middle)  # as ftcore.engine.layers freezes
        where = {"zh": f"底层 = 冻结嵌入层与第 {bottom} 层，中间 = 冻结第 {middle} 层",
                 "en": f"Bottom = embeddings and layers {bottom} frozen, middle = layers {middle} frozen"}
    base_lr = lr(one(c.lr for c in configs(runs, strategy="none") + configs(runs, strategy="bottom")))
    head = configs(runs, strategy="head_only")
    head_epochs, head_lr = n(one(c.epochs for c in head)), lr(one(c.lr for c in head))
    gradual = configs(runs, strategy="gradual")
    per_group, g_epochs = one(c.unfreeze_groups for c in gradual), n(one(c.epochs for c in gradual))
    others = n(one(c.epochs for c in configs(runs, strategy="none") + configs(runs, strategy="middle")))
    every = one(c.unfreeze_every for c in gradual)
    if every == 1:
        stage = {"zh": f"渐进解冻按 ULMFiT 每轮解冻一组（每组 {per_group} 层），共 {g_epochs} 轮，其余 {others} 轮。",
                 "en": f"gradual unfreezing as ULMFiT, one group per epoch ({per_group} layers per group), {g_epochs} epochs; the others {others}."}
    else:  # the reviewed protocol's equal budget: ULMFiT's stages compressed into the others' epochs
        g_lr = lr(one(c.lr for c in gradual))
        stage = {"zh": f"渐进解冻按 ULMFiT 自上而下逐组解冻（每组 {per_group} 个层组），每 {every:g} 轮一组，与其余各臂一样训练 {g_epochs} 轮（相同预算），"
                       f"学习率 {g_lr}（它自己在验证集上选定：头部先单独训练）。",
                 "en": f"gradual unfreezing as ULMFiT, top down ({per_group} groups at a time), one stage every {every:g} epoch, "
                       f"so it trains the same {g_epochs} epochs as the others (equal budget), at LR {g_lr} (its own, chosen on "
                       "validation: its head trains alone first)."}
    return {"zh": f"测试准确率（95% t 区间）、{cost_words('zh')}、训练时保存的内存（参数、梯度、优化器状态、为反向传播保存的激活，按字节计数），"
                  f"以及各随机种子之间的离散度。{where['zh']}，学习率 {base_lr}；"
                  f"只训练头部 = 冻结编码器上的线性头部，{head_epochs} 轮，学习率 {head_lr}；" + stage["zh"] + added_seeds(runs, "zh"),
            "en": f"Test accuracy (95% t intervals), {cost_words('en')}, the memory training keeps (parameters, gradients, "
                  "optimizer state and activations saved for backward, counted in bytes) and the spread across seeds. "
                  f"{where['en']}, LR {base_lr}; head only = a "
                  f"linear head on the frozen encoder, {head_epochs} epochs at LR {head_lr}; " + (stage["en"] + " " + added_seeds(runs, "en")).rstrip()}


CLAIMED_ORDER = ["none", "gradual", "bottom", "middle", "head_only"]  # the chapter's ranking, best first


def _freeze_measure(inputs):
    m = finals_by(inputs, "runs", "strategy")["mean"]
    order = list(m.sort_values(ascending=False).index)
    differs = order != CLAIMED_ORDER
    return measured("实测测试准确率排序：" + " > ".join(f"{label('freeze-map', k, 'zh')} {m[k]:.3f}" for k in order)
                    + ("（与教材的排序不同）" if differs else ""),
                    "Measured test accuracy, best first: " + " > ".join(f"{label('freeze-map', k, 'en')} {m[k]:.3f}" for k in order)
                    + (" (the chapter's order differs)" if differs else ""), differs)


def _freeze_effects(S):
    return {**_freeze_grid(S), "memory": memory_need(S, {k: S.base.replace(**v) for k, v in freezes(S).items()})}


FREEZE_EFFECTS_CLAIMS = beats(
    "strategy",
    ("none", "gradual", "全部微调优于渐进解冻", "Full fine-tuning beats gradual unfreezing"),
    ("gradual", "bottom", "渐进解冻优于冻结底层", "Gradual unfreezing beats freezing the bottom"),
    ("bottom", "middle", "冻结底层优于冻结中间层", "Freezing the bottom beats freezing the middle"),
    ("middle", "head_only", "冻结中间层优于只训练头部", "Freezing the middle beats training the head only"))

figure(FigureSpec(id="freeze-effects", section="3.2.2", notebooks=("02",),
                  caption=_freeze_effects_caption, needs=_freeze_effects, measure=_freeze_measure,
                  draw=viz.freeze_effects, must_learn={"runs": all_runs}, reviewed=True,
                  selections=("regime", "base", "head", "gradual"), claims=FREEZE_EFFECTS_CLAIMS))


# ------------------------------------------------------------------------------------ unfreeze
def _unfreeze_grid(S):
    """Gradual unfreezing against full fine-tuning for the same epochs (the same optimizer steps)."""
    g = gradual(S)  # under the reviewed protocol the freeze-effects grid's own gradual and full arms
    return {"runs": seeds_grid(S, {"gradual": g, "none": {"epochs": g["epochs"]}}, "strategy",
                               base=with_curves(S), seeds=more_seeds(S))}


def _unfreeze_caption(S) -> dict:
    cells = [c for _, c in _unfreeze_grid(S)["runs"].cells]
    epochs = n(one(c.epochs for c in cells))
    lrs = {c.freeze: lr(c.lr) for c in cells}
    lr_ = {"zh": lrs["none"], "en": lrs["none"]} if lrs["none"] == lrs["gradual"] else (
        {"zh": f"渐进解冻 {lrs['gradual']}、全部微调 {lrs['none']}（各自在验证集上选定）",
         "en": f"{lrs['gradual']} for gradual unfreezing and {lrs['none']} for full fine-tuning (each chosen on validation)"})
    per_group = one(c.unfreeze_groups for c in cells if c.freeze == "gradual")
    every = one(c.unfreeze_every for c in cells if c.freeze == "gradual")
    each = ({"zh": "", "en": ""} if every == 1 else
            {"zh": f"这里每 {every:g} 轮解冻一次，使它与全部微调的轮数相同；", "en": f" here a stage lasts {every:g} epoch, so it fits the same epochs as full fine-tuning, and"})
    return {"zh": "左：记录的解冻事件与每个层组逐步的学习率（冻结时为 0）；右：渐进解冻与全部微调的验证准确率，"
                  f"两者都训练 {epochs} 轮（相同的优化步数），学习率 {lr_['zh']}。ULMFiT 每轮解冻一组；{each['zh']}这里 {per_group} 层一组，"
                  f"否则需要 {ONE_AT_A_TIME_EPOCHS} 轮。" + added_seeds(_unfreeze_grid(S)["runs"], "zh"),
            "en": ("Left: recorded unfreezing events and each group's LR per step (0 while frozen); right: validation "
                  f"accuracy of gradual unfreezing vs full fine-tuning, both trained for {epochs} epochs (the same optimizer "
                  f"steps) at LR {lr_['en']}. ULMFiT unfreezes one group per epoch;{each['en']} here {per_group} layers form a group, which "
                  f"would otherwise take {ONE_AT_A_TIME_EPOCHS} epochs. " + added_seeds(_unfreeze_grid(S)["runs"], "en")).rstrip()}


UNFREEZE_CLAIMS = [
    Claim({"zh": "同样的轮数（相同的优化步数）下，渐进解冻优于全部微调",
           "en": "At the same epochs (the same optimizer steps) gradual unfreezing beats full fine-tuning"},
          {"strategy": "gradual"}, {"strategy": "none"})]

figure(FigureSpec(id="unfreeze", section="3.2.2", notebooks=("02",),
                  caption=_unfreeze_caption, needs=_unfreeze_grid,
                  draw=viz.unfreeze, must_learn={"runs": all_runs}, reviewed=True, selections=("regime", "base", "gradual"),
                  claims=UNFREEZE_CLAIMS))


# ------------------------------------------------------------------------------------ layer-drift
def _layer_drift_caption(S) -> dict:
    if S.base.pooling == "mean":
        left = {"zh": "新的分类头没有预训练权重（它从随机初始化出发），均值池化下不使用的 pooler 没有变化，二者都不画。",
                "en": "The new head has no pretrained weights (it starts from a random init) and the pooler, unused under "
                      "mean pooling, does not move: neither is drawn."}
    else:  # the CLS pooler feeds the head, so it is fine-tuned like a layer
        left = {"zh": "新的分类头没有预训练权重（它从随机初始化出发），不画；CLS 池化层（pooler）为头部提供输入，与各层一起微调。",
                "en": "The new head has no pretrained weights (it starts from a random init) and is not drawn; the CLS "
                      "pooler feeds the head and is fine-tuned like a layer."}
    return {"zh": f"基准运行（{regime_text(S.base, 'zh')}）全量微调后，各预训练层组权重的相对变化 ‖Δw‖/‖w‖，以及与预训练模型表示的线性 CKA。"
                  + left["zh"],
            "en": "Relative weight change ‖Δw‖/‖w‖ of each pretrained layer group after full fine-tuning (the base run: "
                  f"{regime_text(S.base, 'en')}), and linear CKA to the pretrained model's representations. " + left["en"]}


figure(FigureSpec(id="layer-drift", section="3.2.2", notebooks=("02",),
                  caption=_layer_drift_caption,
                  needs=lambda S: {"study": finetuned_need(S), "gate_run": base_run(S)},
                  draw=viz.layer_drift, must_learn={"gate_run": all_runs}, reviewed=True, selections=("regime", "base")))
