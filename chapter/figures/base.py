"""What the figures share: the base regime (``chapter.scale.FULL.base``), the learning rate each
method was swept to, the grids two sections draw on, and the helpers every section module uses.

Grids vary one knob of the scale's base run and repeat noisy comparisons over the scale's seeds.
A section module imports from here and from earlier sections only: the registry fills in the
chapter's order and no import runs in a circle.
"""
from __future__ import annotations

from collections.abc import Callable

from ftcore import RunConfig
from ftcore.analysis import figure_studies as analyses
from ftcore.records.queries import mean_sd
from ftcore.records.validity import learned
from ..claims import Claim
from ..registry import Grid, StudyNeed
from ..scale import FULL

# ------------------------------------------------------------------------------------ the base regime
# The fields that make a run "the base regime" (the pilot's choice, ``chapter.pilot``): the notebooks'
# live runs train like this too (``lab.env.live_config``), with their own evaluation and precision.
REGIME_FIELDS = ("task", "train_size", "epochs", "lr", "pooling", "max_length")


def regime(cfg: RunConfig = FULL.base) -> dict:
    """The base regime's fields of ``cfg`` (by default the figures' base run)."""
    return {k: getattr(cfg, k) for k in REGIME_FIELDS}


LAYERS, HIDDEN = 6, 384  # the default model's encoder (all-MiniLM-L6-v2): layers, hidden size


# ------------------------------------------------------------------------------------ chosen LRs
# Each method at the learning rate that suits it, from the recorded sweep on the base regime
# (``python -m chapter.pilot --sweep``, seed 0, test accuracy): full fine-tuning 3e-5 .778 / 1e-4 .788
# / 3e-4 .794 (the base keeps 1e-4, the pilot's choice over 5 seeds); a head on the frozen encoder's
# mean-pooled features, 20 epochs: .738-.746 for any LR in 1e-3..3e-2; random init 3e-4 (1e-3
# collapses); LoRA r=8 3e-3 .796; BitFit 3e-3 .780; prompt tuning 3e-2, 6 epochs .752.
HEAD_LR, RANDOM_LR, LORA_LR, BITFIT_LR, PROMPT_LR = 1e-3, 3e-4, 3e-3, 3e-3, 3e-2
# chapter.pilot --sweep (seed 0, test accuracy): adapters 3e-4 0.766, 1e-3 0.802, 3e-3 0.752; prefix
# tuning 1e-3 0.762, 3e-3 0.754, 1e-2 collapsed to one class. At 1e-3 × 2 epochs prefix tuning
# collapsed in seed 3 of 5 (record kept): it trains 6 epochs, as slow-starting prompt tuning does (seed 0:
# 3e-4 0.772, 1e-3 0.778), at the lower LR, the further one from the collapse.
ADAPTER_LR, PREFIX_LR, PREFIX_EPOCHS = 1e-3, 3e-4, 6
PROMPT_EPOCHS = 6  # prompt tuning was still learning at 2 epochs (.718) and reached .752 at 6
# "Frozen encoder + head": the checkpoint's own mean pooling over the frozen encoder, a linear head
# trained to convergence at its own LR. With frozen dropout off the encoder's features are computed
# once and cached, so 20 epochs cost seconds.
FROZEN = {"freeze": "head_only", "frozen_dropout": False, "lr": HEAD_LR, "epochs": 20}
RISKY_LR = 6e-4  # pilot (500 reviews × 2 epochs, no clipping, no warmup, constant LR, fp32): 1 of 2
# seeds collapsed to the majority class at 6e-4, both at 1.5e-3 and 3e-3
# Layer-wise LRs (the data-size figure and the engines' full recipe): the LR decays by LLRD_DECAY per
# layer down from the top, at the top LR its sweep chose (base regime, 2 seeds, validation accuracy:
# 1e-4 0.787, 2e-4 0.791, 4e-4 0.782).
LLRD_DECAY, LLRD_LR = 0.9, 2e-4
# LoRA per task in the continual-learning sequences: the sentiment sweep's 3e-3 left rt-subjectivity
# at chance in seed 2 (that record is kept), 1e-3 learns every task (sentiment 0.778 at seed 0).
CL_LORA_LR = 1e-3
# The small RoBERTa pretrained here, and the same architecture from random init (the `pretraining`
# figure): a short sweep at 1,000 reviews, seed 0, at the default model's budget (126 steps; test
# accuracy, records in runs/reference): 1e-4 .578, 3e-4 .560, 1e-3 .578 (the majority class is .578):
# none learned in 126 steps, and only 3e-4 brought the training loss down (0.69 → 0.53). With 10 epochs
# at 3e-4 both small models learned (pretrained here .628, random init .656, seed 0).
HERE_LR, SCRATCH_LR = 3e-4, 3e-4




def chosen(S, name: str) -> float:
    """The learning rate (or setting) ``name`` at scale ``S``: under the reviewed protocol the value
    its selection chose on validation (``S.chosen``, checked against the selection's records by
    tests/test_protocol.py), else the earlier sweep's constant above."""
    earlier = {"head": HEAD_LR, "random_init": RANDOM_LR, "lora": LORA_LR, "bitfit": BITFIT_LR, "prompt": PROMPT_LR,
               "adapter": ADAPTER_LR, "prefix": PREFIX_LR, "base": FULL.base.lr}
    if S.reviewed:
        if name not in S.chosen:
            raise KeyError(f"the reviewed scale has no chosen {name!r} yet: run python -m chapter.protocol "
                           f"--only {name} and write its choice into chapter.scale.REVIEWED.chosen")
        return S.chosen[name]
    return earlier[name]


def frozen(S) -> dict:
    """"Frozen encoder + head" at scale ``S``: the head's LR (and, under the reviewed protocol, the
    pooling) its selection chose."""
    if S.reviewed:
        return dict(FROZEN, lr=chosen(S, "head"), pooling=S.chosen["head_pooling"])
    return dict(FROZEN)


def epochs_for(S, method: str) -> float:
    """Epochs of a method that the earlier sweep gave more epochs (prompt and prefix tuning); under
    the reviewed protocol every method trains the base run's epochs: arms at equal budget."""
    if S.reviewed:
        return S.base.epochs
    return {"prompt": PROMPT_EPOCHS, "prefix": PREFIX_EPOCHS}.get(method, S.base.epochs)


# ------------------------------------------------------------------------------------ must_learn
def all_runs(labels: dict) -> bool:
    """must_learn predicate: every run of the input."""
    return True


def arms(key: str, *names) -> Callable[[dict], bool]:
    """must_learn predicate: the runs whose ``key`` label is one of ``names``."""
    return lambda labels: labels.get(key) in names


def beats(key: str, *pairs: tuple[str, str, str, str], **kw) -> list[Claim]:
    """Claims "arm a beats arm b" on the grid label ``key``, each pair ``(a, b, zh, en)`` (``kw``: what
    every claim shares, e.g. the input it reads)."""
    return [Claim({"zh": zh, "en": en}, {key: a}, {key: b}, **kw) for a, b, zh, en in pairs]


# ------------------------------------------------------------------------------------ grids
# Where the first five seeds could not tell a claim the chapter makes (issue 24: "add seeds"), every
# arm of the figure takes seeds 5-9 too, paired. They were added once, after the five-seed verdicts,
# and the verdicts are those at ten; the caption says so (captions.added_seeds).
MORE_SEEDS = tuple(range(10))


def more_seeds(S) -> tuple[int, ...]:
    """A figure's reported seeds where five could not tell: ``MORE_SEEDS`` under the reviewed
    protocol, the scale's seeds otherwise (quick mode's one)."""
    return MORE_SEEDS if S.reviewed else S.seeds


def seeds_grid(S, variants: dict[str, dict], key: str, seeds=None, base: RunConfig | None = None) -> Grid:
    """One arm per ``variants`` entry (labelled ``key``), each over the scale's paired seeds."""
    base = base or S.base
    return Grid([({key: name, "seed": s}, base.replace(seed=s, **kw))
                 for name, kw in variants.items() for s in (seeds or S.seeds)])


def with_curves(S, every: int = 8) -> RunConfig:
    """The base run, also evaluated on a fixed 250 validation examples every ``every`` steps."""
    return S.base.replace(eval_splits=("validation",), eval_every=S.pick(every, 1), eval_size=S.pick(250, 32))


def base_run(S) -> Grid:
    """The base run itself (first seed): the run a study of "the fine-tuned model" reads."""
    return seeds_grid(S, {"base": {}}, "run", seeds=S.seeds[:1])


# The decay schedules: the `decay` figure's grid, of which `schedules-basic` draws four (one seed).
DECAYS = {"constant": {"schedule": "constant"}, "linear": {"schedule": "linear"},
          "cosine": {"schedule": "cosine"}, "exponential": {"schedule": "exponential", "gamma": 0.05},
          "polynomial": {"schedule": "polynomial", "poly_power": 2.0},
          "step": {"schedule": "step", "step_every": 0.25, "gamma": 0.5}}


def decays(S) -> dict[str, dict]:
    """The decay schedules' settings at scale ``S``: under the reviewed protocol each at the peak LR
    (and exponential and step decay at the γ) its own selection chose on validation (chapter.protocol
    ``decay_<name>``); earlier, all at the base LR."""
    if not S.reviewed:
        return DECAYS
    out = {}
    for k, changes in DECAYS.items():
        out[k] = dict(changes, lr=chosen(S, f"decay_{k}"))
        if f"decay_{k}_gamma" in S.chosen:
            out[k]["gamma"] = S.chosen[f"decay_{k}_gamma"]
    return out


def decay_grid(S) -> dict:
    return {"runs": seeds_grid(S, decays(S), "schedule", base=with_curves(S))}


# ------------------------------------------------------------------------------------ studies
def memory_need(S, configs: dict[str, RunConfig]) -> StudyNeed:
    """Bytes training keeps for one step of each arm (ftcore.analysis.memory), on the base batch;
    gradual unfreezing counted at its peak stage."""
    cfgs = {k: c.replace(threads=S.base.threads) for k, c in configs.items()}
    params = {k: c.identity_dict() for k, c in cfgs.items()}
    if any(c.freeze == "gradual" for c in cfgs.values()):
        params["gradual_counted_at"] = "peak"  # a study counted at step 1 (head only) is never reused
    return StudyNeed("memory", params, lambda: analyses.memory(cfgs))


def finetuned_need(S) -> StudyNeed:
    """The base run's fine-tuned model, read back: layer drift, CKA, predictions on augmented text."""
    return StudyNeed("finetuned", {"run": S.base.identity_dict(), "model": S.base.model, "n": S.pick(256, 32)},
                     lambda: analyses.finetuned(S.base, n_examples=S.pick(256, 32)))


# ------------------------------------------------------------------------------------ measurements
def finals_by(inputs, name, key, metric="accuracy", split="test"):
    """Mean, sd and n of the final ``metric`` per ``key`` arm of input ``name``."""
    return mean_sd(inputs[name].finals(metric, split), key).set_index(key)


def label(prefix: str, key: str, lang: str) -> str:
    """The reader's label of a grid value (from viz's string table), so no code name reaches a note."""
    from viz.text import t
    try:
        return t(f"{prefix}.{key}", lang=lang)
    except KeyError:
        return key


def below_bar(runs, **labels) -> list[tuple[int, float, float]]:
    """(seed, validation accuracy, majority share) of the runs among ``labels`` that the validity
    gate's rule (``ftcore.records.validity.learned`` on validation) would not count as learned."""
    return [(lab["seed"], rec.metric("accuracy", "validation"), rec.metric("majority_frac", "validation"))
            for lab, rec in runs.select(**labels) if not learned(rec, split="validation").passed]


def measured(zh: str, en: str, differs: bool | None = None, note: dict | None = None) -> dict:
    """What a figure measured, in both languages, and whether it differs from the chapter's claim.
    ``note`` ({"zh", "en"}): a fact from the records the gallery lists even beside claims (a run
    exempted from the validity gate, say)."""
    return {"zh": zh, "en": en, "differs": differs, **({"note": note} if note else {})}


def against_claim(m, claimed: str, zh: str, en: str, says: tuple[str, str], agrees_zh: str = "") -> dict:
    """The measurement ``zh``/``en`` and, when the best arm of the means ``m`` is not the one the
    chapter calls best (``claimed``), the chapter's claim ``says`` (zh, en) after it."""
    differs = m.idxmax() != claimed
    return measured(zh + (says[0] if differs else agrees_zh), en + (says[1] if differs else ""), differs)
