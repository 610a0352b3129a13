"""Layer groups on a figure: in depth order ((prompt,) embeddings, layer.0 … layer.N, pooler,
head), named in the current language, and one learning rate per group."""
from __future__ import annotations

import re

import pandas as pd

from .labels import _name
from .text import t


def _group_key(group: str) -> tuple:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return (1, int(m.group(1)))
    return {"prompt": (0, -1), "embeddings": (0, 0), "pooler": (2, 0), "head": (3, 0)}.get(group, (4, group))


def _group_order(groups) -> list[str]:
    """Layer groups in depth order: (prompt,) embeddings, layer.0 … layer.N, pooler, head."""
    return sorted(dict.fromkeys(groups), key=_group_key)


def _group_label(group: str) -> str:
    m = re.fullmatch(r"layer\.(\d+)", group)
    if m:
        return t("freeze-map.group.layer", i=m.group(1))
    return _name("freeze-map.group", group)


def _layer_lr_table(lrs: pd.DataFrame) -> pd.DataFrame:
    """One LR per (labels…, step, layer group): the max over that group's param groups."""
    keys = [c for c in lrs.columns if c not in ("group", "lr")]
    return lrs.groupby(keys, sort=False, dropna=False)["lr"].max().reset_index()
