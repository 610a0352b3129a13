"""3.2.5 Problems and remedies: fitting regimes, regularization, instability and stability fixes.

Axes-level functions draw one panel from a record or a long-form frame; the figure-level functions
``fitting``, ``regularization``, ``instability`` and ``stability_fixes`` compose them. Every number
is read from the run records (``viz.RunSet``); nothing is typed in.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from ftcore.records.record import RunRecord

from ftcore.records.runset import RunSet
from .text import register, t
from .theme import current_lang

COLLAPSE_FRAC = 0.95  # validation predictions with at least this share in one class = collapse
FAILED_FRAC = 0.95  # stability-fixes: test predictions above this share in one class = failed

register({
    "zh": {
        # shared by this module's panels
        "problems.dots": "黑点 = 单个种子", "problems.diverged_dot": "发散（无最终准确率）",
        "problems.collapsed_dot": "坍缩为单一类别",
        "problems.run_info": "{n} 条训练样本，{epochs} 轮，学习率 {lr}",
        # fitting
        "fitting.title": "正常拟合、过拟合与欠拟合：真实的训练与验证损失",
        "fitting.regime.good": "正常拟合", "fitting.regime.overfit": "过拟合", "fitting.regime.underfit": "欠拟合",
        "fitting.step_loss": "训练损失（每步）", "fitting.train_eval": "训练损失（评估）",
        "fitting.val_eval": "验证损失（评估）", "fitting.best": "验证损失最低点 = 早停点（第 {step} 步）",
        # regularization
        "regularization.title": "正则化方法：训练与验证准确率及泛化差距",
        "regularization.method.none": "无正则化", "regularization.method.dropout": "Dropout",
        "regularization.method.weight_decay": "权重衰减", "regularization.method.early_stopping": "早停",
        "regularization.method.augmentation": "数据增强", "regularization.method.label_smoothing": "标签平滑",
        "regularization.method.combined": "组合",
        "regularization.train_val": "最终训练与验证准确率",
        "regularization.gap": "泛化差距（训练 − 验证）",
        "regularization.gap_axis": "准确率差（百分点）",
        "regularization.test": "测试准确率",
        "regularization.restored": "早停方法的“最终”评估来自恢复的最佳权重",
        # instability
        "instability.title": "训练不稳定：真实运行的损失与梯度范数",
        "instability.setting.stable": "稳定", "instability.setting.too_high_lr": "学习率过高",
        "instability.setting.exploding": "梯度爆炸", "instability.setting.too_low_lr": "学习率过低",
        "instability.step_loss": "训练损失（每步）", "instability.global_norm": "全局梯度范数（裁剪前）",
        "instability.collapse": "验证集预测坍缩为单一类别（≥ {pct}%）",
        "instability.stopped": "第 {step} 步发散，训练停止",
        "instability.grad_axis": "全局梯度范数（对数）",
        # stability fixes
        "stability-fixes.title": "稳定训练的手段：脆弱基线上的实测效果",
        "stability-fixes.fix.baseline": "基线", "stability-fixes.fix.clipping": "梯度裁剪",
        "stability-fixes.fix.warmup": "学习率预热", "stability-fixes.fix.schedule": "线性衰减",
        "stability-fixes.fix.bf16": "bf16 混合精度", "stability-fixes.fix.accumulation": "梯度累积",
        "stability-fixes.fix.reinit_top": "重新初始化顶层",
        "stability-fixes.failure": "失败率（发散，或测试集 > {pct}% 预测为同一类）",
        "stability-fixes.failure_axis": "失败率",
        "stability-fixes.k_of_n": "{k}/{n}",
        "stability-fixes.accuracy": "最终测试准确率",
    },
    "en": {
        "problems.dots": "black dots = single seeds", "problems.diverged_dot": "diverged (no final accuracy)",
        "problems.collapsed_dot": "collapsed to one class",
        "problems.run_info": "{n} training examples, {epochs} epochs, LR {lr}",
        "fitting.title": "Good fit, overfitting and underfitting: real training and validation loss",
        "fitting.regime.good": "good fit", "fitting.regime.overfit": "overfitting",
        "fitting.regime.underfit": "underfitting",
        "fitting.step_loss": "training loss (per step)", "fitting.train_eval": "training loss (evaluation)",
        "fitting.val_eval": "validation loss (evaluation)",
        "fitting.best": "lowest validation loss = early stop (step {step})",
        "regularization.title": "Regularization: training vs validation accuracy and the generalization gap",
        "regularization.method.none": "none", "regularization.method.dropout": "dropout",
        "regularization.method.weight_decay": "weight decay", "regularization.method.early_stopping": "early stopping",
        "regularization.method.augmentation": "augmentation",
        "regularization.method.label_smoothing": "label smoothing",
        "regularization.method.combined": "combined",
        "regularization.train_val": "final training and validation accuracy",
        "regularization.gap": "generalization gap (training − validation)",
        "regularization.gap_axis": "accuracy difference (points)",
        "regularization.test": "test accuracy",
        "regularization.restored": "early stopping's final evaluations use the restored best weights",
        "instability.title": "Training instability: loss and gradient norm of real runs",
        "instability.setting.stable": "stable", "instability.setting.too_high_lr": "LR too high",
        "instability.setting.exploding": "exploding gradients", "instability.setting.too_low_lr": "LR too low",
        "instability.step_loss": "training loss (per step)",
        "instability.global_norm": "global gradient norm (before clipping)",
        "instability.collapse": "validation predictions collapsed to one class (≥ {pct}%)",
        "instability.stopped": "diverged at step {step}, training stopped",
        "instability.grad_axis": "global gradient norm (log)",
        "stability-fixes.title": "Stability fixes: measured on a fragile baseline",
        "stability-fixes.fix.baseline": "baseline", "stability-fixes.fix.clipping": "gradient clipping",
        "stability-fixes.fix.warmup": "LR warmup", "stability-fixes.fix.schedule": "linear decay",
        "stability-fixes.fix.bf16": "bf16 autocast", "stability-fixes.fix.accumulation": "grad. accumulation",
        "stability-fixes.fix.reinit_top": "re-init top layer",
        "stability-fixes.failure": "failure rate (diverged, or > {pct}% of test predictions in one class)",
        "stability-fixes.failure_axis": "failure rate",
        "stability-fixes.k_of_n": "{k}/{n}",
        "stability-fixes.accuracy": "final test accuracy",
    },
})


# ------------------------------------------------------------------------------------ helpers
def _label(prefix: str, value) -> str:
    """The registered label ``prefix.value`` (e.g. ``fitting.regime.overfit``), else the raw value."""
    try:
        return t(f"{prefix}.{value}")
    except KeyError:
        return str(value)


def _lr(x) -> str:
    return f"{float(x):g}" if x is not None else "?"


def _run_info(rec: RunRecord) -> str:
    c = rec.config
    return t("problems.run_info", n=c.get("train_size") or "?", epochs=c.get("epochs", "?"), lr=_lr(c.get("lr")))


def seed_note(runs: RunSet, key: str) -> str:
    """``mean ± s.d., n = k seeds`` with k the (smallest) number of seeds per ``key`` value."""
    ns = [runs.n_seeds(**{key: v}) for v in runs.values(key)]
    sep = "；" if current_lang() == "zh" else "; "
    return t("seeds_n", n=min(ns) if ns else 0) + sep + t("problems.dots")


def _eval_curve(rec: RunRecord, split: str, metric: str) -> pd.DataFrame:
    """One row per evaluation step (the last evaluation at a step wins: e.g. restored weights)."""
    ev = rec.evals
    e = ev[(ev["split"] == split) & (ev["metric"] == metric)]
    return e.drop_duplicates("step", keep="last").sort_values("step")[["step", "value"]]


def global_grad_norm(rec: RunRecord) -> pd.DataFrame:
    """Per step: sqrt of the sum over layer groups of the squared group norms (finite steps only)."""
    g = rec.grad_norms
    if not len(g):
        return pd.DataFrame({"step": pd.Series(dtype="int64"), "norm": pd.Series(dtype="float64")})
    out = g.assign(sq=g["norm"].astype(float) ** 2).groupby("step", sort=True)["sq"].sum()
    out = np.sqrt(out).rename("norm").reset_index()
    return out[np.isfinite(out["norm"]) & (out["norm"] > 0)]


def diverged_step(rec: RunRecord) -> int | None:
    """The step of the ``diverged`` event, else the last step of a run whose status is diverged."""
    ev = rec.events
    d = ev.loc[ev["kind"] == "diverged", "step"]
    if len(d):
        return int(d.iloc[0])
    if rec.status == "diverged":
        return int(rec.steps["step"].max()) if len(rec.steps) else 0
    return None


def plot_seed_bars(data: pd.DataFrame, *, x: str, value: str = "value", order: Sequence | None = None,
                   hue: str | None = None, hue_order: Sequence | None = None, x_labels: Sequence[str] | None = None,
                   hue_labels: Sequence[str] | None = None, palette=None, failed: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Bars of the mean of ``value`` per ``x`` (and ``hue``), s.d. error bars where n > 1, every run
    as a dot (scatter ``gid="seeds"``). Runs with ``status == "diverged"`` and no value are drawn as
    red crosses at the bottom (``gid="diverged"``); rows where column ``failed`` is true as red rings."""
    ax = ax or plt.gca()
    order = list(order if order is not None else pd.unique(data[x]))
    hues = list(hue_order if hue_order is not None else (pd.unique(data[hue]) if hue else [None]))
    palette = palette or sns.color_palette(n_colors=max(len(hues), 1))
    width, xs = 0.8, np.arange(len(order))
    w = width / len(hues)
    jitter = np.random.default_rng(0)
    dots, div_x, ring = [], [], []
    for k, h in enumerate(hues):
        sub = data if h is None else data[data[hue] == h]
        pos = xs - width / 2 + w * (k + 0.5)
        means, sds = [], []
        for o, p in zip(order, pos):
            rows = sub[sub[x] == o]
            v = rows[value].astype(float)
            fin = v[np.isfinite(v)]
            means.append(fin.mean() if len(fin) else np.nan)
            sds.append(fin.std(ddof=1) if len(fin) > 1 else np.nan)
            off = (jitter.uniform(-0.25, 0.25, len(rows)) * w) if len(rows) > 1 else np.zeros(len(rows))
            for (_, r), d in zip(rows.iterrows(), off):
                if np.isfinite(float(r[value])):
                    dots.append((p + d, float(r[value])))
                    if failed and bool(r.get(failed, False)):
                        ring.append((p + d, float(r[value])))
                elif r.get("status") == "diverged":
                    div_x.append(p + d)
        label = hue_labels[k] if hue_labels is not None else (None if h is None else str(h))
        color = palette[k % len(palette)]
        ax.bar(pos, np.nan_to_num(np.asarray(means, float)), w * 0.9, color=color, alpha=0.75, label=label,
               edgecolor="none")
        sd = np.asarray(sds, float)
        ok = np.isfinite(sd) & np.isfinite(np.asarray(means, float))
        if ok.any():
            ax.errorbar(pos[ok], np.asarray(means, float)[ok], yerr=sd[ok], fmt="none", ecolor="black",
                        elinewidth=1.2, capsize=3)
    if dots:
        d = np.asarray(dots)
        ax.scatter(d[:, 0], d[:, 1], s=14, color="black", zorder=4, gid="seeds")
    if ring:
        r = np.asarray(ring)
        ax.scatter(r[:, 0], r[:, 1], s=70, facecolors="none", edgecolors="tab:red", linewidths=1.4, zorder=5,
                   label=t("problems.collapsed_dot"), gid="failed")
    if div_x:
        ax.scatter(div_x, [0.03] * len(div_x), marker="x", s=45, color="tab:red", zorder=5,
                   transform=ax.get_xaxis_transform(), label=t("problems.diverged_dot"), gid="diverged")
    ax.set_xticks(xs, list(x_labels) if x_labels is not None else [str(o) for o in order])
    ax.set_xlim(-0.6, len(order) - 0.4)
    return ax


# ------------------------------------------------------------------------------------ fitting
def plot_fit_curves(record: RunRecord, *, ax: Axes | None = None, show_legend: bool = True) -> Axes:
    """Per-step training loss (faint), training and validation loss at each evaluation, and the
    step of the lowest validation loss (the early-stopping point) marked."""
    ax = ax or plt.gca()
    c_train, c_val = sns.color_palette()[0], sns.color_palette()[1]
    st = record.steps
    ax.plot(st["step"], st["loss"], color=c_train, alpha=0.3, lw=1, label=t("fitting.step_loss"))
    tr = _eval_curve(record, "train", "loss")
    va = _eval_curve(record, "validation", "loss")
    ax.plot(tr["step"], tr["value"], color=c_train, marker="o", ms=3, lw=1.8, label=t("fitting.train_eval"))
    ax.plot(va["step"], va["value"], color=c_val, marker="o", ms=3, lw=1.8, label=t("fitting.val_eval"))
    fin = va[np.isfinite(va["value"])]
    if len(fin):
        best = fin.loc[fin["value"].idxmin()]
        ax.axvline(best["step"], color="0.4", ls="--", lw=1)
        ax.scatter([best["step"]], [best["value"]], marker="*", s=180, color=c_val, edgecolors="black",
                   linewidths=0.6, zorder=5, label=t("fitting.best", step=int(best["step"])))
    stop = diverged_step(record)
    if stop is not None:
        ax.axvline(stop, color="tab:red", lw=1.5, label=t("diverged"))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("loss"))
    if show_legend:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def fitting(runs: RunSet) -> Figure:
    regimes = runs.values("regime")
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes) + 0.5, 4.6), layout="constrained",
                             squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        rec = runs.one(regime=regime)
        plot_fit_curves(rec, ax=ax)
        ax.set_title(f"{_label('fitting.regime', regime)}\n{_run_info(rec)}", fontsize="medium")
    fig.suptitle(t("fitting.title"))
    return fig


# ------------------------------------------------------------------------------------ regularization
def regularization_frame(runs: RunSet) -> pd.DataFrame:
    """One row per run: method, seed, status, final train/validation/test accuracy, the gap
    (train − validation) and the step whose weights were restored by early stopping (if any)."""
    rows = []
    for labels, rec in runs:
        tr, va = rec.metric("accuracy", "train"), rec.metric("accuracy", "validation")
        rows.append({**labels, "status": rec.status, "train": tr, "validation": va,
                     "test": rec.metric("accuracy", "test"), "gap": tr - va,
                     "restored_step": rec.summary.get("restored_step")})
    return pd.DataFrame(rows)


def plot_train_val_accuracy(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """Grouped bars: final training and validation accuracy per method (mean ± s.d., seed dots)."""
    ax = ax or plt.gca()
    long = data.melt(id_vars=[c for c in data.columns if c not in ("train", "validation")],
                     value_vars=["train", "validation"], var_name="split", value_name="acc")
    plot_seed_bars(long, x="method", value="acc", order=order, hue="split", hue_order=["train", "validation"],
                   hue_labels=[t("train_accuracy"), t("val_accuracy")],
                   x_labels=[_label("regularization.method", m) for m in order], ax=ax)
    ax.set_ylabel(t("accuracy"))
    ax.set_title(t("regularization.train_val"))
    ax.set_ylim(0, 1.2)
    _dedupe_legend(ax, fontsize="small", loc="upper center", ncols=4)
    return ax


def plot_generalization_gap(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """The gap, training − validation accuracy, per method in percentage points."""
    ax = ax or plt.gca()
    d = data.assign(gap_pts=100 * data["gap"])
    plot_seed_bars(d, x="method", value="gap_pts", order=order, palette=[sns.color_palette()[2]],
                   x_labels=[_label("regularization.method", m) for m in order], ax=ax)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(t("regularization.gap_axis"))
    ax.set_title(t("regularization.gap"))
    return ax


def plot_test_accuracy(data: pd.DataFrame, *, x: str, order: Sequence, x_labels: Sequence[str],
                       value: str = "test", color=None, failed: str | None = None, ax: Axes | None = None) -> Axes:
    """Test accuracy per condition: mean ± s.d. bars and every seed as a dot."""
    ax = ax or plt.gca()
    plot_seed_bars(data, x=x, value=value, order=order, palette=[color or sns.color_palette()[3]],
                   x_labels=x_labels, failed=failed, ax=ax)
    ax.set_ylabel(t("test_accuracy"))
    return ax


def _dedupe_legend(ax: Axes, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(list(seen.values()), list(seen), **kw)


def _rotate(ax: Axes, angle: float = 30) -> None:
    for lab in ax.get_xticklabels():
        lab.set_rotation(angle)
        lab.set_ha("right")
        lab.set_rotation_mode("anchor")


def regularization(runs: RunSet) -> Figure:
    order = runs.values("method")
    data = regularization_frame(runs)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), layout="constrained", width_ratios=[1.5, 1, 1])
    plot_train_val_accuracy(data, order=order, ax=axes[0])
    plot_generalization_gap(data, order=order, ax=axes[1])
    plot_test_accuracy(data, x="method", order=order,
                       x_labels=[_label("regularization.method", m) for m in order], ax=axes[2])
    axes[2].set_title(t("regularization.test"))
    for ax in axes:
        _rotate(ax)
    note = seed_note(runs, "method")
    if data["restored_step"].notna().any():
        note += "；" if _is_zh() else "; "
        note += t("regularization.restored")
    fig.supxlabel(note, fontsize="small")
    fig.suptitle(t("regularization.title"))
    return fig


def _is_zh() -> bool:
    return current_lang() == "zh"


# ------------------------------------------------------------------------------------ instability
def _mark_divergence(ax: Axes, record: RunRecord):
    """A red vertical line at the step where the run diverged (returned; None if it did not)."""
    stop = diverged_step(record)
    if stop is not None:
        return ax.axvline(stop, color="tab:red", lw=1.5, ls="-", label=t("instability.stopped", step=stop))
    return None


def plot_instability_loss(record: RunRecord, *, ax: Axes | None = None, color=None) -> Axes:
    """Training loss per step; where the run diverged (red line) and the evaluations at which the
    validation predictions collapsed to one class (red triangles on the x axis)."""
    ax = ax or plt.gca()
    st = record.steps
    loss = st["loss"].astype(float)
    ax.plot(st["step"], loss, color=color or sns.color_palette()[0], lw=1.4, label=t("instability.step_loss"))
    fin = loss[np.isfinite(loss) & (loss > 0)]
    if len(fin) and fin.max() / fin.min() > 30:
        ax.set_yscale("log")
    _mark_divergence(ax, record)
    mcf = _eval_curve(record, "validation", "max_class_frac")
    col = mcf[mcf["value"] >= COLLAPSE_FRAC]
    if len(col):
        ax.scatter(col["step"], [0.04] * len(col), transform=ax.get_xaxis_transform(), marker="^", s=40,
                   color="tab:red", zorder=5, clip_on=False, gid="collapse",
                   label=t("instability.collapse", pct=round(100 * COLLAPSE_FRAC)))
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("train_loss"))
    return ax


def plot_instability_grad_norm(record: RunRecord, *, ax: Axes | None = None, color=None) -> Axes:
    """The global gradient norm per step (before clipping), log y, with the divergence marked."""
    ax = ax or plt.gca()
    g = global_grad_norm(record)
    ax.plot(g["step"], g["norm"], color=color or sns.color_palette()[4], lw=1.4, label=t("instability.global_norm"))
    if len(g):
        ax.set_yscale("log")
        if g["norm"].max() / g["norm"].min() < 10:  # less than a decade: plain numbers on the minor ticks
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, _: f"{v:.2g}" if v > 0 and round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5) else ""))
    _mark_divergence(ax, record)
    ax.set_xlabel(t("step"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t("instability.grad_axis"))
    return ax


def instability(runs: RunSet) -> Figure:
    settings = runs.values("setting")
    n = len(settings)
    fig, axes = plt.subplots(2, n, figsize=(max(3.2 * n, 10), 6.4), layout="constrained", squeeze=False,
                             sharex="col")
    for j, s in enumerate(settings):
        rec = runs.one(setting=s)
        plot_instability_loss(rec, ax=axes[0, j])
        plot_instability_grad_norm(rec, ax=axes[1, j])
        axes[0, j].set_title(f"{_label('instability.setting', s)}\n{t('lr')} {_lr(rec.config.get('lr'))}",
                             fontsize="medium")
        axes[0, j].set_xlabel("")
        if j:
            axes[0, j].set_ylabel("")
            axes[1, j].set_ylabel("")
        stop = diverged_step(rec)
        if stop is not None:
            axes[0, j].legend(handles=[Line2D([], [], color="tab:red", lw=1.5,
                                              label=t("instability.stopped", step=stop))],
                              fontsize="x-small", loc="upper right")
    handles = [Line2D([], [], color=sns.color_palette()[0], lw=1.4, label=t("instability.step_loss")),
               Line2D([], [], color=sns.color_palette()[4], lw=1.4, label=t("instability.global_norm")),
               Line2D([], [], color="tab:red", lw=1.5, label=t("diverged")),
               Line2D([], [], color="tab:red", marker="^", ls="none", label=t("instability.collapse",
                                                                           pct=round(100 * COLLAPSE_FRAC)))]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize="small")
    fig.suptitle(t("instability.title"))
    return fig


# ------------------------------------------------------------------------------------ stability fixes
def fixes_frame(runs: RunSet) -> pd.DataFrame:
    """One row per run: fix, seed, status, test accuracy, test max_class_frac and ``failed``."""
    rows = []
    for labels, rec in runs:
        mcf = rec.metric("max_class_frac", "test")
        rows.append({**labels, "status": rec.status, "test": rec.metric("accuracy", "test"), "max_class_frac": mcf,
                     "failed": rec.status == "diverged" or (np.isfinite(mcf) and mcf > FAILED_FRAC)})
    return pd.DataFrame(rows)


def plot_fixes_failure_rate(data: pd.DataFrame, *, order: Sequence, ax: Axes | None = None) -> Axes:
    """Share of failed runs per fix (diverged, or one class for > 95 % of the test predictions),
    with k/n written above each bar."""
    ax = ax or plt.gca()
    g = data.groupby("fix", sort=False)["failed"]
    k = g.sum().reindex(order).fillna(0).astype(int)
    n = g.count().reindex(order).fillna(0).astype(int)
    rate = (k / n.replace(0, np.nan)).fillna(0)
    xs = np.arange(len(order))
    colors = [sns.color_palette()[3] if v > 0 else sns.color_palette()[2] for v in rate]
    ax.bar(xs, rate.to_numpy(), 0.7, color=colors, alpha=0.8)
    for x, r, kk, nn in zip(xs, rate, k, n):
        ax.text(x, r + 0.02, t("stability-fixes.k_of_n", k=kk, n=nn), ha="center", va="bottom", fontsize="small")
    ax.set_xticks(xs, [_label("stability-fixes.fix", f) for f in order])
    ax.set_ylim(0, 1.12)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(t("stability-fixes.failure_axis"))
    ax.set_title(t("stability-fixes.failure", pct=round(100 * FAILED_FRAC)), fontsize="medium")
    return ax


def stability_fixes(runs: RunSet) -> Figure:
    order = runs.values("fix")
    data = fixes_frame(runs)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), layout="constrained")
    plot_fixes_failure_rate(data, order=order, ax=axes[0])
    plot_test_accuracy(data, x="fix", order=order, x_labels=[_label("stability-fixes.fix", f) for f in order],
                       failed="failed", color=sns.color_palette()[0], ax=axes[1])
    axes[1].set_title(t("stability-fixes.accuracy"), fontsize="medium")
    _dedupe_legend(axes[1], fontsize="x-small", loc="lower right")
    for ax in axes:
        _rotate(ax)
    fig.supxlabel(seed_note(runs, "fix"), fontsize="small")
    fig.suptitle(t("stability-fixes.title"))
    return fig


__all__ = ["fitting", "instability", "plot_fit_curves", "plot_fixes_failure_rate", "plot_generalization_gap",
           "plot_instability_grad_norm", "plot_instability_loss", "plot_train_val_accuracy", "regularization",
           "stability_fixes"]
