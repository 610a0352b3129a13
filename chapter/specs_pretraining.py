"""Figures of seed 003's pretraining systems (issue 15): ``pretraining`` and ``continual-pretraining``."""
from __future__ import annotations
