"""The training loops that turn a RunConfig into a RunRecord, each with what it cannot do.

ftcore's own :class:`~ftcore.engine.trainer.Trainer`, and the same run handed to Hugging Face's
``Trainer`` (:mod:`ftcore.engine.hf`) or to PyTorch Lightning (:mod:`ftcore.engine.lightning`) so
the loops can be compared on one config. An entry names the loop in records (run id, summary,
provenance) and in figures (``label``), says where its cache entry comes from (``stored``), and lists
what of a config it refuses before anything is loaded (``refuses``), reading the schedule and
warmup entries' flags rather than lists of names.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .registry import Registry
from .schedule_kinds import SCHEDULES, WARMUPS


@dataclass(frozen=True)
class TrainingLoop:
    name: str
    label: str  # how figures and messages name it
    module: str  # where it lives
    trainer: str  # provenance["trainer"]: what applied the updates
    grad_norms: str  # provenance["grad_norms"]: when the per-group gradient norms are read
    stored: str  # "module:function": its cache entry for a config, ``stored(cfg, runs_dir)``
    refuses: Callable[[Any], list[str]] = lambda cfg: []  # what of a config it cannot do, in words
    # a loop other than ftcore's own names itself in its run ids and summaries, so its records never
    # share a folder with ftcore's run of the same config
    marks_records: bool = True


def _hf_refuses(c) -> list[str]:
    hf_kinds = ", ".join(n for n, s in SCHEDULES.items() if s.hf)
    bad = [(SCHEDULES[c.schedule].hf is None, f"schedule={c.schedule!r} (Trainer: {hf_kinds})"),
           (not WARMUPS[c.warmup].hf, f"warmup={c.warmup!r} (Trainer warms up linearly)"),
           (c.freeze == "gradual", "freeze='gradual'"), (c.optimizer != "adamw", f"optimizer={c.optimizer!r}"),
           (c.score_train, "score_train=True"), (c.min_lr_ratio != 0, "min_lr_ratio"),
           (c.eval_at_start, "eval_at_start=True"),
           (not c.frozen_dropout, "frozen_dropout=False (Trainer keeps dropout on in frozen layers)")]
    return [name for flag, name in bad if flag]


def _lightning_refuses(c) -> list[str]:
    # the validation loss never reaches ftcore's LRSchedule.on_validation under Lightning
    bad = [(c.freeze == "gradual", "freeze='gradual'"),
           (SCHEDULES[c.schedule].on_validation, f"schedule={c.schedule!r}"), (c.score_train, "score_train=True")]
    return [name for flag, name in bad if flag]


TRAINING_LOOPS: Registry[TrainingLoop] = Registry("training loop", [
    TrainingLoop("ftcore", "ftcore", "ftcore.engine.trainer", "ftcore.engine.trainer.Trainer",
                 "after each update's backward passes, before clipping (ftcore.engine.callbacks.Recorder)",
                 "ftcore.engine.runs:stored_run", marks_records=False),
    TrainingLoop("hf", "HF Trainer", "ftcore.engine.hf", "transformers.Trainer via ftcore.engine.hf.train_hf",
                 "per-parameter post-accumulate-grad hooks, before clipping", "ftcore.engine.hf:stored_hf_run",
                 _hf_refuses),
    TrainingLoop("lightning", "Lightning", "ftcore.engine.lightning",
                 "lightning.pytorch.Trainer via ftcore.engine.lightning",
                 "on_before_optimizer_step, after accumulation and before clipping",
                 "ftcore.engine.lightning:stored_lightning_run", _lightning_refuses),
])


def refusal(loop: str, cfg) -> str | None:
    """The one-line message refusing what of ``cfg`` the loop cannot do (None: it can run it)."""
    entry = TRAINING_LOOPS[loop]
    bad = entry.refuses(cfg)
    if not bad:
        return None
    return (f"RunConfig {', '.join(bad)} is not supported by the {entry.label} path ({entry.module}); "
            "use `ftcore run` for it")


__all__ = ["TRAINING_LOOPS", "TrainingLoop", "refusal"]
