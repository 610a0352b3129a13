"""Every figure of section 3.2 (``shared/FIGURES.md``) and of the seeds' working systems, one module
per section as in ``viz``; importing this package registers them all in
:data:`chapter.registry.REGISTRY`, in the chapter's order.

    base          the base regime, each method's swept LR, shared grids and helpers
    captions      the numbers captions state, written from the configs (never typed)
    basics        3.2.1  concept, strategies, data-size-strategy (seed 001), layer-lr, schedules-basic, landscape
    freezing      3.2.2  freeze-map, freeze-effects, unfreeze, layer-drift
    data          3.2.3  task-formats, augmentation, data-quality
    schedules     3.2.4  warmup, decay, adaptive, lr-finder
    problems      3.2.5  fitting, regularization, forgetting, forgetting-pretrained, instability, stability-fixes
    continual     seeds 001/003: peft, continual-table
    pretraining   seed 003: pretraining, continual-pretraining
    quantization  seed 003: quantization
    alignment     seed 003: instruction-tuning, rlhf
    engines       seeds 001-003: engines

A new figure is its ``FigureSpec`` in its section module (runs, caption from those runs, claims, the
notebooks that show it), its viz function, its strings in ``viz/strings/{zh,en}.json`` and a test.
A section module imports only from ``base``, ``captions`` and earlier sections.
"""
from . import basics, freezing, data, schedules, problems  # noqa: F401  3.2.1-3.2.5
from . import continual, pretraining, quantization, alignment, engines  # noqa: F401  the seeds' systems
