"""What a figure claims and whether its runs may be drawn as a result.

A figure declares, next to its grid:

* ``must_learn``: for each input (a RunSet), which grid cells must be runs that learned
  (``ftcore.records.validity``). Runs about failure (a learning rate that is too high, the fragile
  baselines of the stability figure) are left out by the predicate, and the caption says so.
* ``claims``: the chapter's statements that the runs can test, each as "arm A beats arm B" on a
  metric. The effect is the seed-paired mean difference A − B with its 95% interval: over seeds
  and test items where the records store each test example's prediction, else over seeds. A
  failure-rate claim compares two arms' rates over the same seeds, paired (exact McNemar test,
  Newcombe's interval of the difference; each rate with its Wilson interval).
* the verdicts of one figure are a family: their p-values are Holm-corrected together
  (:func:`judge_all`), and each verdict is agrees / differs / equivalent within ±margin (an
  equivalence test against the figure's stated margin) / cannot tell at this n
  (``ftcore.records.stats.resolve``).

The build checks the gate of every figure, and the gallery, ``chapter.draw`` and the notebooks show
the same verdicts, from :func:`judge`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ftcore.records.stats import (VERDICT_TEXT, Interval, Test, holm, paired_items_test, paired_rate_test,
                                  paired_test, resolve, wilson)
from ftcore.records.validity import Check, Gate, check_runs


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
    margin: float | None = None  # equivalence margin in the metric's units (None: the figure's)


@dataclass(frozen=True)
class RateClaim:
    """"Arm ``a`` fails less often than arm ``b``" (``expected=-1``), failures counted by ``failed``."""

    text: dict[str, str]
    a: dict
    b: dict
    failed: Callable
    expected: int = -1
    input: str = "runs"
    margin: float | None = None  # equivalence margin of the rate difference (None: none tested)


@dataclass(frozen=True)
class Judged:
    claim: Claim | RateClaim
    effect: Interval  # A − B (paired), or A's failure rate for a rate claim
    verdict: str
    other: Interval | None = None  # B's failure rate for a rate claim
    test: Test | None = None  # what the verdict rests on: the effect's (or rate difference's) test
    p_holm: float = 1.0  # p of "no difference", Holm-corrected across the figure's claims
    p_eq_holm: float = 1.0  # p of "not equivalent within ±margin", Holm-corrected likewise
    family: int = 1  # claims in the figure's Holm family

    @property
    def margin(self) -> float:
        return self.test.margin if self.test else 0.0

    def verdict_text(self, lang: str) -> str:
        return VERDICT_TEXT[lang][self.verdict].format(margin=f"{self.margin:g}")

    def line(self, lang: str) -> str:
        """One line for a caption or the gallery: the claim, the effect with its interval, the
        Holm-corrected p, the verdict."""
        v = self.verdict_text(lang)
        if isinstance(self.claim, RateClaim):
            diff = self.test.effect.format(2, signed=True) if self.test else ""
            eff = (f"{self.effect.format(2)} vs {self.other.format(2)}, difference {diff}" if lang == "en" else
                   f"{self.effect.format(2)} 对 {self.other.format(2)}，差 {diff}")
        else:
            eff = self.effect.format(self.claim.digits, signed=True)
        p = f"p={self.p_holm:.3f}" if self.p_holm >= 0.001 else "p<0.001"
        holm = (f", Holm {p}" if lang == "en" else f"，Holm {p}") if self.family > 1 else f", {p}" if lang == "en" else f"，{p}"
        colon = ": " if lang == "en" else "："
        return f"{self.claim.text[lang]}{colon}{eff}{holm} → {v}"


def _values(runset, labels: dict, metric: str, split: str, pair_by: str) -> dict:
    out = {}
    for lab, rec in runset.select(**labels):
        out[lab.get(pair_by)] = metric(rec) if callable(metric) else rec.metric(metric, split)
    return out


def _items(runs, labels: dict, split: str, pair_by: str) -> dict:
    """Per pair (seed): each test example's correctness, where every record stores predictions."""
    out = {}
    for lab, rec in runs.select(**labels):
        c = rec.correct(split) if hasattr(rec, "correct") else None
        if c is None or not len(c):
            return {}
        out[lab.get(pair_by)] = c
    return out


DEFAULT_MARGIN = 0.015  # accuracy points a figure calls "no difference" unless it states its own


def _test(claim, inputs: dict, margin: float) -> tuple[Test, Interval | None, Interval | None]:
    """The claim's test, and for a rate claim both arms' Wilson rates."""
    runs = inputs[claim.input]
    if isinstance(claim, RateClaim):
        a = {lab.get("seed"): bool(claim.failed(rec)) for lab, rec in runs.select(**claim.a)}
        b = {lab.get("seed"): bool(claim.failed(rec)) for lab, rec in runs.select(**claim.b)}
        seeds = sorted(set(a) & set(b))
        t = paired_rate_test([a[s] for s in seeds], [b[s] for s in seeds], claim.margin or 0.0)
        return t, wilson(sum(a[s] for s in seeds), len(seeds)), wilson(sum(b[s] for s in seeds), len(seeds))
    m = claim.margin if claim.margin is not None else margin
    if claim.metric == "accuracy" and not callable(claim.metric):
        ia = _items(runs, {**claim.where, **claim.a}, claim.split, claim.pair_by)
        ib = _items(runs, {**claim.where, **claim.b}, claim.split, claim.pair_by)
        common = sorted(set(ia) & set(ib))
        if common and all(ia[s].index.equals(ib[s].index) and ia[s].index.equals(ia[common[0]].index) for s in common):
            return paired_items_test({s: ia[s].to_numpy() for s in common},
                                     {s: ib[s].to_numpy() for s in common}, m), None, None
    a = _values(runs, {**claim.where, **claim.a}, claim.metric, claim.split, claim.pair_by)
    b = _values(runs, {**claim.where, **claim.b}, claim.metric, claim.split, claim.pair_by)
    return paired_test(a, b, m), None, None


def judge_all(claims, inputs: dict, margin: float = DEFAULT_MARGIN) -> list[Judged]:
    """Every claim of one figure judged as a family: Holm's correction across them, of the tests of
    "no difference" and (separately) of the equivalence tests, then one verdict each."""
    tests = [_test(c, inputs, margin) for c in claims]
    p_holm = holm([t.p for t, _, _ in tests])
    p_eq = holm([t.p_equivalent for t, _, _ in tests])
    out = []
    for c, (t, ra, rb), ph, pe in zip(claims, tests, p_holm, p_eq):
        v = resolve(t, c.expected, ph, pe)
        effect = ra if isinstance(c, RateClaim) else t.effect
        out.append(Judged(c, effect, v, rb, t, ph, pe, len(claims)))
    return out


def judge(claim, inputs: dict, margin: float = DEFAULT_MARGIN) -> Judged:
    """The verdict on one claim alone (a family of one) from a figure's inputs."""
    return judge_all([claim], inputs, margin)[0]


def gate(figure_id: str, must_learn: dict[str, Callable[[dict], bool]], inputs: dict,
         majority: float | None = None, split: str = "test", tolerated: int = 0) -> Gate:
    """The validity gate of a figure: every must-learn cell of every declared input, judged on
    ``split`` (validation under the reviewed protocol); ``tolerated``: failed runs an arm may hold
    (``ftcore.records.validity.Gate``)."""
    checks = []
    for name, predicate in must_learn.items():
        checks += check_runs(inputs[name], predicate, majority=majority, split=split)  # (labels, record) pairs
    return Gate(figure_id, checks, tolerated)


# Figures that name their arms with another figure's labels (the freezing figures share freeze-map's).
_LABEL_ALIASES = {"freeze-effects": ("freeze-map",), "unfreeze": ("freeze-map",),
                  "forgetting": ("continual.method",), "continual-table": ("continual.method",),
                  "data-size-strategy": ("strategies",)}


def _arm_value(figure: str, key: str, value, lang: str) -> str:
    """A grid value as the figure's string table names it (``peft.method.lora_r8`` → "LoRA r=8"),
    a method with its learning rate (``full_0.0001``) as the figure's run label, else the value
    itself (underscores as spaces, so no code identifier reaches a caption)."""
    from viz.text import STRINGS, t
    table, v = STRINGS[lang], str(value)
    for key_ in (f"{figure}.{key}.{v}", f"{figure}.{v}", *(f"{p}.{v}" for p in _LABEL_ALIASES.get(figure, ())),
                 f"gate.value.{v}"):
        if key_ in table:
            return _no_fields(table[key_])
    m = re.fullmatch(r"(.+)_([0-9][0-9.e+-]*)", v)
    if m and f"{figure}.run" in table:
        name = _arm_value(figure, "method", m.group(1), lang)
        if name != m.group(1).replace("_", " "):
            return t(f"{figure}.run", lang, method=name, lr=f"{float(m.group(2)):g}")
    same = ([k for k in table if k.endswith(f".{key}.{v}")]  # another figure's label for the same grid value
            or [k for k in table if k.endswith(f".{v}") and ".short." not in k and not k.startswith("gate.")])
    if same:
        return _no_fields(table[same[0]])
    return v.replace("_", " ")


def _no_fields(label: str) -> str:
    """A label without the fields it fills in a figure ("经验回放 {pct}%" → "经验回放")."""
    return re.sub(r"\s*[{][^}]*[}]%?", "", label).strip()


def _arm_text(figure: str, check: Check, lang: str) -> str:
    """The arm of a check in words: ``方法=全量微调，种子 0`` / ``method=full fine-tuning, seed 0``."""
    from viz.text import STRINGS, t
    if check.labels is None:
        return check.what
    parts = []
    for k, v in check.labels.items():
        if k == "seed":
            parts.append(t("gate.seed", lang, seed=v))
        else:
            name = STRINGS[lang].get(f"gate.key.{k}", str(k).replace("_", " "))
            # a tick label's line break ("HF\nTrainer") is a space in a sentence
            parts.append(t("gate.label", lang, name=name, value=_arm_value(figure, k, v, lang).replace("\n", " ")))
    return t("gate.label_sep", lang).join(parts)


def _why(check: Check, lang: str) -> str:
    """Why a must-learn run did not learn, in ``lang`` (the English reason for a check without data)."""
    from viz.text import STRINGS, t
    d = check.data
    split = STRINGS[lang].get(f"gate.split.{d.get('split')}", str(d.get("split")))
    if check.kind in ("diverged",):
        return t("gate.why.diverged", lang)
    if check.kind == "no_accuracy":
        return t("gate.why.no_accuracy", lang, split=split)
    if check.kind == "one_class":
        return t("gate.why.one_class", lang, split=split, share=f"{d['share']:.0%}", limit=f"{d['limit']:.0%}")
    if check.kind == "below_majority":
        return t("gate.why.below_majority", lang, split=split, acc=f"{d['accuracy']:.3f}",
                 maj=f"{d['majority']:.3f}", margin=f"{d['margin']:g}")
    if check.kind == "sequence":
        return t("gate.task_sep", lang).join(
            t("gate.why.sequence_task", lang, task=STRINGS[lang].get(f"continual.task.{x['task']}", str(x["task"])),
              acc=f"{x['accuracy']:.3f}", maj=f"{x['majority']:.3f}") for x in d["tasks"])
    return check.reason


def gate_reason(g: Gate, lang: str, limit: int = 3) -> str:
    """:meth:`Gate.reason` in ``lang`` ("zh" or "en") for a figure's note, from viz's string tables:
    the arms by their labels in the figure (no grid identifiers), the reasons in words.
    ``Gate.reason()`` stays the English line of the logs and the gallery."""
    from viz.text import t
    bad = g.failures
    if not g.checks:  # nothing declared must learn: "all 0 learned" would claim a check that never ran
        return t("gate.no_must_learn", lang)
    if not bad:
        return t("gate.all_learned", lang, n=len(g.checks))
    sep = t("gate.sep", lang)
    details = sep.join(t("gate.arm", lang, arm=_arm_text(g.figure, c, lang), why=_why(c, lang)) for c in bad[:limit])
    if len(bad) > limit:
        details += sep + t("gate.more", lang, n=len(bad) - limit)
    if g.passed:  # failures the figure tolerates: a failure rate, kept in the comparisons
        return t("gate.tolerated", lang, bad=len(bad), n=len(g.checks), details=details)
    return t("gate.reason", lang, bad=len(bad), n=len(g.checks), details=details)


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


def annotate(fig, spec, inputs: dict, lang: str, *, quick: bool = False) -> list[str]:
    """Write under the figure what the gallery says beside it: a failed validity gate (red), each
    claim's effect and verdict ("differs" in red), or, for figures not yet judged by claims, the
    measurement's disagreement with the chapter (``quick``: quick mode's inputs, whose gate reads
    test). Returns the lines written."""
    from viz import t

    lines: list[tuple[str, str]] = []
    g = spec.gate(inputs, quick=quick)
    if g is not None and not g.passed:
        lines.append(("⚠ " + t("gate_failed", lang) + ("：" if lang == "zh" else ": ") + gate_reason(g, lang, limit=2),
                      "#a33"))
    elif g is not None and g.failures:  # tolerated: named on the figure too
        lines.append((gate_reason(g, lang, limit=2), "#444"))
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


__all__ = ["DEFAULT_MARGIN", "Claim", "Judged", "RateClaim", "annotate", "gate", "gate_reason", "judge", "judge_all"]
