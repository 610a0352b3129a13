"""Catastrophic forgetting and continual learning: one encoder, a sequence of tasks, one head per task.

After each task is trained, every task seen so far is evaluated on its test split (on its whole
validation split instead when the base config does not test: a sequence that scores a choice,
``chapter.protocol``); those rows of the record's ``evals`` form the accuracy matrix (:func:`accuracy_matrix`), from which forgetting,
backward transfer and average accuracy are derived (:func:`sequence_metrics`), never stored. Methods that fight
forgetting are small strategy objects (``STRATEGIES``) that add callbacks or change the data of the
ordinary loop: every task is a trainer from ``runs.build``, and ``record_builder.build_record`` writes the record:

=============  =====================================================================================
naive          fine-tune on each task in turn (the baseline that forgets)
ewc            Elastic Weight Consolidation (Kirkpatrick et al. 2017): penalty λ/2 Σ F_i (θ_i − θ*_i)²
               with a diagonal Fisher F from the previous tasks' data; ``ewc_online`` keeps one
               running Fisher (Schwarz et al. 2018) instead of one term per task
replay         a memory of ``replay_memory`` of each finished task's training examples; every batch
               of later tasks draws ``replay_fraction`` of its examples from it (scored by their own,
               fixed heads: replay keeps the shared encoder working for them)
lwf            Learning without Forgetting (Li & Hoiem 2016): keep the old heads' outputs on the new
               data close to what the model before this task produced (distillation, temperature T)
l2sp           L2 toward the pretrained weights (Li et al. 2018): penalty α/2 ‖θ − θ₀‖²
lora           parameter isolation: a frozen encoder with one LoRA adapter (and head) per task
replay_ewc     replay and EWC together (the combination seed 001 recommends): the memory feeds the
               batches and the Fisher penalties hold the encoder
joint          multi-task training, the upper bound: each task is trained mixed with all earlier
               tasks' training data in proportion (the whole memory once per epoch), so after the
               last task the model has seen every task together; it costs about (T+1)/2 times naive
=============  =====================================================================================

Heads are per task because with a single shared head EWC does no better than naive training
(Avalanche issues 697 and 1660): the head itself is overwritten.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.callbacks import Callback, DivergenceDetector, ProgressBar, Recorder
from ..config import ConfigError, RunConfig
from ..engine.data import TaskData, prepare_data
from ..records.metrics import accuracy_matrix, forgetting_metrics, sequence_metrics  # noqa: F401 (re-exported)
from ..engine.models import load_model, resolve_model
from ..records.cache import Stored, fetch_or_compute, key_id, runs_dir_or_default
from ..records.record import SCHEMA_VERSION, RecordError, RunRecord
from ..engine.tasks import load_task, stratified_subsample
from ..engine.trainer import Trainer

METHODS = ("naive", "ewc", "replay", "lwf", "l2sp", "lora", "replay_ewc", "joint")
PAD_LOGIT = -1e4  # logits of classes a task does not have (a batch may mix tasks of 2 and 5 classes)


# ============================================================================ configuration
@dataclass(frozen=True)
class ContinualConfig:
    """A task sequence: the shared run settings in ``base`` (its ``task`` is ignored) and a method."""

    base: RunConfig = field(default_factory=lambda: RunConfig(train_size=1000, epochs=2))
    tasks: tuple[str, ...] = ("rt-sentiment", "bbc-topic", "rt-subjectivity")
    method: str = "naive"
    ewc_lambda: float = 1e6  # EWC penalty weight λ. The empirical Fisher of a fine-tuned encoder is
    # tiny: on rt-sentiment → bbc-topic → rt-subjectivity, λ=1e4 added a penalty of ~0.03 and kept
    # nothing (forgetting 0.35 / 0.71 as naive), λ=1e6 a penalty of ~0.1-0.3 and kept most of it
    # (forgetting 0.01 / 0.13)
    ewc_online: bool = False
    ewc_gamma: float = 1.0  # online EWC: decay of the running Fisher
    fisher_examples: int = 256  # examples used to estimate the Fisher after each task
    replay_memory: float = 0.1  # share of each finished task's training examples kept in memory
    replay_fraction: float = 0.25  # share of every later batch drawn from memory
    lwf_alpha: float = 1.0  # weight of the distillation loss
    lwf_temperature: float = 2.0
    l2sp_alpha: float = 0.1  # weight of the L2-SP penalty
    lora_lr: float | None = 1e-3  # LoRA adapters start at zero and need a larger LR than full
    # fine-tuning (at the base 5e-5 they barely move in a few hundred steps); None = base.lr
    forgetting_threshold: float = 0.7  # warn when an old task falls below this share of its accuracy
    eval_unseen: bool = False  # also evaluate tasks not trained yet (with a random head)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if isinstance(self.base, dict):
            object.__setattr__(self, "base", RunConfig.from_dict(self.base))
        if self.method not in METHODS:
            raise ConfigError(f"ContinualConfig.method={self.method!r} is not allowed: expected one of "
                              + ", ".join(map(repr, METHODS)))
        if len(self.tasks) < 2:
            raise ConfigError(f"ContinualConfig.tasks={self.tasks!r} is not allowed: expected at least 2 tasks")
        repeated = sorted({t for t in self.tasks if self.tasks.count(t) > 1})
        if repeated:
            raise ConfigError(f"ContinualConfig.tasks={self.tasks!r} is not allowed: task(s) {repeated} "
                              "repeated; each task appears once")
        for name, lo, hi, lo_open, hi_open in [
                ("ewc_lambda", 0, None, False, False), ("ewc_gamma", 0, 1, True, False),
                ("replay_memory", 0, 1, True, False), ("replay_fraction", 0, 1, True, True),
                ("lwf_alpha", 0, None, False, False), ("lwf_temperature", 0, None, True, False),
                ("l2sp_alpha", 0, None, False, False), ("forgetting_threshold", 0, 1, True, True),
                ("lora_lr", 0, 10, True, False)]:
            if name == "lora_lr" and self.lora_lr is None:
                continue
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                and (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
            if not ok:
                rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}{')' if hi_open or hi is None else ']'}"
                raise ConfigError(f"ContinualConfig.{name}={v!r} is not allowed: expected a number in {rng}")
        if not isinstance(self.fisher_examples, int) or self.fisher_examples < 1:
            raise ConfigError(f"ContinualConfig.fisher_examples={self.fisher_examples!r} is not allowed: "
                              "expected an integer >= 1")
        if not self.base.test_at_end and "validation" not in self.base.eval_splits:
            raise ConfigError("ContinualConfig.base has test_at_end=False and no 'validation' in eval_splits: "
                              "a sequence evaluates every task on one of them; add 'validation' to eval_splits")
        if self.method == "lora" and self.base.peft not in ("none", "lora"):
            raise ConfigError(f"RunConfig.peft={self.base.peft!r} is not allowed with method='lora'")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["base"], out["tasks"] = self.base.to_dict(), list(self.tasks)
        return out

    def identity(self) -> dict[str, Any]:
        out = self.to_dict()
        out["base"] = self.base.identity_dict()
        return out

    @property
    def matrix_split(self) -> str:
        """The split the accuracy matrix is measured on: test, or validation when the base config
        does not test (a sequence that scores a choice must never read test)."""
        return "test" if self.base.test_at_end else "validation"

    def task_config(self, task: str) -> RunConfig:
        cfg = self.base.replace(task=task, early_stopping_patience=None)
        if self.method == "lora" and self.lora_lr is not None:
            cfg = cfg.replace(lr=self.lora_lr)
        return cfg


def _check_tasks(ccfg: ContinualConfig) -> None:
    from ..engine.tasks import TaskError
    for t in ccfg.tasks:
        try:
            load_task(t)
        except TaskError as exc:
            raise ConfigError(f"ContinualConfig.tasks: unknown task {t!r} ({exc})") from None


# ============================================================================ the model
class TaskHeads(nn.Module):
    """Takes the place of a classifier: one linear head per task.

    ``active`` selects the head; ``route`` (a tensor of head indices, one per example) lets one
    batch mix tasks, in which case every row is padded to the widest head with ``PAD_LOGIT``."""

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = in_features
        self.heads = nn.ModuleList()
        self.num_labels: list[int] = []
        self.active = 0
        self.route: torch.Tensor | None = None

    def add(self, num_labels: int, *, seed: int) -> int:
        gen = torch.Generator().manual_seed(seed)
        head = nn.Linear(self.in_features, num_labels)
        with torch.no_grad():  # BERT's own initialisation of a classifier
            head.weight.normal_(0.0, 0.02, generator=gen)
            head.bias.zero_()
        self.heads.append(head)
        self.num_labels.append(num_labels)
        return len(self.heads) - 1

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        self.last_input = pooled  # kept for distillation: old heads on the same features, no re-encoding
        if self.route is None:
            return self.heads[self.active](pooled)
        width = max(self.num_labels)
        out = pooled.new_full((pooled.shape[0], width), PAD_LOGIT)
        for i in self.route.unique().tolist():
            rows = self.route == i
            out[rows, : self.num_labels[i]] = self.heads[i](pooled[rows]).to(out.dtype)
        return out


def multi_head_model(ccfg: ContinualConfig) -> nn.Module:
    """The base config's encoder with a :class:`TaskHeads` in place of its classifier."""
    base = ccfg.base
    model = load_model(base.model, 2, seed=base.seed, init=base.init, dropout=base.dropout,
                       reinit_top=base.reinit_top)
    if not hasattr(model, "classifier"):
        raise ConfigError(f"RunConfig.model={base.model!r}: task sequences need a model with a "
                          "`classifier` attribute (BERT-family sequence classifiers)")
    model.classifier = TaskHeads(model.classifier.in_features)
    return model


def heads_of(model: nn.Module) -> TaskHeads:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.classifier


# ============================================================================ the methods
def encoder_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """Shared (non-head) parameters that are trainable: what EWC and L2-SP protect."""
    return {n: p for n, p in model.named_parameters() if ".classifier." not in f".{n}" and p.requires_grad}


class QuadraticPenalty(Callback):
    """Adds ``weight/2 Σ_i F_i (θ_i − anchor_i)²`` to the loss: EWC (F = Fisher) and L2-SP (F = 1)."""

    order = 15

    def __init__(self, weight: float, anchor: dict[str, torch.Tensor], importance: dict[str, torch.Tensor] | None):
        self.weight, self.anchor, self.importance = weight, anchor, importance

    def penalty(self, model: nn.Module) -> torch.Tensor:
        total = None
        for n, p in encoder_params(model).items():
            if n not in self.anchor:
                continue
            d2 = (p - self.anchor[n]).pow(2)
            term = (d2 * self.importance[n]).sum() if self.importance is not None else d2.sum()
            total = term if total is None else total + term
        return 0.5 * self.weight * total if total is not None else torch.zeros(())

    def on_after_loss(self, t: Trainer) -> None:
        term = self.penalty(t.model)
        t.penalty = term if t.penalty is None else t.penalty + term


class Distillation(Callback):
    """LwF: the old heads' softened outputs on new data should stay what the previous model said."""

    order = 15

    def __init__(self, teacher: nn.Module, old_heads: list[int], alpha: float, temperature: float):
        self.teacher, self.old_heads, self.alpha, self.T = teacher.eval(), old_heads, alpha, temperature

    def on_after_loss(self, t: Trainer) -> None:
        inputs = {k: v for k, v in t.batch.items() if k not in ("labels", "task")}
        student_heads, teacher_heads = heads_of(t.model), heads_of(self.teacher)
        with t.autocast:  # the same precision as the task loss's forward (bf16 runs included)
            with torch.no_grad():  # one teacher forward per batch: the extra compute LwF costs
                teacher_heads.route = None
                self.teacher(**inputs)
                teacher_features = teacher_heads.last_input
            student_features = student_heads.last_input  # from this batch's own forward pass
            loss = None
            for i in self.old_heads:
                soft = F.softmax(teacher_heads.heads[i](teacher_features).float() / self.T, dim=-1)
                log_p = F.log_softmax(student_heads.heads[i](student_features).float() / self.T, dim=-1)
                term = F.kl_div(log_p, soft, reduction="batchmean") * self.T ** 2
                loss = term if loss is None else loss + term
        if loss is not None:
            t.penalty = self.alpha * loss if t.penalty is None else t.penalty + self.alpha * loss


def fisher_diagonal(model: nn.Module, data: TaskData, head: int, *, n_examples: int, seed: int,
                    batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the shared parameters on ``n_examples`` training examples.

    Mean over mini-batches of 8 of the squared gradient of the log-likelihood of the true labels
    (batches, not single examples, to keep it affordable on a CPU; it underestimates the
    per-example Fisher by a roughly constant factor, which λ absorbs)."""
    from ..engine.data import _Examples

    heads = heads_of(model)
    heads.active, heads.route = head, None
    idx = stratified_subsample(data.train["label"], n_examples, seed)
    part = {k: [data.train[k][i] for i in idx] for k in ("input_ids", "label")}
    loader = torch.utils.data.DataLoader(_Examples(part), batch_size=batch_size, collate_fn=data.collator)
    params = encoder_params(model)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()  # no dropout: the Fisher of the model as it is
    n_batches = 0
    for b in loader:
        model.zero_grad(set_to_none=True)
        labels = b.pop("labels")
        F.cross_entropy(model(**b).logits.float(), labels).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return {n: f / max(1, n_batches) for n, f in fisher.items()}


class PenaltyMeter(Callback):
    """Mean of the added penalty (EWC, L2-SP, distillation) over a task's updates: is λ biting?"""

    order = 91

    def __init__(self):
        self.values: list[float] = []

    def on_step_end(self, t: Trainer) -> None:
        self.values.append(t.penalty_sum)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else 0.0


class ForgettingMonitor(Callback):
    """Logs a ``forgetting_warning`` event when an old task's accuracy falls below ``threshold`` × the
    accuracy it had right after it was trained. One instance follows the whole sequence."""

    order = 40

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.first: dict[str, float] = {}
        self.warned: set[str] = set()

    def on_eval_end(self, t: Trainer) -> None:
        if not getattr(t, "cross_task", False):
            return
        split = "test" if "test" in t.last_eval else "validation"
        task, acc = t.eval_task, t.last_eval[split]["accuracy"]
        if task == t.cfg.task:
            self.first.setdefault(task, acc)
        elif task in self.first and acc < self.threshold * self.first[task] and task not in self.warned:
            self.warned.add(task)
            t.log_event("forgetting_warning",
                        f"{task}: {split} accuracy {acc:.3f} < {self.threshold:g} x {self.first[task]:.3f} "
                        f"(its accuracy right after training) while training {t.cfg.task}")


# ============================================================================ the loop for one task
class TaskTrainer(Trainer):
    """The ordinary loop on one task of a sequence: routes replayed examples to their own heads."""

    def __init__(self, *args, head: int, memory: dict | None, replay_fraction: float,
                 epochs_over_mix: bool = False, **kw):
        """``epochs_over_mix``: an epoch is one pass over the mixed batches (new and memory
        examples, as joint training counts it), not the new task's share of the steps (replay's
        default: the same optimizer steps as naive)."""
        self.current_head, self.memory, self.replay_fraction = head, memory, replay_fraction
        self.epochs_over_mix = epochs_over_mix
        super().__init__(*args, **kw)
        self.cross_task = False

    def batches_per_epoch(self) -> int:
        if self.epochs_over_mix and self.memory:
            return replay_batches(len(self.data.train["label"]), self.cfg.batch_size, self.replay_fraction)
        return super().batches_per_epoch()

    def compute_loss(self, batch):
        heads = heads_of(self.model)
        heads.active = self.current_head
        heads.route = batch.get("task")
        try:
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "task")}
            logits = self.model(**inputs).logits
        finally:
            heads.route = None
        loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=self.cfg.label_smoothing)
        return loss, logits

    def train_batches(self, epoch_seed: int):
        if not self.memory:
            return super().train_batches(epoch_seed)
        return replay_loader(self.data, self.memory, self.current_head, self.cfg.batch_size,
                             self.replay_fraction, epoch_seed)


def _k_old(batch_size: int, fraction: float) -> int:
    """Memory examples in each replay batch (at least one, and at least one new example)."""
    return min(batch_size - 1, max(1, round(fraction * batch_size)))


def replay_batches(n_new: int, batch_size: int, fraction: float) -> int:
    """Batches of :func:`replay_loader` in one pass over the new task's ``n_new`` examples."""
    return math.ceil(n_new / (batch_size - _k_old(batch_size, fraction)))


def replay_loader(data: TaskData, memory: dict, head: int, batch_size: int, fraction: float, seed: int):
    """Batches of ``batch_size`` with exactly ``round(fraction × batch_size)`` examples from memory.

    The new task's examples are each seen once per epoch; memory examples are drawn in a shuffled
    cycle, so old tasks come back evenly."""
    from ..engine.data import _Examples

    rng = np.random.default_rng(seed)
    k_old = _k_old(batch_size, fraction)
    k_new = batch_size - k_old
    n_new, n_mem = len(data.train["label"]), len(memory["label"])
    new_order = rng.permutation(n_new)
    mem_cycle = np.concatenate([rng.permutation(n_mem) for _ in range(math.ceil(n_new / k_new * k_old / n_mem) + 1)])
    part = {"input_ids": list(data.train["input_ids"]) + list(memory["input_ids"]),
            "label": list(data.train["label"]) + list(memory["label"]),
            "task": [head] * n_new + list(memory["task"])}
    batches, m = [], 0
    for start in range(0, n_new, k_new):
        new = new_order[start:start + k_new].tolist()
        old = (mem_cycle[m:m + k_old] + n_new).tolist()
        m += k_old
        batches.append(new + old)

    class WithTask(_Examples):
        def __getitem__(self, i):
            return {**super().__getitem__(i), "task": part["task"][i]}

    ds = WithTask(part)
    return torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=data.collator)


class CrossTaskEvaluation(Callback):
    """At the end of a task, evaluates every task seen so far (and unseen ones if asked) on ``split``
    (test; validation for a sequence that scores a choice); the rows become the accuracy matrix."""

    order = 25

    def __init__(self, tasks: list[tuple[str, int, TaskData]], select=None, split: str = "test"):
        """``tasks``: (name, head, data) of each task to evaluate; ``select(head)`` makes a task the
        one the model computes (default: activate its head)."""
        self.tasks, self.select, self.split = tasks, select, split

    def _select(self, t: Trainer, head: int) -> None:
        if self.select is not None:
            self.select(head)
        else:
            heads_of(t.model).active = head

    def on_fit_end(self, t: Trainer) -> None:
        if t.stop_reason == "diverged":
            return
        t.cross_task = True
        for name, head, data in self.tasks:
            self._select(t, head)
            t.eval_task = name
            t.last_eval = {self.split: t.evaluate(self.split, data)}
            t.fire("eval_end")
        self._select(t, t.current_head)
        t.cross_task = False


# ============================================================================ the methods, as strategies
class Naive:
    """Fine-tune on each task in turn. The base of every method: the hooks a method may change.

    The sequence calls ``prepare(model)`` once, then for each task ``i``: ``select(i)``, the task's
    ``callbacks(i)`` join its trainer, ``memory`` feeds its batches, and ``after_task(i, trainer)``
    runs when it is trained (not after the last task). Time spent outside the loop on the method's
    behalf (a teacher's copy, a Fisher) is added to ``extra_s``."""

    def __init__(self, ccfg: ContinualConfig):
        self.ccfg, self.model, self.extra_s = ccfg, None, 0.0
        self.memory: dict | None = None

    def prepare(self, model: nn.Module) -> nn.Module:
        self.model = model
        return model

    def select(self, i: int) -> None:
        """Make task ``i`` the one the model computes (its head; LoRA: its adapter too)."""
        heads_of(self.model).active = i

    def callbacks(self, i: int) -> list[Callback]:
        return []

    def after_task(self, i: int, trainer: Trainer) -> None:
        pass

    def replay_fraction(self, i: int, n_new: int) -> float:
        """Share of task ``i``'s batches drawn from memory (``n_new`` = its training examples)."""
        return self.ccfg.replay_fraction

    def trains_head(self, i: int, head: int) -> bool:
        """Whether ``head`` trains during task ``i`` (the task's own head only: old heads stay fixed)."""
        return head == i

    epochs_over_mix = False  # replay keeps naive's optimizer steps; joint training counts mixed epochs

    @contextlib.contextmanager
    def timed(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.extra_s += time.perf_counter() - t0


class EWC(Naive):
    """One quadratic penalty per finished task, weighted by its diagonal Fisher (``ewc_online``:
    one running Fisher decayed by ``ewc_gamma``)."""

    def __init__(self, ccfg: ContinualConfig):
        super().__init__(ccfg)
        self.terms: list[QuadraticPenalty] = []  # one per finished task

    def callbacks(self, i: int) -> list[Callback]:
        return list(self.terms)

    def after_task(self, i: int, trainer: Trainer) -> None:
        c = self.ccfg
        with self.timed():
            fisher = fisher_diagonal(self.model, trainer.data, i, n_examples=c.fisher_examples, seed=trainer.cfg.seed)
            anchor = {n: p.detach().clone() for n, p in encoder_params(self.model).items()}
            if c.ewc_online and self.terms:
                fisher = {n: c.ewc_gamma * self.terms[0].importance[n] + f for n, f in fisher.items()}
                self.terms = [QuadraticPenalty(c.ewc_lambda, anchor, fisher)]
            else:
                self.terms.append(QuadraticPenalty(c.ewc_lambda, anchor, fisher))


class L2SP(Naive):
    """A penalty toward the pretrained encoder weights, the same for every task."""

    def prepare(self, model: nn.Module) -> nn.Module:
        self.anchor = {n: p.detach().clone() for n, p in encoder_params(model).items()}
        return super().prepare(model)

    def callbacks(self, i: int) -> list[Callback]:
        return [QuadraticPenalty(self.ccfg.l2sp_alpha, self.anchor, None)]


class LwF(Naive):
    """From the second task on, a frozen copy of the model as it was is the teacher of the old heads."""

    def callbacks(self, i: int) -> list[Callback]:
        if i == 0:
            return []
        with self.timed():
            teacher = copy.deepcopy(self.model)
        return [Distillation(teacher, list(range(i)), self.ccfg.lwf_alpha, self.ccfg.lwf_temperature)]


class Replay(Naive):
    """After each task, a share of its training examples joins the memory later batches draw from."""

    def after_task(self, i: int, trainer: Trainer) -> None:
        self.memory = _extend_memory(self.memory, trainer.data, i, self.ccfg.replay_memory, trainer.cfg.seed)


class LoRA(Naive):
    """A frozen encoder with one LoRA adapter per task, selected with its head."""

    def prepare(self, model: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        base = self.ccfg.base

        # No task_type: PEFT would then wrap the classifier (our TaskHeads) as a module to save.
        def lora() -> LoraConfig:
            return LoraConfig(r=base.lora_r, lora_alpha=base.lora_alpha, lora_dropout=base.lora_dropout,
                              target_modules=list(base.lora_targets))
        model = get_peft_model(model, lora(), adapter_name="task0")
        for i in range(1, len(self.ccfg.tasks)):
            model.add_adapter(f"task{i}", lora())
        return super().prepare(model)

    def select(self, i: int) -> None:
        self.model.set_adapter(f"task{i}")
        super().select(i)


class ReplayEWC(EWC):
    """Replay and EWC at once: after each task its Fisher penalty is added and a share of its
    examples joins the memory (``replay_memory``, ``ewc_lambda`` as for each alone)."""

    def after_task(self, i: int, trainer: Trainer) -> None:
        super().after_task(i, trainer)
        Replay.after_task(self, i, trainer)


class Joint(Naive):
    """Multi-task training: every finished task's whole training set stays in memory, and each
    later task is trained mixed with it in proportion (memory / (memory + new) of every batch), so
    an epoch sees every example of every task so far once."""

    def after_task(self, i: int, trainer: Trainer) -> None:
        self.memory = _extend_memory(self.memory, trainer.data, i, 1.0, trainer.cfg.seed)

    def replay_fraction(self, i: int, n_new: int) -> float:
        n_old = len(self.memory["label"]) if self.memory else 0
        return n_old / (n_old + n_new)

    def trains_head(self, i: int, head: int) -> bool:
        return head <= i  # every task seen so far learns, its head included

    epochs_over_mix = True


STRATEGIES: dict[str, type[Naive]] = {"naive": Naive, "ewc": EWC, "replay": Replay, "lwf": LwF,
                                      "l2sp": L2SP, "lora": LoRA, "replay_ewc": ReplayEWC, "joint": Joint}


def _extend_memory(memory: dict | None, data: TaskData, head: int, share: float, seed: int) -> dict:
    idx = stratified_subsample(data.train["label"], max(1, round(share * len(data.train["label"]))), seed)
    new = {"input_ids": [data.train["input_ids"][i] for i in idx],
           "label": [data.train["label"][i] for i in idx], "task": [head] * len(idx)}
    if memory is None:
        return new
    return {k: memory[k] + new[k] for k in new}


# ============================================================================ the sequence
def sequence_id(ccfg: ContinualConfig) -> str:
    return key_id({"continual": ccfg.identity(), "model": resolve_model(ccfg.base.model).fingerprint,
                   "data": [load_task(t).fingerprint for t in ccfg.tasks], "schema": SCHEMA_VERSION},
                  prefix="seq-")


def train_sequence(ccfg: ContinualConfig) -> RunRecord:
    """Train the task sequence now and return one record for the whole sequence.

    Each task is an ordinary trainer from :func:`ftcore.engine.runs.build` on the shared model, with
    the method's callbacks; one Recorder follows the whole sequence (steps and time continue), and
    the record builder every loop uses (:func:`ftcore.engine.record_builder.build_record`) writes it
    with the events and the summary of all tasks."""
    from ..engine.precision import resolve
    from ..engine.record_builder import build_record
    from ..engine.runs import build, recorder_of, setup

    ccfg = dataclasses.replace(ccfg, base=resolve(ccfg.base))  # the record names the precision used
    _check_tasks(ccfg)
    base, n = ccfg.base, len(ccfg.tasks)
    device = setup(base)
    datas = {t: prepare_data(ccfg.task_config(t)) for t in ccfg.tasks}
    model = multi_head_model(ccfg)
    heads = heads_of(model)
    for i, t in enumerate(ccfg.tasks):
        heads.add(datas[t].num_labels, seed=base.seed * 7919 + i)
    method = STRATEGIES[ccfg.method](ccfg)
    model = method.prepare(model)
    recorder = Recorder(grad_norms=base.record_grad_norms)
    monitor = ForgettingMonitor(ccfg.forgetting_threshold)
    events, per_task = [], []
    step_offset, time_offset = 0, 0.0
    t_seq, cpu_seq = time.perf_counter(), time.process_time()
    for i, task in enumerate(ccfg.tasks):
        cfg = ccfg.task_config(task)
        method.extra_s = 0.0
        meter = PenaltyMeter()
        cbs: list[Callback] = [DivergenceDetector(cfg.divergence_factor), recorder, monitor, meter]
        if cfg.progress:
            cbs.append(ProgressBar(desc=f"{ccfg.method} {i + 1}/{n} {task}"))
        cbs += method.callbacks(i)  # (LwF's teacher is copied before the heads' flags change)
        method.select(i)
        for h, head in enumerate(heads.heads):  # the shared part trains; other tasks' heads stay
            head.requires_grad_(method.trains_head(i, h))
        evaluated = range(n) if ccfg.eval_unseen else range(i + 1)
        cbs.append(CrossTaskEvaluation([(ccfg.tasks[j], j, datas[ccfg.tasks[j]]) for j in evaluated], method.select,
                                       split=ccfg.matrix_split))
        trainer = build(cfg, cbs, model=model, data=datas[task], seed=cfg.seed + i, trainer_cls=TaskTrainer,
                        head=i, memory=method.memory,
                        replay_fraction=method.replay_fraction(i, len(datas[task].train["label"])),
                        epochs_over_mix=method.epochs_over_mix)
        recorder.offset_step, recorder.offset_time = step_offset, time_offset
        trainer.log_event("task_start", task)
        trainer.fit()
        trainer.log_event("task_end", task)
        events += [(s + step_offset, k, d) for s, k, d in trainer.events]
        if i < n - 1:
            method.after_task(i, trainer)
        losses = [r[3] for r in recorder.rows["steps"][-trainer.step:]] if trainer.step else None
        per_task.append({"task": task, "steps": trainer.step, "train_s": trainer.elapsed - trainer.eval_s,
                         "eval_s": trainer.eval_s, "method_extra_s": method.extra_s, "mean_penalty": meter.mean,
                         "mean_task_loss": float(np.mean(losses)) if losses else None,
                         "status": trainer.stop_reason or "completed"})
        step_offset += trainer.step
        time_offset += trainer.elapsed
        if trainer.stop_reason == "diverged":
            break

    summary = {  # the sequence's own layout (per task); status comes from the last trainer's stop
        "method": ccfg.method, "tasks": list(ccfg.tasks), "per_task": per_task,
        "wall_s": time.perf_counter() - t_seq, "cpu_s": round(time.process_time() - cpu_seq, 2),
        "train_s": sum(t["train_s"] for t in per_task),
        "method_extra_s": sum(t["method_extra_s"] for t in per_task),
        "trainable_params_at_end": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
        "replay_memory_examples": len(method.memory["label"]) if method.memory else 0,
    }
    config = {"continual": ccfg.to_dict(), "task": "+".join(ccfg.tasks), "model": base.model}
    return build_record("ftcore", base, device=device, tasks=[load_task(t) for t in ccfg.tasks],
                        tables=recorder_of(trainer).rows, events=events,
                        stop_reason="diverged" if trainer.stop_reason == "diverged" else None, summary=summary,
                        run_id=sequence_id(ccfg), config=config, with_final_metrics=False)


def stored_sequence(ccfg: ContinualConfig, runs_dir: str | os.PathLike | None = None) -> Stored:
    """The task sequence as the cache sees it: its record folder, the check that a stored record
    holds this sequence, and how to train it."""
    sid, expected = sequence_id(ccfg), json.loads(json.dumps(ccfg.identity()))

    def check(rec: RunRecord) -> None:  # settings outside the identity (threads, progress) may differ
        stored = rec.config.get("continual")
        if rec.run_id != sid or not isinstance(stored, dict) \
                or json.loads(json.dumps(ContinualConfig(**stored).identity())) != expected:
            raise RecordError("it holds a different sequence")
    return Stored("task sequence", runs_dir_or_default(runs_dir) / sid, RunRecord.load,
                  lambda: train_sequence(ccfg), check, describe=f"{ccfg.method} on {' → '.join(ccfg.tasks)}")


def run_sequence(ccfg: ContinualConfig, *, runs_dir: str | os.PathLike | None = None,
                 force: bool = False, render_only: bool = False) -> RunRecord:
    """The record of a task sequence, from the run cache when a valid one exists."""
    _check_tasks(ccfg)
    return fetch_or_compute(stored_sequence(ccfg, runs_dir), force=force, render_only=render_only)
