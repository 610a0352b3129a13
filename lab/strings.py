"""The widgets' labels, buttons and summaries in both languages, registered with viz's string table
(``viz.text.register``) under ``lab.*`` keys: the notebook's ``viz.set_theme(LANG)`` picks the
language for the figures and the widgets alike (Chinese by default, ``LANG = "en"`` for English)."""
from __future__ import annotations

import math

import viz
from viz.text import register

ZH = {
    "train": "训练",
    "training": "训练中…",
    "waiting": "点击“训练”开始（训练只在点击后进行）",
    "progress": "第 {step}/{total} 步 · 训练损失 {loss:.3f}",
    "progress_val": "第 {step}/{total} 步 · 训练损失 {loss:.3f} · 验证准确率 {acc:.3f}",
    "testing": "训练结束，正在测试集上评估…",
    "done": "完成：{steps} 步，{secs:.0f} 秒",
    "result": "{setting}：测试准确率 <b>{acc:.3f}</b>（多数类基线 {maj:.3f}），{steps} 步，用时 {secs:.0f} 秒",
    "learned": "✓ 学到了：比只猜多数类高 {gain:.3f}",
    "not_learned": "✗ 没有学到：{reason}",
    "reason_diverged": "训练发散（损失变成非有限值或暴涨）",
    "reason_one_class": "{share:.0%} 的测试预测落在同一个类别——模型坍缩为只猜一类",
    "reason_low": "测试准确率 {acc:.3f} 不到多数类基线 {maj:.3f} + {margin}",
    "reason_missing": "没有测试准确率",
    "history": "本控件的历次结果（换个设置再训练，便于对比）",
    "col_setting": "设置", "col_acc": "测试准确率", "col_verdict": "结论", "col_steps": "步数",
    "col_secs": "用时（秒）", "col_forgetting": "任务 1 的遗忘", "col_task1": "任务 1 刚学完",
    "col_task1_end": "任务 1 最终", "col_avg": "最终平均准确率", "col_trainable": "可训练参数占比",
    "col_precision": "找回翻转标签的精确率",
    "ok": "✓", "bad": "✗ 没学到",
    "lr": "学习率", "noise": "标签噪声", "lora_r": "LoRA 秩 r", "unfreeze_every": "每隔几步解冻",
    "train_size": "训练集大小", "clip": "梯度裁剪（范数 1.0）",
    "precision": "按单样本损失从高到低取前 {k} 个，其中确实被翻转的比例：<b>{p:.2f}</b>",
    "trainable_share": "可训练参数 {n:,} / {total:,}（{pct}）",
    "frozen_groups": "冻结底部层组数",
    "freeze_title": "freeze_to({n})：可训练 {n_train}（{pct}）",
    "freeze_ylabel": "参数量（对数刻度）",
    "trainable": "可训练", "frozen": "冻结",
    "schedule": "调度", "warmup": "预热", "warmup_ratio": "预热比例", "gamma": "衰减系数 γ",
    "method": "方法", "method.naive": "直接顺序训练", "method.ewc": "EWC", "method.replay": "经验回放",
    "method.replay_ewc": "回放+EWC", "method.joint": "多任务联合（上界）",
    "ewc_lambda": "EWC λ", "replay": "回放比例",
    "train_sequence": "训练两任务序列",
    "sequence_result": ("{method}：任务 1（影评情感）刚学完时 {a11:.3f}，学完任务 2（新闻主题）后 {a12:.3f}，"
                        "遗忘 <b>{f:.3f}</b>；任务 2 {a22:.3f}；最终平均准确率 <b>{avg:.3f}</b>；用时 {secs:.0f} 秒"),
    "sequence_not_learned": "✗ 有任务没学会，遗忘无从谈起：{reason}",
    "sequence_task_low": "{task} 刚学完时只有 {acc:.3f}（多数类 {maj:.3f}）",
    "sequence_learned": "✓ 两个任务都学到了，遗忘可以读",
    "doctor": "运行医生（ftcore.records.doctor）的诊断",
    "record_tail": "运行记录 evals 表的最后几行（任何一幅图都能从这些表重画）",
    "per_class": "测试集上每一类的精确率、召回率、F1 与样本数",
    "pc_class": "类别", "pc_precision": "精确率", "pc_recall": "召回率", "pc_f1": "F1", "pc_support": "样本数",
    "confusion": "混淆矩阵（行：真实类别，列：预测类别；样本数）",
    "hf_train": "用 HF Trainer 训练",
    "hf_recipe": "完整配方（分层学习率、标签平滑 0.1、早停并恢复最佳权重）",
    "hf_recipe_short": " + 完整配方",
    "hf_stopped": "；早停后恢复了第 {step} 步的最佳权重",
    "hf_log": "第 {step}/{total} 步 · 训练损失 {loss:.3f}",
    "hf_eval": "第 {step} 步评估：验证损失 {loss:.3f}，验证准确率 {acc:.3f}",
    "lr_find": "运行学习率范围测试",
    "lr_found": ("{n} 步，学习率从 {lo:.1e} 增大到 {hi:.1e}。最陡下降处：<b>{steep:.1e}</b>；最小损失处的 1/10：<b>{valley:.1e}</b>。"
                 "{stopped}这只是起点：用真实的短训练验证它（05 笔记本的学习率控件会标出坍缩成一类的运行）。"),
    "lr_stopped": "损失超过最小值的 {factor:g} 倍，测试在第 {n} 步（计划 {total} 步）提前停止——这是设计如此，不是出错。",
}

EN = {
    "train": "Train",
    "training": "training…",
    "waiting": "Click “Train” to start (nothing trains until you click)",
    "progress": "step {step}/{total} · training loss {loss:.3f}",
    "progress_val": "step {step}/{total} · training loss {loss:.3f} · validation accuracy {acc:.3f}",
    "testing": "training done, evaluating on the test set…",
    "done": "done: {steps} steps, {secs:.0f} s",
    "result": "{setting}: test accuracy <b>{acc:.3f}</b> (majority-class baseline {maj:.3f}), {steps} steps in {secs:.0f} s",
    "learned": "✓ learned: {gain:.3f} above always guessing the majority class",
    "not_learned": "✗ did not learn: {reason}",
    "reason_diverged": "training diverged (the loss became non-finite or blew up)",
    "reason_one_class": "{share:.0%} of the test predictions fall in one class: the model collapsed to one class",
    "reason_low": "test accuracy {acc:.3f} is below the majority-class baseline {maj:.3f} + {margin}",
    "reason_missing": "no test accuracy recorded",
    "history": "This control's results so far (change a setting and train again to compare)",
    "col_setting": "setting", "col_acc": "test accuracy", "col_verdict": "verdict", "col_steps": "steps",
    "col_secs": "time (s)", "col_forgetting": "task 1 forgetting", "col_task1": "task 1 just trained",
    "col_task1_end": "task 1 at the end", "col_avg": "final average accuracy", "col_trainable": "trainable share",
    "col_precision": "precision finding flipped labels",
    "ok": "✓", "bad": "✗ not learned",
    "lr": "learning rate", "noise": "label noise", "lora_r": "LoRA rank r", "unfreeze_every": "unfreeze every",
    "train_size": "training examples", "clip": "gradient clipping (norm 1.0)",
    "precision": "of the {k} highest-loss training examples, this share really was flipped: <b>{p:.2f}</b>",
    "trainable_share": "trainable parameters {n:,} / {total:,} ({pct})",
    "frozen_groups": "frozen bottom groups",
    "freeze_title": "freeze_to({n}): {n_train} trainable ({pct})",
    "freeze_ylabel": "parameters (log scale)",
    "trainable": "trainable", "frozen": "frozen",
    "schedule": "schedule", "warmup": "warmup", "warmup_ratio": "warmup share", "gamma": "decay γ",
    "method": "method", "method.naive": "naive (in sequence)", "method.ewc": "EWC", "method.replay": "replay",
    "method.replay_ewc": "replay + EWC", "method.joint": "joint multi-task (upper bound)",
    "ewc_lambda": "EWC λ", "replay": "replay share",
    "train_sequence": "Train the two-task sequence",
    "sequence_result": ("{method}: task 1 (review sentiment) {a11:.3f} right after training, {a12:.3f} after task 2 "
                        "(news topic): forgetting <b>{f:.3f}</b>; task 2 {a22:.3f}; final average accuracy "
                        "<b>{avg:.3f}</b>; {secs:.0f} s"),
    "sequence_not_learned": "✗ a task did not learn, so there is no forgetting to read: {reason}",
    "sequence_task_low": "{task} only {acc:.3f} right after training (majority {maj:.3f})",
    "sequence_learned": "✓ both tasks learned: the forgetting is real",
    "doctor": "The run doctor's diagnosis (ftcore.records.doctor)",
    "record_tail": "The last rows of the record's evals table (every figure can be redrawn from these tables)",
    "per_class": "Per class on the test split: precision, recall, F1 and support",
    "pc_class": "class", "pc_precision": "precision", "pc_recall": "recall", "pc_f1": "F1", "pc_support": "support",
    "confusion": "Confusion matrix (rows: true class, columns: predicted; counts)",
    "hf_train": "Train with HF Trainer",
    "hf_recipe": "full recipe (layer-wise LRs, label smoothing 0.1, early stopping with the best weights restored)",
    "hf_recipe_short": " + full recipe",
    "hf_stopped": "; early stopping restored the best weights, of step {step}",
    "hf_log": "step {step}/{total} · training loss {loss:.3f}",
    "hf_eval": "evaluation at step {step}: validation loss {loss:.3f}, validation accuracy {acc:.3f}",
    "lr_find": "Run the LR range test",
    "lr_found": ("{n} steps, LR raised from {lo:.1e} to {hi:.1e}. Steepest descent: <b>{steep:.1e}</b>; minimum / 10: "
                 "<b>{valley:.1e}</b>. {stopped}This is only a starting point: check it with a real short run (05's LR "
                 "control flags a run that collapses to one class)."),
    "lr_stopped": "The loss passed {factor:g}x its minimum, so the test stopped at step {n} of {total}: by design, not an error. ",
}

register({"zh": {f"lab.{k}": v for k, v in ZH.items()}, "en": {f"lab.{k}": v for k, v in EN.items()}})


def tr(key: str, **fmt) -> str:
    """The widget text ``key`` in the current language (``viz.set_theme(lang)``)."""
    return viz.t(f"lab.{key}", **fmt)


def pct(share: float) -> str:
    """A share as a percentage with enough digits to be non-zero: 0.5 → "50%", 3.4e-5 → "0.0034%"."""
    p = 100.0 * share
    if not math.isfinite(p):
        return "–"
    if p == 0:
        return "0%"
    if p >= 10:
        return f"{p:.0f}%"
    if p >= 0.1:
        return f"{p:.1f}%"
    return f"{p:.2g}%"


__all__ = ["EN", "ZH", "pct", "tr"]
