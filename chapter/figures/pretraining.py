"""Seed 003's pretraining systems (issue 15; notebook 11): ``pretraining`` and ``continual-pretraining``.

Both fine-tune models pretrained here (:mod:`ftcore.pretraining.mlm`) through the ordinary engine:
``RunConfig(model="pretrained-here:<recipe>")`` names the checkpoint by its recipe, so the records,
the gate and the claims work as for any run; the MLM curves are studies read from the checkpoint.
"""
from __future__ import annotations

import pandas as pd

import viz
from ftcore.pretraining.mlm import RECIPES, fingerprint, model_name
from ftcore.records.validity import LEARN_MARGIN, ONE_CLASS_LIMIT
from ..claims import Claim
from ..registry import FigureSpec, Grid, StudyNeed, figure
from .base import HERE_LR, SCRATCH_LR, all_runs, below_bar, chosen, measured
from .basics import strategy_epochs
from .captions import configs, held_out, lr, n, one, pct, pooling, seeds
from .problems import PROBE_TASK

# ------------------------------------------------------------------------------------ pretraining
# The small RoBERTa (4 layers × 256, BPE vocabulary 8,000 trained here) fine-tunes with RoBERTa's own
# classification head on <s> (it has no pooler to average with); the default model as in `strategies`
# (mean pooling, LR 1e-4). None of the small models learned in the default model's 126 steps (their
# LRs: base.py), so they train 3× the default model's budget at HERE_LR / SCRATCH_LR.
SMALL_BUDGET = 3  # × the default model's epochs at each size: the small models are ~20× cheaper per step
PRETRAIN_SWEEP = (1e-4, 3e-4, 1e-3)
PRETRAIN_SIZES = (300, 1000, 3000)
# Paired seeds of the small models (and of continual pretraining): 3 earlier; the reviewed protocol's
# verdicts need 5 for an interval that can tell
PRETRAIN_SEEDS, PRETRAIN_SEEDS_REVIEWED = 3, 5


def _recipe(S, full: str, quick: str) -> str:
    """A recipe's name at scale ``S``. Under the reviewed protocol the checkpoints pretrain in fp32,
    which every CPU runs fast (the earlier ones pinned bf16: 20-150x slower on a CPU without it)."""
    if S.reviewed:
        return full.replace("roberta-small", "roberta-small-fp32").replace("minilm-reviews-", "minilm-reviews-fp32-")
    return S.pick(full, quick)


def _seeds(S):
    return S.seeds[:PRETRAIN_SEEDS_REVIEWED if S.reviewed else PRETRAIN_SEEDS]


def _mlm_need(recipe: str) -> StudyNeed:
    from ftcore.pretraining.mlm import curves
    return StudyNeed("mlm-pretraining", {"recipe": recipe, "model": model_name(recipe),
                                         "fingerprint": fingerprint(RECIPES[recipe])},
                     lambda recipe=recipe: curves(recipe))


def _here(S, **kw):
    """A fine-tuning run of the small RoBERTa pretrained here (or, with init="random", the same
    architecture and tokenizer from random weights)."""
    return S.base.replace(model=model_name(_recipe(S, "roberta-small", "roberta-quick")), pooling="cls", **kw)


def small_run(S, size: int, **kw):
    """A small model's fine-tuning run at ``size`` examples and the figure's budget (SMALL_BUDGET ×
    the default model's epochs at that size): what the figure reports, and (at the largest size,
    where both small models must learn) what the protocol's LR selections score on validation."""
    return _here(S, train_size=size, epochs=SMALL_BUDGET * strategy_epochs(S, size), **kw)


def small_lrs(S) -> tuple[float, float]:
    """The LRs of the small model pretrained here and of the same one from random init: under the
    reviewed protocol each chosen on validation at the largest size (chapter.protocol
    "small_pretrained", "small_random"); earlier, the test-read sweep's (base.py)."""
    if S.reviewed:
        return chosen(S, "small_pretrained"), chosen(S, "small_random")
    return HERE_LR, SCRATCH_LR


def _pretraining(S):
    cells = []
    here_lr, scratch_lr = small_lrs(S)
    for size in S.pick(PRETRAIN_SIZES, (16, 48)):
        epochs = strategy_epochs(S, size)  # as many examples seen as the base run, as in `strategies`
        for s in _seeds(S):
            common = {"size": size, "seed": s}
            cells += [({"arm": "here", **common}, small_run(S, size, lr=here_lr, seed=s)),
                      ({"arm": "scratch", **common}, small_run(S, size, init="random", lr=scratch_lr, seed=s)),
                      # the very runs of `strategies` ("full" arm): shared records
                      ({"arm": "default", **common}, S.base.replace(train_size=size, seed=s, epochs=epochs))]
    needs = {"mlm": _mlm_need(_recipe(S, "roberta-small", "roberta-quick")), "runs": Grid(cells)}
    if S.reviewed:  # the LRs were chosen on validation: the gallery lists that selection's table
        return needs
    sweep = [({"arm": arm, "lr": lr_, "size": S.train_size(1000)}, (_here(S, lr=lr_, train_size=S.train_size(1000), seed=S.seeds[0],
                                              epochs=strategy_epochs(S, S.train_size(1000)),
                                              **({"init": "random"} if arm == "scratch" else {}))))
             for arm in ("here",) for lr_ in S.pick(PRETRAIN_SWEEP, PRETRAIN_SWEEP[1:2])]
    return {**needs, "sweep": Grid(sweep)}


def _pretraining_caption(S) -> dict:
    needs = _pretraining(S)
    runs, sweep, r = needs["runs"], needs.get("sweep"), RECIPES[needs["mlm"].params["recipe"]]
    sizes = " / ".join(n(s) for s in sorted({lab["size"] for lab, _ in runs.cells}))
    default, here = configs(runs, arm="default"), configs(runs, arm="here") + configs(runs, arm="scratch")
    default_lr = lr(one(c.lr for c in default))
    here_lr, scratch_lr = (lr(one(c.lr for c in configs(runs, arm=a))) for a in ("here", "scratch"))
    small_lr = {"zh": here_lr if here_lr == scratch_lr else f"{here_lr}（随机初始化 {scratch_lr}）",
                "en": here_lr if here_lr == scratch_lr else f"{here_lr} (random init {scratch_lr})"}
    pool = {lang: pooling(default[0], lang) for lang in ("zh", "en")}
    seen = n(min(c.train_size * c.epochs for c in default))
    budget = f"{one(h.epochs / d.epochs for h, d in zip(configs(runs, arm='here'), default)):g}"
    k = seeds(runs)
    if sweep is None:  # reviewed: chosen on validation
        largest = n(max(lab["size"] for lab, _ in runs.cells))
        how = {"zh": f"两个小模型的学习率各自在验证集上选定（{largest} 条、本图的训练量，{held_out('zh')}）。"
                     f"有效性检查：默认模型在每个大小、随机初始化在 {largest} 条时必须学会（验证准确率至少为多数类 + {LEARN_MARGIN:g}，"
                     f"且单一类别的预测少于 {pct(ONE_CLASS_LIMIT)}）。本地预训练的小模型在复审协议的运行之后才免于检查：它在选定的学习率下"
                     "有种子塌缩为只预测一个类别；选定的学习率没有改，塌缩的种子照样计入均值与结论（意向性分析），图集的说明列出这些种子。",
               "en": f"Each small model's LR was chosen on the validation split ({largest} examples at this figure's "
                     f"budget, {held_out('en')}). Validity gate: the default model must learn at every size, random init at "
                     f"{largest} examples (validation accuracy at least the majority class + {LEARN_MARGIN:g}, under "
                     f"{pct(ONE_CLASS_LIMIT)} of predictions in one class). The small model pretrained here was exempted after the "
                     "reviewed runs: at its chosen LR a seed collapsed to predicting one class. The chosen LR was kept and the "
                     "collapsed seeds count in its mean and in the verdicts (intention to treat); the gallery's note names them."}
    else:
        swept = [c for _, c in sweep.cells]
        tried, at, seed = " / ".join(lr(c.lr) for c in swept), n(one(c.train_size for c in swept)), one(c.seed for c in swept)
        how = {"zh": f"小模型的学习率来自扫描（{at} 条，种子 {seed}，默认模型的训练量，{tried}）。",
               "en": f"Their LR is from a sweep ({at} examples, seed {seed}, the default model's budget, {tried})."}
    return {"zh": f"左：在离线语料（影评、剧情简介、BBC 新闻的训练划分；验证与测试文本均被剔除）上训练字节级 BPE 分词器（词表 {n(r.vocab_size)}），"
                  f"再用 MLM（{pct(r.mlm_probability)} 掩码）从头预训练 {r.layers} 层 × {r.hidden} 维的 RoBERTa（{n(r.steps)} 步 × "
                  f"{r.batch_size} × {r.block} 词元，学习率 {lr(r.lr)}，{r.precision}，单线程）；"
                  f"线为训练批次的掩码词元准确率与损失（滑动平均），点为留出文本上的值。右：在影评情感上微调，训练集 {sizes} 条。"
                  f"默认模型（all-MiniLM-L6-v2）为 `strategies` 中的同一批运行（学习率 {default_lr}，{pool['zh']}，至少约 {seen} 个样本次）；"
                  f"本地预训练与同结构随机初始化用 RoBERTa 自带的 <s> 分类头，学习率 {small_lr['zh']}，训练量为默认模型的 {budget} 倍（小模型每步便宜得多）。"
                  + how["zh"] +
                  f"本地预训练一共只见过 {n(r.steps * r.batch_size * r.block)} 个词元，远少于真正的预训练语料；右图检验这点预训练是否足以胜过随机初始化。"
                  f"{k} 个配对种子，误差线为 95% t 区间。",
            "en": f"Left: a byte-level BPE tokenizer (vocabulary {n(r.vocab_size)}) trained on the offline corpora (the train splits of "
                  f"reviews, plot synopses and BBC News; validation and test text removed), then a {r.layers}-layer × {r.hidden} RoBERTa "
                  f"pretrained from scratch with MLM ({pct(r.mlm_probability)} masked; {n(r.steps)} steps of "
                  f"{r.batch_size} × {r.block} tokens, LR {lr(r.lr)}, {r.precision}, one CPU thread): masked-token accuracy and loss of the "
                  "training batches (lines, rolling mean) and on held-out text (dots). Right: fine-tuned on review sentiment with "
                  f"{sizes} examples. The default model (all-MiniLM-L6-v2) is the same runs as in `strategies` (LR {default_lr}, "
                  f"{pool['en']}, at least about {seen} examples seen); pretrained here and the same architecture from random init use "
                  f"RoBERTa's own <s> classification head at LR {small_lr['en']} and train {budget}× the default model's budget (a step of the "
                  f"small model costs much less). " + how["en"] + " The local pretraining saw "
                  f"{n(r.steps * r.batch_size * r.block)} tokens in all, far fewer than a real "
                  f"pretraining corpus; the right panel tests whether that much pretraining beats random init. "
                  f"{k} paired seeds; error bars: 95% t intervals."}


def _sweep_facts(sweep) -> tuple[str, str]:
    """The LR sweep as measured (zh, en): per LR its test accuracy against the majority class, and
    whether it lowered the training loss (mean of the last 10 steps below that of the first 10)."""
    zh, en = [], []
    maj = None
    for lab, rec in sorted(sweep, key=lambda item: item[0]["lr"]):
        loss = rec.tables["steps"]["loss"].astype(float)
        fell = loss.tail(10).mean() < loss.head(10).mean()
        acc, maj = rec.metric("accuracy", "test"), rec.metric("majority_frac", "test")
        zh.append(f"{lr(lab['lr'])} 测试准确率 {acc:.3f}，训练损失{'下降' if fell else '未降'}")
        en.append(f"{lr(lab['lr'])} test accuracy {acc:.3f}, training loss {'fell' if fell else 'did not fall'}")
    tail_zh = f"（多数类 {maj:.3f}）" if maj is not None else ""
    tail_en = f" (majority class {maj:.3f})" if maj is not None else ""
    return "；".join(zh) + tail_zh, "; ".join(en) + tail_en


def _pretraining_measure(inputs):
    meta = inputs["mlm"].meta
    f = inputs["runs"].finals()
    m = f.groupby(["size", "arm"])["value"].mean().unstack()
    # does the local pretraining beat random init anywhere (mean over seeds)?
    ahead = [s for s, r in m.iterrows() if r["here"] > r["scratch"]]
    tokens, acc = meta.get("tokens_seen"), meta["final"]["accuracy"]
    tokens_zh = f"{tokens / 1e6:.1f}M 个词元" if tokens else "其语料"
    tokens_en = f"{tokens / 1e6:.1f}M tokens" if tokens else "its corpus"
    if not ahead:
        verdict_zh = (f"本地预训练太小（{tokens_zh}，留出掩码词元准确率 {acc:.2f}），在任何训练集大小上都没有胜过随机初始化"
                      "（均值不高于随机初始化）。")
        verdict_en = (f"The local pretraining was too small ({tokens_en}, held-out masked-token accuracy {acc:.2f}) to beat "
                      "random init: at no training-set size is its mean above random init's.")
    else:
        at = " / ".join(f"{s:,}" for s in ahead)
        verdict_zh = f"本地预训练（{tokens_zh}，留出掩码词元准确率 {acc:.2f}）的均值只在 {at} 条时高于随机初始化（判断见下方结论）。"
        verdict_en = (f"The local pretraining ({tokens_en}, held-out masked-token accuracy {acc:.2f}) is above random init "
                      f"in the mean only at {at} examples (the verdicts below judge it).")
    sweep_zh, sweep_en = _sweep_facts(inputs["sweep"]) if "sweep" in inputs else ("", "")
    rows_zh = "；".join(f"{s:,} 条：本地预训练 {r['here']:.3f}，随机初始化 {r['scratch']:.3f}，默认模型 {r['default']:.3f}"
                       for s, r in m.iterrows())
    rows_en = "; ".join(f"{s:,} examples: pretrained here {r['here']:.3f}, random init {r['scratch']:.3f}, "
                        f"default model {r['default']:.3f}" for s, r in m.iterrows())
    fin = meta["final"]
    mins = meta["train_s"] / 60
    k = f.groupby(["size", "arm"])["value"].size().min()
    params = meta.get("parameters")
    params_zh = f"{params:,} 个参数，" if params else ""
    params_en = f"{params:,} parameters; " if params else ""
    threads = meta.get("threads", 1)
    largest = f["size"].max()
    low = [(s, a) for s, a, _ in below_bar(inputs["runs"], arm="here", size=largest)]
    note = {"zh": "".join(f"{largest:,} 条时本地预训练的种子 {s} 未学会（验证准确率 {a:.3f}；不计入有效性检查，但计入均值与结论，见图注）。"
                          for s, a in low),
            "en": " ".join(f"At {largest:,} examples the model pretrained here did not learn with seed {s} (validation accuracy "
                           f"{a:.3f}; exempt from the gate, counted in the mean and the verdicts, see the caption)." for s, a in low)}
    return measured(
        f"小 RoBERTa {params_zh}分词器词表 {meta['vocab_size']:,}，语料 {meta['corpus']['texts']:,} 篇、{meta['corpus']['tokens']:,} 个词元；"
        f"预训练 {meta['recipe_params']['steps']:,} 步（{meta['epochs']:.1f} 轮，{'单线程' if threads == 1 else f'{threads} 个线程'} {mins:.1f} 分钟），"
        f"留出掩码词元准确率 {fin['accuracy']:.3f}（损失 {fin['loss']:.2f}）。微调测试准确率（{k} 个种子的均值）：{rows_zh}。"
        + verdict_zh + (f"学习率扫描：{sweep_zh}。" if sweep_zh else ""),
        f"Small RoBERTa: {params_en}tokenizer vocabulary {meta['vocab_size']:,}; corpus {meta['corpus']['texts']:,} texts, "
        f"{meta['corpus']['tokens']:,} tokens; pretraining {meta['recipe_params']['steps']:,} steps "
        f"({meta['epochs']:.1f} epochs, {mins:.1f} min on {'one thread' if threads == 1 else f'{threads} threads'}), "
        f"held-out masked-token accuracy "
        f"{fin['accuracy']:.3f} (loss {fin['loss']:.2f}). Fine-tuned test accuracy (mean of {k} seeds): {rows_en}. "
        + verdict_en + (f" LR sweep: {sweep_en}." if sweep_en else ""), note=note if low else None)


def _pretraining_claims():
    # only where both compared arms must learn (the largest size; the default model at every size)
    size = PRETRAIN_SIZES[-1]
    return [Claim({"zh": f"{n(size)} 条时，本地预训练优于随机初始化", "en": f"At {n(size)} examples pretraining here beats random init"},
                  {"arm": "here"}, {"arm": "scratch"}, where={"size": size}),
            Claim({"zh": f"{n(size)} 条时，默认预训练模型优于本地预训练的小模型",
                   "en": f"At {n(size)} examples the default pretrained model beats the small one pretrained here"},
                  {"arm": "default"}, {"arm": "here"}, where={"size": size})]


figure(FigureSpec(id="pretraining", section="3.2.1", notebooks=("11",),
                  caption=_pretraining_caption, needs=_pretraining,
                  measure=_pretraining_measure, draw=viz.pretraining,
                  # the small models (random init, and pretrained here for a few minutes) may stay near the majority
                  # class with little data (that is the point); random init must learn at the largest size, the
                  # default model at every size. The model pretrained here is exempt (decided after the reviewed
                  # runs, where a seed collapsed at its chosen LR; kept in the verdicts: intention to treat)
                  must_learn={"runs": lambda lab: lab["arm"] == "default" or (lab["arm"] == "scratch"
                                                                              and lab["size"] in (PRETRAIN_SIZES[-1], 48))},
                  claims=_pretraining_claims(), reviewed=True,
                  selections=("regime", "base", "small_pretrained", "small_random")))


# ------------------------------------------------------------------------------------ continual pretraining
CONTINUAL_SIZES = (100, 300, 1000)
CONTINUAL_LRS = {"low": 1e-5, "high": 1e-4}
DAPT_FOR_FINETUNING = "high"  # the continued model that is fine-tuned (the low LR barely moves the encoder)


def _continual_recipe(S, which: str) -> str:
    lr_ = f"{CONTINUAL_LRS[which]:.0e}"  # 1e-05
    return _recipe(S, f"minilm-reviews-{lr_}", f"minilm-reviews-quick-{lr_}")


def continued_model(S, which: str) -> str:
    """The ``RunConfig.model`` of the default model continued at ``CONTINUAL_LRS[which]``."""
    return model_name(_continual_recipe(S, which))


def continued_arm(S) -> tuple[str, float]:
    """Which continued model is fine-tuned, and at what LR: under the reviewed protocol both chosen on
    validation, the way the base run's LR was (chapter.protocol "dapt": MLM LR × fine-tuning LR);
    earlier, the higher MLM LR at the base run's LR."""
    if S.reviewed:
        return chosen(S, "dapt_mlm"), chosen(S, "dapt")
    return DAPT_FOR_FINETUNING, S.base.lr


def _probe_models(S, n_train: int, n_test: int, seeds_) -> tuple[dict, dict]:
    """Linear-probe and kNN accuracy on PROBE_TASK of the default encoder and of each continued one
    (mean-pooled features, as in `forgetting-pretrained`), over probe subsets ``seeds_``."""
    import torch

    from ftcore.analysis.probe import probe_task
    from ftcore.engine.runs import build

    rows = []
    models = {"none": S.base.model, **{w: model_name(_continual_recipe(S, w)) for w in CONTINUAL_LRS}}
    for which, model in models.items():
        trainer = build(S.base.replace(model=model, seed=0))
        for seed in seeds_:
            with torch.random.fork_rng(devices=[]):
                res = probe_task(trainer.model, PROBE_TASK, trainer.data.tokenizer, n_train=n_train, n_test=n_test,
                                 max_length=S.base.max_length, seed=seed)
            rows.append({"continual": which, "mlm_lr": CONTINUAL_LRS.get(which, 0.0), "model": model,
                         "probe_seed": seed, **res})
    return {"probe": pd.DataFrame(rows)}, {"probe_task": PROBE_TASK, "n_train": n_train, "n_test": n_test}


def _continual(S):
    cells = []
    which, dapt_lr = continued_arm(S)
    dapt = continued_model(S, which)
    for size in S.pick(CONTINUAL_SIZES, (16, 48)):
        epochs = strategy_epochs(S, size)
        for s in _seeds(S):
            common = {"size": size, "seed": s}
            # "continued": what the claims compare, whichever MLM LR the scale's continued model used
            cells += [({"continual": "none", "continued": False, **common},
                       S.base.replace(train_size=size, seed=s, epochs=epochs)),
                      ({"continual": which, "continued": True, **common},
                       S.base.replace(model=dapt, lr=dapt_lr, train_size=size, seed=s, epochs=epochs))]
    n_train, n_test, seeds_ = S.pick(500, 32), S.pick(400, 32), S.pick((0, 1, 2), (0,))
    probe = StudyNeed("continual-probe", {
        "models": {w: RECIPES[_continual_recipe(S, w)].to_dict() for w in CONTINUAL_LRS},
        "fingerprints": {w: fingerprint(RECIPES[_continual_recipe(S, w)]) for w in CONTINUAL_LRS},
        "base": S.base.identity_dict(), "probe_task": PROBE_TASK, "n_train": n_train, "n_test": n_test,
        "seeds": list(seeds_)}, lambda: _probe_models(S, n_train, n_test, seeds_))
    return {"runs": Grid(cells), "probe": probe,
            **{f"mlm_{w}": _mlm_need(_continual_recipe(S, w)) for w in CONTINUAL_LRS}}


def _continual_caption(S) -> dict:
    needs = _continual(S)
    runs, probe = needs["runs"], needs["probe"].params
    low, high = (RECIPES[needs[f"mlm_{w}"].params["recipe"]] for w in ("low", "high"))
    r = one((c.steps, c.batch_size, c.block, c.warmup, c.precision, c.head_lr) for c in (low, high))
    steps_, batch, block, warmup, precision, head_lr = r
    which = one(lab["continual"] for lab, _ in runs.cells if lab["continual"] != "none")
    tuned = lr(RECIPES[needs[f"mlm_{which}"].params["recipe"]].lr)
    base, dapt = configs(runs, continual="none")[0], configs(runs, continual=which)[0]
    pool = {lang: pooling(base, lang) for lang in ("zh", "en")}
    if S.reviewed:  # each fine-tuned at its own LR, chosen the same way
        ft = {"zh": f"原模型学习率 {lr(base.lr)}、继续预训练的模型学习率 {lr(dapt.lr)}，{pool['zh']}",
              "en": f"the original at LR {lr(base.lr)}, the continued model at LR {lr(dapt.lr)}, {pool['en']}"}
        how = {"zh": f"继续预训练的学习率（{lr(low.lr)} 或 {lr(high.lr)}）与其微调学习率按验证准确率选定，与基准学习率的选法相同（{held_out('zh')}）；"
                     "每个运行在整个测试集上只测一次。",
               "en": f" The continued model (MLM LR {lr(low.lr)} or {lr(high.lr)}) and its fine-tuning LR were chosen by validation "
                     f"accuracy, as the base run's LR was ({held_out('en')}); each run is tested once, on the whole test split."}
    else:
        ft = {"zh": f"基准设置：学习率 {lr(base.lr)}，{pool['zh']}", "en": f"base settings: LR {lr(base.lr)}, {pool['en']}"}
        how = {"zh": "", "en": ""}
    seen = n(min(c.train_size * c.epochs for _, c in runs.cells))
    sizes = " / ".join(n(s) for s in sorted({lab["size"] for lab, _ in runs.cells}))
    subsets, k = len(probe["seeds"]), seeds(runs)
    return {"zh": f"默认模型（all-MiniLM-L6-v2）在影评情感训练划分的文本上（不用标签）继续做 MLM：{steps_} 步，批量 {batch} × {block} 词元，"
                  f"学习率 {lr(low.lr)} 或 {lr(high.lr)}（{pct(warmup)} 预热后线性衰减，{precision}，单线程）。该检查点没有 MLM 头：输出投影与词嵌入绑定、偏置为零，"
                  f"变换层（dense + LayerNorm）随机初始化，这个新头用学习率 {lr(head_lr)}。左：留出影评上的掩码词元准确率。中：以学习率 {tuned} 继续预训练的模型与原模型"
                  f"分别微调（{ft['zh']}，每个大小至少约 {seen} 个样本次），训练集 {sizes} 条，"
                  f"{k} 个配对种子，误差线为 95% t 区间。右：编码器均值池化特征在另一任务（{PROBE_TASK}，{probe['n_train']} 条训练 / "
                  f"{probe['n_test']} 条测试，{subsets} 个子集）上的线性探针准确率，衡量对通用知识的代价（与 `forgetting-pretrained` 相同的探针）。" + how["zh"],
            "en": "The default model (all-MiniLM-L6-v2) continued with MLM on the text of the review-sentiment train split "
                  f"(no labels): {steps_} steps of {batch} × {block} tokens at LR {lr(low.lr)} or {lr(high.lr)} ({pct(warmup)} warmup then "
                  f"linear decay, {precision}, one thread). The checkpoint has no MLM head: the output projection is tied to the word "
                  "embeddings with a zero bias, the transform (dense + LayerNorm) starts from a random init; this new head trains at "
                  f"LR {lr(head_lr)}. Left: masked-token accuracy on held-out reviews. Middle: the model continued at LR {tuned} and the "
                  f"original, each fine-tuned ({ft['en']}, at least about {seen} examples seen at each "
                  f"size) on {sizes} examples, {k} paired seeds, error bars 95% t intervals. Right: linear-probe accuracy of the "
                  f"encoder's mean-pooled features on a held-out task ({PROBE_TASK}, {probe['n_train']} train / {probe['n_test']} test, "
                  f"{subsets} subsets): the cost to general knowledge (the probe of `forgetting-pretrained`)." + how["en"]}


def _continual_measure(inputs):
    f = inputs["runs"].finals()
    m = f.groupby(["size", "continual"])["value"].mean().unstack()
    p = inputs["probe"]["probe"].groupby("continual")["linear"].mean()
    hi = next(c for c in m.columns if c != "none")  # the continued model that was fine-tuned
    k = f.groupby(["size", "continual"])["value"].size().min()
    low, high = lr(CONTINUAL_LRS["low"]), lr(CONTINUAL_LRS["high"])
    zh = "；".join(f"{s:,} 条：{r[hi] - r['none']:+.3f}" for s, r in m.iterrows())
    en = "; ".join(f"{s:,} examples {r[hi] - r['none']:+.3f}" for s, r in m.iterrows())
    return measured(
        f"继续预训练（学习率 {lr(CONTINUAL_LRS[hi])}）后微调，相对不继续预训练的测试准确率差（{k} 个种子均值）：{zh}。"
        f"{PROBE_TASK} 线性探针：原模型 {p['none']:.3f}，继续预训练 {low} 后 {p['low']:.3f}，{high} 后 {p['high']:.3f}。",
        f"Continual pretraining (LR {lr(CONTINUAL_LRS[hi])}) then fine-tuning, minus no continual pretraining (test "
        f"accuracy, mean of {k} seeds): {en}. Linear probe on {PROBE_TASK}: original {p['none']:.3f}, after continual "
        f"pretraining at {low} {p['low']:.3f}, at {high} {p['high']:.3f}.")


CONTINUAL_PRETRAINING_CLAIMS = [
    Claim({"zh": f"{n(size)} 条时，继续预训练后微调优于直接微调",
           "en": f"At {n(size)} examples continual pretraining then fine-tuning beats fine-tuning alone"},
          {"continued": True}, {"continued": False}, where={"size": size})
    for size in CONTINUAL_SIZES]

figure(FigureSpec(id="continual-pretraining", section="3.2.1", notebooks=("11",),
                  caption=_continual_caption, needs=_continual,
                  measure=_continual_measure, draw=viz.continual_pretraining,
                  must_learn={"runs": all_runs},
                  claims=CONTINUAL_PRETRAINING_CLAIMS, reviewed=True,
                  selections=("regime", "base", "dapt")))
