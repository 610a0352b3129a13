"""The questions every reader asks of a run record, answered once (torch-free: pandas and numpy).

=========================  ============================================================================
query                      answer
=========================  ============================================================================
:func:`final_metric`       the last recorded value of one metric on one split (``nan`` if never measured)
:func:`final_metrics`      every split's last metrics: ``{split: {metric: value}}``
:func:`curve`              one metric on one split per evaluation step: a ``step, value`` frame
:func:`global_grad_norm`   the total gradient norm per step from the per-group ``grad_norms`` table
:func:`collapse_table`     each evaluation's share of predictions in one class, and whether it collapsed
:func:`run_failed`         diverged, or its final evaluation on a split collapsed to one class
:func:`smooth_losses`      the LR range test's bias-corrected exponential moving average of the loss
:func:`suggest_lr`         the range test's suggestion (steepest descent) and its minimum / 10
:func:`range_curve`        a range-test record's LR and loss per step
:func:`mean_sd`            mean, standard deviation and n of a column per group (seeds → one point)
=========================  ============================================================================

Each query takes a record table (or a record: its table of that name is read), so the doctor, viz,
the chapter's build and the notebooks all get the same numbers from the same rule.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

# Collapse: an evaluation that sends at least COLLAPSE_FRAC of its predictions to one class while it
# is poor (accuracy below COLLAPSE_MAX_ACCURACY or macro-F1 below COLLAPSE_MAX_MACRO_F1). The second
# condition spares a good classifier on a very imbalanced set: its predictions are mostly one class
# too, but its macro-F1 is high (a constant predictor's macro-F1 is at most 1/num_labels).
COLLAPSE_FRAC = 0.95
COLLAPSE_MAX_ACCURACY = 0.90
COLLAPSE_MAX_MACRO_F1 = 0.60
SMOOTHING = 0.98  # the range test's EMA of the loss, bias-corrected (as in fastai)


def _table(data, name: str) -> pd.DataFrame:
    """``data`` itself if it is a table, else the record's table ``name``."""
    return data.tables[name] if hasattr(data, "tables") else data


# ------------------------------------------------------------------------------------ evaluations
def final_metric(evals, metric: str = "accuracy", split: str = "test", task: str | None = None) -> float:
    """The last recorded value of ``metric`` on ``split`` (of ``task`` if given; ``nan`` if never
    measured). "Last" is the last row (a re-evaluation of restored weights counts); a ``nan``
    measurement does not replace an earlier number (pandas' ``last``, as the run's summary reports)."""
    ev = _table(evals, "evals")
    sel = (ev["metric"] == metric) & (ev["split"] == split)
    if task is not None:
        sel &= ev["task"] == task
    values = ev.loc[sel, "value"].dropna()
    return float(values.iloc[-1]) if len(values) else float("nan")


def final_metrics(evals) -> dict[str, dict[str, float]]:
    """Each evaluated split's last metrics, ``{split: {metric: value}}``: the :func:`final_metric`
    of every (split, metric) pair, in order of first appearance."""
    ev = _table(evals, "evals")
    out: dict[str, dict[str, float]] = {}
    for split, metric, value in zip(ev["split"], ev["metric"], ev["value"].astype(float)):
        last = out.setdefault(split, {})
        if not (math.isnan(value) and metric in last):
            last[metric] = float(value)
    return out


def per_class_table(evals, split: str = "test", label_names=None) -> pd.DataFrame:
    """One row per class of the last evaluation on ``split``: ``class`` (its name when
    ``label_names`` is given), ``precision``, ``recall``, ``f1``, ``support`` (true examples).
    Empty for records made before per-class metrics were recorded."""
    last = final_metrics(evals).get(split, {})
    rows: dict[int, dict] = {}
    for key, value in last.items():
        name, _, c = key.partition("/")
        if name in ("precision", "recall", "f1", "support") and c.isdigit():
            rows.setdefault(int(c), {})[name] = value
    out = pd.DataFrame([{"class": label_names[c] if label_names else c, **rows[c]} for c in sorted(rows)],
                       columns=["class", "precision", "recall", "f1", "support"])
    return out.astype({"support": int}) if len(out) else out


def confusion_matrix(evals, split: str = "test", label_names=None) -> pd.DataFrame:
    """The last evaluation's confusion matrix on ``split`` (rows: true class, columns: predicted;
    counts), named by ``label_names`` when given; empty for records without per-class metrics."""
    last = final_metrics(evals).get(split, {})
    cells = {}
    for key, value in last.items():
        parts = key.split("/")
        if parts[0] == "confusion" and len(parts) == 3:
            cells[(int(parts[1]), int(parts[2]))] = int(value)
    if not cells:
        return pd.DataFrame()
    k = max(max(i, j) for i, j in cells) + 1
    names = list(label_names) if label_names else list(range(k))
    m = pd.DataFrame([[cells.get((i, j), 0) for j in range(k)] for i in range(k)],
                     index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    return m


def curve(evals, metric: str = "accuracy", split: str = "validation", task: str | None = None, *,
          keep: str = "last") -> pd.DataFrame:
    """``metric`` on ``split`` per evaluation step, ascending: a ``step, value`` frame. A step
    evaluated twice (early stopping re-evaluates the restored weights) keeps its ``"last"`` value
    (what the model ended with) or its ``"first"`` (what training reached there)."""
    ev = _table(evals, "evals")
    sel = (ev["split"] == split) & (ev["metric"] == metric)
    if task is not None:
        sel &= ev["task"] == task
    e = ev[sel]
    e = e[~e["step"].duplicated(keep=keep)].sort_values("step", kind="stable")
    return e[["step", "value"]].reset_index(drop=True)


# ------------------------------------------------------------------------------------ gradients
def global_grad_norm(grad_norms, by: Sequence[str] = ()) -> pd.DataFrame:
    """The total gradient norm per step (and per ``by`` labels, e.g. a RunSet's ``seed``): the square
    root of the sum over layer groups of their squared norms (before clipping), the L2 norm of all
    gradients together. A step where any group's norm is not finite is ``inf``. Columns: ``*by,
    step, norm``, groups in order of first appearance."""
    g = _table(grad_norms, "grad_norms")
    keys = [*by, "step"]
    if not len(g):
        return pd.DataFrame({**{k: pd.Series(dtype=g[k].dtype) for k in keys if k in g},
                             "norm": pd.Series(dtype="float64")})
    norm = g["norm"].to_numpy(float)
    parts = g[keys].assign(sq=norm ** 2, bad=~np.isfinite(norm)).groupby(keys, sort=False)
    total = np.sqrt(parts["sq"].sum())
    total[parts["bad"].any()] = np.inf
    return total.rename("norm").reset_index()


# ------------------------------------------------------------------------------------ collapse
def is_collapsed(max_class_frac, accuracy=np.nan, macro_f1=np.nan, *, frac: float = COLLAPSE_FRAC,
                 max_accuracy: float = COLLAPSE_MAX_ACCURACY, max_macro_f1: float = COLLAPSE_MAX_MACRO_F1):
    """The collapse rule (numbers or arrays): at least ``frac`` of the predictions in one class while
    accuracy < ``max_accuracy`` or macro-F1 < ``max_macro_f1`` (an unknown one does not count)."""
    mcf, acc, f1 = (np.asarray(x, dtype=float) for x in (max_class_frac, accuracy, macro_f1))
    out = (mcf >= frac) & ((acc < max_accuracy) | (f1 < max_macro_f1))
    return bool(out) if out.ndim == 0 else out


def collapse_table(evals, splits: Sequence[str] = ("validation", "test"), **rule) -> pd.DataFrame:
    """One row per evaluation (``step, task, split``) of ``splits`` with its ``max_class_frac``,
    ``accuracy``, ``macro_f1`` (first measurement of a step) and ``collapsed`` (:func:`is_collapsed`,
    ``rule`` overrides its thresholds), ordered by step then split. Empty when the record has no
    ``max_class_frac``."""
    ev = _table(evals, "evals")
    ev = ev[ev["split"].isin(list(splits))]
    wide = ev.pivot_table(index=["step", "task", "split"], columns="metric", values="value", aggfunc="first")
    cols = ["max_class_frac", "accuracy", "macro_f1"]
    if "max_class_frac" not in wide.columns:
        return pd.DataFrame(columns=["step", "task", "split", *cols, "collapsed"])
    wide = wide.reindex(columns=list(dict.fromkeys([*wide.columns, *cols])))
    wide = wide.reset_index().sort_values(["step", "split"], kind="stable")
    wide["collapsed"] = is_collapsed(wide["max_class_frac"], wide["accuracy"], wide["macro_f1"], **rule)
    return wide


def run_failed(record, split: str = "test") -> bool:
    """A failed run: it diverged, or its final evaluation on ``split`` collapsed to one class."""
    if record.status == "diverged":
        return True
    last = final_metrics(record.evals).get(split, {})
    return is_collapsed(last.get("max_class_frac", np.nan), last.get("accuracy", np.nan),
                        last.get("macro_f1", np.nan))


# ------------------------------------------------------------------------------------ range test
def smooth_losses(losses, beta: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average of the loss (fastai's range-test smoothing)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def suggest_lr(lrs, losses) -> tuple[float, float]:
    """(steepest-descent LR, LR at the smoothed minimum / 10), ignoring non-finite losses: the
    steepest negative slope of the smoothed loss against log LR, searched up to the smoothed minimum.

    The first tenth of the points (at least 2) is skipped, as fastai's plot skips its start: there the
    moving average still follows single noisy batches, and on a long flat start its first wiggle
    would be "steepest" (a range test of the base run suggested its very first LR, 1e-7)."""
    pairs = [(lr, loss) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    if len(pairs) < 3:
        raise ValueError("the range test stopped after fewer than 3 usable steps: lower start_lr")
    lr_arr = np.array([p[0] for p in pairs])
    sm = np.array(smooth_losses([p[1] for p in pairs]))
    skip = min(max(2, len(pairs) // 10), len(pairs) - 3)
    i_min = skip + int(np.argmin(sm[skip:]))
    end = max(i_min, skip + 2) + 1
    slope = np.gradient(sm[skip:end], np.log(lr_arr[skip:end]))
    return float(lr_arr[skip + int(np.argmin(slope))]), float(lr_arr[i_min] / 10)


def range_curve(record) -> pd.DataFrame:
    """A range-test record's LR (its last param group's) and training loss per step."""
    lrs = record.lrs[record.lrs["group"] == record.lrs["group"].iloc[-1]].set_index("step")["lr"]
    steps = record.steps.set_index("step")["loss"]
    return pd.DataFrame({"step": steps.index, "lr": [float(lrs[s]) for s in steps.index],
                         "loss": steps.to_numpy(dtype=float)})


# ------------------------------------------------------------------------------------ seeds
def mean_sd(df: pd.DataFrame, by: str | list[str], value: str = "value") -> pd.DataFrame:
    """Mean, standard deviation and n of ``value`` per group (order of first appearance kept)."""
    by = [by] if isinstance(by, str) else list(by)
    g = df.groupby(by, sort=False)[value]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1).fillna(0.0), "n": g.count()}).reset_index()



def majority_share(runs, split: str = "test", task: str | None = None) -> float | None:
    """The accuracy of always answering the most frequent class of ``split``, as the runs recorded
    it with their evaluations (``majority_frac``; a RunSet, records or one record): the mean over
    the runs that recorded it, None when none did (records made before it was recorded)."""
    records = getattr(runs, "records", None)
    records = [runs] if records is None and hasattr(runs, "evals") else list(records if records is not None else runs)
    vals = [r.metric("majority_frac", split, task=task) for r in records]
    vals = [float(v) for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


__all__ = ["majority_share", "COLLAPSE_FRAC", "COLLAPSE_MAX_ACCURACY", "COLLAPSE_MAX_MACRO_F1", "SMOOTHING", "collapse_table",
           "confusion_matrix", "curve", "final_metric", "final_metrics", "per_class_table", "global_grad_norm", "is_collapsed", "mean_sd",
           "range_curve", "run_failed", "smooth_losses", "suggest_lr"]
