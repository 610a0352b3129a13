"""ftcore: a small, readable fine-tuning engine for the chapter 3.2 "微调方法" teaching suite.

The flow is ``RunConfig -> run() -> RunRecord``: configure a run, train it (or fetch it from the
run cache), and read its tidy tables. ftcore never imports matplotlib; ``viz`` draws the records.

>>> from ftcore import RunConfig, run
>>> rec = run(RunConfig(task="rt-sentiment", train_size=2000))   # doctest: +SKIP
>>> rec.metric("accuracy", split="test")                          # doctest: +SKIP
"""
__version__ = "0.1.0"

# Lazy attributes (PEP 562): ``import ftcore.records.record`` or ``ftcore.records.metrics`` must not import torch,
# so that viz can read records without it.
_EXPORTS = {
    "MissingAssetError": "engine.assets", "ConfigError": "config", "RunConfig": "config", "load_config": "config",
    "freeze": "engine.layers", "freeze_to": "engine.layers", "layer_groups": "engine.layers", "unfreeze": "engine.layers",
    "RecordError": "records.record", "RunRecord": "records.record", "load_record": "records.record",
    "build": "engine.runs", "run": "engine.runs", "run_id": "engine.runs", "train": "engine.runs",
    "TaskError": "engine.tasks", "load_task": "engine.tasks", "task_names": "engine.tasks",
    "Callback": "engine.trainer", "Trainer": "engine.trainer",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'ftcore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = ["Callback", "ConfigError", "MissingAssetError", "RecordError", "RunConfig", "RunRecord",
           "TaskError", "Trainer", "build", "freeze", "freeze_to", "layer_groups", "load_config",
           "load_record", "load_task", "run", "run_id", "task_names", "train", "unfreeze"]
