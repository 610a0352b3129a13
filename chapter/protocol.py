"""Choices made on validation, before any test number exists (the reviewed protocol, issue 24).

Every setting a figure depends on (the base regime, each method's learning rate, a schedule's peak,
a regularizer's λ) is chosen here by a :class:`Selection`: its candidate configs train with the
selection seeds (``chapter.scale.SELECTION_SEEDS``: 100, 101), which no reported run uses, and are
scored on the **whole validation split**. Selection runs do not evaluate test at all
(``test_at_end=False``), and :func:`validation_score` reads only validation rows, so a choice
cannot depend on test (``tests/test_protocol.py`` poisons the test rows to check it).

A candidate that did not learn in a seed (validation accuracy not above the majority class, or
one class predicted for nearly everything: ``ftcore.records.validity``) is out, and listed with
why: the gallery lists every config a figure tried, failures included. Where the best learning rate
lies at the edge of its grid, the grid is extended by one step that way (at most ``extend`` times),
so a choice is never a grid's edge by accident.

The chosen values are written into the code (``chapter.scale.REVIEWED``, ``chapter.figures.base``)
where the figures read them, and a test checks that each equals what its selection chooses from
the stored records: the figure's settings are fixed in its spec before its reported runs exist.

    python -m chapter.protocol                  # train what the selections lack, print their tables
    python -m chapter.protocol --only base lora  # these selections only
    python -m chapter.protocol --render-only     # the tables from stored records, never training
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ftcore import RunConfig
from ftcore.alignment.instructions import InstructionRun
from ftcore.alignment.reward import RewardRun
from ftcore.alignment.rlhf import RLRun
from ftcore.analysis.continual import ContinualConfig
from ftcore.records.validity import ONE_CLASS_LIMIT

from .scale import REVIEWED, SELECTION_SEEDS, Scale

STUDY_RUNS = (InstructionRun, RewardRun, RLRun)  # studies a selection scores (picklable jobs of kind "study")
BASE_GRID = (3e-5, 1e-4, 3e-4)  # full fine-tuning's LR grid (extended past an edge like every grid)
LEARN_MARGIN = 0.02  # validation accuracy must beat the majority class by this much (as the gate)


def selection_config(cfg, seed: int):
    """The run that scores ``cfg`` (a RunConfig, or a ContinualConfig's task sequence) for a
    choice: a selection seed, the whole validation split, no test."""
    if seed not in SELECTION_SEEDS:
        raise ValueError(f"selection runs use the selection seeds {SELECTION_SEEDS}, not {seed}")
    if isinstance(cfg, ContinualConfig):  # its accuracy matrix is then measured on validation
        return dataclasses.replace(cfg, base=selection_config(cfg.base, seed))
    if isinstance(cfg, InstructionRun):  # every validation text, under both phrasings; no test text
        return cfg.replace(seed=seed, eval_splits=("validation",), n_eval=None)
    if isinstance(cfg, RewardRun):  # every validation pair; no test pair
        return cfg.replace(seed=seed, n_validation_pairs=None, n_test_pairs=0)
    if isinstance(cfg, RLRun):  # every validation opening; no test opening
        return cfg.replace(seed=seed, eval_splits=("validation",), eval_openings=None)
    return cfg.replace(seed=seed, test_at_end=False, eval_splits=("validation",), eval_size=None)


def validation_score(record, metric: str = "accuracy") -> dict:
    """What a selection reads of one run: validation ``metric``, the majority share and the largest
    predicted share, all on validation, and whether the run learned. Never a test row. A task
    sequence: :func:`sequence_validation_score`."""
    if "continual" in (getattr(record, "config", None) or {}):
        return sequence_validation_score(record, metric)
    if getattr(record, "name", None) in ("instruction-tuning", "reward-model", "rlhf"):
        return study_validation_score(record, metric)
    ev = record.evals
    val = ev[ev["split"] == "validation"]
    last = val[val["step"] == val["step"].max()] if len(val) else val
    get = dict(zip(last["metric"], last["value"]))
    acc, maj = get.get(metric, math.nan), get.get("majority_frac", math.nan)
    share = get.get("max_class_frac", math.nan)
    why = "diverged" if record.status == "diverged" else _not_learned(acc, maj, share)
    return {"score": acc, "majority": maj, "max_class_frac": share, "learned": not why, "why": why,
            "steps": record.summary.get("steps"), "cpu_s": record.summary.get("cpu_s")}


def _not_learned(acc: float, maj: float, share: float) -> str:
    """Why a validation score shows nothing learned (empty when it learned): no score, one class
    predicted, or not above the majority class by ``LEARN_MARGIN``."""
    return ("no validation score" if not math.isfinite(acc) else
            f"one class ({share:.0%} of predictions)" if share >= ONE_CLASS_LIMIT else
            f"not above the majority class ({acc:.3f} vs {maj:.3f})" if acc < maj + LEARN_MARGIN else "")


def _study_cpu(study) -> float | None:
    """The CPU seconds the study cost (its cache ``cost.json``; None for studies stored before costs were)."""
    from ftcore.records.cache import read_cost
    return (read_cost(study.path) or {}).get("cpu_s") if getattr(study, "path", None) else None


def study_validation_score(study, metric: str = "accuracy") -> dict:
    """A study's score for a choice, from its validation rows only.

    * instruction tuning: greedy answer ``metric`` on the validation texts under the training
      phrasings, pooled over the tasks (their mean), against the pooled majority share; one class
      when, on average over the tasks, one answer holds ``ONE_CLASS_LIMIT`` of the greedy answers;
    * the reward model: pairwise accuracy on the validation pairs, against chance (0.5);
    * an RLHF run: its objective (reward − β·KL) on the validation openings after training; it
      learned when that rose above the starting model's on the same openings."""
    if study.name == "rlhf":
        ev = study.evals
        obj = ev[(ev["split"] == "validation") & (ev["metric"] == "objective")]
        first = float(obj[obj["step"] == 0]["value"].iloc[0]) if len(obj) else math.nan
        end = float(obj[obj["step"] == obj["step"].max()]["value"].iloc[0]) if len(obj) else math.nan
        why = ("no validation score" if not math.isfinite(end) else
               "" if end > first else f"the objective did not rise on validation ({first:.3f} → {end:.3f})")
        return {"score": end, "majority": first, "max_class_frac": math.nan, "learned": not why, "why": why,
                "steps": study.params.get("rl", {}).get("steps"), "cpu_s": _study_cpu(study)}
    if study.name == "reward-model":
        acc = study.metric("pairwise_accuracy", "validation")
        why = _not_learned(acc, 0.5, math.nan)
        return {"score": acc, "majority": 0.5, "max_class_frac": math.nan, "learned": not why, "why": why,
                "steps": study.params.get("steps"), "cpu_s": _study_cpu(study)}
    get = {m: study.metric(m, "validation", task="all") for m in (metric, "majority_frac", "max_class_frac")}
    acc, maj, share = get[metric], get["majority_frac"], get["max_class_frac"]
    why = _not_learned(acc, maj, share)
    return {"score": acc, "majority": maj, "max_class_frac": share, "learned": not why, "why": why,
            "steps": study.meta.get("steps"), "cpu_s": _study_cpu(study)}


def sequence_validation_score(record, metric: str = "accuracy") -> dict:
    """A task sequence's score for a choice: the average validation ``metric`` over its tasks after
    the last one (what stays of each task, forgetting included: Lopez-Paz & Ranzato's ACC). It
    learned when it finished every task and each task, right after its own training, beat that
    task's majority class (by ``LEARN_MARGIN``) without predicting one class."""
    from ftcore.records.metrics import accuracy_matrix
    tasks = record.config["continual"]["tasks"]
    acc, maj, share = (accuracy_matrix(record, "validation", m) for m in (metric, "majority_frac", "max_class_frac"))
    why = []
    if record.status == "diverged" or len(acc) < len(tasks):
        why.append("diverged" if record.status == "diverged" else f"stopped after {len(acc)} of {len(tasks)} tasks")
    for j, t in enumerate(tasks[:len(acc)]):
        reason = _not_learned(acc.iloc[j, j], maj.iloc[j, j], share.iloc[j, j])
        if reason:
            why.append(f"{t}: {reason}")
    score = float(acc.iloc[-1].mean()) if len(acc) == len(tasks) else math.nan
    per_task = record.summary.get("per_task") or []
    return {"score": score, "majority": float(np.nanmean(np.diag(maj.to_numpy()))) if len(maj) else math.nan,
            "max_class_frac": float(np.nanmax(np.diag(share.to_numpy()))) if len(share) else math.nan,
            "learned": not why, "why": "; ".join(why), "steps": sum(t.get("steps") or 0 for t in per_task),
            "cpu_s": record.summary.get("cpu_s")}


@dataclass(frozen=True)
class Selection:
    """One choice among ``candidates`` (label → reporting config), scored on validation.

    ``rule``: "best" (highest mean validation score among the candidates that learned in every seed)
    or "cheapest" (the fewest optimizer steps among those reaching ``target``; ties by score) or
    "first_failure" (the lowest LR at which a run fails to learn in at least one seed: where a
    learning rate becomes too high, for a figure about that risk).
    ``lr_grid``: the candidates form a learning-rate grid (ascending) that may be extended
    ``extend`` times past the edge the best lies on, by the next value of the 1-3-10 ladder
    (:func:`next_lr`). ``sets``: where the chosen value is
    written in the code (for the reader and the test that checks it)."""

    name: str
    candidates: Callable[[Scale], dict[str, RunConfig]]
    sets: str
    rule: str = "best"
    target: float | None = None
    lr_grid: bool = True
    extend: int = 2
    figures: tuple[str, ...] = ()  # the figures whose settings it fixes
    note: str = ""
    score: str = "accuracy"  # what the validation score is (the table's header says it)


@dataclass
class Outcome:
    """A selection's table: every candidate tried (extensions included), its seeds' validation
    scores, whether it learned, and the choice."""

    selection: Selection
    rows: list[dict] = field(default_factory=list)
    chosen: str | None = None

    @property
    def chosen_config(self) -> RunConfig | None:
        return next((r["config"] for r in self.rows if r["label"] == self.chosen), None)

    def table(self) -> str:
        head = (f"| candidate | validation {self.selection.score} per seed | mean | learned | steps | |\n"
                "|---|---|---:|---|---:|---|")
        lines = [head]
        for r in self.rows:
            per_seed = ", ".join(f"{v:.3f}" for v in r["scores"])
            mark = "**chosen**" if r["label"] == self.chosen else ""
            learned = "yes" if r["learned"] else "no: " + "; ".join(sorted(set(r["why"])))
            lines.append(f"| {r['label']} | {per_seed} | {r['mean']:.3f} | {learned} | {r['steps']} | {mark} |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Outcome({self.selection.name!r}, {len(self.rows)} candidates, chosen={self.chosen!r})"


def next_lr(lr: float, *, up: bool) -> float:
    """The neighbour of ``lr`` on the 1-3-10 ladder the grids use (1e-4, 3e-4, 1e-3, …): a grid
    extends by about half a decade and keeps values a caption writes plainly."""
    exponent = math.floor(math.log10(lr) + 1e-9)
    mantissa = lr / 10 ** exponent
    ladder = [1.0, 3.0, 10.0] if up else [0.3, 1.0, 3.0]
    if up:
        nxt = next(m for m in ladder if m > mantissa * 1.01)
    else:
        nxt = next(m for m in reversed(ladder) if m < mantissa / 1.01)
    return float(f"{nxt * 10 ** exponent:.3g}")


def _lr_label(lr: float) -> str:
    return f"lr {lr:.2g}"


def _group(label: str) -> str:
    """The part of a candidate's label before its LR ("mean pooling, " of "mean pooling, lr 0.003")."""
    return label.rsplit("lr ", 1)[0]


def _candidates(sel: Selection, S: Scale, extra: list[tuple[str, float]]) -> dict[str, RunConfig]:
    cands = dict(sel.candidates(S))
    templates = {}
    for label, cfg in cands.items():
        templates.setdefault(_group(label), cfg)
    for group, lr in extra:  # an LR grid extended past the edge its group's best lies on
        cands[f"{group}{_lr_label(lr)}"] = templates[group].replace(lr=lr)
    return cands


def outcome(sel: Selection, S: Scale = REVIEWED, *, fetch: Callable[[RunConfig], object]) -> Outcome:
    """Score every candidate with ``fetch(selection config) -> record`` (the cache: trained or
    read), extend each LR grid (a group of candidates that differ only in LR, e.g. one pooling)
    whose best is at an edge, and choose by ``sel.rule`` among all of them."""
    extra: list[tuple[str, float]] = []
    while True:
        out = Outcome(sel)
        for label, cfg in _candidates(sel, S, extra).items():
            scores = [validation_score(fetch(selection_config(cfg, s))) for s in SELECTION_SEEDS]
            vals = [x["score"] for x in scores]
            out.rows.append({"label": label, "config": cfg, "scores": vals,
                             "mean": sum(vals) / len(vals), "learned": all(x["learned"] for x in scores),
                             "why": [x["why"] for x in scores if x["why"]], "steps": scores[0]["steps"],
                             "lr": getattr(cfg, "lr", None)})  # a sequence's grids are not LR grids
        best = _best(sel, out.rows)
        out.chosen = best["label"] if best else None
        more = _extensions(sel, out.rows, extra) if sel.lr_grid else []
        if not more:
            return out
        extra += more


def _best(sel: Selection, rows: list[dict]) -> dict | None:
    if sel.rule == "first_failure":
        failed = [r for r in rows if not r["learned"]]
        return min(failed, key=lambda r: r["lr"]) if failed else None
    ok = [r for r in rows if r["learned"]]
    if sel.rule == "cheapest":
        ok = [r for r in ok if sel.target is None or r["mean"] >= sel.target]
        return min(ok, key=lambda r: (r["steps"], -r["mean"])) if ok else None
    return max(ok, key=lambda r: r["mean"]) if ok else None  # an exact tie: the first candidate (max keeps it)


def _extensions(sel: Selection, rows: list[dict], extra: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """For each LR group whose best learned candidate lies at its grid's edge, the next LR past that
    edge (at most ``sel.extend`` per group)."""
    more = []
    for group in dict.fromkeys(_group(r["label"]) for r in rows):
        mine = [r for r in rows if _group(r["label"]) == group]
        best = _best(dataclasses.replace(sel, rule="best"), mine)
        if best is None or sum(g == group for g, _ in extra) >= sel.extend:
            continue
        lrs = sorted(r["lr"] for r in mine)
        if best["lr"] == lrs[-1]:
            more.append((group, next_lr(lrs[-1], up=True)))
        elif best["lr"] == lrs[0]:
            more.append((group, next_lr(lrs[0], up=False)))
    return more


# ------------------------------------------------------------------------------------ the selections
def _regimes(S: Scale) -> dict[str, RunConfig]:
    from .pilot import REGIMES
    base = S.base.replace(train_size=500, epochs=1, lr=2e-4, pooling="cls")  # the pilot's starting point
    return {name: base.replace(**changes) for name, changes in REGIMES}


def _lrs(changes: dict, lrs: tuple[float, ...], base: Callable[[Scale], RunConfig] | None = None):
    def cands(S: Scale) -> dict[str, RunConfig]:
        b = base(S) if base else S.base
        return {_lr_label(lr): b.replace(**changes, lr=lr) for lr in lrs}
    return cands


def _pooled_lrs(changes: dict, lrs: tuple[float, ...]):
    """An LR grid at each pooling: the regime's CLS pooler stays frozen under a parameter-efficient
    method (only its head trains), so whether the checkpoint's own mean pooling suits the method
    better is chosen on validation like its LR (full fine-tuning's pooling was the regime's choice)."""
    def cands(S: Scale) -> dict[str, RunConfig]:
        return {f"{pool} pooling, {_lr_label(lr)}": S.base.replace(**changes, pooling=pool, lr=lr)
                for pool in ("cls", "mean") for lr in lrs}
    return cands


def _shaped_lrs(changes: dict, key: str, values: tuple[float, ...], lrs: tuple[float, ...]):
    """An LR grid at each value of a schedule's shape parameter ``key`` (exponential decay's γ per
    epoch, step decay's factor per drop): a schedule is tuned over its shape as well as its peak."""
    def cands(S: Scale) -> dict[str, RunConfig]:
        name = {"gamma": "γ"}.get(key, key)
        return {f"{name} {v:g}, {_lr_label(lr)}": S.base.replace(**changes, **{key: v}, lr=lr) for v in values for lr in lrs}
    return cands


def _decays() -> list[Selection]:
    """Each decay schedule at its own peak LR (and exponential and step decay at their own γ), chosen
    on validation as the base run's LR was: a schedule is compared at the settings that suit it, not
    at the LR that suits linear decay (at that LR the constant schedule's seed 0 collapsed)."""
    from .figures.base import DECAYS
    grid = (3e-5, 1e-4, 3e-4)
    shapes = {"exponential": (0.05, 0.3), "step": (0.5, 0.8)}  # the earlier γ and a gentler one
    out = []
    for k, changes in DECAYS.items():
        if k in shapes:
            cands = _shaped_lrs({c: v for c, v in changes.items() if c != "gamma"}, "gamma", shapes[k], grid)
            sets = f"chapter.scale.REVIEWED.chosen['decay_{k}'], ['decay_{k}_gamma']"
        else:
            cands, sets = _lrs(changes, grid), f"chapter.scale.REVIEWED.chosen['decay_{k}']"
        out.append(Selection(f"decay_{k}", cands, sets, note=f"the {k} decay schedule's peak learning rate"
                             + (" and γ" if k in shapes else "")))
    return out


def _adaptives() -> list[Selection]:
    """The adaptive schedules' peak LRs, each chosen on validation as the base run's LR was; one-cycle
    as Smith & Topin define it (momentum cycled too). Plateau is driven by validation loss during
    training, so its candidates evaluate validation every 8 steps (on the whole split here, on the
    figure's fixed 250 examples in its reported runs)."""
    from .figures.schedules import ADAPTIVE, adaptive_changes
    grid = (3e-5, 1e-4, 3e-4)
    out = []
    for k in ADAPTIVE:
        changes = {c: v for c, v in adaptive_changes(k).items() if c != "lr"}
        base = (lambda S: S.base.replace(eval_every=8)) if k == "plateau" else None
        out.append(Selection(f"adaptive_{k}", _lrs(changes, grid, base), f"chapter.scale.REVIEWED.chosen['adaptive_{k}']",
                             note=f"the {k.replace('_', '-')} schedule's peak learning rate"))
    return out


def _gradual_lrs(S: Scale) -> dict[str, RunConfig]:
    """Gradual unfreezing at the reviewed protocol's equal budget (the base run's epochs), over the
    base run's LR grid: its first stage trains the head alone, which may want another LR."""
    from .figures.freezing import GRADUAL_REVIEWED
    return _lrs(GRADUAL_REVIEWED, (3e-5, 1e-4, 3e-4))(S)


def _regularizers() -> list[Selection]:
    """Each regularizer's strength on the regularization figure's small run (200 reviews × 10
    epochs), chosen on validation. Only early stopping evaluates during training (every 12 steps, on
    the whole validation split here, on the figure's fixed 250 examples in its reported runs)."""
    from .figures.problems import REG_STRENGTHS, REGULARIZERS, regularization_base
    out = []
    for k, (field_, values) in REG_STRENGTHS.items():
        def cands(S: Scale, k=k, field_=field_, values=values) -> dict[str, RunConfig]:
            base = regularization_base(S).replace(eval_splits=("validation",))
            if k != "early_stopping":
                base = base.replace(eval_every=None)  # scored once, at the end
            return {f"{field_.replace('_', ' ')} {v:g}": base.replace(**{**REGULARIZERS[k], field_: v}) for v in values}
        out.append(Selection(f"reg_{k}", cands, f"chapter.scale.REVIEWED.chosen['reg_{k}']", lr_grid=False,
                             note=f"{k.replace('_', ' ')}: its strength on the regularization figure's small run"))
    return out


# "Too high" for the warmup figure: no warmup, on the base run, over a ladder finer than 1-3-10 (the
# risk rises within half a decade); the first LR where a selection seed collapses is the figure's LR.
RISKY_LADDER = (2e-4, 3e-4, 4e-4, 6e-4, 8e-4)


def _risky_lrs(S: Scale) -> dict[str, RunConfig]:
    from .figures.schedules import WARMUP_BASE
    return {_lr_label(lr): S.base.replace(**WARMUP_BASE).replace(warmup="none", lr=lr) for lr in RISKY_LADDER}


def _fragile_lrs(S: Scale) -> dict[str, RunConfig]:
    """The stability-fixes figure's fragile baseline (no clipping, warmup or decay) over the same ladder."""
    from .figures.problems import FRAGILE
    base = S.base.replace(**FRAGILE)
    return {_lr_label(lr): base.replace(lr=lr) for lr in RISKY_LADDER}


def _whole_split(S: Scale) -> RunConfig:
    """The strategies figure's largest size: the whole training split, for as many epochs as it gives it."""
    from .figures.basics import strategy_epochs
    return S.base.replace(train_size=None, epochs=strategy_epochs(S, None))


def _llrd_lrs(S: Scale) -> dict[str, RunConfig]:
    from .figures.base import LLRD_DECAY
    return _lrs(dict(lr_strategy="layerwise", layer_decay=LLRD_DECAY), BASE_GRID)(S)


def _small(init: str | None = None):
    """The pretraining figure's small RoBERTa (pretrained here, or with ``init="random"`` the same
    architecture from random init) at the figure's largest size and budget, where both must learn."""
    def base(S: Scale) -> RunConfig:
        from .figures.pretraining import PRETRAIN_SIZES, small_run
        return small_run(S, PRETRAIN_SIZES[-1], **({"init": init} if init else {}))
    return base


def _dapt_lrs(S: Scale) -> dict[str, RunConfig]:
    """The default model continued with MLM at each of the continual-pretraining figure's LRs, each
    fine-tuned over the base run's grid: which continued model, and at what LR, as the base run's LR
    was chosen."""
    from .figures.pretraining import CONTINUAL_LRS, continued_model
    return {f"MLM {mlm:.0e}, {_lr_label(lr)}": S.base.replace(model=continued_model(S, which), lr=lr)
            for which, mlm in CONTINUAL_LRS.items() for lr in BASE_GRID}


def _sequences(method: str, key: str, grid: str, name: str):
    """Task sequences of the forgetting figure (its tasks, the base run's settings) over the values
    of one setting ``key`` of ``method`` (``grid``: their name in chapter.figures.problems), scored by
    the average validation accuracy after the last task."""
    def cands(S: Scale) -> dict[str, ContinualConfig]:
        from .figures import problems
        from .figures.captions import sci
        return {(_lr_label(v) if key.endswith("lr") else f"{name} {sci(v)}"): ContinualConfig(base=problems.sequence_base(S), tasks=problems.CL_TASKS,
                                                 method=method, **{key: v})
                for v in getattr(problems, grid)}
    return cands


# The frozen encoder + head: features computed once (no dropout in the frozen encoder), 20 epochs.
FROZEN_HEAD = dict(freeze="head_only", frozen_dropout=False, epochs=20)


def _instruction_lrs(arm: str, lrs: tuple[float, ...]):
    """Instruction tuning of the tiny GPT, arm "mask" or "nomask", at each LR of ``lrs``: the
    figure's reported tuning (chapter.figures.alignment) but for its LR."""
    def cands(S: Scale) -> dict[str, InstructionRun]:
        from ftcore.alignment.instructions import TuneConfig

        from .figures.alignment import WHOLE_SPLITS, gpt_config
        return {_lr_label(x): InstructionRun(gpt_config(S), TuneConfig(mask_prompt=arm == "mask", lr=x, **WHOLE_SPLITS))
                for x in lrs}
    return cands


def _reward_lrs(S: Scale) -> dict[str, RewardRun]:
    """The reward model at each LR (the earlier figure used 5e-5): its reported config but for the LR."""
    from .figures.alignment import reward_run
    return {_lr_label(x): reward_run(S, lr=x) for x in (1e-5, 3e-5, 1e-4)}


def _rl_lrs(beta: float):
    """RLHF at KL coefficient ``beta`` at each LR (the earlier figure used 2e-4 for both β),
    against the reward model chosen on validation."""
    def cands(S: Scale) -> dict[str, RLRun]:
        from .figures.alignment import rl_run
        return {_lr_label(x): rl_run(S, beta, lr=x) for x in (1e-4, 3e-4, 1e-3)}
    return cands


def _frozen_heads(S: Scale) -> dict[str, RunConfig]:
    """The frozen encoder's head over both poolings (the frozen CLS pooler was pretrained for another
    objective; mean pooling is how this sentence encoder was trained) and four LRs: the method at
    the settings that suit it, chosen on validation like full fine-tuning's regime."""
    return {f"{pool} pooling, lr {lr:.2g}": S.base.replace(**FROZEN_HEAD, pooling=pool, lr=lr)
            for pool in ("mean", "cls") for lr in (1e-3, 3e-3, 1e-2, 3e-2)}

SELECTIONS: dict[str, Selection] = {s.name: s for s in [
    Selection("regime", _regimes, "chapter.scale.REVIEWED.base (train_size, epochs, pooling)", rule="cheapest",
              target=0.77, lr_grid=False,
              note="the cheapest regime of full fine-tuning whose validation accuracy reaches 0.77 in both seeds' mean"),
    Selection("base", _lrs({}, BASE_GRID), "chapter.scale.REVIEWED.base.lr",
              note="full fine-tuning's learning rate on the chosen regime: the base run of most figures"),
    # full fine-tuning tuned exactly as the PEFT methods it is compared with (pooling and LR), for the
    # peft figure's full arm; the base run keeps the regime's choice
    Selection("full", _pooled_lrs({}, (3e-5, 1e-4, 3e-4)), "chapter.scale.REVIEWED.chosen['full'], ['full_pooling']",
              note="full fine-tuning as the peft figure compares it: pooling and learning rate"),
    Selection("head", _frozen_heads, "chapter.scale.REVIEWED.chosen['head'], ['head_pooling']", lr_grid=False,
              note="the frozen encoder's head: pooling and learning rate"),
    # from scratch learns nothing in the base run's 126 steps (every LR stayed at one class): chosen
    # on the whole training split, the size at which the strategies figure requires it to learn
    Selection("random_init", _lrs(dict(init="random"), (1e-4, 3e-4, 1e-3), base=_whole_split),
              "chapter.scale.REVIEWED.chosen['random_init']",
              note="training from scratch (random initialisation): its learning rate on the whole training split"),
    # layer-wise LRs' top LR on the grid (and extension rule) the uniform LR of full fine-tuning was
    # chosen on ("base"), so the data-size figure compares each at its own best
    Selection("llrd", _llrd_lrs, "chapter.scale.REVIEWED.chosen['llrd']",
              note="layer-wise learning rates (×0.9 per layer down): the top layer's learning rate, on full fine-tuning's grid"),
    Selection("lora", _pooled_lrs(dict(peft="lora", lora_r=8), (3e-4, 1e-3, 3e-3)), "chapter.scale.REVIEWED.chosen['lora'], ['lora_pooling']",
              note="lora: pooling and learning rate"),
    Selection("bitfit", _pooled_lrs(dict(peft="bitfit"), (1e-3, 3e-3, 1e-2)), "chapter.scale.REVIEWED.chosen['bitfit'], ['bitfit_pooling']",
              note="bitfit: pooling and learning rate"),
    Selection("adapter", _pooled_lrs(dict(peft="adapter"), (3e-4, 1e-3, 3e-3)), "chapter.scale.REVIEWED.chosen['adapter'], ['adapter_pooling']",
              note="adapter: pooling and learning rate"),
    Selection("prefix", _pooled_lrs(dict(peft="prefix"), (3e-4, 1e-3, 3e-3)), "chapter.scale.REVIEWED.chosen['prefix'], ['prefix_pooling']",
              note="prefix: pooling and learning rate"),
    Selection("prompt", _pooled_lrs(dict(peft="prompt"), (3e-3, 1e-2, 3e-2)), "chapter.scale.REVIEWED.chosen['prompt'], ['prompt_pooling']",
              note="prompt: pooling and learning rate"),
    *_decays(),
    *_adaptives(),
    *_regularizers(),
    Selection("risky", _risky_lrs, "chapter.scale.REVIEWED.chosen['risky']", rule="first_failure", lr_grid=False,
              note="the warmup figure's learning rate that is too high: the lowest at which a run without warmup fails to "
                   "learn in a selection seed"),
    Selection("fragile", _fragile_lrs, "chapter.scale.REVIEWED.chosen['fragile']", rule="first_failure", lr_grid=False,
              note="the stability-fixes figure's fragile baseline: the lowest learning rate at which it fails to learn in a "
                   "selection seed"),
    Selection("cl_ewc", _sequences("ewc", "ewc_lambda", "EWC_LAMBDAS", "λ"), "chapter.scale.REVIEWED.chosen['cl_ewc']",
              lr_grid=False, note="EWC's penalty weight λ on the task sequence (average validation accuracy after the last task)",
              score="average accuracy after the last task"),
    Selection("cl_lora", _sequences("lora", "lora_lr", "CL_LORA_LRS", "lr"), "chapter.scale.REVIEWED.chosen['cl_lora']",
              lr_grid=False, note="LoRA per task: its learning rate on the task sequence (average validation accuracy after the last task)",
              score="average accuracy after the last task"),
    # the pretraining figure's small models, each at its own LR (earlier: a sweep read on test)
    Selection("small_pretrained", _lrs({}, (1e-4, 3e-4, 1e-3), base=_small()), "chapter.scale.REVIEWED.chosen['small_pretrained']",
              note="the small RoBERTa pretrained here: its fine-tuning learning rate at the pretraining figure's largest size"),
    Selection("small_random", _lrs({}, (1e-4, 3e-4, 1e-3), base=_small("random")), "chapter.scale.REVIEWED.chosen['small_random']",
              note="the same small RoBERTa from random initialisation: its learning rate at the pretraining figure's largest size"),
    Selection("dapt", _dapt_lrs, "chapter.scale.REVIEWED.chosen['dapt'], ['dapt_mlm']",
              note="continual pretraining: which continued model (its MLM learning rate) and its fine-tuning learning rate"),
    # instruction tuning: each arm's LR (the earlier figure used 5e-4 for both), by greedy answer
    # accuracy on the validation texts under the training phrasings
    Selection("it_mask", _instruction_lrs("mask", (1e-4, 3e-4, 1e-3)), "chapter.scale.REVIEWED.chosen['it_mask']",
              figures=("instruction-tuning",), note="instruction tuning with the prompt masked: learning rate",
              score="greedy answer accuracy"),
    Selection("it_nomask", _instruction_lrs("nomask", (1e-4, 3e-4, 1e-3)), "chapter.scale.REVIEWED.chosen['it_nomask']",
              figures=("instruction-tuning",), note="instruction tuning without the mask: learning rate",
              score="greedy answer accuracy"),
    # RLHF: the reward model's LR by validation pairwise accuracy; then, against that model, each β's
    # policy LR by its objective (reward − β·KL) on the validation openings
    Selection("reward", _reward_lrs, "chapter.scale.REVIEWED.chosen['reward']", figures=("rlhf",),
              note="the reward model's learning rate (pairwise accuracy on validation pairs)", score="pairwise accuracy"),
    *(Selection(f"rl_beta_{b:g}", _rl_lrs(b), f"chapter.scale.REVIEWED.chosen['rl_beta_{b:g}']", figures=("rlhf",),
                note=f"RLHF at β={b:g}: learning rate (objective on validation openings)",
                score="objective (reward − β·KL)") for b in (0.01, 0.2)),
    Selection("gradual", _gradual_lrs, "chapter.scale.REVIEWED.chosen['gradual']",
              note="gradual unfreezing's learning rate at the base run's epochs (its head trains alone first)"),
]}


# ------------------------------------------------------------------------------------ running them
def stored_of(cfg, runs_dir):
    """Where the cache keeps a selection candidate's result (``ftcore.records.cache.Stored``): a
    run, a task sequence (ContinualConfig) or a study (instruction tuning, reward model, RL)."""
    from ftcore.analysis.continual import stored_sequence
    from ftcore.engine.runs import stored_run
    if isinstance(cfg, ContinualConfig):
        return stored_sequence(cfg, runs_dir)
    return cfg.stored(runs_dir) if isinstance(cfg, STUDY_RUNS) else stored_run(cfg, runs_dir)


def run_selection(sel: Selection, S: Scale = REVIEWED, *, jobs: int = 2, render_only: bool = False) -> Outcome:
    """Train what ``sel`` lacks (``jobs`` processes of one thread each, through the run cache) in
    rounds, since an extension of the grid is known only once the grid is scored; then its outcome.
    ``render_only``: never train (a missing record is a MissingRecordError)."""
    from ftcore.records.cache import MissingRecordError
    from ftcore.records.cache import fetch as fetch_stored
    while True:
        asked: list = []

        def fetch(cfg):
            rec = fetch_stored(stored_of(cfg, S.runs_dir))
            if rec is None:
                asked.append(cfg)
                return _Placeholder()
            return rec
        out = outcome(sel, S, fetch=fetch)
        if not asked:
            return out
        if render_only:
            raise MissingRecordError(f"selection {sel.name!r} lacks {len(asked)} run(s); "
                                     f"train them with: python -m chapter.protocol --only {sel.name}")
        _train(list(dict.fromkeys(asked)), S, jobs)


class _Placeholder:
    """A record not trained yet: no scores (the round trains it)."""
    status = "missing"
    summary: dict = {}

    @property
    def evals(self):
        import pandas as pd
        return pd.DataFrame({"step": [], "split": [], "metric": [], "value": []})


def _train(cfgs: list[RunConfig], S: Scale, jobs: int) -> None:
    """Train ``cfgs`` as the build trains missing runs (``chapter.parallel.train_missing``: ``jobs``
    workers of one thread each, each record saved through the cache)."""
    if not cfgs:
        return
    from .build import Collector
    from .needs import RUN_KIND, Job
    from .parallel import train_missing
    print(f"  training {len(cfgs)} selection runs ({jobs} × 1 thread)", flush=True)
    kind = {ContinualConfig: "task sequence", **{t: "study" for t in STUDY_RUNS}}
    train_missing(Collector(S), [Job(kind.get(type(c), RUN_KIND["ftcore"]), c) for c in cfgs], workers=jobs, threads=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapter.protocol", description=__doc__.split("\n\n")[0],
                                 epilog="Selections: " + ", ".join(SELECTIONS))
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these selections only")
    ap.add_argument("--jobs", type=int, default=2, help="training processes, one thread each (default 2)")
    ap.add_argument("--render-only", action="store_true", help="never train: tables from stored records")
    args = ap.parse_args(argv)
    names = args.only or list(SELECTIONS)
    unknown = [n for n in names if n not in SELECTIONS]
    if unknown:
        ap.error(f"unknown selection(s) {unknown}; known: {', '.join(SELECTIONS)}")
    status = 0
    for name in names:
        sel = SELECTIONS[name]
        try:
            out = run_selection(sel, jobs=args.jobs, render_only=args.render_only)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: not ready ({str(exc).splitlines()[0]})", file=sys.stderr)
            status = 4
            continue
        print(f"\n### {name}: {sel.note or 'learning rate'} (sets {sel.sets})\n")
        print(out.table())
        print(f"\nchosen: {out.chosen}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
