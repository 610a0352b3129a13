"""The training loop: a few dozen lines that students can read in one sitting.

Everything that is policy rather than mechanics lives in callbacks (``ftcore.engine.callbacks``):
recording, evaluation cadence, early stopping, progress bars, gradual unfreezing, divergence
detection. The loop only fires named events, in this order::

    fit_start
      epoch_start
        batch_start        (self.step is the number of the update being computed, from 1)
        after_loss         per batch: self.batch, self.logits and self.batch_loss are set; a callback
                           may add a term to self.penalty (EWC, L2-SP, distillation)
        after_backward     gradients exist, not yet clipped; the optimizer has not stepped
        step_end           the update is applied and the schedule advanced
        eval_end           after any evaluation (self.last_eval holds its metrics)
      epoch_end
    fit_end

A callback may set ``trainer.should_stop`` (via :meth:`Trainer.stop`) or, in ``after_backward``,
``trainer.skip_update`` to discard the update (a diverged loss must not reach the weights).
"""
from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F

from torch.utils.data import DataLoader

from ..config import RunConfig
from .data import EVAL_BATCH_SIZE, TaskData, eval_loader, train_loader
from .layers import frozen_eval, layer_groups
from .optim import build_optimizer
from .schedules import LRSchedule, adjustments

EVENTS = ("fit_start", "epoch_start", "batch_start", "after_loss", "after_backward", "step_end",
          "eval_end", "epoch_end", "fit_end")


class Callback:
    """Base class: override ``on_<event>(trainer)`` for the events you need (one of ``EVENTS``).
    Lower ``order`` runs first."""

    order = 50

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Trainer:
    """Fine-tunes ``model`` on ``data`` as ``cfg`` says, firing events for ``callbacks``."""

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, data: TaskData,
                 callbacks: list[Callback] = (), device: torch.device | str = "cpu"):
        self.cfg, self.model, self.data = cfg, model, data
        self.device = torch.device(device)
        self.groups = layer_groups(model)
        self.optimizer = build_optimizer(self.groups, cfg)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch() / cfg.grad_accum)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        self.schedule = LRSchedule(self.optimizer, cfg, self.total_steps, self.steps_per_epoch)
        self.callbacks: list[Callback] = []
        for cb in callbacks:
            self.add_callback(cb)
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16)
                         if cfg.precision == "bf16" else contextlib.nullcontext())
        # --- state the callbacks read
        self.step = 0  # optimizer updates started
        self.epoch_index = 0  # passes over the training set started (0-based)
        self.examples_seen = 0
        self.loss = float("nan")  # mean training loss of the current update's batches
        self.last_eval: dict[str, dict[str, float]] = {}
        self.last_predictions: dict[str, list[tuple[int, int, int]]] = {}  # split -> (index, label, pred)
        self.eval_task = cfg.task  # the task `last_eval` belongs to (a task sequence evaluates others)
        self.penalty_sum = 0.0  # sum of the callbacks' penalty terms over the current update
        self.events: list[tuple[int, str, str]] = []
        self.summary: dict = {}  # callbacks add what they measured (peak memory, best step, ...)
        self.should_stop, self.skip_update, self.stop_reason = False, False, None
        self._norms: dict[str, float] | None = None
        self.t0 = self.cpu0 = self.eval_s = 0.0

    # ------------------------------------------------------------------ events and control
    def add_callback(self, cb: Callback) -> Callback:
        """Add ``cb`` in its place by ``order`` (after those of equal order already there).

        Its ``on_*`` methods must name events of ``EVENTS``: a mistyped one would never fire."""
        unknown = [n for n in dir(cb) if n.startswith("on_") and n[3:] not in EVENTS and callable(getattr(cb, n))]
        if unknown:
            raise ValueError(f"{type(cb).__name__} has {', '.join(unknown)}, which no event calls; "
                             f"the events are {', '.join(EVENTS)}")
        order = getattr(cb, "order", 50)
        at = next((i for i, c in enumerate(self.callbacks) if getattr(c, "order", 50) > order), len(self.callbacks))
        self.callbacks.insert(at, cb)
        return cb

    def fire(self, event: str) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; the events are {', '.join(EVENTS)}")
        for cb in self.callbacks:
            handler = getattr(cb, "on_" + event, None)
            if handler is not None:
                handler(self)

    def stop(self, reason: str) -> None:
        if not self.should_stop:
            self.should_stop, self.stop_reason = True, reason

    def log_event(self, kind: str, detail: str = "") -> None:
        self.events.append((self.step, kind, detail))

    @property
    def epoch(self) -> float:
        """Training progress in epochs (fractional): examples seen / training-set size."""
        return self.examples_seen / len(self.data.train["label"])

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def cpu_elapsed(self) -> float:
        """CPU seconds of this process (all threads) since ``fit`` began: what the run cost."""
        return time.process_time() - self.cpu0

    # ------------------------------------------------------------------ the loop
    def batches_per_epoch(self) -> int:
        """Batches in one pass over the training data (what ``epochs`` counts)."""
        return math.ceil(len(self.data.train["label"]) / self.cfg.batch_size)

    def fit(self) -> "Trainer":
        self.model.to(self.device)
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        for kind, detail in adjustments(self):  # what differs from the config is recorded, never silent
            self.log_event(kind, detail)
        self.fire("fit_start")
        while self.step < self.total_steps and not self.should_stop:
            self.fire("epoch_start")
            micro: list[dict] = []
            for batch in self.train_batches(self.cfg.seed * 1009 + self.epoch_index):
                micro.append(batch)
                if len(micro) == self.cfg.grad_accum:
                    self._update(micro)
                    micro = []
                    if self.should_stop or self.step >= self.total_steps:
                        break
            else:
                if micro:  # the epoch's last, smaller group of batches
                    self._update(micro)
            self.fire("epoch_end")
            self.epoch_index += 1
        self.fire("fit_end")
        return self

    def _update(self, batches: list[dict]) -> None:
        """One optimizer step over ``batches`` (gradient accumulation), weighted by examples."""
        self.step += 1
        self.skip_update = False
        self.fire("batch_start")
        self.model.train()
        if not self.cfg.frozen_dropout:
            frozen_eval(self.model)  # frozen layers as a fixed feature extractor: no dropout
        n = sum(len(b["labels"]) for b in batches)
        total, self.penalty_sum = 0.0, 0.0
        for b in batches:
            self.batch = {k: v.to(self.device) for k, v in b.items()}
            with self.autocast:
                self.batch_loss, self.logits = self.compute_loss(self.batch)
            self.penalty = None
            self.fire("after_loss")
            objective = self.batch_loss if self.penalty is None else self.batch_loss + self.penalty
            (objective * (len(b["labels"]) / n)).backward()
            total += self.batch_loss.item() * len(b["labels"])
            if self.penalty is not None:
                self.penalty_sum += self.penalty.item() * len(b["labels"]) / n
        self.loss = total / n  # the task loss; penalties are kept apart in penalty_sum
        self.examples_seen += n
        self._norms = None  # per-group gradient norms of this step, computed once when asked for
        self.fire("after_backward")
        if self.skip_update:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            if self.cfg.clip_grad_norm is not None:
                # Clip by the global norm, assembled from the per-group norms the recorder may
                # already have computed (the gradients are read once, not twice). The norm is a
                # Python number here, so steps under the limit skip the no-op rescaling.
                total_norm = math.sqrt(sum(v * v for v in self.grad_norms().values()))
                if total_norm > self.cfg.clip_grad_norm:
                    torch.nn.utils.clip_grads_with_norm_(
                        [p for p in self.model.parameters() if p.grad is not None],
                        self.cfg.clip_grad_norm, torch.tensor(total_norm))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step()
        self.fire("step_end")

    # ------------------------------------------------------------------ the pieces a subclass may change
    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of a batch (with label smoothing) and the logits."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = self.model(**inputs).logits
        loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=self.cfg.label_smoothing)
        return loss, logits

    def train_batches(self, epoch_seed: int):
        """The batches of one epoch (shuffled by ``epoch_seed``, grouped by length)."""
        return train_loader(self.data, self.cfg, epoch_seed=epoch_seed)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str, data: TaskData | None = None) -> dict[str, float]:
        """Loss, accuracy, macro-F1 and the share of the most predicted class on a split."""
        t = time.perf_counter()
        # the test split also gets per-class precision/recall/F1 and the confusion matrix
        # and each example's prediction, stored so an interval can count the test items' sampling
        data = data or self.data
        preds = [] if split == "test" else None
        out = evaluate(self.model, data, split, device=self.device, autocast=self.autocast,
                       per_class=split == "test", predictions=preds)
        if preds is not None:
            self.last_predictions[split] = preds
        self.eval_s += time.perf_counter() - t
        return out

    def run_evaluation(self, splits) -> None:
        """Evaluate ``splits``, let the schedule see validation loss, then fire ``eval_end``."""
        self.eval_task = self.cfg.task
        self.last_predictions = {}
        self.last_eval = {s: self.evaluate(s) for s in splits}
        if "validation" in self.last_eval and self.schedule.on_validation(self.last_eval["validation"]["loss"]):
            lr = self.optimizer.param_groups[-1]["lr"]
            self.log_event("lr_reduced", f"head lr -> {lr:.3g}")
        self.fire("eval_end")

    # ------------------------------------------------------------------ measurements
    def grad_norms(self) -> dict[str, float]:
        """L2 norm of each layer group's gradient before clipping (frozen groups: 0).

        Computed once per step (at the first call after backward) and cached."""
        if self._norms is not None:
            return self._norms
        norms: dict[str, float] = {}
        pending = []
        for g in self.groups:
            grads = [p.grad for _, p in g.params if p.grad is not None]
            if grads:
                pending.append((g.name, torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))))
            else:
                norms[g.name] = 0.0
        if pending:
            values = torch.stack([v for _, v in pending]).float().tolist()
            norms.update({name: v for (name, _), v in zip(pending, values)})
        self._norms = {g.name: norms[g.name] for g in self.groups}
        return self._norms

    def __repr__(self) -> str:
        return (f"Trainer(task={self.cfg.task!r}, step={self.step}/{self.total_steps}, "
                f"epoch={self.epoch:.2f}, callbacks={[type(c).__name__ for c in self.callbacks]})")


@torch.no_grad()
def example_losses(model: torch.nn.Module, data: TaskData, *, device: torch.device | str = "cpu",
                   autocast=None) -> list[float]:
    """Cross-entropy of every training example (with its possibly flipped label), in data.train order."""
    from .data import _Examples

    model.eval()
    ds = _Examples(data.train)
    out = []
    for b in DataLoader(ds, batch_size=EVAL_BATCH_SIZE, shuffle=False, collate_fn=data.collator):
        b = {key: v.to(device) for key, v in b.items()}
        labels = b.pop("labels")
        with autocast or contextlib.nullcontext():
            logits = model(**b).logits.float()[:, :data.num_labels]
        out.extend(F.cross_entropy(logits, labels, reduction="none").tolist())
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TaskData, split: str, *, device: torch.device | str = "cpu",
             autocast=None, per_class: bool = False, predictions: list | None = None) -> dict[str, float]:
    """Loss, accuracy, macro-F1, the share of the most predicted class (``max_class_frac``: near 1 =
    collapsed to one class) and the share of the most frequent true class (``majority_frac``: the
    accuracy of always answering the majority class, the floor every accuracy is read against);
    with ``per_class`` also each class's metrics and the confusion matrix (:func:`metrics_from_confusion`).
    A ``predictions`` list receives ``(index, label, predicted)`` per example, ``index`` being its
    row in the split, in the split's order."""
    model.eval()
    k = data.num_labels
    loss_sum, confusion = 0.0, torch.zeros(k, k, dtype=torch.long)
    loader = eval_loader(data, split)
    preds: list[int] = []
    for b in loader:
        b = {key: v.to(device) for key, v in b.items()}
        labels = b.pop("labels")
        with autocast or contextlib.nullcontext():
            logits = model(**b).logits.float()[:, :k]  # a multi-task head may pad to more classes
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        pred = logits.argmax(-1)
        confusion += torch.bincount(labels.cpu() * k + pred.cpu(), minlength=k * k).view(k, k)
        if predictions is not None:
            preds.extend(pred.cpu().tolist())
    if predictions is not None:
        predictions.extend(prediction_rows(data.evals[split], loader.order, preds))
    return metrics_from_confusion(confusion, loss_sum, per_class=per_class)


def prediction_rows(part: dict, order, preds) -> list[tuple[int, int, int]]:
    """``(index, label, predicted)`` per example of an evaluated split ``part`` (``data.evals[split]``),
    sorted by index: ``preds[j]`` is the prediction for the split's position ``order[j]`` (the
    loader's order), ``index`` that example's row in the whole split. Every loop stores its test
    predictions through this, so records of ftcore, HF Trainer and Lightning runs compare item by item."""
    return sorted((part["index"][int(pos)] if "index" in part else int(pos), int(part["label"][int(pos)]), int(p))
                  for pos, p in zip(order, preds))


def metrics_from_confusion(confusion: torch.Tensor, loss_sum: float, *, per_class: bool = False) -> dict[str, float]:
    """The evaluation metrics of a split from its confusion matrix (rows: true class, columns:
    predicted) and summed cross-entropy: mean loss, accuracy, macro-F1, max_class_frac, majority_frac.

    ``per_class`` adds, for each class index ``c``, ``precision/c``, ``recall/c``, ``f1/c`` and
    ``support/c`` (true examples), and for each cell ``confusion/i/j`` (examples of true class i
    predicted as j, a count): the rows ``ftcore.records.queries.per_class_table`` and
    ``confusion_matrix`` read back."""
    n = int(confusion.sum())
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    out = {"loss": loss_sum / n, "accuracy": float(tp.sum()) / n, "macro_f1": float(f1.mean()),
           "max_class_frac": float(confusion.sum(0).max()) / n, "majority_frac": float(confusion.sum(1).max()) / n}
    if per_class:
        k = confusion.shape[0]
        support = confusion.sum(1)
        for c in range(k):
            out.update({f"precision/{c}": float(precision[c]), f"recall/{c}": float(recall[c]),
                        f"f1/{c}": float(f1[c]), f"support/{c}": float(support[c])})
        out.update({f"confusion/{i}/{j}": float(confusion[i, j]) for i in range(k) for j in range(k)})
    return out


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor, num_labels: int, *,
                        per_class: bool = False) -> dict[str, float]:
    """Loss, accuracy, macro-F1, max_class_frac and majority_frac of a split (as ftcore's evaluate;
    ``per_class`` also each class's metrics and the confusion matrix, as ftcore does on test)."""
    k = num_labels
    logits = logits.float()[:, :k]
    loss = F.cross_entropy(logits, labels, reduction="sum").item()
    pred = logits.argmax(-1)
    confusion = torch.bincount(labels.cpu() * k + pred.cpu(), minlength=k * k).view(k, k)
    return metrics_from_confusion(confusion, loss, per_class=per_class)
