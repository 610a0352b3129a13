"""What training keeps in memory, counted in bytes rather than read off the process.

Process RSS is dominated by the Python process, the libraries and the allocator's caches, so it
barely moves between freezing strategies. What freezing, LoRA or BitFit actually save is visible in
four counts for one optimizer step of a run's own configuration:

* ``params_bytes``: every parameter of the model (frozen ones included: they are still held);
* ``grads_bytes``: the gradients of the trainable parameters after ``backward``;
* ``optimizer_bytes``: the optimizer's state (AdamW: two moments per trainable parameter);
* ``activations_bytes``: the tensors autograd saved for ``backward`` during the forward pass,
  counted once per storage with :func:`torch.autograd.graph.saved_tensors_hooks`; storages that
  are parameters are left out (counted above). Frozen bottom layers save nothing, because no
  gradient has to flow through them.

Gradual unfreezing trains more layers as it goes, so its need is its peak: the counts are taken
with every group unfrozen that the schedule reaches in time for the run's last update (all of them
when the schedule completes, which then equals full fine-tuning), not at step 1 (head only).
"""
from __future__ import annotations

import torch

from ..config import RunConfig


def _unfreeze_peak(trainer) -> int:
    """Unfreeze, top down, the groups gradual unfreezing has unfrozen when the run's last update
    starts (the schedule's stage with the most trainable parameters); the number unfrozen.

    The progress before the last update is computed as :func:`ftcore.engine.schedules.adjustments`
    does (a group unfrozen later never trains); the callback itself decides what is due."""
    from ..engine.callbacks import GradualUnfreezing

    cfg, total = trainer.cfg, trainer.total_steps
    unfreezer = GradualUnfreezing(cfg.unfreeze_every, cfg.unfreeze_unit, cfg.unfreeze_groups)
    unfreezer.on_fit_start(trainer)
    n_train = len(trainer.data.train["label"])
    full, rest = divmod(total - 1, trainer.steps_per_epoch)
    step, seen = trainer.step, trainer.examples_seen
    trainer.step = total - 1
    trainer.examples_seen = full * n_train + min(rest * cfg.batch_size * cfg.grad_accum, n_train)
    unfreezer.on_step_end(trainer)
    trainer.step, trainer.examples_seen = step, seen
    return sum(g.trainable for g in trainer.groups if g.name in unfreezer.order_top_down)


def training_memory(cfg: RunConfig) -> dict[str, int]:
    """Bytes of parameters, gradients, optimizer state and saved activations for one step of
    ``cfg`` on its first training batch (the same batch for every config with the same seed,
    size and task), plus the trainable parameter count. With ``freeze='gradual'`` the step is
    one at the schedule's peak (see the module docstring); ``unfrozen_groups`` says how many
    initially frozen groups train there."""
    from ..engine.runs import build

    trainer = build(cfg, callbacks=[])
    unfrozen = _unfreeze_peak(trainer) if cfg.freeze == "gradual" else 0
    model = trainer.model.to(trainer.device)
    model.train()
    batch = {k: v.to(trainer.device) for k, v in next(iter(trainer.train_batches(cfg.seed * 1009))).items()}
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in param_storages:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), trainer.autocast:
        loss, _ = trainer.compute_loss(batch)
    loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    trainer.optimizer.step()  # the optimizer creates its state lazily, at the first step
    opt = sum(v.numel() * v.element_size() for state in trainer.optimizer.state.values()
              for v in state.values() if torch.is_tensor(v) and v.dim() > 0)
    return {"params_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "grads_bytes": int(grads), "optimizer_bytes": int(opt), "activations_bytes": int(sum(saved.values())),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "unfrozen_groups": unfrozen,
            "batch_examples": int(batch["labels"].shape[0]), "batch_tokens": int(batch["input_ids"].numel()) if "input_ids" in batch else 0}


__all__ = ["training_memory"]
