"""What a figure claims and whether its runs may be drawn as a result.

A figure declares, next to its grid:

* ``must_learn``: for each input (a RunSet), which grid cells must be runs that learned
  (``ftcore.records.validity``). Runs about failure (a learning rate that is too high, the fragile
  baselines of the stability figure) are left out by the predicate, and the caption says so.
* ``claims``: the chapter's statements that the runs can test, each as "arm A beats arm B" on a
  metric. The effect is the seed-paired mean difference A − B with its 95% t interval, and the
  verdict is agrees / differs / no difference detectable at this n (``ftcore.records.stats``).
  A failure-rate claim compares two arms' rates with Wilson intervals.

The build checks the gate of every figure, and the gallery, ``chapter.draw`` and the notebooks show
the same verdicts, from :func:`judge`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ftcore.records.stats import VERDICT_TEXT, Interval, paired_difference, rate_verdict, verdict, wilson
from ftcore.records.validity import Gate, check_runs


@dataclass(frozen=True)
class Claim:
    """"Arm ``a`` beats arm ``b``" (``expected=+1``; −1: ``a`` is lower), paired by ``pair_by``.

    ``a`` and ``b`` select grid cells by their labels, e.g. ``{"warmup": "linear"}``; ``where``
    narrows both (e.g. one training-set size)."""

    text: dict[str, str]
    a: dict
    b: dict
    expected: int = 1
    input: str = "runs"
    metric: str | Callable = "accuracy"  # a recorded metric, or record -> float (e.g. mean forgetting)
    split: str = "test"
    where: dict = field(default_factory=dict)
    pair_by: str = "seed"
    digits: int = 3  # decimals of the effect where it is shown (0 for a count of steps)


@dataclass(frozen=True)
class RateClaim:
    """"Arm ``a`` fails less often than arm ``b``" (``expected=-1``), failures counted by ``failed``."""

    text: dict[str, str]
    a: dict
    b: dict
    failed: Callable
    expected: int = -1
    input: str = "runs"


@dataclass(frozen=True)
class Judged:
    claim: Claim | RateClaim
    effect: Interval  # A − B (paired), or A's failure rate for a rate claim
    verdict: str
    other: Interval | None = None  # B's failure rate for a rate claim

    def line(self, lang: str) -> str:
        """One line for a caption or the gallery: the claim, the effect with its interval, the verdict."""
        v = VERDICT_TEXT[lang][self.verdict]
        if isinstance(self.claim, RateClaim):
            eff = (f"{self.effect.format(2)} vs {self.other.format(2)}" if lang == "en" else
                   f"{self.effect.format(2)} 对 {self.other.format(2)}")
        else:
            eff = self.effect.format(self.claim.digits, signed=True)
        return f"{self.claim.text[lang]}: {eff} → {v}"


def _values(runset, labels: dict, metric: str, split: str, pair_by: str) -> dict:
    out = {}
    for lab, rec in runset.select(**labels):
        out[lab.get(pair_by)] = metric(rec) if callable(metric) else rec.metric(metric, split)
    return out


def judge(claim, inputs: dict) -> Judged:
    """The verdict on one claim from a figure's inputs."""
    runs = inputs[claim.input]
    if isinstance(claim, RateClaim):
        def rate(sel):
            recs = [rec for _, rec in runs.select(**sel)]
            return wilson(sum(bool(claim.failed(r)) for r in recs), len(recs))
        a, b = rate(claim.a), rate(claim.b)
        return Judged(claim, a, rate_verdict(a, b, claim.expected), b)
    a = _values(runs, {**claim.where, **claim.a}, claim.metric, claim.split, claim.pair_by)
    b = _values(runs, {**claim.where, **claim.b}, claim.metric, claim.split, claim.pair_by)
    d = paired_difference(a, b)
    return Judged(claim, d, verdict(d, claim.expected))


def gate(figure_id: str, must_learn: dict[str, Callable[[dict], bool]], inputs: dict,
         majority: float | None = None) -> Gate:
    """The validity gate of a figure: every must-learn cell of every declared input."""
    checks = []
    for name, predicate in must_learn.items():
        checks += check_runs(inputs[name], predicate, majority=majority)  # a RunSet: (labels, record) pairs
    return Gate(figure_id, checks)


def _wrap(text: str, width_pt: float, *, fontsize: float) -> str:
    """Break ``text`` into lines no wider than ``width_pt``: a CJK character counts one em, other
    characters about half an em (the fonts' average), breaking at spaces where there are any."""
    import unicodedata

    def w(ch: str) -> float:
        return fontsize * (1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.55)
    lines, line, width = [], "", 0.0
    for token in text.replace(" ", " \0").split("\0"):  # keep the spaces with the words before them
        chunks = [token] if all(unicodedata.east_asian_width(c) not in "WF" for c in token) else list(token)
        for chunk in chunks:
            cw = sum(w(c) for c in chunk)
            if line and width + cw > width_pt:
                lines.append(line.rstrip())
                line, width = "", 0.0
            line += chunk
            width += cw
    return "\n".join(lines + [line.rstrip()])


def annotate(fig, spec, inputs: dict, lang: str) -> list[str]:
    """Write under the figure what the gallery says beside it: a failed validity gate (red), each
    claim's effect and verdict ("differs" in red), or, for figures not yet judged by claims, the
    measurement's disagreement with the chapter. Returns the lines written."""
    from viz import t

    lines: list[tuple[str, str]] = []
    g = spec.gate(inputs)
    if g is not None and not g.passed:
        lines.append(("⚠ " + t("gate_failed") + ": " + g.reason(limit=2), "#a33"))
    for j in spec.verdicts(inputs):
        lines.append((j.line(lang), "#a33" if j.verdict == "differs" else "#444"))
    if not spec.claims and spec.measure is not None and (m := spec.measure(inputs)).get("differs"):
        lines.append(("⚠ " + t("differs") + ": " + m[lang], "#a33"))
    # One block under the axes, wrapped by hand to the figure's width (matplotlib's wrap=True does
    # not know the page), so the notes never overlap each other and the saved size stays predictable.
    width_pt = fig.get_figwidth() * 72 * 0.97
    y = 0.0
    for text, color in lines:
        block = _wrap(text, width_pt, fontsize=7.5)
        fig.text(0.01, y, block, ha="left", va="top", fontsize=7.5, color=color, linespacing=1.25)
        y -= (block.count("\n") + 1) * 7.5 * 1.25 / (fig.get_figheight() * 72) + 0.004
    return [text for text, _ in lines]


__all__ = ["Claim", "Judged", "RateClaim", "annotate", "gate", "judge"]
