"""Seed 003's parameter-efficient methods (notebook 08) and seed 001's continual-learning table
(notebook 07): ``peft``, ``continual-table``. Both reuse 3.2.5's task sequences and probes."""
from __future__ import annotations

import functools

import pandas as pd

import viz
from ftcore.records.metrics import accuracy_matrix
from ..claims import Claim
from ..registry import FigureSpec, figure
from .base import HIDDEN, LAYERS, all_runs, beats, chosen, epochs_for, measured, memory_need, more_seeds, seeds_grid
from .captions import added_seeds, arm, chosen_text, cost_words, lr, n, one, pct, sci, seeds
from .problems import (CL_METHODS, FORGETTING_CLAIMS, TABLE_METHODS, cl_chosen_text, cl_name, mean_forgetting, probes,
                       sequence_configs, sequences)

# ------------------------------------------------------------------------------------ peft
# Each method at the LR its selection chose (base.chosen: on validation under the reviewed protocol;
# the earlier sweep's otherwise). Under the reviewed protocol every method trains the base run's
# epochs (equal budget); the earlier figure gave prompt and prefix tuning, still learning at 2
# epochs, 6.
PEFT_METHODS = ("full", "lora_r2", "lora_r8", "lora_r32", "prompt", "bitfit", "adapter", "prefix")


def peft_arms(S) -> dict[str, dict]:
    """Each method's changes to the base run: its chosen LR and, under the reviewed protocol, its
    chosen pooling (a PEFT method keeps the CLS pooler frozen; chapter.protocol)."""
    def pooled(m: str) -> dict:
        return {"pooling": S.chosen[f"{m}_pooling"]} if S.reviewed else {}
    lora = {"peft": "lora", "lr": chosen(S, "lora"), **pooled("lora")}
    full = {"lr": chosen(S, "full"), **pooled("full")} if S.reviewed else {}
    arms = {"full": full, "lora_r2": {**lora, "lora_r": 2}, "lora_r8": {**lora, "lora_r": 8}, "lora_r32": {**lora, "lora_r": 32}}
    for m in ("prompt", "bitfit", "adapter", "prefix"):
        arms[m] = {"peft": m, "lr": chosen(S, m), "epochs": epochs_for(S, m), **pooled(m)}
    return {k: arms[k] for k in PEFT_METHODS}


def _peft(S):
    probes_ = probes(S, names=("full", "lora"))
    probes_.pop("gate_runs")  # the same runs as the grid's full and lora_r8 arms, seed 0
    arms = peft_arms(S)
    memory = memory_need(S, {k: S.base.replace(**v) for k, v in arms.items()})
    return {"runs": seeds_grid(S, arms, "method", seeds=more_seeds(S)), "memory": memory, **probes_}


def _peft_caption(S) -> dict:
    runs = _peft(S)["runs"]
    a = {k: arm(runs, method=k) for k in PEFT_METHODS}
    lora = [a[k] for k in PEFT_METHODS if k.startswith("lora")]
    ranks, lora_lr = "/".join(str(c.lora_r) for c in lora), lr(lora[0].lr)
    prompt, prefix, adapter, full = a["prompt"], a["prefix"], a["adapter"], a["full"]
    kept = n(2 * LAYERS * prefix.prompt_tokens * HIDDEN)  # a key and a value vector per prefix and layer
    others = one(c.epochs for k, c in a.items() if k not in ("prompt", "prefix"))
    if S.reviewed:
        every = one(c.epochs for c in a.values())
        pools = {k: c.pooling for k, c in a.items()}
        mean = [k for k, p in pools.items() if p == "mean"]
        pooled = ({"zh": "各参数高效方法在验证集上选择了均值池化（CLS 池化层在这些方法中保持冻结），全量微调用 CLS 池化（基准设置的选择）；",
                   "en": "each parameter-efficient method chose mean pooling on validation (the CLS pooler stays frozen under them), "
                         "full fine-tuning the CLS pooler (the base regime's choice); "}
                  if pools["full"] == "cls" and len(mean) == len(pools) - 1 else {"zh": "", "en": ""})
        tail = {"zh": f"{pooled['zh']}{chosen_text(S, 'zh')}；所有方法都训练 {n(every)} 轮（相同预算）。{added_seeds(runs, 'zh')}",
                "en": f"{pooled['en']}{chosen_text(S, 'en')}; every method trains {n(every)} epochs (equal budget). {added_seeds(runs, 'en')}".rstrip()}
    else:
        tail = {"zh": f"学习率均取自扫描；除提示微调与前缀微调外都训练 {n(others)} 轮。",
                "en": f"LRs from the sweep; all but prompt and prefix tuning train {n(others)} epochs."}
    return {"zh": f"LoRA（秩 {ranks}，query 与 value，学习率 {lora_lr}）、提示微调（{prompt.prompt_tokens} 个虚拟词元，{lr(prompt.lr)}，{n(prompt.epochs)} 轮）、"
                  f"BitFit（{lr(a['bitfit'].lr)}）、瓶颈适配器（Houlsby：每层注意力与前馈输出之后各一个，瓶颈 {adapter.adapter_size}，LayerNorm 一起训练，{lr(adapter.lr)}）、"
                  f"前缀微调（每层键和值前各 {prefix.prompt_tokens} 个前缀，训练时经 MLP 重参数化，可训练占比按 MLP 计，训练后只需保留 {kept} 个数，"
                  f"{lr(prefix.lr)}，{n(prefix.epochs)} 轮）与全量微调（{lr(full.lr)}）：可训练参数占比、测试准确率（{seeds(runs)} 个种子，95% t 区间；与全量微调的配对差）、训练代价（CPU 秒或优化器步数）、"
                  f"训练时保存的内存（按字节计数），以及对预训练知识的遗忘（探针）。" + tail["zh"],
            "en": f"LoRA (rank {ranks} on query and value, LR {lora_lr}), prompt tuning ({prompt.prompt_tokens} virtual tokens, "
                  f"{lr(prompt.lr)}, {n(prompt.epochs)} epochs), BitFit ({lr(a['bitfit'].lr)}), bottleneck adapters (Houlsby: after the "
                  f"attention and the FFN output of every layer, bottleneck {adapter.adapter_size}, LayerNorms trained, {lr(adapter.lr)}), "
                  f"prefix tuning ({prefix.prompt_tokens} key and {prefix.prompt_tokens} value prefixes per layer, MLP-reparameterized "
                  f"while training, so its trainable share counts the MLP; {kept} numbers are kept after training, {lr(prefix.lr)}, "
                  f"{n(prefix.epochs)} epochs) and full fine-tuning ({lr(full.lr)}): trainable share, test accuracy ({seeds(runs)} seeds, "
                  "95% t intervals; and paired against full fine-tuning), the cost of training (CPU seconds or optimizer steps), the memory training keeps (counted in bytes), and forgetting of pretrained "
                  "knowledge (probe). " + tail["en"]}


PEFT_CLAIMS = beats(
    "method",
    ("full", "lora_r8", "全量微调优于 LoRA（秩 8）", "Full fine-tuning beats LoRA (rank 8)"),
    ("lora_r32", "lora_r2", "LoRA 秩 32 优于秩 2", "LoRA rank 32 beats rank 2"),
    ("lora_r8", "prompt", "LoRA（秩 8）优于提示微调", "LoRA (rank 8) beats prompt tuning"),
    ("full", "adapter", "全量微调优于瓶颈适配器", "Full fine-tuning beats bottleneck adapters"),
    ("lora_r8", "prefix", "LoRA（秩 8）优于前缀微调", "LoRA (rank 8) beats prefix tuning"))

figure(FigureSpec(id="peft", section="seed 003", notebooks=("08",),
                  caption=_peft_caption, needs=_peft,
                  draw=viz.peft, must_learn={"runs": all_runs}, reviewed=True,
                  selections=("regime", "base", "full", "lora", "bitfit", "adapter", "prefix", "prompt"),
                  claims=PEFT_CLAIMS))


# ------------------------------------------------------------------------------------ continual-table
def _table_caption(S) -> dict:
    c = sequence_configs(S, TABLE_METHODS)
    k = seeds(sequences(S, TABLE_METHODS)["runs"])
    lam, lam_seed, mem, mem_seed = sci(c["ewc"].ewc_lambda), n(c["ewc_1000"].ewc_lambda), \
        pct(c["replay"].replay_memory), pct(c["replay_3"].replay_memory)
    both = pct(c["replay_ewc"].replay_memory)
    if S.reviewed:
        how = cl_chosen_text(S)
        return {"zh": f"学完第二个任务后：旧任务准确率、新任务准确率、{cost_words('zh')}及其相对直接顺序微调的倍数（{k} 个种子，在整个测试集上评估）。EWC λ = {lam}，"
                      f"旁边是种子 001 建议的 λ = {lam_seed}；回放保留 {mem}，旁边是 {mem_seed}；回放 {both} + EWC 为组合；"
                      "多任务联合训练（所有任务同时训练）是上界。" + how["zh"],
                "en": f"After the second task: old-task accuracy, new-task accuracy, {cost_words('en')} and its ratio to naive's ({k} seeds, "
                      f"the whole test split). EWC λ = {lam} beside seed 001's λ = {lam_seed}; replay keeps {mem}, beside {mem_seed}; "
                      f"replay {both} + EWC combines them; joint multi-task training (all tasks at once) is the upper bound." + how["en"]}
    return {"zh": f"学完第二个任务后：旧任务准确率、新任务准确率、{cost_words('zh')}及其相对直接顺序微调的倍数（{k} 个种子）。EWC λ = {lam}（在早先协议中按测试结果选定，尚未在验证集上重选；此编码器的 Fisher 很小，λ 须很大才有作用），"
                  f"旁边是种子 001 建议的 λ = {lam_seed}；回放保留 {mem}，旁边是 {mem_seed}；回放 {both} + EWC 为组合；"
                  "多任务联合训练（所有任务同时训练）是上界。",
            "en": f"After the second task: old-task accuracy, new-task accuracy, {cost_words('en')} and its ratio to naive's ({k} seeds). EWC "
                  f"λ = {lam} (picked under the earlier protocol on test results, not yet re-chosen on validation; this encoder's Fisher "
                  f"is tiny, so λ must be large to act) beside seed 001's λ = {lam_seed}; replay keeps {mem}, beside "
                  f"{mem_seed}; replay {both} + EWC combines them; joint multi-task training (all tasks at once) is the upper bound."}


def _table_measure(inputs):
    acc = pd.DataFrame([{"method": labels["method"], "old": accuracy_matrix(rec).iloc[1, 0],
                         "new": accuracy_matrix(rec).iloc[1, 1]} for labels, rec in inputs["runs"]])
    rows = {m: (g["old"].mean(), g["new"].mean()) for m, g in acc.groupby("method", sort=False)}
    return measured("学完第二个任务后，旧任务准确率：" + "，".join(f"{cl_name('zh', k)} {v[0]:.3f}" for k, v in rows.items()),
                    "Old-task accuracy after the second task: " + ", ".join(
                        f"{cl_name('en', k)} {v[0]:.3f}" for k, v in rows.items()))


def _table_claims() -> list:
    replay, replay_seed = (pct(CL_METHODS[k][1]["replay_memory"]) for k in ("replay", "replay_3"))
    lam_seed = n(CL_METHODS["ewc_1000"][1]["ewc_lambda"])
    return [
        Claim({"zh": f"回放+EWC 的平均遗忘少于单独回放 {replay}", "en": "Replay + EWC forgets less than replay alone"},
              {"method": "replay_ewc"}, {"method": "replay"}, expected=-1, metric=mean_forgetting),
        Claim({"zh": f"种子 001 的 λ = {lam_seed} 时 EWC 的平均遗忘少于直接顺序微调", "en": f"EWC at seed 001's λ = {lam_seed} forgets less than naive"},
              {"method": "ewc_1000"}, {"method": "naive"}, expected=-1, metric=mean_forgetting),
        Claim({"zh": f"回放 {replay} 的平均遗忘少于回放 {replay_seed}", "en": f"Replay {replay} forgets less than replay {replay_seed}"},
              {"method": "replay"}, {"method": "replay_3"}, expected=-1, metric=mean_forgetting)]


figure(FigureSpec(id="continual-table", section="seed 001", notebooks=("07",),
                  caption=_table_caption, needs=functools.partial(sequences, labels=TABLE_METHODS),
                  measure=_table_measure,
                  draw=viz.continual_table, must_learn={"runs": all_runs},
                  claims=FORGETTING_CLAIMS[:2] + _table_claims(), reviewed=True,
                  selections=("regime", "base", "cl_ewc", "cl_lora")))
