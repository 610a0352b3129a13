"""3.2.3 Task-specific data (notebook 03): ``task-formats``, ``augmentation``, ``data-quality``."""
from __future__ import annotations

import viz
from ftcore.analysis import figure_studies as analyses
from ..claims import Claim
from ..registry import FigureSpec, Grid, StudyNeed, figure
from .base import all_runs, base_run, finetuned_need
from .captions import lr, one, pct, seeds, steps

def _task_formats(S):
    return {"study": StudyNeed("task-formats", {"model": S.base.model, "max_length": S.base.max_length},
                               lambda: analyses.task_formats(S.base.model, max_length=S.base.max_length))}


figure(FigureSpec(id="task-formats", section="3.2.3", notebooks=("03",),
                  caption={"zh": "同一条真实影评：序列分类、词元分类（片名标注对齐到子词，-100 表示不计损失）和掩码语言模型。",
                           "en": "One real review: sequence classification, token classification (film title tags aligned to word "
                                 "pieces, -100 = ignored) and masked language modelling."},
                  needs=_task_formats,
                  draw=viz.task_formats, must_learn={},  # no training: nothing to choose
                  reviewed=True, selections=("regime", "base")))

figure(FigureSpec(id="augmentation", section="3.2.3", notebooks=("03",),
                  caption={"zh": "同义词替换、随机插入、删除、交换作用于一条真实影评，并给出微调后模型对每个版本的预测。回译需要翻译模型，离线不可用，故省略。",
                           "en": "Synonym replacement, random insertion, deletion and swap applied to a real review, with the "
                                 "fine-tuned model's prediction for each. Back-translation needs a translation model that is not "
                                 "available offline, so it is left out."},
                  needs=lambda S: {"study": finetuned_need(S), "gate_run": base_run(S)},
                  draw=viz.augmentation, must_learn={"gate_run": all_runs}, reviewed=True, selections=("regime", "base")))

# ------------------------------------------------------------------------------------ data-quality
NOISE = (0.0, 0.1, 0.2, 0.4)
QUALITY_SIZES = (250, 500, 1000, 2000)


def _quality(S):
    """Every size trained on as many examples as the base run (its 126 steps; more epochs on small
    sets); the two ends of the noise range over all seeds (the claims compare them), 10% and 20% over three."""
    cells = []
    for size in S.pick(QUALITY_SIZES, (32, 48)):
        for noise in NOISE:
            for s in (S.seeds if noise in (NOISE[0], NOISE[-1]) else S.seeds[:3]):
                cells.append(({"noise": noise, "size": size, "seed": s}, S.base.replace(
                    train_size=size, epochs=S.base.epochs * S.base.train_size / size, label_noise=noise,
                    score_train=True, seed=s)))
    return {"runs": Grid(cells)}


def _quality_caption(S) -> dict:
    runs = _quality(S)["runs"]
    levels = "/".join(f"{100 * x:g}" for x in NOISE)
    ends, middle = (pct(NOISE[0]), pct(NOISE[-1])), (pct(NOISE[1]), pct(NOISE[2]))
    k_ends = one(seeds(runs, noise=x) for x in (NOISE[0], NOISE[-1]))
    k_middle = one(seeds(runs, noise=x) for x in NOISE[1:3])
    budget, lr_ = steps(S.base), lr(one(c.lr for _, c in runs.cells))
    return {"zh": f"左：随机翻转 {levels}% 训练标签后的测试准确率（每个大小都训练约 {budget} 步，学习率 {lr_}；{ends[0]} 与 {ends[1]} 各 {k_ends} 个种子，"
                  f"{middle[0]} 与 {middle[1]} 各 {k_middle} 个，误差线为 95% t 区间）；右：按训练结束时的单样本损失排序，能多准地找出被翻转的标签（precision@k）。"
                  "干净标签的运行都必须学会；有噪声的运行照实画出（能否学会正是图要测的）。",
            "en": f"Left: test accuracy with {levels}% of training labels flipped (about {budget} steps at every size, LR {lr_}; "
                  f"{ends[0]} and {ends[1]} over {k_ends} seeds, {middle[0]} and {middle[1]} over {k_middle}; error bars 95% t "
                  "intervals); right: how well the per-example training loss at the end finds the flipped labels (precision at k). "
                  "Every clean-label run must learn; noisy runs are drawn as they are (whether they learn is what is measured)."}


DATA_QUALITY_CLAIMS = [
    Claim({"zh": f"{size:,} 条时，干净标签优于 {pct(NOISE[-1])} 噪声",
           "en": f"At {size:,} examples clean labels beat {pct(NOISE[-1])} noise"},
          {"noise": NOISE[0]}, {"noise": NOISE[-1]}, where={"size": size})
    for size in (QUALITY_SIZES[0], QUALITY_SIZES[-1])]

figure(FigureSpec(id="data-quality", section="3.2.3", notebooks=("03",),
                  caption=_quality_caption, needs=_quality,
                  draw=viz.data_quality,
                  # clean labels must learn; noisy runs are drawn whatever they reach, since whether
                  # they learn is what the figure measures (under the reviewed protocol one 20% run at
                  # 250 examples stayed at the majority class: the noise's effect, not a broken run)
                  must_learn={"runs": lambda lab: lab["noise"] == NOISE[0]},
                  claims=DATA_QUALITY_CLAIMS, reviewed=True, selections=("regime", "base")))
