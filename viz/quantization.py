"""Figures of seed 003's quantization system (drawn from records)."""
from __future__ import annotations

__all__: list[str] = []
