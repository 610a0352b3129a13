"""Compatibility: the figures live in :mod:`chapter.figures`, one module per section. Importing this
module registers them all, as it always did, and keeps the names read from here before."""
from .figures import *  # noqa: F401,F403  (registers every figure)
from .figures.base import FROZEN, HEAD_LR, LORA_LR, RISKY_LR, all_runs, arms, seeds_grid, with_curves  # noqa: F401
from .figures.problems import FIX_SEEDS  # noqa: F401
