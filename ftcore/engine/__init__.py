"""The engine: config → data → model (layer groups, freezing, PEFT) → trainer + callbacks → RunRecord.

The config itself is :mod:`ftcore.config` (torch-free, with the registries of schedules, PEFT methods
and training loops; ``engine.config`` re-exports it). Read the engine in the order of a run:
``tasks``/``data``, ``models``/``layers``, ``optim``/``schedules``,
``trainer`` (the loop), ``callbacks`` (recording, evaluation, early stopping, unfreezing, divergence),
``runs`` (``build``/``train``/``run``: one call from a config to a saved record).
"""
