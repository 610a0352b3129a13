"""Figures of seed 003's instruction tuning and RLHF (issue 16): ``instruction-tuning`` and ``rlhf``."""
from __future__ import annotations
