"""The numbers a caption or a verdict states, written from the configs that produce them.

A figure's caption is a function of the scale: it builds the figure's own grid (``needs``) and
reads the train size, epochs, steps, LRs and seeds from those configs, so changing a config changes
its sentence too (``tests/test_captions.py`` checks every number against the configs).
"""
from __future__ import annotations

import math
from collections.abc import Iterable


def sci(x: float) -> str:
    """A number in short scientific notation: 1e-4, 2.5e-5, 1e6."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def lr(x: float) -> str:
    """A learning rate as the chapter writes it: 1e-4, 2.5e-5, 3e-2; from 0.1 up in decimals (0.1, 1.0)."""
    return str(float(x)) if x >= 0.1 else sci(x)


def n(x: float) -> str:
    """A count with thousands separators (1,000); a fractional value as it is (0.5)."""
    return f"{round(x):,}" if float(x).is_integer() else f"{x:g}"


def pct(share: float) -> str:
    """A share as a percentage: 0.06 → 6%."""
    return f"{100 * share:g}%"


def one(values: Iterable):
    """The one value all of ``values`` share: a caption that states a single number for several
    configs fails here when they stop agreeing."""
    found = set(values)
    if len(found) != 1:
        raise ValueError(f"a caption states one value where the configs hold {sorted(found, key=str)}")
    return found.pop()


def configs(grid, **labels) -> list:
    """The configs of ``grid``'s cells whose labels include ``labels``."""
    return [cfg for lab, cfg in grid.cells if all(lab.get(k) == v for k, v in labels.items())]


def arm(grid, **labels):
    """The settings of one arm of ``grid``: its cells' config, the same whatever the seed."""
    return one(cfg.replace(seed=0) for cfg in configs(grid, **labels))


def seeds(grid, **labels) -> int:
    """How many seeds the matching cells of ``grid`` (an arm) run: one number for all of them."""
    arms: dict[tuple, set] = {}
    for lab, cfg in grid.cells:
        if all(lab.get(k) == v for k, v in labels.items()):
            arms.setdefault(tuple(sorted((k, str(v)) for k, v in lab.items() if k != "seed")), set()).add(lab["seed"])
    return one(len(s) for s in arms.values())


def added_seeds(grid, lang: str) -> str:
    """The caption's sentence for a grid whose arms took seeds after five could not tell
    (``base.MORE_SEEDS``); empty where they did not."""
    ks = {lab["seed"] for lab, _ in grid.cells}
    extra = sorted(s for s in ks if s >= 5)
    if not extra or len(ks) <= 5:
        return ""
    span = f"{extra[0]}–{extra[-1]}"
    return {"zh": f"种子 {span} 是在前 5 个种子无法判断某条结论之后为每个臂补加的（只补一次），结论按 {len(ks)} 个种子给出。",
            "en": f"Seeds {span} were added to every arm, once, after the first five could not tell a claim; "
                  f"the verdicts are at {len(ks)} seeds."}[lang]


def steps(cfg, n_train: int | None = None) -> int:
    """Optimizer steps of a run, counted as ftcore's loop counts them (``n_train``: the training
    examples when ``train_size`` is None, the whole split)."""
    n_train = cfg.train_size or n_train
    if cfg.max_steps:
        return cfg.max_steps
    per_epoch = math.ceil(math.ceil(n_train / cfg.batch_size) / cfg.grad_accum)
    return max(1, math.ceil(cfg.epochs * per_epoch))


def regime_text(cfg, lang: str, *, reviews: bool = False, with_lr: bool = True) -> str:
    """"1,000 条训练 2 轮，学习率 1e-4" / "1,000 examples × 2 epochs, LR 1e-4" (``reviews``: 条影评,
    reviews), the training set, epochs and LR of ``cfg``."""
    noun = ("条影评" if reviews else "条") if lang == "zh" else ("reviews" if reviews else "examples")
    if lang == "zh":
        return f"{n(cfg.train_size)} {noun}训练 {n(cfg.epochs)} 轮" + (f"，学习率 {lr(cfg.lr)}" if with_lr else "")
    return f"{n(cfg.train_size)} {noun} × {n(cfg.epochs)} epochs" + (f", LR {lr(cfg.lr)}" if with_lr else "")


def pooling(cfg, lang: str) -> str:
    """How a run pools its encoder for the head, in ``lang``: "均值池化" / "mean pooling", "CLS 池化" /
    "CLS pooling" (the earlier base run pooled by mean, the reviewed regime chose the CLS pooler)."""
    names = {"mean": ("均值池化", "mean pooling"), "cls": ("CLS 池化", "CLS pooling")}
    zh, en = names.get(cfg.pooling, (cfg.pooling, cfg.pooling))
    return zh if lang == "zh" else en


def held_out(lang: str) -> str:
    """The selection seeds a reviewed choice was made with, and that they are never reported:
    "种子 100、101 不参与报告" / "with seeds 100, 101, never reported" (``chapter.scale.SELECTION_SEEDS``)."""
    from ..scale import SELECTION_SEEDS
    if lang == "zh":
        return f"种子 {'、'.join(map(str, SELECTION_SEEDS))} 不参与报告"
    return f"with seeds {', '.join(map(str, SELECTION_SEEDS))}, never reported"


def cost_words(lang: str) -> str:
    """What a cost panel draws (``viz.cost``): the process's CPU seconds, or optimizer steps where a
    record lacks them; never wall time, which also measures what else the machine ran."""
    return "训练代价（CPU 秒；记录缺少时为优化步数）" if lang == "zh" else \
        "training cost (CPU seconds; optimizer steps where a record lacks them)"


def chosen_text(S, lang: str) -> str:
    """How the settings were chosen, under the reviewed protocol: on the whole validation split with
    the selection seeds, never a reported seed."""
    if lang == "zh":
        return f"学习率均在验证集上选定（{held_out('zh')}）"
    return f"LRs chosen on the validation split {held_out('en')}"
