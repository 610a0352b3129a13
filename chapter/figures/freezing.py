"""3.2.2 Freezing (notebook 02): ``freeze-map``, ``freeze-effects``, ``unfreeze``, ``layer-drift``."""
from __future__ import annotations

import viz
from ..claims import Claim
from ..registry import FigureSpec, Grid, figure
from .base import (LAYERS, all_runs, base_run, beats, finals_by, finetuned_need, frozen, label, measured, memory_need,
                   seeds_grid, with_curves)
from .captions import configs, lr, n, one, regime_text

# ULMFiT unfreezes one layer group per epoch, top down. Seven frozen groups (embeddings + six layers)
# would need eight epochs, so groups are unfrozen three at a time: epoch 1 the head alone, epoch 2 +
# layers 5-3, epoch 3 + layers 2-0, epoch 4 + embeddings: four epochs, twice the base run's steps.
ONE_AT_A_TIME_EPOCHS = LAYERS + 2  # embeddings, each layer, the head: one group per epoch
GRADUAL = {"freeze": "gradual", "unfreeze_unit": "epoch", "unfreeze_every": 1, "unfreeze_groups": 3, "epochs": 4}
def freezes(S) -> dict[str, dict]:
    return {"none": {}, "bottom": {"freeze": "bottom", "freeze_layers": 3},
            "middle": {"freeze": "middle", "freeze_layers": 2},
            "head_only": frozen(S),
            "gradual": GRADUAL}


def _freeze_grid(S):
    return {"runs": seeds_grid(S, freezes(S), "strategy", base=with_curves(S))}


def _layers(first: int, count: int) -> str:
    return f"{first}-{first + count - 1}"


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
                  selections=("regime", "base", "head")))


# ------------------------------------------------------------------------------------ freeze-effects
def _freeze_effects_caption(S) -> dict:
    runs = _freeze_grid(S)["runs"]
    bottom, middle = (one(c.freeze_layers for c in configs(runs, strategy=k)) for k in ("bottom", "middle"))
    bottom, middle = _layers(0, bottom), _layers((LAYERS - middle) // 2, middle)  # as ftcore.engine.layers freezes
    base_lr = lr(one(c.lr for c in configs(runs, strategy="none") + configs(runs, strategy="bottom")))
    head = configs(runs, strategy="head_only")
    head_epochs, head_lr = n(one(c.epochs for c in head)), lr(one(c.lr for c in head))
    gradual = configs(runs, strategy="gradual")
    per_group, g_epochs = one(c.unfreeze_groups for c in gradual), n(one(c.epochs for c in gradual))
    others = n(one(c.epochs for c in configs(runs, strategy="none") + configs(runs, strategy="middle")))
    return {"zh": "测试准确率（95% t 区间）、训练时间、训练时保存的内存（参数、梯度、优化器状态、为反向传播保存的激活，按字节计数），"
                  f"以及各随机种子之间的离散度。底层 = 冻结嵌入层与第 {bottom} 层，中间 = 冻结第 {middle} 层，学习率 {base_lr}；"
                  f"只训练头部 = 冻结编码器上的线性头部，{head_epochs} 轮，学习率 {head_lr}；"
                  f"渐进解冻按 ULMFiT 每轮解冻一组（每组 {per_group} 层），共 {g_epochs} 轮，其余 {others} 轮。",
            "en": "Test accuracy (95% t intervals), training time, the memory training keeps (parameters, gradients, "
                  "optimizer state and activations saved for backward, counted in bytes) and the spread across seeds. "
                  f"Bottom = embeddings and layers {bottom} frozen, middle = layers {middle} frozen, LR {base_lr}; head only = a "
                  f"linear head on the frozen encoder, {head_epochs} epochs at LR {head_lr}; gradual unfreezing "
                  f"as ULMFiT, one group per epoch ({per_group} layers per group), {g_epochs} epochs; the others {others}."}


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
                  draw=viz.freeze_effects, must_learn={"runs": all_runs},
                  claims=FREEZE_EFFECTS_CLAIMS))


# ------------------------------------------------------------------------------------ unfreeze
def _unfreeze_grid(S):
    """Gradual unfreezing against full fine-tuning for the same epochs (the same optimizer steps)."""
    return {"runs": seeds_grid(S, {"gradual": GRADUAL, "none": {"epochs": GRADUAL["epochs"]}}, "strategy",
                               base=with_curves(S))}


def _unfreeze_caption(S) -> dict:
    cells = [c for _, c in _unfreeze_grid(S)["runs"].cells]
    epochs, lr_ = n(one(c.epochs for c in cells)), lr(one(c.lr for c in cells))
    per_group = one(c.unfreeze_groups for c in cells if c.freeze == "gradual")
    return {"zh": "左：记录的解冻事件与每个层组逐步的学习率（冻结时为 0）；右：渐进解冻与全部微调的验证准确率，"
                  f"两者都训练 {epochs} 轮（相同的优化步数），学习率 {lr_}。ULMFiT 每轮解冻一组；这里 {per_group} 层一组，"
                  f"否则需要 {ONE_AT_A_TIME_EPOCHS} 轮。",
            "en": "Left: recorded unfreezing events and each group's LR per step (0 while frozen); right: validation "
                  f"accuracy of gradual unfreezing vs full fine-tuning, both trained for {epochs} epochs (the same optimizer "
                  f"steps) at LR {lr_}. ULMFiT unfreezes one group per epoch; here {per_group} layers form a group, which "
                  f"would otherwise take {ONE_AT_A_TIME_EPOCHS} epochs."}


UNFREEZE_CLAIMS = [
    Claim({"zh": f"同样 {GRADUAL['epochs']} 轮，渐进解冻优于全部微调",
           "en": f"At the same {GRADUAL['epochs']} epochs gradual unfreezing beats full fine-tuning"},
          {"strategy": "gradual"}, {"strategy": "none"})]

figure(FigureSpec(id="unfreeze", section="3.2.2", notebooks=("02",),
                  caption=_unfreeze_caption, needs=_unfreeze_grid,
                  draw=viz.unfreeze, must_learn={"runs": all_runs},
                  claims=UNFREEZE_CLAIMS))


# ------------------------------------------------------------------------------------ layer-drift
def _layer_drift_caption(S) -> dict:
    return {"zh": f"基准运行（{regime_text(S.base, 'zh')}）全量微调后，各预训练层组权重的相对变化 ‖Δw‖/‖w‖，以及与预训练模型表示的线性 CKA。"
                  "新的分类头没有预训练权重（它从随机初始化出发），均值池化下不使用的 pooler 没有变化，二者都不画。",
            "en": "Relative weight change ‖Δw‖/‖w‖ of each pretrained layer group after full fine-tuning (the base run: "
                  f"{regime_text(S.base, 'en')}), and linear CKA to the pretrained model's representations. The new "
                  "head has no pretrained weights (it starts from a random init) and the pooler, unused under mean "
                  "pooling, does not move: neither is drawn."}


figure(FigureSpec(id="layer-drift", section="3.2.2", notebooks=("02",),
                  caption=_layer_drift_caption,
                  needs=lambda S: {"study": finetuned_need(S), "gate_run": base_run(S)},
                  draw=viz.layer_drift, must_learn={"gate_run": all_runs}))
