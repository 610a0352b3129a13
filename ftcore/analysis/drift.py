"""Which layers change when a pretrained encoder is fine-tuned, in weights and in representations.

Two measures per layer group (``ftcore.engine.layers``: embeddings, layer.0 … layer.N-1, pooler, head):

* **relative weight change** ``‖w − w_ref‖ / ‖w_ref‖``: Frobenius norm over all of the group's
  parameters taken together (as one long vector), so it is a unitless fraction. ``0.0`` means the
  group did not move (a frozen group is exactly 0); ``0.01`` means the update is 1 % of the size of
  the weights it started from; ``1.0`` means the change is as large as the weights themselves.
  The new classification head has no pretrained weights; :func:`measure_drift` compares it with its
  random initialisation (the snapshot is taken after the head is built, before training), so its
  number is "how far the head moved from where it started" and is usually much larger.
* **linear CKA** (centred kernel alignment, Kornblith et al. 2019, "Similarity of Neural Network
  Representations Revisited") between the fine-tuned and the pretrained model's hidden states on
  the same fixed batch of examples: ``1.0`` means the two layers' representations are the same up
  to a rotation and a uniform scale; values near ``0`` mean unrelated representations. Computed for
  the embeddings output and each encoder layer's output (mean-pooled over real tokens); the pooler
  and head have no such per-example hidden state here, so their CKA is ``nan``.

>>> df = measure_drift(RunConfig(task="rt-sentiment", train_size=500, epochs=1))  # doctest: +SKIP
>>> df.set_index("group")[["relative_change", "cka"]]                              # doctest: +SKIP
"""
from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from ..config import RunConfig
from ..engine.layers import layer_groups
from ..records.queries import final_metrics as final_evals  # split -> metric -> last value

DRIFT_BATCH_SEED = 13  # fixed: every drift measurement reads the same validation examples


# ----------------------------------------------------------------------------- weights
def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copies of every parameter, keyed by full parameter name."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}


def relative_change(model: nn.Module, reference_state: dict[str, torch.Tensor]) -> dict[str, float]:
    """``‖w − w_ref‖ / ‖w_ref‖`` per layer group, in depth order (unitless; 0 = unchanged).

    The norm is the Frobenius norm over all the group's parameters concatenated. A group none of
    whose parameters is in ``reference_state`` (say a head added after the snapshot) gets ``nan``;
    a group only partly covered is compared on the covered parameters. Take the snapshot after
    the model (and its head) is built to compare the head with its initialisation.
    """
    out: dict[str, float] = {}
    for g in layer_groups(model):
        diff_sq, ref_sq, covered = 0.0, 0.0, 0
        for name, p in g.params:
            ref = reference_state.get(name)
            if ref is None:
                continue
            if ref.shape != p.shape:
                raise ValueError(f"parameter {name}: reference shape {tuple(ref.shape)} differs from "
                                 f"the model's {tuple(p.shape)}")
            cur = p.detach().to("cpu", torch.float64)
            ref = ref.to(torch.float64)
            diff_sq += float((cur - ref).pow(2).sum())
            ref_sq += float(ref.pow(2).sum())
            covered += 1
        if covered == 0 or ref_sq == 0.0:
            out[g.name] = math.nan
        else:
            out[g.name] = math.sqrt(diff_sq) / math.sqrt(ref_sq)
    return out


# ----------------------------------------------------------------------------- representations
def _model_inputs(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k not in ("labels", "label")}


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@torch.no_grad()
def layer_representations(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """Mean-pooled hidden states ``[n_examples, hidden]`` (float32, CPU) of one batch, per layer.

    Keys, in depth order, are named like the layer groups: ``"embeddings"`` (the embeddings
    output) and ``"layer.0"`` … ``"layer.N-1"`` (each encoder layer's output). Pooling averages
    over real tokens only (the batch's ``attention_mask``; all tokens if it has none). The model
    runs in eval mode (no dropout) and its previous mode is restored.
    """
    base = getattr(model, "base_model", model)
    device = next(base.parameters()).device
    inputs = _model_inputs(batch, device)
    mask = inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones(inputs["input_ids"].shape, device=device)
    was_training = base.training
    base.eval()
    try:
        hidden = base(**inputs, output_hidden_states=True).hidden_states
    finally:
        base.train(was_training)
    names = ["embeddings"] + [f"layer.{i}" for i in range(len(hidden) - 1)]
    return {n: _mean_pool(h.float(), mask).cpu() for n, h in zip(names, hidden)}


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same ``n`` examples (rows).

    ``CKA = ‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` with column-centred ``Xᶜ, Yᶜ``
    (Kornblith et al. 2019, eq. for linear HSIC). In [0, 1]; 1 for identical representations and
    invariant to orthogonal transforms and isotropic scaling of either side (not to arbitrary
    invertible linear maps). ``X`` and ``Y`` may have different widths. Returns ``nan`` when either
    side is constant across examples. Note the small-sample bias: unrelated ``d``-dimensional
    features give roughly ``d / n``, not 0, so compare values measured on the same batch size.
    """
    X = torch.as_tensor(X).detach().to("cpu", torch.float64)
    Y = torch.as_tensor(Y).detach().to("cpu", torch.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"linear_cka needs two [n, d] matrices with the same n; got {tuple(X.shape)} "
                         f"and {tuple(Y.shape)}")
    X = X - X.mean(0, keepdim=True)
    Y = Y - Y.mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(Y.T @ X) ** 2
    norm_x = torch.linalg.matrix_norm(X.T @ X)
    norm_y = torch.linalg.matrix_norm(Y.T @ Y)
    if norm_x == 0 or norm_y == 0:
        return math.nan
    return float(cross / (norm_x * norm_y))


def cka_to_reference(model: nn.Module, reference_model: nn.Module, batch: dict) -> dict[str, float]:
    """Linear CKA per layer (embeddings, layer.0 …) between ``model`` and ``reference_model`` on
    the same batch. Each model runs on its own device."""
    cur = layer_representations(model, batch)
    ref = layer_representations(reference_model, batch)
    return {name: linear_cka(cur[name], ref[name]) for name in cur if name in ref}


# ----------------------------------------------------------------------------- one call
def fixed_batch(cfg: RunConfig, n_examples: int = 256, *, split: str = "validation",
                seed: int = DRIFT_BATCH_SEED) -> dict:
    """A padded batch of ``n_examples`` of ``cfg.task``'s ``split`` (stratified, fixed ``seed``),
    tokenized as ``cfg`` tokenizes (model, max_length). The same examples for every config of a
    task, whatever the run's seed."""
    from transformers import DataCollatorWithPadding

    from ..engine.data import _tokenized
    from ..engine.models import load_tokenizer
    from ..engine.tasks import stratified_subsample

    part = _tokenized(cfg.task, cfg.model, split, cfg.max_length)
    keep = stratified_subsample(part["label"], n_examples, seed)
    collate = DataCollatorWithPadding(load_tokenizer(cfg.model), return_tensors="pt")
    return collate([{"input_ids": part["input_ids"][i], "labels": part["label"][i]} for i in keep])


def measure_drift(cfg: RunConfig, *, n_examples: int = 256, batch_seed: int = DRIFT_BATCH_SEED,
                  return_trainer: bool = False):
    """Fine-tune per ``cfg`` and measure, per layer group, how far weights and representations moved.

    Builds the trainer (``ftcore.engine.runs.build``: pretrained encoder + new head, freezing applied),
    snapshots the weights and keeps a copy of the untrained model, trains (``trainer.fit()``, no
    run cache), then compares on a fixed, seeded batch of ``n_examples`` validation examples.

    Returns a ``pandas.DataFrame`` with one row per layer group in depth order and columns
    ``group``, ``relative_change`` (‖Δw‖/‖w_before‖, unitless, 0 = untouched; the head is compared
    with its random init) and ``cka`` (linear CKA to the pretrained model's representation of the
    same layer, 1 = same up to rotation and scale; ``nan`` for pooler and head). ``df.attrs``
    holds the config, the number of examples, the fine-tuned model's final evaluation per split
    (``final_eval``), the number of steps and times (seconds). ``return_trainer=True`` returns
    ``(df, trainer)``, to go on measuring the fine-tuned model.
    """
    import pandas as pd

    from ..engine.runs import build, train

    t0 = time.perf_counter()
    trainer = build(cfg)
    reference_state = snapshot(trainer.model)
    reference_model = copy.deepcopy(trainer.model).cpu().eval()
    batch = fixed_batch(cfg, n_examples, seed=batch_seed)
    t_fit = time.perf_counter()
    record = train(cfg, trainer=trainer)  # the same record a plain run writes
    fit_s = time.perf_counter() - t_fit
    changes = relative_change(trainer.model, reference_state)
    ckas = cka_to_reference(trainer.model, reference_model, batch)
    df = pd.DataFrame({"group": list(changes),
                       "relative_change": list(changes.values()),
                       "cka": [ckas.get(g, math.nan) for g in changes]})
    df.attrs.update(config=cfg.to_dict(), n_examples=int(batch["input_ids"].shape[0]),
                    final_eval=final_evals(record), steps=trainer.step, fit_s=fit_s,
                    wall_s=time.perf_counter() - t0)
    return (df, trainer) if return_trainer else df


__all__ = ["cka_to_reference", "final_evals", "fixed_batch", "layer_representations",
           "linear_cka", "measure_drift", "relative_change", "snapshot"]
