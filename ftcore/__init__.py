"""ftcore: a small, readable fine-tuning engine for the chapter 3.2 "微调方法" teaching suite.

The flow is ``RunConfig -> run() -> RunRecord``: configure a run, train it (or fetch it from the
run cache), and read its tidy tables. ftcore never imports matplotlib; ``viz`` draws the records.

>>> from ftcore import RunConfig, run
>>> rec = run(RunConfig(task="rt-sentiment", train_size=2000))   # doctest: +SKIP
>>> rec.metric("accuracy", split="test")                          # doctest: +SKIP
"""
__version__ = "0.1.0"

from .assets import MissingAssetError
from .config import ConfigError, RunConfig, load_config
from .layers import freeze, freeze_to, layer_groups, unfreeze
from .record import RecordError, RunRecord, load_record
from .runs import build, run, run_id, train
from .tasks import TaskError, load_task, task_names
from .trainer import Callback, Trainer

__all__ = ["Callback", "ConfigError", "MissingAssetError", "RecordError", "RunConfig", "RunRecord",
           "TaskError", "Trainer", "build", "freeze", "freeze_to", "layer_groups", "load_config",
           "load_record", "load_task", "run", "run_id", "task_names", "train", "unfreeze"]
