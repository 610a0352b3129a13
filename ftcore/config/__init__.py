"""What a run is, before anything runs: the RunConfig and the registries of its choices. Torch-free.

Below both the engine (which runs a config) and the records (which store one), so a record's config
is read without torch. ``run_config`` (RunConfig, its validation, --help and text parsing),
``schedule_kinds`` (LR schedules and warmups with their shapes and flags), ``peft_kinds`` (PEFT
methods), ``loops`` (the training loops and what each refuses), ``registry`` (the table they share).
"""
from .loops import TRAINING_LOOPS, TrainingLoop, refusal
from .peft_kinds import PeftMethod
from .registry import Registry
from .run_config import *  # noqa: F401,F403
from .run_config import __all__ as _run_config_names
from .schedule_kinds import Schedule, Warmup

__all__ = [*_run_config_names, "PeftMethod", "Registry", "Schedule", "TRAINING_LOOPS", "TrainingLoop", "Warmup",
           "refusal"]
