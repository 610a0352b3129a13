"""Figures of seed 003's pretraining systems (issue 15): ``pretraining`` and ``continual-pretraining``.

Both fine-tune models pretrained here (:mod:`ftcore.pretraining.mlm`) through the ordinary engine:
``RunConfig(model="pretrained-here:<recipe>")`` names the checkpoint by its recipe, so the records,
the gate and the claims work as for any run; the MLM curves are studies read from the checkpoint.
"""
from __future__ import annotations

import pandas as pd

import viz
from ftcore.pretraining.mlm import RECIPES, fingerprint, model_name
from .claims import Claim
from .registry import FigureSpec, Grid, StudyNeed, figure
from .specs import PROBE_TASK, _strategy_epochs, _text, all_runs

# ------------------------------------------------------------------------------------ pretraining
# The small RoBERTa (4 layers × 256, BPE vocabulary 8,000 trained here) fine-tunes with RoBERTa's own
# classification head on <s> (it has no pooler to average with); the default model as in `strategies`
# (mean pooling, LR 1e-4). LR of the small models from a short sweep at 1,000 reviews, seed 0, at the
# default model's budget (126 steps; test accuracy, records in runs/reference): 1e-4 .578, 3e-4 .560,
# 1e-3 .578 (the majority class is .578): none learned in 126 steps, and only 3e-4 brought the training
# loss down (0.69 → 0.53). With 10 epochs at 3e-4 both small models learned (pretrained here .628, random
# init .656, seed 0). So the small models train 3× the default model's budget at 3e-4.
HERE_LR, SCRATCH_LR = 3e-4, 3e-4
SMALL_BUDGET = 3  # × the default model's epochs at each size: the small models are ~20× cheaper per step
PRETRAIN_SWEEP = (1e-4, 3e-4, 1e-3)
PRETRAIN_SIZES = (300, 1000, 3000)


def _recipe(S, full: str, quick: str) -> str:
    return S.pick(full, quick)


def _mlm_need(recipe: str) -> StudyNeed:
    from ftcore.pretraining.mlm import curves
    return StudyNeed("mlm-pretraining", {"recipe": recipe, "model": model_name(recipe),
                                         "fingerprint": fingerprint(RECIPES[recipe])},
                     lambda recipe=recipe: curves(recipe))


def _here(S, **kw):
    """A fine-tuning run of the small RoBERTa pretrained here (or, with init="random", the same
    architecture and tokenizer from random weights)."""
    return S.base.replace(model=model_name(_recipe(S, "roberta-small", "roberta-quick")), pooling="cls", **kw)


def _pretraining(S):
    cells = []
    for size in S.pick(PRETRAIN_SIZES, (16, 48)):
        epochs = _strategy_epochs(S, size)  # at least ~2,000 examples seen, as in `strategies`
        small = SMALL_BUDGET * epochs
        for s in S.seeds[:3]:
            common = {"size": size, "seed": s}
            cells += [({"arm": "here", **common}, _here(S, lr=HERE_LR, train_size=size, seed=s, epochs=small)),
                      ({"arm": "scratch", **common}, _here(S, init="random", lr=SCRATCH_LR, train_size=size,
                                                            seed=s, epochs=small)),
                      # the very runs of `strategies` ("full" arm): shared records
                      ({"arm": "default", **common}, S.base.replace(train_size=size, seed=s, epochs=epochs))]
    sweep = [({"arm": arm, "lr": lr, "size": S.train_size(1000)}, (_here(S, lr=lr, train_size=S.train_size(1000), seed=S.seeds[0],
                                             epochs=_strategy_epochs(S, S.train_size(1000)),
                                             **({"init": "random"} if arm == "scratch" else {}))))
             for arm in ("here",) for lr in S.pick(PRETRAIN_SWEEP, PRETRAIN_SWEEP[1:2])]
    return {"mlm": _mlm_need(_recipe(S, "roberta-small", "roberta-quick")), "runs": Grid(cells),
            "sweep": Grid(sweep)}


def _pretraining_measure(inputs):
    meta = inputs["mlm"].meta
    f = inputs["runs"].finals()
    m = f.groupby(["size", "arm"])["value"].mean().unstack()
    rows_zh = "；".join(f"{s:,} 条：本地预训练 {r['here']:.3f}，随机初始化 {r['scratch']:.3f}，默认模型 {r['default']:.3f}"
                       for s, r in m.iterrows())
    rows_en = "; ".join(f"{s:,} examples: pretrained here {r['here']:.3f}, random init {r['scratch']:.3f}, "
                        f"default model {r['default']:.3f}" for s, r in m.iterrows())
    fin = meta["final"]
    mins = meta["train_s"] / 60
    return _text(
        f"分词器词表 {meta['vocab_size']:,}，语料 {meta['corpus']['texts']:,} 篇、{meta['corpus']['tokens']:,} 个词元；"
        f"预训练 {meta['recipe_params']['steps']:,} 步（{meta['epochs']:.1f} 轮，单线程 {mins:.1f} 分钟），"
        f"留出掩码词元准确率 {fin['accuracy']:.3f}（损失 {fin['loss']:.2f}）。微调测试准确率（3 个种子的均值）：{rows_zh}。",
        f"Tokenizer vocabulary {meta['vocab_size']:,}; corpus {meta['corpus']['texts']:,} texts, "
        f"{meta['corpus']['tokens']:,} tokens; pretraining {meta['recipe_params']['steps']:,} steps "
        f"({meta['epochs']:.1f} epochs, {mins:.1f} min on one thread), held-out masked-token accuracy "
        f"{fin['accuracy']:.3f} (loss {fin['loss']:.2f}). Fine-tuned test accuracy (mean of 3 seeds): {rows_en}.")


def _pretraining_claims():
    # only where both compared arms must learn (the largest size; the default model at every size)
    n = PRETRAIN_SIZES[-1]
    return [Claim({"zh": f"{n:,} 条时，本地预训练优于随机初始化", "en": f"At {n:,} examples pretraining here beats random init"},
                  {"arm": "here"}, {"arm": "scratch"}, where={"size": n}),
            Claim({"zh": f"{n:,} 条时，默认预训练模型优于本地预训练的小模型",
                   "en": f"At {n:,} examples the default pretrained model beats the small one pretrained here"},
                  {"arm": "default"}, {"arm": "here"}, where={"size": n})]


figure(FigureSpec(
    "pretraining", "3.2.1", {"zh": "从头预训练一个小 RoBERTa，再微调", "en": "Pretraining a small RoBERTa here, then fine-tuning"},
    {"zh": "左：在离线语料（影评、剧情简介、BBC 新闻的训练划分；验证与测试文本均被剔除）上训练字节级 BPE 分词器（词表 8,000），"
           "再用 MLM（15% 掩码）从头预训练 4 层 × 256 维的 RoBERTa（约 530 万参数，1,800 步 × 32 × 64 词元，学习率 1e-3，bf16，单线程）；"
           "线为训练批次的掩码词元准确率与损失（滑动平均），点为留出文本上的值。右：在影评情感上微调，训练集 300 / 1,000 / 3,000 条。"
           "默认模型（all-MiniLM-L6-v2）为 `strategies` 中的同一批运行（学习率 1e-4，均值池化，至少约 2,000 个样本次）；"
           "本地预训练与同结构随机初始化用 RoBERTa 自带的 <s> 分类头，学习率 3e-4，训练量为默认模型的 3 倍（小模型每步便宜约 20 倍）。"
           "小模型的学习率来自扫描（1,000 条，种子 0，默认模型的训练量：1e-4 / 3e-4 / 1e-3 的测试准确率 0.578 / 0.560 / 0.578，"
           "都停在多数类，只有 3e-4 降低了训练损失）。"
           "3 个配对种子，误差线为 95% t 区间。",
     "en": "Left: a byte-level BPE tokenizer (vocabulary 8,000) trained on the offline corpora (the train splits of "
           "reviews, plot synopses and BBC News; validation and test text removed), then a 4-layer × 256 RoBERTa "
           "(about 5.3M parameters) pretrained from scratch with MLM (15% masked; 1,800 steps of 32 × 64 tokens, LR 1e-3, "
           "bf16, one CPU thread): masked-token accuracy and loss of the training batches (lines, rolling mean) and on "
           "held-out text (dots). Right: fine-tuned on review sentiment with 300 / 1,000 / 3,000 examples. The default "
           "model (all-MiniLM-L6-v2) is the same runs as in `strategies` (LR 1e-4, mean pooling, at least about 2,000 "
           "examples seen); pretrained here and the same architecture from random init use RoBERTa's own <s> "
           "classification head at LR 3e-4 and train 3× the default model's budget (a step of the small model costs about "
           "20× less); their LR is from a sweep (1,000 examples, seed 0, the default model's budget: 1e-4 / 3e-4 / 1e-3 "
           "gave test accuracy 0.578 / 0.560 / 0.578, all at the majority class; only 3e-4 lowered the training loss). Three paired seeds; error bars: 95% t "
           "intervals."},
    _pretraining,
    {"zh": "教材称：预训练模型从海量无标注文本中学到通用语言知识，微调时以少量标注数据即可取得好效果。",
     "en": "The chapter says a model pretrained on large unlabelled text learns general language knowledge, so "
           "fine-tuning needs little labelled data."},
    _pretraining_measure,
    draw=viz.pretraining,
    # the small models (random init, and pretrained here for a few minutes) may stay near the majority
    # class with little data (that is the point); they must learn at the largest size, the default
    # model at every size; the sweep's runs are not compared
    must_learn={"runs": lambda lab: lab["arm"] == "default" or lab["size"] in (PRETRAIN_SIZES[-1], 48)},
    claims=_pretraining_claims()))


# ------------------------------------------------------------------------------------ continual pretraining
CONTINUAL_SIZES = (100, 300, 1000)
CONTINUAL_LRS = {"low": 1e-5, "high": 1e-4}
DAPT_FOR_FINETUNING = "high"  # the continued model that is fine-tuned (the low LR barely moves the encoder)


def _continual_recipe(S, which: str) -> str:
    lr = f"{CONTINUAL_LRS[which]:.0e}"  # 1e-05
    return S.pick(f"minilm-reviews-{lr}", f"minilm-reviews-quick-{lr}")


def _probe_models(S, n_train: int, n_test: int, seeds) -> tuple[dict, dict]:
    """Linear-probe and kNN accuracy on PROBE_TASK of the default encoder and of each continued one
    (mean-pooled features, as in `forgetting-pretrained`), over probe subsets ``seeds``."""
    import torch

    from ftcore.analysis.probe import probe_task
    from ftcore.engine.runs import build

    rows = []
    models = {"none": S.base.model, **{w: model_name(_continual_recipe(S, w)) for w in CONTINUAL_LRS}}
    for which, model in models.items():
        trainer = build(S.base.replace(model=model, seed=0))
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                res = probe_task(trainer.model, PROBE_TASK, trainer.data.tokenizer, n_train=n_train, n_test=n_test,
                                 max_length=S.base.max_length, seed=seed)
            rows.append({"continual": which, "mlm_lr": CONTINUAL_LRS.get(which, 0.0), "model": model,
                         "probe_seed": seed, **res})
    return {"probe": pd.DataFrame(rows)}, {"probe_task": PROBE_TASK, "n_train": n_train, "n_test": n_test}


def _continual(S):
    cells = []
    dapt = model_name(_continual_recipe(S, DAPT_FOR_FINETUNING))
    for size in S.pick(CONTINUAL_SIZES, (16, 48)):
        epochs = _strategy_epochs(S, size)
        for s in S.seeds[:3]:
            common = {"size": size, "seed": s}
            cells += [({"continual": "none", **common}, S.base.replace(train_size=size, seed=s, epochs=epochs)),
                      ({"continual": DAPT_FOR_FINETUNING, **common},
                       S.base.replace(model=dapt, train_size=size, seed=s, epochs=epochs))]
    n_train, n_test, seeds = S.pick(500, 32), S.pick(400, 32), S.pick((0, 1, 2), (0,))
    probe = StudyNeed("continual-probe", {
        "models": {w: RECIPES[_continual_recipe(S, w)].to_dict() for w in CONTINUAL_LRS},
        "fingerprints": {w: fingerprint(RECIPES[_continual_recipe(S, w)]) for w in CONTINUAL_LRS},
        "base": S.base.identity_dict(), "probe_task": PROBE_TASK, "n_train": n_train, "n_test": n_test,
        "seeds": list(seeds)}, lambda: _probe_models(S, n_train, n_test, seeds))
    return {"runs": Grid(cells), "probe": probe,
            **{f"mlm_{w}": _mlm_need(_continual_recipe(S, w)) for w in CONTINUAL_LRS}}


def _continual_measure(inputs):
    f = inputs["runs"].finals()
    m = f.groupby(["size", "continual"])["value"].mean().unstack()
    p = inputs["probe"]["probe"].groupby("continual")["linear"].mean()
    hi = DAPT_FOR_FINETUNING
    zh = "；".join(f"{s:,} 条：{r[hi] - r['none']:+.3f}" for s, r in m.iterrows())
    en = "; ".join(f"{s:,} examples {r[hi] - r['none']:+.3f}" for s, r in m.iterrows())
    return _text(
        f"继续预训练（学习率 {CONTINUAL_LRS[hi]:g}）后微调，相对不继续预训练的测试准确率差（3 个种子均值）：{zh}。"
        f"{PROBE_TASK} 线性探针：原模型 {p['none']:.3f}，继续预训练 1e-5 后 {p['low']:.3f}，1e-4 后 {p['high']:.3f}。",
        f"Continual pretraining (LR {CONTINUAL_LRS[hi]:g}) then fine-tuning, minus no continual pretraining (test "
        f"accuracy, mean of 3 seeds): {en}. Linear probe on {PROBE_TASK}: original {p['none']:.3f}, after continual "
        f"pretraining at 1e-5 {p['low']:.3f}, at 1e-4 {p['high']:.3f}.")


figure(FigureSpec(
    "continual-pretraining", "3.2.1", {"zh": "领域自适应的继续预训练", "en": "Continual (domain-adaptive) pretraining"},
    {"zh": "默认模型（all-MiniLM-L6-v2）在影评情感训练划分的文本上（不用标签）继续做 MLM：400 步，批量 16 × 64 词元，"
           "学习率 1e-5 或 1e-4（6% 预热后线性衰减，bf16，单线程）。该检查点没有 MLM 头：输出投影与词嵌入绑定、偏置为零，"
           "变换层（dense + LayerNorm）随机初始化，这个新头用学习率 1e-3。左：留出影评上的掩码词元准确率。中：以学习率 1e-4 继续预训练的模型与原模型"
           "分别微调（基准设置：学习率 1e-4，均值池化，每个大小至少约 2,000 个样本次），训练集 100 / 300 / 1,000 条，"
           f"3 个配对种子，误差线为 95% t 区间。右：编码器均值池化特征在另一任务（{PROBE_TASK}，500 条训练 / 400 条测试，3 个子集）上的"
           "线性探针准确率，衡量对通用知识的代价（与 `forgetting-pretrained` 相同的探针）。",
     "en": "The default model (all-MiniLM-L6-v2) continued with MLM on the text of the review-sentiment train split "
           "(no labels): 400 steps of 16 × 64 tokens at LR 1e-5 or 1e-4 (6% warmup then linear decay, bf16, one thread). "
           "The checkpoint has no MLM head: the output projection is tied to the word embeddings with a zero bias, "
           "the transform (dense + LayerNorm) starts from a random init; this new head trains at LR 1e-3. Left: masked-token accuracy on held-out "
           "reviews. Middle: the model continued at LR 1e-4 and the original, each fine-tuned (base settings: LR "
           "1e-4, mean pooling, at least about 2,000 examples seen at each size) on 100 / 300 / 1,000 examples, "
           "three paired seeds, error bars 95% t intervals. Right: linear-probe accuracy of the encoder's mean-pooled "
           f"features on a held-out task ({PROBE_TASK}, 500 train / 400 test, 3 subsets): the cost to general "
           "knowledge (the probe of `forgetting-pretrained`)."},
    _continual,
    {"zh": "教材称：在目标领域的无标注文本上继续预训练能提升小数据微调；学习率取 1e-5 之类的小值可避免偏离通用知识。",
     "en": "The chapter says continued pretraining on in-domain unlabelled text helps fine-tuning with little data, "
           "and that a small LR such as 1e-5 avoids drifting from general knowledge."},
    _continual_measure,
    draw=viz.continual_pretraining,
    must_learn={"runs": all_runs},
    claims=[Claim({"zh": f"{n:,} 条时，继续预训练后微调优于直接微调",
                   "en": f"At {n:,} examples continual pretraining then fine-tuning beats fine-tuning alone"},
                  {"continual": DAPT_FOR_FINETUNING}, {"continual": "none"}, where={"size": n})
            for n in CONTINUAL_SIZES]))
