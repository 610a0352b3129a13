"""What the pretrained encoder knew, measured before and after fine-tuning it on another task.

Fine-tuning on task A can erase general-purpose knowledge of the pretrained encoder. We measure
that knowledge with *frozen* features (mean-pooled last hidden state of ``model.base_model``) on a
held-out task B that the run never trains on:

* :func:`linear_probe_accuracy`: multinomial logistic regression on the features (the standard
  "linear probe");
* :func:`knn_accuracy`: k-nearest-neighbour vote by cosine similarity (no training at all);
* :func:`definition_retrieval` (when Debian's WordNet is installed): find a noun from its
  dictionary definition among ``n`` candidates by cosine similarity (accuracy@1).

:func:`forgetting_of_pretrained` runs all of them on the untouched pretrained encoder, fine-tunes
per a :class:`~ftcore.RunConfig`, and runs them again: ``drop = before − after`` (in accuracy
points as fractions, so 0.05 = five percentage points lost; negative = the probe improved).
Every accuracy is a fraction in [0, 1] of a fixed, seeded, stratified subset of examples, so two
calls with the same arguments see the same examples and give the same numbers.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.assets import wordnet_available, wordnet_nouns
from ..config import RunConfig

PROBE_STEPS = 100  # LBFGS iterations of the linear probe
PROBE_WEIGHT_DECAY = 1e-2  # L2 coefficient on the mean cross-entropy (features standardized)


# ----------------------------------------------------------------------------- features
@torch.no_grad()
def encode(model: nn.Module, inputs, tokenizer=None, *, batch_size: int = 64,
           max_length: int = 64) -> torch.Tensor:
    """Frozen sentence features ``[n, hidden]`` (float32, CPU): mean of the last hidden state of
    ``model.base_model`` over real tokens.

    ``inputs`` is a list of texts (then ``tokenizer`` is required; texts are truncated to
    ``max_length`` tokens) or a list of token-id lists (padded with the tokenizer's pad id, or 0).
    Runs in eval mode without gradients, in length-sorted batches (rows come back in input order);
    the model's training mode is restored.
    """
    if hasattr(model, "get_base_model"):  # a peft model: its adapters stay active in the features
        model = model.get_base_model()
    base = getattr(model, "base_model", model)
    inputs = list(inputs)
    if not inputs:
        return torch.zeros(0, base.config.hidden_size)
    if isinstance(inputs[0], str):
        if tokenizer is None:
            raise ValueError("encode() got texts but no tokenizer")
        ids = tokenizer(inputs, truncation=True, max_length=max_length)["input_ids"]
    else:
        ids = [list(x) for x in inputs]
    pad = getattr(tokenizer, "pad_token_id", None) or 0
    device = next(base.parameters()).device
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = torch.empty(len(ids), base.config.hidden_size)
    was_training = base.training
    base.eval()
    try:
        for start in range(0, len(ids), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):
                input_ids[j, :len(ids[i])] = torch.tensor(ids[i])
                mask[j, :len(ids[i])] = 1
            hidden = base(input_ids=input_ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            m = mask.to(device).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[torch.as_tensor(rows)] = pooled.float().cpu()
    finally:
        base.train(was_training)
    return out


# ----------------------------------------------------------------------------- probes
def _as_xy(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(np.asarray(y), dtype=torch.long)


def linear_probe_accuracy(train_X, train_y, test_X, test_y, *, seed: int = 0,
                          weight_decay: float = PROBE_WEIGHT_DECAY, steps: int = PROBE_STEPS) -> float:
    """Test accuracy of a multinomial logistic regression fit on the training features.

    Features are standardized with the training mean and standard deviation; the loss is mean
    cross-entropy + ``weight_decay / 2 · ‖W‖²`` (bias not penalised), minimised full-batch with
    LBFGS (strong-Wolfe line search) for at most ``steps`` iterations from zero weights, in float64.
    The problem is convex and the start fixed, so the result is deterministic; ``seed`` only seeds
    torch locally for anything random and is kept for a stable signature.
    """
    Xtr, ytr = _as_xy(train_X, train_y)
    Xte, yte = _as_xy(test_X, test_y)
    mean, std = Xtr.mean(0), Xtr.std(0).clamp(min=1e-8)
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    k = int(max(ytr.max(), yte.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        W = torch.zeros(Xtr.shape[1], k, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=steps, history_size=20,
                                tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(Xtr @ W + b, ytr) + 0.5 * weight_decay * W.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            pred = (Xte @ W + b).argmax(1)
    return float((pred == yte).double().mean())


def knn_accuracy(train_X, train_y, test_X, test_y, k: int = 5) -> float:
    """Test accuracy of a ``k``-nearest-neighbour majority vote by cosine similarity.

    Ties in the vote go to the class whose tied neighbours are more similar in total."""
    Xtr, ytr = _as_xy(train_X, train_y)
    Xte, yte = _as_xy(test_X, test_y)
    k = min(k, len(ytr))
    sims = F.normalize(Xte, dim=1) @ F.normalize(Xtr, dim=1).T
    top_sim, top_idx = sims.topk(k, dim=1)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    votes = torch.zeros(len(yte), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, ytr[top_idx], torch.ones_like(top_sim))
    tiebreak = torch.zeros_like(votes).scatter_add_(1, ytr[top_idx], top_sim)
    pred = (votes + 1e-3 * tiebreak / k).argmax(1)  # |tiebreak / k| <= 1, so it only splits ties
    return float((pred == yte).double().mean())


def probe_task(model: nn.Module, task_name: str, tokenizer, *, n_train: int = 500, n_test: int = 500,
               max_length: int = 64, seed: int = 0, k: int = 5, batch_size: int = 64) -> dict[str, float]:
    """Linear-probe and kNN accuracy of the model's frozen features on ``task_name``.

    Features of a stratified subset of ``n_train`` examples of the task's train split (the probe's
    training set) and ``n_test`` of its test split (``stratified_subsample`` with ``seed``, so the
    same examples on every call). Returns ``{"linear": accuracy, "knn": accuracy}``.
    """
    from ..engine.tasks import load_task, stratified_subsample

    task = load_task(task_name)
    feats = {}
    for split, n in (("train", n_train), ("test", n_test)):
        ds = task.splits[split]
        idx = stratified_subsample(ds["label"], n, seed).tolist()
        sub = ds.select(idx)
        feats[split] = (encode(model, sub["text"], tokenizer, batch_size=batch_size, max_length=max_length),
                        np.asarray(sub["label"]))
    (Xtr, ytr), (Xte, yte) = feats["train"], feats["test"]
    return {"linear": linear_probe_accuracy(Xtr, ytr, Xte, yte, seed=seed),
            "knn": knn_accuracy(Xtr, ytr, Xte, yte, k=k)}


# ----------------------------------------------------------------------------- WordNet
def wordnet_definitions() -> list[tuple[str, str]]:
    """``(noun, definition)`` pairs from WordNet's ``data.noun``: the first word of each synset
    (``_`` → space) and its gloss up to the first example (``; "``). Nouns and definitions that
    occur more than once are dropped, so each pair has one right answer."""
    pairs = [(word, definition) for _, word, definition in wordnet_nouns()]
    word_count: dict[str, int] = {}
    def_count: dict[str, int] = {}
    for w, d in pairs:
        word_count[w.lower()] = word_count.get(w.lower(), 0) + 1
        def_count[d] = def_count.get(d, 0) + 1
    return [(w, d) for w, d in pairs if word_count[w.lower()] == 1 and def_count[d] == 1]


def definition_retrieval(model: nn.Module, tokenizer, n: int = 500, seed: int = 0, *,
                         max_length: int = 64, batch_size: int = 64) -> float:
    """Accuracy@1 of finding each of ``n`` nouns from its WordNet definition.

    ``n`` (noun, definition) pairs are drawn with ``seed``; every definition and every noun is
    encoded (:func:`encode`), and a definition counts as right when, among the ``n`` nouns, the most
    cosine-similar one is its own. Chance is ``1 / n``. Raises :class:`MissingAssetError` without
    WordNet (check :func:`ftcore.engine.assets.wordnet_available` first to skip).
    """
    pairs = wordnet_definitions()
    rng = np.random.default_rng(seed)
    chosen = [pairs[i] for i in np.sort(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False))]
    words = encode(model, [w for w, _ in chosen], tokenizer, batch_size=batch_size, max_length=max_length)
    defs = encode(model, [d for _, d in chosen], tokenizer, batch_size=batch_size, max_length=max_length)
    sims = F.normalize(defs.double(), dim=1) @ F.normalize(words.double(), dim=1).T
    return float((sims.argmax(1) == torch.arange(len(chosen))).double().mean())


# ----------------------------------------------------------------------------- before / after
def _probe_all(model, probe_task_name, tokenizer, kw, definitions: bool) -> dict[str, float]:
    with torch.random.fork_rng(devices=[]):  # probing must not change the run's random stream
        res = probe_task(model, probe_task_name, tokenizer, **kw)
        if definitions:
            res["definitions"] = definition_retrieval(model, tokenizer, seed=kw.get("seed", 0),
                                                      max_length=kw.get("max_length", 64))
    return res


def forgetting_of_pretrained(cfg: RunConfig, probe_task_name: str, *, definitions: bool | None = None,
                             **probe_kw) -> dict:
    """Probe the pretrained encoder on ``probe_task_name``, fine-tune it per ``cfg``, probe again.

    ``probe_kw`` go to :func:`probe_task` (``n_train``, ``n_test``, ``max_length``, ``seed``, ``k``).
    ``definitions`` adds WordNet definition retrieval (default: when WordNet is installed).
    The "before" model is the one ``build(cfg)`` made (pretrained encoder + new, untrained head;
    the head plays no part in the features), so before/after differ only by the fine-tuning.

    Returns a flat dict: ``linear_before``, ``linear_after``, ``linear_drop`` and the same for
    ``knn`` (and ``definitions``), accuracies as fractions and drops as before − after; the
    fine-tuning's own final evaluation (``finetune_<split>_accuracy``); the config's task, model,
    lr, freeze, lr_strategy, seed and the whole ``config`` dict; and ``probe_s`` / ``fit_s`` in
    seconds.
    """
    from .drift import final_evals
    from ..engine.runs import build, train

    if definitions is None:
        definitions = wordnet_available()
    trainer = build(cfg)
    tokenizer = trainer.data.tokenizer
    t = time.perf_counter()
    bypass = getattr(trainer, "feature_bypass", None)  # a frozen encoder on cached features: the
    if bypass is not None:  # frozen layers are bypassed until fit ends; probe the real model
        bypass.__exit__(None, None, None)
    before = _probe_all(trainer.model, probe_task_name, tokenizer, probe_kw, definitions)
    if bypass is not None:
        bypass.__enter__()
    probe_s = time.perf_counter() - t
    t = time.perf_counter()
    finetuned = final_evals(train(cfg, trainer=trainer))
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    after = _probe_all(trainer.model, probe_task_name, tokenizer, probe_kw, definitions)
    probe_s += time.perf_counter() - t

    out = {"task": cfg.task, "probe_task": probe_task_name, "model": cfg.model, "lr": cfg.lr,
           "freeze": cfg.freeze, "lr_strategy": cfg.lr_strategy, "seed": cfg.seed,
           "steps": trainer.step, "status": trainer.stop_reason or "completed"}
    for name in before:
        out[f"{name}_before"] = before[name]
        out[f"{name}_after"] = after[name]
        out[f"{name}_drop"] = before[name] - after[name]
    for split, metrics in finetuned.items():
        out[f"finetune_{split}_accuracy"] = metrics.get("accuracy", math.nan)
    out.update(probe_s=probe_s, fit_s=fit_s, config=cfg.to_dict())
    return out


__all__ = ["definition_retrieval", "encode", "forgetting_of_pretrained", "knn_accuracy",
           "linear_probe_accuracy", "probe_task", "wordnet_definitions"]
