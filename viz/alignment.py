"""Figures of seed 003's alignment system (drawn from records)."""
from __future__ import annotations

__all__: list[str] = []
