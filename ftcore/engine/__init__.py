"""The engine: config → data → model (layer groups, freezing, PEFT) → trainer + callbacks → RunRecord.

Read it in that order: ``config``, ``tasks``/``data``, ``models``/``layers``, ``optim``/``schedules``,
``trainer`` (the loop), ``callbacks`` (recording, evaluation, early stopping, unfreezing, divergence),
``runs`` (``build``/``train``/``run``: one call from a config to a saved record).
"""
