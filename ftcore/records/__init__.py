"""Torch-free records: what a run measured, on disk and in memory, and every question asked of it.

``record`` (RunRecord, the tidy tables), ``cache`` (stored results keyed by what they depend on),
``queries`` (final metrics, curves, global gradient norm, collapse rule, smoothing), ``metrics``
(forgetting and other sequence quantities), ``studies`` (cached measurements that are not runs),
``doctor`` (diagnosis), ``runset`` (the records behind one figure), ``provenance`` (code, libraries
and machine behind a record or a study). This is the only part of ftcore that viz imports; nothing
here imports torch (a record's config is :mod:`ftcore.config`, torch-free too).
"""
