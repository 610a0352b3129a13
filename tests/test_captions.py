"""Captions state what the configs hold (issue 23): every number in a figure's caption is a number of
the configs its ``needs`` builds (train size, epochs, steps, LRs, seeds, ...) or a fact the figure
declares below. Checked at the full scale and at a changed base regime, where a typed number would
be left stale. No training, no records."""
from __future__ import annotations

import dataclasses
import math
import re

import pytest

from chapter import figures  # noqa: F401 (registers the figures)
from chapter.figures import captions
from chapter.figures.basics import FULL_SPLIT
from chapter.needs import StudyJob
from chapter.registry import REGISTRY, Grid, LandscapeNeed, Sequences, StudyNeed
from chapter.scale import FULL, QUICK, SELECTION_SEEDS
from ftcore.records.validity import LEARN_MARGIN, ONE_CLASS_LIMIT

# A number standing alone (not part of int8, fp32, x86, GPT-2, -100, 0-2): 1,000 / 0.25 / 1e-4 / 95.
NUMBER = re.compile(r"(?<![\w.\-/])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w.])")
SEED_DOCUMENT = re.compile(r"(种子|[Ss]eeds?) 00\d(-00\d)?")  # "seed 001": a document, not a number
# 95% intervals; the reviewed protocol's selection seeds; the validity gate's margin and one-class limit (in %)
EVERYWHERE = {95, *SELECTION_SEEDS, LEARN_MARGIN, 100 * ONE_CLASS_LIMIT}
# Numbers that are facts about the model, the method or a measurement, not settings of a config.
FACTS = {
    "landscape": {1},  # ‖θ₁−θ₀‖ is about 1% of ‖θ₁‖; the 1-D interpolation
    "data-size-strategy": {1, 10_000},  # the rule's "10k" zone
    "unfreeze": {0, 8},  # a frozen group's LR; 8 groups, one per epoch
    "fitting": {2},  # the base setting's validation loss rises after epoch 2 (measured)
    "forgetting": {2},  # joint training costs about twice naive (measured)
    "lr-finder": {40},  # steps per decade (240 steps over 6 decades)
    "peft": {92_160},  # numbers a prefix keeps: 2 × 6 layers × 20 prefixes × 384
    "quantization": {37, 6, 7, 8, 1, 32},  # Linear layers, encoder layers, 7-bit kernel, 8-bit tables, batch sizes
}
# The base regime changed on every axis a caption states: a number typed from the old one is stale.
CHANGED = dataclasses.replace(FULL, seeds=tuple(range(7)), base=FULL.base.replace(
    train_size=1200, epochs=3, lr=2e-4, max_length=64, eval_size=400, test_size=400))


def numbers_in(text: str) -> set[float]:
    return {float(m.replace(",", "")) for m in NUMBER.findall(SEED_DOCUMENT.sub("", text))}


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, (list, tuple)):
        yield len(obj)
        for v in obj:
            yield from _leaves(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def _run_numbers(cfg, base) -> list[float]:
    """A run's settings and what a caption derives from them: steps, examples seen, percentages, the
    LR against the base, the LR floor."""
    d = cfg.to_dict()
    out = list(_leaves(d)) + [captions.steps(cfg, FULL_SPLIT), (cfg.train_size or FULL_SPLIT) * cfg.epochs,
                              cfg.lr / base.lr, cfg.lr * cfg.min_lr_ratio]
    return out + [100 * x for x in _leaves(d) if 0 < x < 1]


def config_numbers(spec, S) -> set[float]:
    from ftcore.pretraining.mlm import RECIPES
    found: list[float] = []
    base = spec.scale_for(S).base  # the figure's own base run (a reviewed figure's is REVIEWED's)
    for need in spec.needs(S).values():
        if isinstance(need, (Grid, Sequences)):
            arms: dict[tuple, set] = {}
            for labels, cfg in need.cells:
                found += list(_leaves(labels))
                found += _run_numbers(getattr(cfg, "base", cfg), base)  # a task sequence: its runs' settings
                found += list(_leaves(dataclasses.asdict(cfg))) + [100 * x for x in _leaves(dataclasses.asdict(cfg)) if 0 < x < 1]
                arms.setdefault(tuple(sorted((k, str(v)) for k, v in labels.items() if k != "seed")), set()).add(
                    labels.get("seed"))
            found += [len(s) for s in arms.values()]  # seeds per arm
        elif isinstance(need, LandscapeNeed):
            found += _run_numbers(need.cfg, base) + list(_leaves(dataclasses.asdict(need.lcfg)))
        elif isinstance(need, (StudyNeed, StudyJob)):
            params = dict(need.params)
            if "recipe" in params:  # an MLM checkpoint: its recipe's settings, and the tokens it saw
                r = RECIPES[params["recipe"]]
                params["recipe"] = r.to_dict()
                found.append(r.steps * r.batch_size * r.block)
            found += list(_leaves(params)) + [100 * x for x in _leaves(params) if 0 < x < 1]
    study_seeds = {}
    for need in spec.needs(S).values():
        if isinstance(need, (StudyNeed, StudyJob)):
            for key, sub in need.params.items():
                if isinstance(sub, dict) and "seed" in sub:
                    study_seeds.setdefault(key, set()).add(sub["seed"])
    found += [len(s) for s in study_seeds.values()]
    found += list(_leaves(getattr(spec.draw, "keywords", {})))  # the figure's own settings (decay's target)
    if spec.reviewed:  # a caption may cite what its selections tried on validation (warmup's LR ladder)
        from chapter.protocol import SELECTIONS
        for name in set(spec.selections) - {"regime", "base"}:  # those two every reviewed figure names
            for cfg in SELECTIONS[name].candidates(spec.scale_for(S)).values():
                if hasattr(cfg, "params"):  # a study's job (instruction tuning, RLHF): its parameters
                    found += list(_leaves(cfg.params()))
                    continue
                if hasattr(cfg, "base"):  # a task sequence: its runs' settings and its own (λ, replay share)
                    found += list(_leaves(dataclasses.asdict(cfg)))
                found += _run_numbers(getattr(cfg, "base", cfg), base)
    return {float(x) for x in found if math.isfinite(x)}


def _stale(spec, S) -> list[float]:
    allowed = config_numbers(spec, S) | EVERYWHERE | FACTS.get(spec.id, set())
    said = set().union(*(numbers_in(t) for t in spec.caption_for(S).values()))
    return sorted(x for x in said if not any(math.isclose(x, y, rel_tol=1e-9) for y in allowed))


def test_the_number_finder():
    assert numbers_in("1,000 条影评训练 2 轮，学习率 1e-4；int8、fp32、x86、GPT-2、-100、95% t、6×、0.25") == \
        {1000, 2, 1e-4, 95, 6, 0.25}
    assert numbers_in("seed 001's rule; 种子 002 的 AG News; seeds 001-003") == set()


@pytest.mark.parametrize("fid", sorted(REGISTRY))
def test_caption_numbers_come_from_the_configs(fid):
    spec = REGISTRY[fid]
    assert _stale(spec, FULL) == [], f"{fid}: caption numbers that no config of the figure holds"


@pytest.mark.parametrize("fid", sorted(REGISTRY))
def test_captions_follow_a_changed_base_regime(fid):
    spec = REGISTRY[fid]
    assert _stale(spec, CHANGED) == [], f"{fid}: numbers left from the old base regime (typed, not read)"


def test_a_typed_number_is_caught():
    spec = REGISTRY["layer-drift"]
    typed = dataclasses.replace(spec, caption=lambda S: {"zh": "基准运行（1,000 条、2 轮、学习率 1e-4）", "en": ""},
                                reviewed=False)  # built at the scale given (a reviewed figure keeps REVIEWED's base)
    assert _stale(typed, FULL) == []
    assert {1000, 1e-4} <= set(_stale(typed, CHANGED))  # (a typed "2" hides among the other 2s)


def test_the_caption_helpers():
    assert [captions.lr(x) for x in (1e-4, 2.5e-5, 3e-2, 0.1, 1.0)] == ["1e-4", "2.5e-5", "3e-2", "0.1", "1.0"]
    assert captions.n(1000) == "1,000" and captions.n(8.0) == "8" and captions.pct(0.06) == "6%"
    assert captions.regime_text(FULL.base, "zh", reviews=True) == "1,000 条影评训练 2 轮，学习率 1e-4"
    assert captions.regime_text(FULL.base, "en", reviews=True) == "1,000 reviews × 2 epochs, LR 1e-4"
    assert captions.steps(FULL.base) == 126
    with pytest.raises(ValueError, match="one value"):
        captions.one([1, 2])


@pytest.mark.parametrize("fid", sorted(REGISTRY))
def test_no_caption_shows_an_unformatted_placeholder(fid):
    """A caption line written without its f prefix prints "{n(x.epochs)}" to the reader."""
    for S in (FULL, QUICK):
        for lang, text in REGISTRY[fid].caption_for(S).items():
            assert "{" not in text and "}" not in text, f"{fid} ({S.name}, {lang}): {text}"
