"""Checks of a config against this machine, its model and its data, before anything heavy runs.

``RunConfig`` checks each value on its own when it is built; what depends on the model (how many
encoder layers it has), the task (how many classes, how many examples) or the machine (is there a
GPU) is checked here, at the start of :func:`ftcore.engine.runs.build`, so a bad request ends in
one line naming the field before a model is loaded or a step is trained.
"""
from __future__ import annotations

from ..config import ConfigError, RunConfig


def check(cfg: RunConfig) -> None:
    """Raise ConfigError / ModelLoadError / TaskError (one line each) for what ``cfg`` cannot run."""
    import torch

    from .data import check_sizes
    from .models import encoder_layers, resolve_model
    from .tasks import load_task

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("RunConfig.device='cuda' is not allowed here: no CUDA device is available "
                          "(use auto or cpu)")
    resolve_model(cfg.model)  # a missing folder, a config.json without model_type, an offline hub id
    layers = encoder_layers(cfg.model)
    if layers is not None:
        if cfg.reinit_top > layers:
            raise ConfigError(f"RunConfig.reinit_top={cfg.reinit_top} is not allowed: expected an integer "
                              f"in [0, {layers}] ({cfg.model!r} has {layers} encoder layers)")
        if cfg.freeze in ("bottom", "middle") and cfg.freeze_layers is not None and cfg.freeze_layers > layers:
            raise ConfigError(f"RunConfig.freeze_layers={cfg.freeze_layers} is not allowed: expected an "
                              f"integer in [0, {layers}] ({cfg.model!r} has {layers} encoder layers)")
        beyond = [g for g in cfg.frozen_groups if g.startswith("layer.") and g[6:].isdigit() and int(g[6:]) >= layers]
        if beyond:
            raise ConfigError(f"RunConfig.frozen_groups={cfg.frozen_groups!r} is not allowed: {cfg.model!r} has "
                              f"no {', '.join(beyond)} (its layers are layer.0 ... layer.{layers - 1})")
    check_sizes(cfg, load_task(cfg.task))
