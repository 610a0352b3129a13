"""The ``quantization`` figure (issue 15): int8 post-training quantization vs quantization-aware fine-tuning."""
from __future__ import annotations
