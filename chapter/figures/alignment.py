"""Seed 003's instruction tuning and RLHF (issue 16; notebook 13): ``instruction-tuning`` and ``rlhf``.

Both are drawn from cached studies (``ftcore.alignment``), not from fine-tuning runs of the
encoder: the tiny GPT's pretraining (``tiny-gpt``), one study per instruction-tuning arm and seed,
the reward model, one study per RLHF run. :class:`StudiesFigure` puts them in the RunSet that the
validity gate and the claims read (one study per arm and seed: a study reads as a record does, its
``evals`` its final measurements, ``ftcore.records.studies``), so the verdicts come from the same
seed-paired differences as every figure.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

import viz
from ftcore.alignment.causal_lm import GPTConfig, gpt_study, n_parameters
from ftcore.alignment.instructions import InstructionRun, TuneConfig
from ftcore.alignment.reward import RewardConfig, RewardRun, reward_study
from ftcore.alignment.rlhf import RLConfig, RLRun, rlhf_study
from ftcore.records.runset import RunSet
from ftcore.records.studies import Study
from ..claims import Claim
from ..needs import StudyJob
from ..registry import FigureSpec, StudyNeed, figure
from .base import chosen
from .captions import held_out, lr, one

KL_COEFS = (0.01, 0.2)  # β: small enough to let the policy drift (reward hacking can show), and large


@dataclass
class StudiesFigure(FigureSpec):
    """A figure whose inputs are studies: ``combine(inputs)`` makes what ``draw``, the gate and the
    claims read (a ``runs`` RunSet of the studies by arm and seed among them) before each of them runs."""

    combine: Callable[[dict], dict] | None = field(default=None, kw_only=True)

    def judged_inputs(self, inputs: dict) -> dict:
        return self.combine(inputs) if self.combine is not None and "runs" not in inputs else inputs

    def render(self, inputs: dict):
        return super().render({k: v for k, v in self.judged_inputs(inputs).items() if k != "runs"})

    def verdicts(self, inputs: dict) -> list:
        return super().verdicts(self.judged_inputs(inputs))

    def gate(self, inputs: dict, majority: float | None = None, *, quick: bool = False):
        return super().gate(self.judged_inputs(inputs), majority, quick=quick)


def gpt_config(S) -> GPTConfig:
    """The tiny GPT both figures start from, at scale ``S``."""
    return S.pick(GPTConfig(), GPTConfig().quick())


def _seeds(S) -> tuple[int, ...]:
    # the reviewed protocol's five paired seeds; earlier three (t intervals over 3)
    return S.seeds if S.reviewed else S.seeds[:3]


def _gpt_need(S) -> StudyNeed:
    g = gpt_config(S)
    return StudyNeed("tiny-gpt", asdict(g), gpt_study(g, S.runs_dir)[0].compute)


# ------------------------------------------------------------------------------------ instruction tuning
def _tune(S) -> TuneConfig:
    return S.pick(TuneConfig(), TuneConfig().quick())


# The reviewed protocol reads every text of the validation split (the gate; the LR selections read it
# alone) and of the test split (the verdicts), once each
WHOLE_SPLITS = {"n_eval": None, "eval_splits": ("validation", "test")}


def tuned_arm(S, arm: str) -> TuneConfig:
    """The tuning of arm ``arm`` ("mask" or "nomask"; seed 0) at scale ``S``. Reviewed: each arm at
    its own LR, chosen on validation (chapter.protocol ``it_mask``, ``it_nomask``), whole splits."""
    mask = arm == "mask"
    if S.reviewed:
        return TuneConfig(mask_prompt=mask, lr=chosen(S, f"it_{arm}"), **WHOLE_SPLITS)
    return replace(_tune(S), mask_prompt=mask)


def _it_needs(S) -> dict:
    """The pretrained GPT's study, the un-tuned model evaluated on the arms' prompts, and each arm ×
    seed's tuning: studies the build's workers compute in parallel (``StudyJob``)."""
    g = gpt_config(S)
    prompts = TuneConfig(**WHOLE_SPLITS) if S.reviewed else _tune(S)
    needs = {"gpt": _gpt_need(S), "untuned": StudyJob(InstructionRun(g, prompts, tuned=False))}
    for arm in ("mask", "nomask"):
        for s in _seeds(S):
            needs[f"{arm}_{s}"] = StudyJob(InstructionRun(g, replace(tuned_arm(S, arm), seed=s)))
    return needs


IT_ARMS = ("untuned", "nomask", "mask")


def _pooled(st: Study) -> Study:
    """The study read on all tasks at once: its pooled rows (task ``all``, the mean over tasks)."""
    ev = st.tables["evals"]
    return st.with_evals(ev[ev["task"] == "all"])


MAJORITY_ARM = "majority"  # always answering the most common label: the floor a held-out phrasing is judged against


def _majority(st: Study) -> Study:
    """The majority-class answer read as an arm: its accuracy (greedy and by choice) on each split
    is the study's pooled ``majority_frac`` (the most common answer's share, mean over the tasks).
    Held-out phrasings are judged against it: the un-tuned model gives no valid greedy answer there,
    so beating it says nothing."""
    ev = st.tables["evals"]
    maj = ev[(ev["task"] == "all") & (ev["metric"] == "majority_frac")]
    return st.with_evals([{"task": "all", "split": r.split, "metric": m, "value": float(r.value)}
                          for r in maj.itertuples() for m in ("accuracy", "choice_accuracy", "majority_frac")])


def _it_combine(inputs: dict) -> dict:
    """The RunSet (arm × seed; the un-tuned model and the majority-class answer, both deterministic,
    stand beside every seed) and the tidy frames the figure draws."""
    arms = {k: v for k, v in inputs.items() if k.startswith(("mask_", "nomask_"))}
    seeds = sorted({int(k.rsplit("_", 1)[1]) for k in arms})
    items, rows, per_task = [], [], []
    for s in seeds:
        items.append(({"arm": MAJORITY_ARM, "seed": s}, _majority(inputs["untuned"])))
    for arm in IT_ARMS:
        for s in seeds:
            st = inputs["untuned"] if arm == "untuned" else arms[f"{arm}_{s}"]
            items.append(({"arm": arm, "seed": s}, _pooled(st)))
            ev = st.tables["evals"]
            for r in ev[ev["split"].isin(("test", "phrasing"))].itertuples():  # drawn: test texts (validation: the gate's)
                (rows if r.task == "all" else per_task).append(
                    {"arm": arm, "seed": s, "task": r.task, "split": r.split, "metric": r.metric, "value": float(r.value)})
    steps = pd.concat([st.tables["steps"].assign(arm=k.rsplit("_", 1)[0], seed=int(k.rsplit("_", 1)[1]))
                       for k, st in arms.items()], ignore_index=True)
    return {"runs": RunSet(items), "gpt": inputs["gpt"], "mask": inputs["untuned"].tables["mask"],
            "accuracy": pd.DataFrame(rows), "per_task": pd.DataFrame(per_task), "steps": steps}


def _it_measure(inputs: dict) -> dict:
    c_ = _it_combine(inputs)
    acc = c_["accuracy"]
    choice = acc[acc["metric"] == "choice_accuracy"].groupby(["arm", "split"])["value"].mean()
    acc = acc[acc["metric"] == "accuracy"].groupby(["arm", "split"])["value"].mean()
    g = inputs["gpt"].meta
    n = n_parameters(g["config"], g["vocab_size"])

    def f(arm, split, table=acc):
        return f"{table.get((arm, split), float('nan')):.2f}"

    def c(arm):
        return f"{f(arm, 'test', choice)}/{f(arm, 'phrasing', choice)}"
    pooled = c_["accuracy"]
    valid = pooled[(pooled["arm"] == "untuned") & (pooled["metric"] == "valid_answer_frac")]["value"]
    valid = f"{100 * valid.mean():.0f}%" if len(valid) else "nan"
    maj = f"{pooled[(pooled['metric'] == 'majority_frac') & (pooled['split'] == 'phrasing')]['value'].mean():.2f}"
    zh = (f"微型 GPT（{n / 1e6:.1f}M 参数，{g['config']['steps']} 步，验证困惑度 {g['final_perplexity']:.0f}）。"
          f"答案准确率 留出样本/留出措辞：未微调 {f('untuned', 'test')}/{f('untuned', 'phrasing')}，"
          f"不掩码 {f('nomask', 'test')}/{f('nomask', 'phrasing')}，掩码 {f('mask', 'test')}/{f('mask', 'phrasing')}；"
          f"在允许的答案中按似然选择：未微调 {c('untuned')}，不掩码 {c('nomask')}，掩码 {c('mask')}。"
          f"贪心解码时未微调模型给出有效答案词的比例为 {valid}，故留出措辞上掩码臂与多数类（{maj}）比较，而非与未微调模型比较")
    en = (f"Tiny GPT ({n / 1e6:.1f}M parameters, {g['config']['steps']} steps, held-out perplexity "
          f"{g['final_perplexity']:.0f}). Answer accuracy, held-out examples/phrasings: un-tuned "
          f"{f('untuned', 'test')}/{f('untuned', 'phrasing')}, no mask {f('nomask', 'test')}/{f('nomask', 'phrasing')}, "
          f"mask {f('mask', 'test')}/{f('mask', 'phrasing')}; choosing among the allowed answers by likelihood: "
          f"un-tuned {c('untuned')}, no mask {c('nomask')}, mask {c('mask')}. Under greedy decoding the un-tuned model "
          f"gives a valid answer word for {valid} of the questions, so on held-out phrasings the mask arm is judged "
          f"against the majority class ({maj}), not against the un-tuned model")
    return {"zh": zh, "en": en, "differs": None}


def _it_caption(S) -> dict:
    out = _it_text(S)
    if not S.reviewed:
        return out
    tuned = {k: n_.params["tune"] for k, n_ in _it_needs(S).items() if k.startswith(("mask_", "nomask_"))}
    lrs = {arm: lr(one(t["lr"] for k, t in tuned.items() if k.startswith(arm + "_"))) for arm in ("mask", "nomask")}
    return {"zh": out["zh"] + f"评估读验证集与测试集的全部文本（每条文本两种措辞）；掩码与不掩码的学习率各自在验证集上选定"
                              f"（掩码 {lrs['mask']}，不掩码 {lrs['nomask']}；{held_out('zh')}），有效性检查读验证集。",
            "en": out["en"] + " Evaluation reads every text of the validation and test splits (each under both phrasings); "
                              f"the mask and no-mask arms' LRs were each chosen on the validation split (mask {lrs['mask']}, "
                              f"no mask {lrs['nomask']}; {held_out('en')}), and the validity gate reads validation."}


def _it_text(S) -> dict:
    tuned = [n_.params["tune"] for k, n_ in _it_needs(S).items() if k.startswith(("mask_", "nomask_"))]
    per_task, k = one(t["n_train"] for t in tuned), len({t["seed"] for t in tuned})
    return {"zh": "在本地影评上从零预训练的微型 GPT-2（字节级 BPE 分词器，训练集文本，从不读测试文本），再用三个任务"
                  f"（情感、主观性、BBC 主题）的指令格式样本微调（每任务 {per_task} 条，三种措辞训练、第四种留出）：掩码臂把提示词元的"
                  "标签设为 -100，只在答案上计损失；不掩码臂在全部词元上计损失；未微调臂是预训练模型本身。答案准确率：贪心生成的"
                  f"答案词与正确答案相同的比例，在测试集文本上用训练措辞（留出样本）和留出措辞各测一次；{k} 个配对种子，95% t 区间。"
                  "虚线为多数类（最常见答案的占比，三个任务的均值）：贪心解码下未微调模型几乎给不出有效答案词，"
                  "故留出措辞上的判断以多数类为比较对象。",
            "en": "A tiny GPT-2 pretrained here from scratch on review text (byte-level BPE tokenizer, train-split texts, "
                  "never test text), then tuned on instruction-formatted examples of three tasks (sentiment, subjectivity, "
                  f"BBC topic; {per_task} per task, three phrasings in training, a fourth held out). Mask arm: prompt tokens labelled "
                  "-100, loss on the answer only; no-mask arm: loss on every token; un-tuned arm: the pretrained model. "
                  "Answer accuracy: share of greedy answers equal to the gold answer word, on test texts under a training "
                  f"phrasing (held-out examples) and under the held-out phrasing; {k} paired seeds, 95% t intervals. "
                  "Dotted: the majority class (the most common answer's share, mean over the three tasks); under greedy "
                  "decoding the un-tuned model gives hardly any valid answer word, so on held-out phrasings the verdict "
                  "compares with the majority class."}


# Held-out phrasings are judged against the majority-class answer, not the un-tuned model: under
# greedy decoding the un-tuned model gives no valid answer word (accuracy 0 by construction).
INSTRUCTION_TUNING_CLAIMS = [
    Claim({"zh": "留出措辞上，掩码微调的贪心答案优于多数类", "en": "On held-out phrasings, the mask arm's greedy answers beat the majority class"},
          {"arm": "mask"}, {"arm": MAJORITY_ARM}, split="phrasing"),
    Claim({"zh": "留出样本上，掩码优于不掩码", "en": "On held-out examples, the mask beats no mask"},
          {"arm": "mask"}, {"arm": "nomask"}, split="test"),
    Claim({"zh": "留出措辞上，掩码优于不掩码", "en": "On held-out phrasings, the mask beats no mask"},
          {"arm": "mask"}, {"arm": "nomask"}, split="phrasing")]

figure(StudiesFigure(id="instruction-tuning", section="seed 003", notebooks=("13",),
                     caption=_it_caption, needs=_it_needs,
                     measure=_it_measure, draw=viz.instruction_tuning, combine=_it_combine,
                     must_learn={"runs": lambda lab: lab["arm"] in ("mask", "nomask")},
                     claims=INSTRUCTION_TUNING_CLAIMS, selections=("it_mask", "it_nomask"), reviewed=True))


# ------------------------------------------------------------------------------------ RLHF
def _reward(S) -> RewardConfig:
    return S.pick(RewardConfig(), RewardConfig().quick())


def _rl(S) -> RLConfig:
    return S.pick(RLConfig(), RLConfig().quick())


# The reviewed protocol measures the reward model on every validation and test pair, and each RLHF
# run, after training and at its start, on every validation and test opening (reviews' first words)
WHOLE_PAIRS = {"n_validation_pairs": None, "n_test_pairs": None}
HELD_OUT_OPENINGS = {"eval_splits": ("validation", "test"), "eval_openings": None}


def reward_run(S, **changes) -> RewardRun:
    """The reward model the reviewed RLHF figure optimises against: its LR chosen on validation
    pairs (chapter.protocol ``reward``) unless ``changes`` say otherwise."""
    changes = {**WHOLE_PAIRS, **changes}
    if "lr" not in changes:  # (not setdefault: the choice is read only when it is used)
        changes["lr"] = chosen(S, "reward")
    return RewardRun(RewardConfig(**changes))


def rl_run(S, beta: float, **changes) -> RLRun:
    """An RLHF run at KL coefficient ``beta`` against :func:`reward_run`'s model: its LR chosen on
    validation openings (chapter.protocol ``rl_beta_<β>``) unless ``changes`` say otherwise."""
    changes = {"kl_coef": beta, **HELD_OUT_OPENINGS, **changes}
    if "lr" not in changes:
        changes["lr"] = chosen(S, f"rl_beta_{beta:g}")
    return RLRun(gpt_config(S), reward_run(S).cfg, RLConfig(**changes))


def _rl_needs(S) -> dict:
    if S.reviewed:  # studies the workers compute in parallel
        needs = {"gpt": _gpt_need(S), "reward": StudyJob(reward_run(S))}
        for beta in KL_COEFS:
            for s in _seeds(S):
                needs[f"rl_{beta:g}_{s}"] = StudyJob(rl_run(S, beta).replace(seed=s))
        return needs
    g, rm = gpt_config(S), _reward(S)
    needs = {"gpt": _gpt_need(S), "reward": StudyNeed("reward-model", rm.to_dict(), reward_study(rm, S.runs_dir)[0].compute)}
    for beta in KL_COEFS:
        for s in _seeds(S):
            c = replace(_rl(S), kl_coef=beta, seed=s)
            needs[f"rl_{beta:g}_{s}"] = StudyNeed("rlhf", {"gpt": asdict(g), "reward": rm.to_dict(), "rl": c.to_dict()},
                                                 lambda c=c: rlhf_study(g, rm, c, S.runs_dir))
    return needs


def _rl_evals(meta: dict, when: str) -> list[dict]:
    """An RLHF run's measurements at its ``start`` or ``end`` (the study's meta: means over its first
    or last steps) as evals rows; at the start the policy is the reference model, so its KL is 0."""
    return [{"split": "test", "metric": k, "value": 0.0 if (k, when) == ("kl", "start") else meta[f"{k}_{when}"]}
            for k in ("reward", "kl", "length", "repetition")]


def _held_out_at(st, step: int) -> list[dict]:
    """A reviewed RLHF run's held-out measurements (validation and test openings) at ``step``
    (0: the starting model; its last: the trained policy)."""
    ev = st.tables["evals"]
    return ev[ev["step"] == step][["split", "metric", "value"]].to_dict("records")


def _reward_model_evals(rm) -> list[dict]:
    """The reward model read as a record: its pairwise accuracy on each held-out split as
    ``accuracy``, against chance (a pair is chosen or not: 0.5) as the majority share."""
    ev = rm.tables["evals"]
    last = ev[ev["step"] == ev["step"].max()]
    return [{"split": r.split, "metric": m, "value": v} for r in last.itertuples()
            for m, v in (("accuracy", float(r.value)), ("majority_frac", 0.5))]


def _rl_combine(inputs: dict) -> dict:
    runs = {k: v for k, v in inputs.items() if k.startswith("rl_")}
    rm = inputs["reward"]
    items = [({"arm": "reward_model", "seed": 0}, rm.with_evals(_reward_model_evals(rm)))]
    steps, samples = [], []
    big = max(KL_COEFS)
    for k, st in runs.items():
        _, beta, seed = k.split("_")
        beta, seed = float(beta), int(seed)
        m = st.meta
        held_out = "held_out" in st.tables  # reviewed: measured on held-out openings, not on its own training steps
        end = _held_out_at(st, st.tables["evals"]["step"].max()) if held_out else _rl_evals(m, "end")
        items.append(({"arm": f"beta_{beta:g}", "seed": seed}, st.with_evals(end)))
        if beta == big:  # the starting model, measured in the same seed's run (the same held-out draws)
            items.append(({"arm": "start", "seed": seed}, st.with_evals(_held_out_at(st, 0) if held_out
                                                                          else _rl_evals(m, "start"))))
        steps.append(st.tables["steps"].assign(beta=beta, seed=seed))
        samples.append(st.tables["samples"].assign(beta=beta, seed=seed))
    return {"runs": RunSet(items), "reward": rm, "steps": pd.concat(steps, ignore_index=True),
            "samples": pd.concat(samples, ignore_index=True)}


def _rl_measure(inputs: dict) -> dict:
    c = _rl_combine(inputs)
    end = c["steps"].groupby("beta").apply(lambda g: g[g["step"] > g["step"].max() - 10].mean(numeric_only=True),
                                            include_groups=False)
    parts_zh, parts_en = [], []
    for beta, r in end.iterrows():
        parts_zh.append(f"β={beta:g}：奖励 {r['reward']:.2f}，KL {r['kl']:.1f}，长度 {r['length']:.1f}，重复 {r['repetition']:.2f}")
        parts_en.append(f"β={beta:g}: reward {r['reward']:.2f}, KL {r['kl']:.1f}, length {r['length']:.1f}, "
                        f"repetition {r['repetition']:.2f}")
    acc = c["reward"].meta["pairwise_accuracy"]
    return {"zh": f"奖励模型留出成对准确率 {acc:.3f}；最后 10 步：" + "；".join(parts_zh),
            "en": f"Reward model held-out pairwise accuracy {acc:.3f}; last 10 steps: " + "; ".join(parts_en),
            "differs": None}


_SMALL, _BIG = (f"beta_{b:g}" for b in KL_COEFS)

def _rl_caption(S) -> dict:
    out = _rl_text(S)
    if not S.reviewed:
        return out
    rl = [n_.params["rl"] for k, n_ in _rl_needs(S).items() if k.startswith("rl_")]
    lrs = {b: lr(one(r["lr"] for r in rl if r["kl_coef"] == b)) for b in KL_COEFS}
    k, rm_lr = one(r["eval_k"] for r in rl), lr(_rl_needs(S)["reward"].params["lr"])
    by_beta_zh = "，".join(f"β={b:g} 为 {x}" for b, x in lrs.items())
    by_beta_en = ", ".join(f"β={b:g}: {x}" for b, x in lrs.items())
    return {"zh": out["zh"] + f"结论读留出的开头：训练结束后，策略与初始模型在验证集与测试集全部影评的前两个词上各续写 {k} 次"
                              f"（同一随机数，逐样本配对），奖励、KL、重复都在这些样本上测得，不用训练步的滑动值。奖励模型的学习率（{rm_lr}）"
                              f"按验证集成对准确率选定，每个 β 的策略学习率（{by_beta_zh}）按验证开头上的目标（奖励 − β·KL）选定"
                              f"（{held_out('zh')}）；有效性检查读验证集。",
            "en": out["en"] + f" The verdicts read held-out openings: after training, the policy and the starting model each "
                              f"continue the first two words of every validation and test review {k} times (the same random "
                              "draws, paired sample by sample), and reward, KL and repetition are measured on those samples, "
                              f"not on the training steps. The reward model's LR ({rm_lr}) was chosen by pairwise accuracy on "
                              f"validation pairs, each β's policy LR ({by_beta_en}) by its objective (reward − β·KL) on the "
                              f"validation openings ({held_out('en')}); the validity gate reads validation."}


def _rl_text(S) -> dict:
    rl = [n_.params["rl"] for k, n_ in _rl_needs(S).items() if k.startswith("rl_")]
    tokens, k = one(r["max_new_tokens"] for r in rl), one(r["k"] for r in rl)
    seeds = one(sum(r["kl_coef"] == beta for r in rl) for beta in KL_COEFS)
    return {"zh": "奖励模型：默认编码器（all-MiniLM-L6-v2）加一个标量头，用 Bradley–Terry 损失在真实偏好对上训练：同一部电影的"
                  "好评（选中）对差评（拒绝），目标是“写一篇正面影评”；训练对取自训练集，留出对取自测试集。策略：本地预训练的微型 "
                  f"GPT，从训练集影评的前两个词续写 {tokens} 个词元；用自己写的 RLOO（每个开头采样 {k} 次，留一平均作基线）优化"
                  f"奖励 − β·KL（相对冻结的初始模型），两个 β 各 {seeds} 个种子（曲线为均值与 95% 区间）。BT：Bradley–Terry。"
                  "下方：编号最小的种子从第一个固定开头写出的第一个样本，RL 之前与每个 β 训练之后各一条（同一开头、同一随机数），"
                  "括号内为奖励模型分数。没有用 trl 的 PPO："
                  "trl 不在本项目的依赖里，而 PPO 还要训练一个价值模型。",
            "en": "Reward model: the default encoder (all-MiniLM-L6-v2) with a scalar head, trained with the Bradley–Terry "
                  "loss on real preference pairs: a fresh review of a film (chosen) over a rotten review of the same film "
                  "(rejected), for the goal \"write a positive review\"; training pairs from the train split, held-out pairs "
                  "from the test split. Policy: the tiny GPT pretrained here, continuing the first two words of training "
                  f"reviews for {tokens} tokens, optimised with our own RLOO loop ({k} samples per opening, leave-one-out baseline) "
                  f"on reward − β·KL to the frozen starting model, two β with {seeds} seeds each (mean and 95% band); BT: "
                  "Bradley–Terry. Below: the first sample from the first fixed opening, lowest seed, before RL and after it at "
                  "each β (same opening, same random draws), with its reward-model score. Not trl's "
                  "PPO: trl is not a dependency here, and PPO also trains a value model."}


RLHF_CLAIMS = [
    Claim({"zh": f"β={KL_COEFS[1]:g} 的 RL 提高了奖励（对比初始模型）",
           "en": f"RL at β={KL_COEFS[1]:g} raises the reward over the starting model"},
          {"arm": _BIG}, {"arm": "start"}, metric="reward", digits=2),
    Claim({"zh": f"β={KL_COEFS[0]:g} 的最终奖励高于 β={KL_COEFS[1]:g}",
           "en": f"β={KL_COEFS[0]:g} ends with a higher reward than β={KL_COEFS[1]:g}"},
          {"arm": _SMALL}, {"arm": _BIG}, metric="reward", digits=2),
    Claim({"zh": f"β={KL_COEFS[0]:g} 离初始模型更远（KL 更大）",
           "en": f"β={KL_COEFS[0]:g} drifts further from the starting model (larger KL)"},
          {"arm": _SMALL}, {"arm": _BIG}, metric="kl", digits=1),
    Claim({"zh": f"β={KL_COEFS[0]:g} 的样本重复更多（奖励投机的迹象）",
           "en": f"β={KL_COEFS[0]:g} repeats itself more (a sign of reward hacking)"},
          {"arm": _SMALL}, {"arm": _BIG}, metric="repetition", digits=2)]

figure(StudiesFigure(id="rlhf", section="seed 003", notebooks=("13",),
                     caption=_rl_caption, needs=_rl_needs,
                     measure=_rl_measure, draw=viz.rlhf, combine=_rl_combine,
                     must_learn={"runs": lambda lab: lab["arm"] == "reward_model"},
                     claims=RLHF_CLAIMS, selections=("reward", "rl_beta_0.01", "rl_beta_0.2"), reviewed=True))
