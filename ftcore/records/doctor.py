"""Run doctor: the chapter's troubleshooting checklist, applied to a real RunRecord.

Section 3.2.6 asks a reader to check, after every fine-tune, whether the run overfitted, whether
training converged stably, and whether it forgot what it knew. ``diagnose(record)`` answers those
questions from the record's tables instead of from memory:

=====================  ========  =================================================================
finding kind           severity  what it reads
=====================  ========  =================================================================
divergence             error     status ``diverged``, a ``diverged`` event, or a non-finite loss
overfitting            warning   validation loss U-shaped while the training loss keeps falling
                                 (info when early stopping restored the weights of its minimum)
val_loss_rising        info      validation loss rose, but at too few evaluations to be sure
generalization_gap     warn/info train-split vs validation accuracy (only if train evals exist)
stagnation             warning   training loss flat at its starting (chance) level: LR too low?
exploding_gradients    warning   total gradient norm spikes far above its running median
collapse               warn/info nearly all predictions go to one class and accuracy is poor
                                 (info when the model recovered by its last evaluation)
forgetting             warning   ``forgetting_warning`` events; old-task accuracy falling a lot
early_stop             info      an ``early_stop`` event (what happened, and when)
unfreeze_incomplete    warning   an ``unfreeze_incomplete`` event: gradual unfreezing left groups frozen
restored_best          info      a ``restored_best`` event (early stopping's best weights)
lr_reduced             info      ``lr_reduced`` events (reduce-on-plateau schedule)
rows_dropped, ...      info      what the run changed from what was asked: rows dropped from a user's
                                 task file, labels trimmed, a clamped train_size or warmup (events)
record_incomplete      info      the record lacks what a check or figure reads: gradient norms
                                 (record_grad_norms=False), max_class_frac, per-class test rows
=====================  ========  =================================================================

Every threshold is a field of :class:`Thresholds` (documented with its unit) and can be changed
per call: ``diagnose(rec, overfit_rise=0.1, explode_factor=20)``.

>>> d = diagnose(rec)                  # doctest: +SKIP
>>> print(d)                           # one line per finding, or "no problems found"
                                       # ("no evaluation to judge" without validation/test evals)
>>> d.to_frame()                       # a DataFrame for notebooks
>>> print(d.to_text("zh"))             # the same in Chinese
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .queries import (COLLAPSE_FRAC, COLLAPSE_MAX_ACCURACY, COLLAPSE_MAX_MACRO_F1, collapse_table, curve,
                      global_grad_norm)

SEVERITIES = ("error", "warning", "info")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Thresholds:
    """The numbers behind each verdict. Fractions are plain ratios (0.05 = 5 %)."""

    # overfitting: validation loss must exceed its minimum by >= overfit_rise (relative to that
    # minimum) at >= overfit_min_evals later evaluations, while the training loss kept falling.
    overfit_rise: float = 0.05
    overfit_min_evals: int = 2
    # generalization gap: train-split accuracy minus validation accuracy (absolute, 0.10 = 10
    # accuracy points) at or above which the gap is a warning rather than an info line.
    gap_warn: float = 0.10
    # stagnation: the smoothed training loss fell by less than stagnation_tol (relative) from the
    # start of the run to its end, and ends within stagnation_near (relative) of ln(num_labels)
    # or of its starting value. "Smoothed" = mean over the first / last stagnation_window of the
    # steps (a fraction of the run, at least 3 steps). Runs shorter than stagnation_min_steps
    # steps are not judged. In a task sequence each task's stretch of steps is judged alone.
    stagnation_tol: float = 0.02
    stagnation_near: float = 0.05
    stagnation_window: float = 0.10
    stagnation_min_steps: int = 10
    # below this peak learning rate (per step, any group) the stagnation finding blames the LR;
    # 1e-5 is at the bottom of the usual range for fine-tuning pretrained transformers.
    stagnation_low_lr: float = 1e-5
    # exploding gradients: total gradient norm (L2 over all layer groups, before clipping) above
    # explode_factor x the median of the previous explode_window steps; the ratio test starts
    # explode_warmup steps into the run and restarts whenever the set of trainable groups changes
    # (unfreezing a big group legitimately raises the norm). A non-finite norm always counts.
    # The window is short on purpose: in a healthy fine-tune the norm grows ~10x during the first
    # epoch (the stored rt-sentiment run: ~0.5 -> ~5), which a 100-step median lags behind (10.7x
    # there) while a 20-step median tracks it (at most 4.1x); a real blow-up is far larger.
    explode_factor: float = 10.0
    explode_warmup: int = 10
    explode_window: int = 20
    # collapse: an evaluation (validation or test) sends >= collapse_frac of its predictions to a
    # single class while accuracy < collapse_max_accuracy or macro-F1 < collapse_max_macro_f1
    # (the rule of ftcore.records.queries.is_collapsed, which explains the second condition).
    collapse_frac: float = COLLAPSE_FRAC
    collapse_max_accuracy: float = COLLAPSE_MAX_ACCURACY
    collapse_max_macro_f1: float = COLLAPSE_MAX_MACRO_F1
    # forgetting: an old task's test accuracy below forgetting_fraction x its best earlier value.
    forgetting_fraction: float = 0.70


DEFAULTS = Thresholds()

# What the stagnation finding suggests depends on how small the learning rate was.
_LR_ADVICE = {
    "low": ("the largest learning rate used was {max_lr}, very low for fine-tuning: raise it (try "
            "10x, or ftcore lr-find)",
            "使用过的最大学习率仅为 {max_lr}，对微调而言过低：请调高（例如 10 倍，或运行 ftcore lr-find）"),
    "not_low": ("the largest learning rate used was {max_lr}, which is not small, so also check how "
                "many layers were trainable, the labels and the number of steps (ftcore lr-find "
                "tests the learning rate)",
                "使用过的最大学习率为 {max_lr}，并不算低：请同时检查可训练的层数、标签质量和训练步数"
                "（ftcore lr-find 可检验学习率）"),
    "unknown": ("no learning rate was recorded; check the learning rate (ftcore lr-find), the "
                "trainable layers and the labels",
                "记录中没有学习率：请检查学习率（ftcore lr-find）、可训练的层和标签"),
}


# ------------------------------------------------------------------------------------ messages
# One English and one Chinese template per message id; placeholders come from each detector's
# pre-formatted ``fmt`` dict, so both languages always show the same numbers.
_TEXT: dict[str, tuple[str, str]] = {
    "divergence": (
        "training diverged at step {step}: {reason}{first}; lower the learning rate, lengthen warmup "
        "or clip gradients",
        "训练在第 {step} 步发散：{reason}{first_zh}；可调低学习率、延长预热或启用梯度裁剪",
    ),
    "overfitting": (
        "overfitting from step {step}: validation loss bottomed at {best} and rose to {last} "
        "(+{rise}) by step {last_step}, above the minimum at {n_rising} later evaluations, while "
        "training loss kept falling ({train_best} -> {train_last}){restored}; stop near step {step} "
        "(early stopping), train fewer epochs or regularize more",
        "第 {step} 步起出现过拟合：验证损失在 {best} 处见底，到第 {last_step} 步升至 {last}（+{rise}），"
        "之后有 {n_rising} 次评估高于最低点，而训练损失仍在下降（{train_best} -> {train_last}）{restored_zh}；"
        "建议在第 {step} 步附近停止（早停）、减少轮数或加强正则化",
    ),
    "val_loss_rising": (
        "validation loss rose from its minimum {best} at step {step} to {last} at step {last_step} "
        "(+{rise}), but only {n_rising} later evaluation(s) show it: an early sign of overfitting, "
        "not yet conclusive (evaluate more often to be sure)",
        "验证损失从第 {step} 步的最低值 {best} 升至第 {last_step} 步的 {last}（+{rise}），"
        "但只有 {n_rising} 次后续评估体现这一点：这是过拟合的早期迹象，尚不能下结论（可提高评估频率确认）",
    ),
    "generalization_gap": (
        "generalization gap at step {step}: train accuracy {train_acc} vs validation accuracy "
        "{val_acc} ({gap} points)",
        "第 {step} 步的泛化差距：训练集准确率 {train_acc}，验证集准确率 {val_acc}（相差 {gap} 个百分点）",
    ),
    "stagnation": (
        "training loss stagnated: {head} -> {tail} ({change}) over {n_steps} steps, still near its "
        "starting level{chance}: the model is not learning; {lr_advice}",
        "训练损失停滞：{n_steps} 步内从 {head} 变为 {tail}（{change}），仍停留在起始水平附近{chance_zh}，"
        "模型没有在学习；{lr_advice_zh}",
    ),
    "exploding_gradients": (
        "exploding gradients at step {step}: total gradient norm {norm} is {ratio} the running "
        "median {median}; {group} dominates ({share} of the squared norm); clip gradients or lower "
        "the learning rate",
        "第 {step} 步梯度爆炸：总梯度范数 {norm} 是此前中位数 {median} 的 {ratio}；"
        "主要来自 {group}（占平方范数的 {share}）；可启用梯度裁剪或调低学习率",
    ),
    "exploding_gradients_nonfinite": (
        "exploding gradients at step {step}: the gradient norm of {group} is {norm}; clip gradients "
        "or lower the learning rate",
        "第 {step} 步梯度爆炸：{group} 的梯度范数为 {norm}；可启用梯度裁剪或调低学习率",
    ),
    "collapse": (
        "collapse at step {step}: {frac} of {split} predictions go to one class (accuracy {acc}, "
        "macro-F1 {f1}{labels}){later}; the model predicts a single class (usually "
        "the majority class): check label balance and the learning rate (too high can collapse a "
        "model, too low never moves it off the prior) or train longer",
        "第 {step} 步出现预测塌缩：{split} 集 {frac} 的预测落在同一类别（准确率 {acc}，宏 F1 {f1}{labels_zh}）"
        "{later_zh}；模型只输出同一个类别（通常是多数类）：请检查类别分布和学习率"
        "（过高会使模型塌缩，过低则模型始终停在先验上），或延长训练",
    ),
    "collapse_transient": (
        "predictions collapsed to one class at step {step} ({frac} of {split} predictions, accuracy "
        "{acc}, macro-F1 {f1}) at {n} evaluation(s), but the model recovered by its last evaluation "
        "(step {last_step})",
        "第 {step} 步预测曾塌缩到同一类别（{split} 集 {frac} 的预测，准确率 {acc}，宏 F1 {f1}），共 {n} 次评估如此，"
        "但到最后一次评估（第 {last_step} 步）模型已恢复",
    ),
    "forgetting_event": (
        "forgetting warning at step {step}: {detail}",
        "第 {step} 步出现遗忘警告：{detail}",
    ),
    "forgetting": (
        "forgetting of task {task_name} at step {step}: its {split} accuracy fell to {value}, below "
        "{fraction} of its best earlier value {best} (step {best_step})",
        "第 {step} 步任务 {task_name} 出现遗忘：其 {split} 集准确率降至 {value}，低于此前最佳值 {best}"
        "（第 {best_step} 步）的 {fraction}",
    ),
    "unfreeze_incomplete": (
        "gradual unfreezing could not finish before the run ended: {detail}",
        "逐层解冻在训练结束前未能完成：{detail}",
    ),
    "early_stop": (
        "early stopping at step {step}: {detail}",
        "第 {step} 步触发早停：{detail}",
    ),
    "restored_best": (
        "best weights restored at step {step}: {detail}",
        "第 {step} 步恢复了最佳权重：{detail}",
    ),
    "lr_reduced": (
        "learning rate reduced at step {step} (validation loss plateaued): {detail}",
        "第 {step} 步验证损失进入平台期，学习率已下调：{detail}",
    ),
    "adjusted": (
        "the run's data or schedule differs from what was asked: {detail}",
        "本次运行的数据或学习率计划与请求不同：{detail}",
    ),
    "no_grad_norms": (
        "the record has no gradient-norm rows (made with record_grad_norms=False), so exploding gradients "
        "were not checked and gradient-norm figures cannot use it; rerun with --record-grad-norms true "
        "to check them",
        "记录中没有梯度范数（训练时 record_grad_norms=False），因此未检查梯度爆炸，梯度范数相关的图也无法使用它；"
        "如需检查，请以 --record-grad-norms true 重新运行",
    ),
    "no_max_class_frac": (
        "the record's evaluations have no max_class_frac (made by an older ftcore), so a collapse to one "
        "class was not checked; rerun with --force to check it",
        "记录的评估中没有 max_class_frac（由旧版 ftcore 生成），因此未检查预测是否塌缩到单一类别；"
        "如需检查，请加 --force 重新运行",
    ),
    "no_per_class": (
        "the record's test evaluation has no per-class rows (made by an older ftcore), so the per-class "
        "table and confusion matrix (ftcore show, the lab) are not available; rerun with --force to get them",
        "记录的测试评估中没有逐类别指标（由旧版 ftcore 生成），因此无法给出逐类别表和混淆矩阵"
        "（ftcore show、lab）；如需要，请加 --force 重新运行",
    ),
}

# Events that say the run differs from what was asked (written where the data, the split or the
# schedule could not be used as given): each is reported as an info finding of its own kind.
ADJUSTMENT_EVENTS = ("rows_dropped", "labels_trimmed", "train_size_clamped", "warmup_clamped")


# ------------------------------------------------------------------------------- data classes
@dataclass
class Finding:
    """One diagnosed problem (or notable event) of a run."""

    kind: str
    severity: str  # "error" | "warning" | "info"
    step: int | None  # the optimizer step where it begins
    epoch: float | None  # the same point in epochs (from the steps table)
    message: str  # an English sentence with the numbers
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers used
    message_zh: str = ""  # the same in Chinese

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding.severity={self.severity!r} is not one of {SEVERITIES}")

    def line(self, lang: str = "en") -> str:
        where = "" if self.step is None else f"step {self.step}"
        if self.epoch is not None:
            where += f" (epoch {self.epoch:.2f})"
        msg = self.message_zh if lang == "zh" and self.message_zh else self.message
        return f"[{self.severity}] {self.kind}{' at ' + where if where else ''}: {msg}"

    def __str__(self) -> str:
        return self.line()


@dataclass
class Diagnosis:
    """The findings of :func:`diagnose`, most severe first."""

    findings: list[Finding] = field(default_factory=list)
    run_id: str | None = None
    # Whether the record holds any validation or test evaluation (None: not known, e.g. a
    # Diagnosis built by hand). Without one, overfitting, collapse, the generalization gap and
    # forgetting cannot be judged, and the text says so instead of "no problems found".
    evaluated: bool | None = None

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __getitem__(self, i: int) -> Finding:
        return self.findings[i]

    def kinds(self) -> list[str]:
        """Kinds of the findings, in order, without repeats."""
        return list(dict.fromkeys(f.kind for f in self.findings))

    @property
    def problems(self) -> list[Finding]:
        """Findings that are warnings or errors (not info)."""
        return [f for f in self.findings if f.severity != "info"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_text(self, lang: str = "en") -> str:
        head = f"diagnosis of run {self.run_id}" if self.run_id else "diagnosis"
        if self.evaluated is False:
            return self._unevaluated_text(head, lang)
        if not self.findings:
            return f"{head}: no problems found" + ("（未发现问题）" if lang == "zh" else "")
        n = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        counts = ", ".join(f"{v} {s}{'s' if v != 1 else ''}" for s, v in n.items() if v)
        lines = [f"{head}: {counts}"]
        if not self.problems:
            lines[0] += " — no problems found" if lang != "zh" else "（未发现问题）"
        lines += ["  " + f.line(lang) for f in self.findings]
        return "\n".join(lines)

    def _unevaluated_text(self, head: str, lang: str) -> str:
        """A record without validation or test evaluations: say there is nothing to judge
        generalization by, then whatever the training curves did show."""
        if lang == "zh":
            line = (f"{head}：没有可评判的评估——记录里没有验证集或测试集的评估，无法判断过拟合、预测坍缩、"
                    "泛化差距和遗忘（训练时请开启评估，例如 eval_splits=(\"validation\",)）")
            tail = "；训练损失和梯度未见问题" if not self.problems else ""
        else:
            line = (f"{head}: no evaluation to judge: the record has no validation or test evaluation, so "
                    "overfitting, collapse, the generalization gap and forgetting cannot be checked (evaluate "
                    "while training, e.g. eval_splits=(\"validation\",))")
            tail = "; the training loss and gradients show no problems" if not self.problems else ""
        return "\n".join([line + tail] + ["  " + f.line(lang) for f in self.findings])

    def __str__(self) -> str:
        return self.to_text("en")

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: kind, severity, step, epoch, message, evidence (JSON), message_zh."""
        rows = [{"kind": f.kind, "severity": f.severity, "step": f.step, "epoch": f.epoch,
                 "message": f.message, "evidence": json.dumps(_jsonable(f.evidence), ensure_ascii=False),
                 "message_zh": f.message_zh} for f in self.findings]
        df = pd.DataFrame(rows, columns=["kind", "severity", "step", "epoch", "message", "evidence",
                                         "message_zh"])
        return df.astype({"step": "Int64", "epoch": "float64"})


# ---------------------------------------------------------------------------------- helpers
def _jsonable(x: Any) -> Any:
    """Plain-Python, strict-JSON version of evidence (non-finite floats become strings)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


class _Context:
    """What every detector needs: the record, thresholds, and step -> epoch conversion."""

    def __init__(self, record, th: Thresholds):
        self.record, self.th = record, th
        steps = record.steps.sort_values("step", kind="stable")
        self.steps = steps
        self._xp = np.concatenate([[0.0], steps["step"].to_numpy(float)])
        self._fp = np.concatenate([[0.0], steps["epoch"].to_numpy(float)])
        self.steps_per_epoch = record.summary.get("steps_per_epoch")
        self.num_labels = record.summary.get("num_labels") or (
            len(record.summary["label_names"]) if record.summary.get("label_names") else None)
        self.multi_task = record.evals["task"].nunique() > 1 or len(
            set(record.events.loc[record.events["kind"] == "task_start", "detail"])) > 1
        self.findings: list[Finding] = []

    def epoch_at(self, step: int | None) -> float | None:
        if step is None:
            return None
        if len(self.steps) and step <= self._xp[-1]:
            return round(float(np.interp(step, self._xp, self._fp)), 4)
        if isinstance(self.steps_per_epoch, (int, float)) and self.steps_per_epoch > 0:
            return round(step / self.steps_per_epoch, 4)
        if len(self.steps):
            return round(float(self._fp[-1]), 4)
        return None

    def add(self, kind: str, severity: str, step: int | None, evidence: dict, text_id: str | None = None,
            task: str | None = None, **fmt: Any) -> Finding:
        """Record a finding; ``task`` is named in the message when the record holds several tasks."""
        en, zh = _TEXT[text_id or kind]
        fmt = {"step": "?" if step is None else step, **fmt}
        en, zh = en.format(**fmt), zh.format(**fmt)
        if task is not None and self.multi_task:
            en, zh = f"[task {task}] {en}", f"[任务 {task}] {zh}"
        f = Finding(kind, severity, None if step is None else int(step), self.epoch_at(step),
                    en, _jsonable(evidence), zh)
        self.findings.append(f)
        return f

    def events(self, kind: str) -> pd.DataFrame:
        ev = self.record.events
        return ev[ev["kind"] == kind].sort_values("step", kind="stable")

    def train_loss_between(self, lo: float, hi: float) -> float | None:
        """Mean finite training loss of the steps in (lo, hi]; the nearest step's if none."""
        s = self.steps
        if not len(s):
            return None
        loss = s["loss"].to_numpy(float)
        step = s["step"].to_numpy(float)
        sel = (step > lo) & (step <= hi) & np.isfinite(loss)
        if sel.any():
            return float(loss[sel].mean())
        finite = np.isfinite(loss)
        if not finite.any():
            return None
        i = int(np.argmin(np.abs(step[finite] - hi)))
        return float(loss[finite][i])


def _series(evals: pd.DataFrame, split: str, metric: str, task: str | None = None) -> pd.Series:
    """Values of one metric by step (first measurement of a step: the one before any restore)."""
    c = curve(evals, metric, split, task, keep="first")
    return pd.Series(c["value"].to_numpy(float), index=c["step"].to_numpy(int))


def _task_windows(ctx: _Context, tasks: list[str]) -> dict[str, tuple[int, int]]:
    """Step ranges in which each task was trained, from task_start / task_end events."""
    starts = ctx.events("task_start")
    ends = ctx.events("task_end")
    windows = {}
    def naming(df: pd.DataFrame, task: str) -> pd.DataFrame:  # the continual loop writes the name alone
        exact = df[df["detail"].astype(str).str.strip() == task]
        return exact if len(exact) else df[df["detail"].str.contains(task, regex=False, na=False)]

    for task in tasks:
        match = naming(starts, task)
        if not len(match):
            continue
        lo = int(match["step"].iloc[0])
        later_starts = starts[starts["step"] > lo]["step"]
        own_end = naming(ends[ends["step"] >= lo], task)["step"]
        hi_candidates = list(later_starts.iloc[:1]) + list(own_end.iloc[:1])
        hi = int(min(hi_candidates)) if hi_candidates else int(ctx.record.evals["step"].max())
        windows[task] = (lo, hi)
    return windows


# -------------------------------------------------------------------------------- detectors
def detect_divergence(ctx: _Context) -> None:
    """Error: status ``diverged``, a ``diverged`` event, or a non-finite training loss."""
    rec, s = ctx.record, ctx.steps
    ev = ctx.events("diverged")
    loss = s["loss"].to_numpy(float)
    nonfinite = np.flatnonzero(~np.isfinite(loss))
    if rec.status != "diverged" and not len(ev) and not len(nonfinite):
        return
    finite = loss[np.isfinite(loss)]
    first = float(finite[0]) if len(finite) else None
    if len(ev):
        step, reason = int(ev["step"].iloc[0]), str(ev["detail"].iloc[0])
    elif len(nonfinite):
        step = int(s["step"].iloc[nonfinite[0]])
        reason = f"the training loss is {loss[nonfinite[0]]}"
    else:
        step = int(s["step"].iloc[-1]) if len(s) else rec.summary.get("steps")
        reason = "the run's status is 'diverged'"
    row = s[s["step"] == step]
    value = float(row["loss"].iloc[0]) if len(row) else None
    if not reason:
        reason = f"the training loss is {_num(value)}"
    ctx.add("divergence", "error", step, {"loss": value, "first_loss": first, "status": rec.status,
                                          "reason": reason},
            reason=reason, first="" if "first loss" in reason else f" (first loss {_num(first)})",
            first_zh="" if "first loss" in reason else f"（初始损失 {_num(first)}）")


def detect_overfitting(ctx: _Context) -> None:
    """Warning: validation loss U-shaped while training loss falls; info if the rise is thin."""
    th, evals = ctx.th, ctx.record.evals
    tasks = list(dict.fromkeys(evals.loc[(evals["split"] == "validation") & (evals["metric"] == "loss"), "task"]))
    if len(tasks) > 1:
        windows = _task_windows(ctx, tasks)  # only judge a task while it is being trained
    else:
        windows = {t: (-1, math.inf) for t in tasks}
    restored = ctx.events("restored_best")
    for task in tasks:
        if task not in windows:
            continue
        lo, hi = windows[task]
        val = _series(evals, "validation", "loss", task)
        val = val[(val.index >= lo) & (val.index <= hi) & np.isfinite(val.to_numpy())]
        if len(val) < 2:
            continue
        steps = val.index.to_numpy()
        i_min = int(np.argmin(val.to_numpy()))
        best, best_step = float(val.iloc[i_min]), int(steps[i_min])
        later = val.iloc[i_min + 1:]
        if not len(later):
            continue
        limit = best * (1 + th.overfit_rise)
        rising = later[later >= limit]
        if not len(rising):
            continue
        last, last_step = float(later.iloc[-1]), int(later.index[-1])
        prev_best = float(steps[i_min - 1]) if i_min > 0 else -1.0
        train_best = ctx.train_loss_between(prev_best, best_step)
        train_last = ctx.train_loss_between(float(later.index[-2]) if len(later) > 1 else best_step, last_step)
        train_falling = train_best is None or train_last is None or train_last < train_best
        acc = _series(evals, "validation", "accuracy", task)
        evidence = {"task": task, "best_val_loss": best, "best_step": best_step, "last_val_loss": last,
                    "last_step": last_step, "rise": last / best - 1 if best > 0 else None,
                    "n_rising_evals": len(rising), "n_later_evals": len(later),
                    "train_loss_at_best": train_best, "train_loss_at_last": train_last,
                    "val_accuracy_at_best": float(acc[best_step]) if best_step in acc.index else None,
                    "val_accuracy_at_last": float(acc[last_step]) if last_step in acc.index else None}
        fmt = dict(best=_num(best), last=_num(last), last_step=last_step,
                   rise=_pct(last / best - 1) if best > 0 else "n/a", n_rising=len(rising),
                   train_best=_num(train_best), train_last=_num(train_last))
        if len(rising) >= th.overfit_min_evals and train_falling:
            # Early stopping that restored the weights of the validation minimum already undid
            # the damage: the run overfitted, the final model did not (info, not warning).
            restored_step = ctx.record.summary.get("restored_step")
            fixed = restored_step == best_step or any(
                re.search(rf"\bstep {best_step}\b", str(d)) for d in restored["detail"])
            r = ("", "")
            if len(restored):
                r = (f"; the best weights were restored ({restored['detail'].iloc[0]})",
                     f"；已恢复最佳权重（{restored['detail'].iloc[0]}）")
            evidence["best_weights_restored"] = bool(fixed)
            ctx.add("overfitting", "info" if fixed else "warning", best_step, evidence, task=task,
                    restored=r[0], restored_zh=r[1], **fmt)
        elif train_falling:
            ctx.add("val_loss_rising", "info", best_step, evidence, task=task, **fmt)


def detect_generalization_gap(ctx: _Context) -> None:
    """Warning (gap >= gap_warn) or info: train-split accuracy vs validation accuracy."""
    evals = ctx.record.evals
    for task in dict.fromkeys(evals.loc[evals["split"] == "train", "task"]):
        tr = _series(evals, "train", "accuracy", task)
        va = _series(evals, "validation", "accuracy", task)
        common = tr.index.intersection(va.index)
        if not len(common):
            continue
        step = int(common[-1])
        gap = float(tr[step] - va[step])
        gaps = (tr[common] - va[common])
        severity = "warning" if gap >= ctx.th.gap_warn else "info"
        ctx.add("generalization_gap", severity, step,
                {"task": task, "train_accuracy": float(tr[step]), "val_accuracy": float(va[step]),
                 "gap": gap, "max_gap": float(gaps.max()), "max_gap_step": int(gaps.idxmax())},
                train_acc=_num(float(tr[step])), val_acc=_num(float(va[step])), gap=f"{100 * gap:.1f}", task=task)


def detect_stagnation(ctx: _Context) -> None:
    """Warning: the smoothed training loss hardly fell and stays at its starting / chance level.

    In a task sequence (``task_start`` events) each task's stretch of steps is judged on its own:
    the loss restarts at chance level whenever a new task begins."""
    if ctx.record.status == "diverged":
        return
    starts = ctx.events("task_start")
    tasks = list(dict.fromkeys(str(d) for d in starts["detail"]))
    windows = _task_windows(ctx, tasks) if len(tasks) > 1 else {}
    if not windows:
        windows = {None: (-math.inf, math.inf)}
    for task, (lo, hi) in windows.items():
        sel = (ctx.steps["step"] > lo) & (ctx.steps["step"] <= hi)
        _stagnation_in(ctx, ctx.steps[sel], task)


def _stagnation_in(ctx: _Context, steps: pd.DataFrame, task: str | None) -> None:
    th, rec = ctx.th, ctx.record
    finite = steps[np.isfinite(steps["loss"].to_numpy(float))]
    loss = finite["loss"].to_numpy(float)
    n = len(loss)
    if n < th.stagnation_min_steps:
        return
    w = min(max(3, int(round(n * th.stagnation_window))), max(1, n // 3))
    head, tail = float(loss[:w].mean()), float(loss[-w:].mean())
    if head <= 0:
        return
    decrease = (head - tail) / head
    chance = math.log(ctx.num_labels) if ctx.num_labels and ctx.num_labels >= 2 else None
    near_chance = chance is not None and abs(tail - chance) <= th.stagnation_near * chance
    near_start = abs(tail - head) <= th.stagnation_near * head
    if decrease >= th.stagnation_tol or not (near_chance or near_start):
        return
    lrs = rec.lrs
    lrs = lrs[(lrs["step"] >= finite["step"].min()) & (lrs["step"] <= finite["step"].max())]["lr"].to_numpy(float)
    max_lr = float(np.nanmax(lrs)) if len(lrs) else None
    advice = "unknown" if max_lr is None else ("low" if max_lr < th.stagnation_low_lr else "not_low")
    lr_text = "n/a" if max_lr is None else f"{max_lr:.3g}"
    ch = ("", "")
    if near_chance:
        ch = (f" (chance level ln({ctx.num_labels}) = {chance:.3f})",
              f"（随机猜测水平 ln({ctx.num_labels}) = {chance:.3f}）")
    ctx.add("stagnation", "warning", int(finite["step"].iloc[0]),
            {"task": task, "head_loss": head, "tail_loss": tail, "relative_decrease": decrease,
             "window_steps": w, "chance_loss": chance, "max_lr": max_lr, "n_steps": n},
            task=task, head=_num(head), tail=_num(tail), n_steps=n, change=f"{-100 * decrease:+.1f}%",
            chance=ch[0], chance_zh=ch[1], lr_advice=_LR_ADVICE[advice][0].format(max_lr=lr_text),
            lr_advice_zh=_LR_ADVICE[advice][1].format(max_lr=lr_text))


def detect_exploding_gradients(ctx: _Context) -> None:
    """Warning at the first step whose total gradient norm is non-finite or far above its median."""
    th, g = ctx.th, ctx.record.grad_norms
    if not len(g):
        return
    total = global_grad_norm(g).sort_values("step", kind="stable").set_index("step")["norm"]
    # The baseline restarts whenever the set of trainable groups changes: unfreezing a large
    # group (the embeddings) legitimately multiplies the total norm.
    changes = np.asarray(sorted({int(s) for s in ctx.record.layer_state["step"]} - {0}), dtype=float)
    segment = np.searchsorted(changes, total.index.to_numpy(float), side="left")
    for seg in np.unique(segment):
        part = total[segment == seg]
        values = part.to_numpy(float)
        median = part.where(np.isfinite(part)).rolling(th.explode_window, min_periods=1).median().shift(1)
        ratio_test = (np.arange(len(part)) >= th.explode_warmup) & (values > th.explode_factor * median.to_numpy())
        hits = np.flatnonzero(~np.isfinite(values) | ratio_test)
        if not len(hits):
            continue
        i = int(hits[0])
        step = int(part.index[i])
        med = None if pd.isna(median.iloc[i]) else float(median.iloc[i])
        rows = g[g["step"] == step]
        group_norms = pd.Series(rows["norm"].to_numpy(float), index=rows["group"].astype(str).to_numpy())
        if math.isfinite(values[i]):
            shares = group_norms ** 2 / max(values[i] ** 2, 1e-30)
            group = str(shares.idxmax())
            ctx.add("exploding_gradients", "warning", step,
                    {"norm": values[i], "median": med, "ratio": values[i] / med if med else None,
                     "group": group, "group_share": float(shares[group]),
                     "group_norm": float(group_norms[group]), "n_spikes": len(hits)},
                    norm=_num(values[i]), median=_num(med), ratio=f"{values[i] / med:.1f}x" if med else "n/a",
                    group=group, share=_pct(float(shares[group])))
        else:
            bad = group_norms[~np.isfinite(group_norms.to_numpy())]
            group = str(bad.index[0])
            ctx.add("exploding_gradients", "warning", step,
                    {"norm": float(bad.iloc[0]), "median": med, "group": group, "n_spikes": len(hits)},
                    text_id="exploding_gradients_nonfinite", norm=str(float(bad.iloc[0])), group=group)
        return  # the first spike is the one to fix


def detect_collapse(ctx: _Context) -> None:
    """Warning at the first validation/test evaluation that predicts (almost) one class only."""
    th, ev = ctx.th, ctx.record.evals
    if ctx.num_labels is not None and ctx.num_labels < 2:
        return
    wide = collapse_table(ev, ("validation", "test"), frac=th.collapse_frac, max_accuracy=th.collapse_max_accuracy,
                          max_macro_f1=th.collapse_max_macro_f1)
    hits = wide[wide["collapsed"].astype(bool)]
    if not len(hits):
        return
    first = hits.iloc[0]
    last_eval_step = int(wide["step"].max())
    still = int(hits["step"].max()) == last_eval_step
    n = len(hits)
    later = f", still collapsed at the last evaluation (step {last_eval_step})" if still else ""
    later_zh = f"，直到最后一次评估（第 {last_eval_step} 步）仍未恢复" if still else ""
    a = None if pd.isna(first.get("accuracy")) else float(first["accuracy"])
    f = None if pd.isna(first.get("macro_f1")) else float(first["macro_f1"])
    # A collapse the model trained its way out of (common in the first epoch) is worth knowing,
    # not a problem of the final model; one that lasts to the last evaluation is.
    ctx.add("collapse", "warning" if still else "info", int(first["step"]),
            {"split": first["split"], "task": first["task"], "max_class_frac": float(first["max_class_frac"]),
             "accuracy": a, "macro_f1": f, "num_labels": ctx.num_labels, "n_collapsed_evals": n,
             "still_collapsed_at_end": still},
            frac=_pct(float(first["max_class_frac"])), split=first["split"], acc=_num(a), f1=_num(f),
            labels="" if ctx.num_labels is None else f", {ctx.num_labels} labels",
            labels_zh="" if ctx.num_labels is None else f"，共 {ctx.num_labels} 类", later=later, later_zh=later_zh,
            task=str(first["task"]),
            last_step=last_eval_step, n=n, text_id="collapse" if still else "collapse_transient")


def detect_forgetting(ctx: _Context) -> None:
    """Warnings: each ``forgetting_warning`` event; old-task accuracy below a fraction of its best."""
    events = ctx.events("forgetting_warning")
    for _, e in events.iterrows():
        ctx.add("forgetting", "warning", int(e["step"]), {"detail": str(e["detail"]), "source": "event"},
                text_id="forgetting_event", detail=str(e["detail"]))
    evals = ctx.record.evals
    tasks = list(dict.fromkeys(evals["task"]))
    if len(tasks) < 2:
        return
    event_steps = set(int(s) for s in events["step"])
    details = [str(d).lower() for d in events["detail"]]
    for task in tasks:
        split = "test" if ((evals["task"] == task) & (evals["split"] == "test")).any() else "validation"
        acc = _series(evals, split, "accuracy", task)
        acc = acc[np.isfinite(acc.to_numpy())]
        if len(acc) < 2:
            continue
        best_before = acc.cummax().shift(1)
        drop = acc < ctx.th.forgetting_fraction * best_before
        if not drop.any():
            continue
        step = int(drop[drop].index[0])
        if any(task.lower() in d for d in details) or step in event_steps:
            continue  # the continual-learning loop already warned about this task
        best = float(best_before[step])
        best_step = int(acc[acc.index < step].idxmax())
        ctx.add("forgetting", "warning", step,
                {"task": task, "split": split, "accuracy": float(acc[step]), "best_accuracy": best,
                 "best_step": best_step, "fraction": ctx.th.forgetting_fraction, "source": "evals"},
                task_name=task, split=split, value=_num(float(acc[step])), best=_num(best), best_step=best_step,
                fraction=_pct(ctx.th.forgetting_fraction))


def detect_events(ctx: _Context) -> None:
    """Info: early stopping, restoring the best weights, learning-rate reductions."""
    for kind, text_id in (("early_stop", "early_stop"), ("restored_best", "restored_best"),
                          ("lr_reduced", "lr_reduced")):
        for _, e in ctx.events(kind).iterrows():
            ctx.add(kind, "info", int(e["step"]),
                    {"event": kind, "detail": str(e["detail"])}, text_id=text_id, detail=str(e["detail"]))
    for _, e in ctx.events("unfreeze_incomplete").iterrows():  # groups that never trained (a warning)
        ctx.add("unfreeze_incomplete", "warning", int(e["step"]),
                {"event": "unfreeze_incomplete", "detail": str(e["detail"])}, detail=str(e["detail"]))


def detect_adjustments(ctx: _Context) -> None:
    """Info: rows dropped from a user's task file, trimmed labels, a clamped train_size or warmup."""
    for kind in ADJUSTMENT_EVENTS:
        for _, e in ctx.events(kind).iterrows():
            ctx.add(kind, "info", int(e["step"]), {"event": kind, "detail": str(e["detail"])},
                    text_id="adjusted", detail=str(e["detail"]))


def detect_incomplete(ctx: _Context) -> None:
    """Info: the record lacks what a check or a figure reads, so "no problems found" does not cover it."""
    rec = ctx.record
    if len(rec.steps) and not len(rec.grad_norms):
        ctx.add("record_incomplete", "info", None, {"missing": "grad_norms"}, text_id="no_grad_norms")
    judged = rec.evals[rec.evals["split"].isin(("validation", "test"))]
    if len(judged) and not (judged["metric"] == "max_class_frac").any():
        ctx.add("record_incomplete", "info", None, {"missing": "max_class_frac"}, text_id="no_max_class_frac")
    test = rec.evals[rec.evals["split"] == "test"]
    # every training loop now writes per-class rows on test for a single task (a sequence never does)
    if len(test) and not ctx.multi_task and not test["metric"].str.contains("/", regex=False).any():
        ctx.add("record_incomplete", "info", None, {"missing": "per_class"}, text_id="no_per_class")


DETECTORS = (detect_divergence, detect_overfitting, detect_generalization_gap, detect_stagnation,
             detect_exploding_gradients, detect_collapse, detect_forgetting, detect_events, detect_adjustments,
             detect_incomplete)


def diagnose(record, **thresholds: Any) -> Diagnosis:
    """Read a RunRecord and report what went wrong (and what notable happened), most severe first.

    Keyword arguments override the fields of :class:`Thresholds` (e.g. ``overfit_rise=0.1``)."""
    unknown = set(thresholds) - {f.name for f in dataclasses.fields(Thresholds)}
    if unknown:
        raise TypeError(f"diagnose() got unknown threshold(s) {sorted(unknown)}; "
                        f"known: {[f.name for f in dataclasses.fields(Thresholds)]}")
    ctx = _Context(record, dataclasses.replace(DEFAULTS, **thresholds))
    for detect in DETECTORS:
        detect(ctx)
    findings = sorted(ctx.findings, key=lambda f: (_SEVERITY_RANK[f.severity],
                                                   math.inf if f.step is None else f.step))
    ev = record.evals
    evaluated = bool(len(ev)) and bool(ev["split"].isin(("validation", "test")).any())
    return Diagnosis(findings, getattr(record, "run_id", None), evaluated)


__all__ = ["DEFAULTS", "DETECTORS", "Diagnosis", "Finding", "Thresholds", "diagnose"]
