"""From a task to batches: subsample, corrupt or augment the train split, tokenize once, batch.

Batches are padded dynamically (``DataCollatorWithPadding``) and, for training, grouped by length
(``transformers``' ``LengthGroupedSampler``, the same one ``Trainer`` uses) so little compute goes
into padding. Evaluation uses fixed, stratified subsets sorted by length.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..config import RunConfig
from .tasks import Task, load_task, stratified_subsample

EVAL_BATCH_SIZE = 64  # examples; no gradients, so larger batches fit
EVAL_SUBSET_SEED = 7  # fixed: every run evaluates the same validation examples


@dataclass
class TaskData:
    """The tokenized splits one run uses, plus what the record needs to know about them."""

    task: Task
    train: dict  # {"input_ids": [...], "label": [...], "text": [...], "noisy": [...], "index": [...]}
    evals: dict  # split -> tokenized dict
    collator: object
    tokenizer: object
    # (kind, detail) of what this data differs in from what the config asked (e.g. a train split
    # smaller than train_size): the trainer records them as events, so nothing changes silently.
    notes: list = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return self.task.num_labels

    def __repr__(self) -> str:
        ev = ", ".join(f"{k}={len(v['label']):,}" for k, v in self.evals.items())
        return f"TaskData({self.task.name!r}, train={len(self.train['label']):,}, {ev})"


@functools.lru_cache(maxsize=32)
def _tokenized(task_name: str, model_name: str, split: str, max_length: int) -> dict:
    """Token ids of a whole split, computed once per process and reused by every run."""
    from .models import load_tokenizer

    task = load_task(task_name)
    tok = load_tokenizer(model_name)
    texts = list(task.splits[split]["text"])
    enc = tok(texts, truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "label": list(task.splits[split]["label"]), "text": texts}


def flip_labels(labels: list[int], num_labels: int, fraction: float, seed: int) -> tuple[list[int], list[bool]]:
    """Flip ``fraction`` of the labels to a different class chosen uniformly (seeded).

    Returns the new labels and a mask of which examples were flipped (kept in the record so the
    data-quality figure can check whether per-example loss finds them)."""
    rng = np.random.default_rng(seed + 10_007)
    n = len(labels)
    k = round(fraction * n)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=k, replace=False)] = True
    out = list(labels)
    for i in np.flatnonzero(flipped):
        out[i] = int((labels[i] + rng.integers(1, num_labels)) % num_labels)
    return out, flipped.tolist()


def prepare_data(cfg: RunConfig) -> TaskData:
    """Everything one run reads: the subsampled, possibly noisy or augmented train split and the
    fixed evaluation subsets, tokenized."""
    from transformers import DataCollatorWithPadding

    from .models import load_tokenizer

    task = load_task(cfg.task)
    check_sizes(cfg, task)
    tok = load_tokenizer(cfg.model)
    full = _tokenized(cfg.task, cfg.model, "train", cfg.max_length)
    notes = list(task.notes) + size_notes(cfg, task)  # rows dropped from a user's file, a clamped size
    idx = stratified_subsample(full["label"], cfg.train_size, cfg.seed)
    train = {k: [full[k][i] for i in idx] for k in ("input_ids", "label", "text")}
    train["index"] = idx.tolist()
    train["noisy"] = [False] * len(idx)
    if cfg.label_noise > 0:
        train["label"], train["noisy"] = flip_labels(train["label"], task.num_labels, cfg.label_noise,
                                                     cfg.seed)
    if cfg.augment:
        from .augment import augment_texts

        extra = augment_texts(train["text"], ops=cfg.augment, rate=cfg.augment_rate,
                              copies=cfg.augment_copies, seed=cfg.seed, tokenizer=tok)
        enc = tok([t for t, _ in extra], truncation=True, max_length=cfg.max_length)
        train["input_ids"] += enc["input_ids"]
        train["text"] += [t for t, _ in extra]
        train["label"] += [train["label"][src] for _, src in extra]
        train["noisy"] += [train["noisy"][src] for _, src in extra]
        train["index"] += [train["index"][src] for _, src in extra]

    evals = {}
    for split in set(cfg.eval_splits) | ({"test"} if cfg.test_at_end else set()):
        if split == "train":  # accuracy on (a fixed subset of) what the model was trained on
            part = {k: train[k] for k in ("input_ids", "label")}
        else:
            part = _tokenized(cfg.task, cfg.model, split, cfg.max_length)
        limit = cfg.test_size if split == "test" else cfg.eval_size
        keep = stratified_subsample(part["label"], limit, EVAL_SUBSET_SEED)
        evals[split] = {k: [part[k][i] for i in keep] for k in ("input_ids", "label")}
        evals[split]["index"] = [int(i) for i in keep]  # the examples' rows in the split: per-example predictions
    return TaskData(task, train, evals, DataCollatorWithPadding(tok, return_tensors="pt"), tok, notes)


def check_sizes(cfg: RunConfig, task: Task) -> None:
    """Refuse a training sample too small to hold every class (before anything is loaded)."""
    from ..config import ConfigError

    if cfg.train_size is not None and cfg.train_size < task.num_labels:
        raise ConfigError(f"RunConfig.train_size={cfg.train_size} is not allowed: expected at least one "
                          f"example per class ({task.num_labels} classes in {cfg.task!r}), or none for "
                          "the whole train split")


def size_notes(cfg: RunConfig, task: Task) -> list[tuple[str, str]]:
    """A train_size larger than the train split trains on the whole split: say so (a warning now,
    an event in the record; the summary's train_examples is the number used)."""
    n = len(task.splits["train"])
    if cfg.train_size is None or cfg.train_size <= n:
        return []
    note = ("train_size_clamped", f"train_size={cfg.train_size} but the train split of {cfg.task!r} has "
                                  f"{n} examples: all {n} are used")
    import warnings
    warnings.warn(f"{note[1]} (set train_size to at most {n}, or none)", UserWarning, stacklevel=3)
    return [note]


class _Examples(torch.utils.data.Dataset):
    def __init__(self, part: dict):
        self.ids, self.labels = part["input_ids"], part["label"]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def train_loader(data: TaskData, cfg: RunConfig, *, epoch_seed: int) -> DataLoader:
    """Training batches for one epoch, shuffled by ``epoch_seed`` (and grouped by length)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    ds = _Examples(data.train)
    g = torch.Generator().manual_seed(epoch_seed)
    if cfg.group_by_length:
        # token counts: cached features (ftcore.engine.features) keep them, pooled vectors have one "token"
        lengths = data.train.get("length") or [len(x) for x in ds.ids]
        sampler = LengthGroupedSampler(cfg.batch_size, lengths=lengths, generator=g)
    else:
        sampler = torch.utils.data.RandomSampler(ds, generator=g)
    return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, collate_fn=data.collator)


def eval_loader(data: TaskData, split: str) -> DataLoader:
    part = data.evals[split]
    order = np.argsort([len(x) for x in part["input_ids"]], kind="stable")  # least padding
    ds = _Examples({k: [part[k][i] for i in order] for k in ("input_ids", "label")})
    loader = DataLoader(ds, batch_size=EVAL_BATCH_SIZE, shuffle=False, collate_fn=data.collator)
    loader.order = order  # loader position -> position in data.evals[split] (per-example predictions)
    return loader
