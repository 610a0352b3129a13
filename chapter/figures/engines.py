"""Seeds 001-003's training loops (issue 14; notebook 10), the ``engines`` figure: one config, three
training loops.

Seeds 001 and 003 train with HF ``Trainer``, seed 002 with PyTorch Lightning. Each column trains
the same RunConfig (same data subset, model, pooling, optimizer param groups and schedule) with
ftcore's loop, ``Trainer`` (:func:`ftcore.engine.hf.train_hf`) and Lightning
(:func:`ftcore.engine.lightning.train_lightning`), on paired seeds (ten under the reviewed protocol), so a reader sees
whether the loops agree within seed noise. The loops differ in data order (each draws its own) and
in small details listed in the caption; a claim "A ends above B" with an interval across zero is the
"cannot tell at this n" (or, with a tight interval, "equivalent within ±margin") the loops should show.
"""
from __future__ import annotations

import pandas as pd

import viz

from ..claims import Claim
from ..registry import FigureSpec, Grid, figure
from .base import LLRD_DECAY, LLRD_LR, all_runs, measured, more_seeds
from .basics import llrd_lr
from .captions import added_seeds, arm, held_out, lr, n, one, pooling, seeds

ENGINE_SEEDS = 3
# Seed 002's AG News is not in the offline task set: bbc-topic (5 news topics) stands in for it.
TOPIC_TASK = "bbc-topic"
# Seed 001/003's Trainer recipe on the base regime: layer-wise LRs (the data-size figure's top LR and
# decay), label smoothing 0.1, validation every 16 updates, early stopping on validation accuracy
# (patience 2) with the best weights restored at the end.
RECIPE = dict(lr_strategy="layerwise", layer_decay=LLRD_DECAY, lr=LLRD_LR, label_smoothing=0.1,
              eval_splits=("validation",), early_stopping_patience=2, early_stopping_metric="accuracy")
SETUPS = {"sentiment": ({}, ("ftcore", "hf", "lightning")),
          "topic": ({"task": TOPIC_TASK}, ("ftcore", "hf", "lightning")),
          "recipe": (RECIPE, ("ftcore", "hf"))}


def needs(S) -> dict:
    cells = []
    for setup, (kw, engines) in SETUPS.items():
        extra = {"eval_every": S.pick(16, 1)} if "early_stopping_patience" in kw else {}
        if setup == "recipe":  # its top LR as layer-wise LRs chose it (on validation when reviewed)
            extra["lr"] = llrd_lr(S)
        for engine in engines:
            cells += [({"setup": setup, "engine": engine, "seed": s}, S.base.replace(seed=s, **{**kw, **extra}))
                      for s in (more_seeds(S) if S.reviewed else S.seeds[:ENGINE_SEEDS])]
    return {"runs": Grid(cells, engine_label="engine")}


ENGINE_NAMES = {"ftcore": "ftcore", "hf": "HF Trainer", "lightning": "Lightning"}
SETUP_NAMES = {"sentiment": ("影评情感", "Review sentiment"), "topic": ("新闻主题", "News topic"),
               "recipe": ("完整配方", "Full recipe")}


def _measure(inputs):
    f = inputs["runs"].finals("accuracy", "test")
    m = f.groupby(["setup", "engine"], sort=False)["value"].mean()
    parts = {"zh": [], "en": []}
    for setup in pd.unique(f["setup"]):
        vals = ", ".join(f"{ENGINE_NAMES[e]} {m[(setup, e)]:.3f}" for e in pd.unique(f[f["setup"] == setup]["engine"]))
        parts["zh"].append(f"{SETUP_NAMES[setup][0]}：{vals}")
        parts["en"].append(f"{SETUP_NAMES[setup][1].lower()}: {vals}")
    return measured("测试准确率均值：" + "；".join(parts["zh"]) + "。", "Mean test accuracy: " + "; ".join(parts["en"]) + ".")


CLAIMS = [Claim({"zh": f"{SETUP_NAMES[setup][0]}：{ENGINE_NAMES[e]} 的测试准确率高于 ftcore 的循环",
                 "en": f"{SETUP_NAMES[setup][1]}: {ENGINE_NAMES[e]} ends above ftcore's loop (test accuracy)"},
                {"engine": e}, {"engine": "ftcore"}, where={"setup": setup})
          for setup, (_, engines) in SETUPS.items() for e in engines[1:]]


def _caption(S) -> dict:
    runs = needs(S)["runs"]
    base, recipe = arm(runs, setup="sentiment", engine="ftcore"), arm(runs, setup="recipe", engine="ftcore")
    settings = {"zh": f"{n(base.train_size)} 条、{n(base.epochs)} 轮、学习率 {lr(base.lr)}、{base.precision}、{base.max_length} 词元",
                "en": f"{n(base.train_size)} examples, {n(base.epochs)} epochs, LR {lr(base.lr)}, {base.precision}, {base.max_length} tokens"}
    top, decay, smoothing = lr(recipe.lr), f"{recipe.layer_decay:g}", f"{recipe.label_smoothing:g}"
    each, patience, k = recipe.eval_every, recipe.early_stopping_patience, one(seeds(runs, setup=s) for s in SETUPS)
    how = ({"zh": f"基准学习率与完整配方的顶层学习率均在影评情感的验证集上选定（{held_out('zh')}），新闻主题沿用基准学习率；"
                  "每个运行在整个测试集上只测一次。" + added_seeds(needs(S)["runs"], "zh"),
            "en": (f" The base LR and the full recipe's top LR were chosen on review sentiment's validation split "
                  f"{held_out('en')}; news topic keeps the base LR; each run is tested once, on the whole test split. "
                  + added_seeds(needs(S)["runs"], "en")).rstrip()}
           if S.reviewed else {"zh": "", "en": ""})
    out = {"zh": f"每列一个配置，由三种循环各训练 {k} 个配对种子（同一训练子集、模型、{pooling(base, 'zh')}、分组参数与调度；数据顺序各自抽取）："
                  f"影评情感与新闻主题（bbc-topic，代替种子 002 的 AG News）用基准设置（{settings['zh']}）；"
                  f"完整配方为分层学习率（顶层 {top}，向下每层 ×{decay}）、标签平滑 {smoothing}、每 {each} 步验证一次、"
                  f"验证准确率 {patience} 次不升即早停并恢复最佳权重（HF：EarlyStoppingCallback + load_best_model_at_end）。"
                  "测试准确率（95% t 区间，点为种子）。速度不在图中：记录里的耗时测于负载不同的机器，受控的速度比较见 make bench。",
            "en": f"Each column is one config trained by each loop for {k} paired seeds (same training subset, model, "
                  f"{pooling(base, 'en')}, param groups and schedule; each loop draws its own data order): review sentiment and news topic "
                  f"(bbc-topic, standing in for seed 002's AG News) at the base settings ({settings['en']}); the full recipe adds "
                  f"layer-wise LRs (top {top}, ×{decay} per layer down), label smoothing {smoothing}, validation every {each} "
                  f"updates and early stopping after {patience} evaluations without a better validation accuracy, best weights "
                  "restored (HF: EarlyStoppingCallback + load_best_model_at_end). Test accuracy (95% t intervals, dots are seeds). "
                  "Speed is not drawn: the records' wall times were measured on machines loaded differently; `make bench` "
                  "compares it under control."}
    return {lang: out[lang] + how[lang] for lang in out}


figure(FigureSpec(id="engines", section="seeds 001-003", notebooks=("10",),
                  caption=_caption, needs=needs,
                  measure=_measure, draw=viz.engines, must_learn={"runs": all_runs}, claims=CLAIMS,
                  reviewed=True, selections=("regime", "base", "llrd"),
                  # declared when the added seeds 5-9 showed the full recipe's early stopping (patience 2
                  # evaluations, every 16 updates) stop two HF Trainer runs (seeds 5 and 6) at step 64 and
                  # restore step 32's weights before they had left the majority class; its other eight
                  # learned, as did every ftcore run of it: the recipe's failure rate under that data order,
                  # kept in the comparison and named on the figure
                  tolerated_failures=2,
                  beyond="issue 14: one config trained by ftcore's loop, HF Trainer and Lightning (seeds 001-003)"))
