"""Did a run learn? The gate every figure's comparison must pass before it is drawn as a result.

A run that ends predicting (almost) one class, or barely above the majority-class share, measures
under-training, not the method it stands for. A figure therefore declares which of its arms must
learn, and the build checks each of those records with :func:`learned`:

* its final accuracy on the split is at least ``majority + LEARN_MARGIN``, and
* fewer than ``ONE_CLASS_LIMIT`` of its predictions fall in one class, and
* it completed (did not diverge).

Figures about failure (instability, stability fixes, a learning rate that is too high) declare no
must-learn arms for the runs that are meant to fail. Torch-free: it reads records only.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .record import RunRecord

LEARN_MARGIN = 0.05  # accuracy points above the majority-class share a learned run must reach
ONE_CLASS_LIMIT = 0.85  # share of predictions in one class at which a run counts as not learned


@dataclass(frozen=True)
class Check:
    """One must-learn arm's verdict: ``what`` names the arm (labels), ``reason`` says why it failed
    (English, for logs and the gallery). For a text in another language the same verdict is kept
    as data: ``labels`` (the arm's grid labels), ``kind`` (``diverged``, ``no_accuracy``,
    ``one_class``, ``below_majority``, ``sequence``) and ``data`` (the numbers the reason quotes)."""

    what: str
    passed: bool
    reason: str = ""
    labels: dict | None = field(default=None, compare=False)
    kind: str = field(default="", compare=False)
    data: dict = field(default_factory=dict, compare=False)


def learned(rec: RunRecord, *, split: str = "test", majority: float | None = None, what: str = "",
            task: str | None = None) -> Check:
    """Whether ``rec`` learned: completed, accuracy ≥ majority + LEARN_MARGIN, no class holding
    ``ONE_CLASS_LIMIT`` of the predictions. ``majority`` overrides the recorded share."""
    what = what or rec.run_id
    if rec.status == "diverged":
        return Check(what, False, "diverged", kind="diverged")
    acc = rec.metric("accuracy", split, task=task)
    share = rec.metric("max_class_frac", split, task=task)
    maj = majority if majority is not None else rec.metric("majority_frac", split, task=task)
    if math.isnan(acc):
        return Check(what, False, f"no {split} accuracy recorded", kind="no_accuracy", data={"split": split})
    if not math.isnan(share) and share >= ONE_CLASS_LIMIT:
        return Check(what, False, f"{share:.0%} of {split} predictions in one class (limit {ONE_CLASS_LIMIT:.0%})",
                     kind="one_class", data={"split": split, "share": share, "limit": ONE_CLASS_LIMIT})
    if not math.isnan(maj) and acc < maj + LEARN_MARGIN:
        return Check(what, False, f"{split} accuracy {acc:.3f} < majority class {maj:.3f} + {LEARN_MARGIN}",
                     kind="below_majority", data={"split": split, "accuracy": acc, "majority": maj,
                                                  "margin": LEARN_MARGIN})
    return Check(what, True)


def learned_sequence(rec: RunRecord, *, what: str = "") -> Check:
    """Whether every task of a task sequence (continual learning) learned when it was trained: its
    test accuracy right after its own training is at least its majority-class share + LEARN_MARGIN.
    (Forgetting measured on a task that never learned would be a collapse, not forgetting.)"""
    from .metrics import accuracy_matrix
    what = what or rec.run_id
    if rec.status == "diverged":
        return Check(what, False, "diverged", kind="diverged")
    a = accuracy_matrix(rec)
    bad, tasks = [], []
    for i, task in enumerate(a.index):
        acc = float(a.iloc[i, i])
        maj = rec.metric("majority_frac", "test", task=task)
        if math.isnan(acc) or (not math.isnan(maj) and acc < maj + LEARN_MARGIN):
            bad.append(f"{task} {acc:.3f} right after training (majority {maj:.3f})")
            tasks.append({"task": task, "accuracy": acc, "majority": maj})
    return Check(what, not bad, "; ".join(bad), kind="sequence" if bad else "", data={"tasks": tasks})


@dataclass
class Gate:
    """The validity gate of one figure: the checks of its must-learn arms.

    ``tolerated``: runs per arm (its labels but the seed) that may fail to learn while the arm
    passes, provided fewer than half of the arm's runs fail: a figure declares it where a rare
    failure is the method's own failure rate (its other seeds learned), not under-training. Such
    runs stay in the comparisons (intention to treat), and the gallery and the figure name them."""

    figure: str
    checks: list[Check] = field(default_factory=list)
    tolerated: int = 0

    def _arms(self) -> dict[tuple, list[Check]]:
        arms: dict[tuple, list[Check]] = {}
        for c in self.checks:
            key = tuple(sorted((k, str(v)) for k, v in (c.labels or {}).items() if k != "seed")) or (c.what,)
            arms.setdefault(key, []).append(c)
        return arms

    @property
    def passed(self) -> bool:
        if not self.tolerated:
            return all(c.passed for c in self.checks)
        for runs in self._arms().values():
            bad = sum(not c.passed for c in runs)
            if bad > self.tolerated or 2 * bad >= len(runs):
                return False
        return True

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def reason(self, limit: int = 3) -> str:
        """One line: how many must-learn runs failed and the first few reasons."""
        if not self.checks:
            return "no must-learn arm"
        bad = self.failures
        if not bad:
            return f"all {len(self.checks)} must-learn runs learned"
        head = "; ".join(f"{c.what}: {c.reason}" for c in bad[:limit])
        more = f"; … {len(bad) - limit} more" if len(bad) > limit else ""
        if self.passed:  # tolerated failures: the method's failure rate, kept in the comparisons
            return (f"every arm learned; {len(bad)} of {len(self.checks)} runs did not ({head}{more}): "
                    f"a failure rate of up to {self.tolerated} per arm, kept in the comparisons")
        return f"{len(bad)} of {len(self.checks)} must-learn runs did not learn ({head}{more})"

    def __repr__(self) -> str:
        return f"Gate({self.figure!r}, {'passed' if self.passed else 'FAILED'}: {self.reason()})"


def check_runs(items: Iterable[tuple[dict[str, Any], RunRecord]], must_learn: Callable[[dict], bool],
               *, split: str = "test", majority: float | None = None) -> list[Check]:
    """:func:`learned` for every ``(labels, record)`` whose labels ``must_learn`` selects."""
    out = []
    for labels, rec in items:
        if must_learn(labels):
            what = ", ".join(f"{k}={v}" for k, v in labels.items())
            if "continual" in (rec.config or {}):
                check = learned_sequence(rec, what=what)
            else:
                check = learned(rec, split=split, majority=majority, what=what)
            out.append(dataclasses.replace(check, labels=dict(labels)))
    return out


__all__ = ["Check", "Gate", "LEARN_MARGIN", "ONE_CLASS_LIMIT", "check_runs", "learned", "learned_sequence"]
