"""The loss landscape of one fine-tuning run, on the plane through θ₀ and θ₁ (Li et al. 2018).

Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets" (NeurIPS 2018)
plot the loss on a plane spanned by two directions. Here the plane passes through

* θ₀, the model at the start of fine-tuning (pretrained encoder + its freshly initialised head), and
* θ₁, the same model after fine-tuning,

so the first direction is the fine-tuning displacement itself and the second a random one:

* ``d1 = θ₁ − θ₀`` over the plane's parameters: every parameter that was trainable at some point of
  the run (frozen ones never change; with gradual unfreezing a group counts once unfrozen);
* ``d2``: a Gaussian direction (seeded by ``LandscapeConfig.seed``), *filter-normalized*: each row
  of a weight matrix (one output unit of a Linear layer, one token of an embedding table) is scaled
  to the norm of the same row of θ₁. One-dimensional parameters (biases, LayerNorm gains and
  shifts) are set to zero, as Li et al. do, because rescaling them says little about the function
  and a random LayerNorm gain would dominate the picture. d2 is then made orthogonal to d1
  (Gram–Schmidt on the flattened vectors, applied twice for round-off; this may give the zeroed
  vectors a tiny multiple of d1). α = 1 is the whole fine-tuning displacement; β = 1 moves every
  row by its own norm, as in Li et al. (``LandscapeConfig.d2_scale="filter"``, the default).

  Rescaling d2 to ``‖d1‖`` instead (``d2_scale="d1"``, this module's first version) gives both axes
  one unit but undoes the filter normalisation: fine-tuning moves the weights very little (on the
  base run ‖d1‖ = 2.6 against ‖θ₁‖ = 280), and a random step that short leaves the loss flat
  (measured at θ₁: loss 0.577 at β = 0, 0.579 at 0.01 and 0.590 at 0.1 in Li's units, 0.66 at
  0.5, 0.75 at 1), so the β axis showed nothing.

Three tables come out (:class:`Landscape`), all measured on one fixed evaluation batch
(``n_eval`` examples of the validation split, the same stratified subset for every run; model in
eval mode, no dropout, no gradients):

=========  ===============================================  ===========================================
table      columns                                          one row per
=========  ===============================================  ===========================================
surface    alpha, beta, loss, accuracy                      grid point θ₀ + α·d1 + β·d2
path       step, alpha, beta, off_plane, distance,          snapshot θ_t of the real run, projected:
           train_loss                                       α = ⟨θ_t−θ₀, d1⟩/‖d1‖², β likewise with d2
line       alpha, loss, accuracy                            point θ₀ + α·d1 of the 1-D interpolation
=========  ===============================================  ===========================================

``off_plane`` is the distance of θ_t from the plane and ``distance`` its distance from θ₀, both in
units of ‖d1‖ like the axes, so ``1 − (off_plane/distance)²`` is the share of the squared
displacement that the plane captures. ``train_loss`` is the training loss of that step's batch
(NaN at step 0). The last row is θ₁; when early stopping restored the weights of an earlier step,
that row carries the restored step (after the rows of the steps the run went on to).

Snapshots of the path are kept in memory as float16 *differences* θ_t − θ₀, each tensor scaled by
a power of two so its largest entry sits in [2¹⁴, 2¹⁵): each entry is then rounded to within 2⁻¹¹
of itself (only entries below about 2⁻²⁸ of the tensor's largest fall into float16's subnormal
range), so θ₁'s own snapshot lies about 2·10⁻⁴·‖d1‖ off the plane instead of on it. That is 45 MB
per snapshot for the default 22.7M-parameter model (float32 weights would be 90 MB), and
``path_every=None`` takes about 16 snapshots whatever the run's length.

A grid point costs one forward pass over ``n_eval`` examples (batched like ``eval_loader``: sorted
by length, padded per batch). For the default model on two CPU cores see ``DEFAULT_GRID``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..engine import runs
from ..config import RunConfig
from ..engine.data import EVAL_SUBSET_SEED, TaskData, _tokenized, eval_loader
from ..records.cache import Stored, fetch, fetch_or_compute, key_id, runs_dir_or_default
from ..records.record import RecordError, load_folder, save_folder
from ..engine.tasks import stratified_subsample
from ..engine.trainer import Callback, Trainer

LANDSCAPE_SCHEMA = 1
# A grid point is one forward pass of the default model (all-MiniLM-L6-v2, rt-sentiment) over
# n_eval=256 examples: 9,152 padded tokens (7,170 real), about 0.2 TFLOP. Measured on a 2-core AMD
# EPYC VM: 2.6-2.8 s per point on one thread with a core to itself, so about 1.4-1.6 s on two free
# cores and 9 × 9 = 81 points in about 2 minutes (13 × 13: about 4, 17 × 17: about 7). When the
# other core is busy, threads=1 is faster than 2 (6.5 s per point measured with 2 threads).
# A grid of 4k + 1 points puts α = 0 and α = 1 (θ₀ and θ₁) and β = 0 exactly on the grid.
DEFAULT_GRID = 9
DEFAULT_N1D = 25  # linspace(-0.25, 1.25, 25): steps of 1/16, so α = 0 and α = 1 are on the line
PATH_POINTS = 16  # path_every=None: about this many snapshots over the run
EVAL_SPLIT = "validation"
TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "surface": {"alpha": "float64", "beta": "float64", "loss": "float64", "accuracy": "float64"},
    "path": {"step": "int64", "alpha": "float64", "beta": "float64", "off_plane": "float64",
             "distance": "float64", "train_loss": "float64"},
    "line": {"alpha": "float64", "loss": "float64", "accuracy": "float64"},
}


@dataclass(frozen=True)
class LandscapeConfig:
    """What to measure on the plane; every field is part of the cached landscape's identity."""

    grid: int = DEFAULT_GRID  # points per axis (grid × grid forward passes)
    alpha_range: tuple[float, float] = (-0.5, 1.5)  # along d1 = θ₁ − θ₀ (0 = θ₀, 1 = θ₁)
    beta_range: tuple[float, float] = (-1.0, 1.0)  # along d2 (units: see d2_scale)
    n_eval: int = 256  # examples of the validation split (fixed stratified subset) per point
    n1d: int = DEFAULT_N1D  # points of the 1-D interpolation, α in linspace(-0.25, 1.25, n1d)
    path_every: int | None = None  # steps between path snapshots; None = about PATH_POINTS of them
    seed: int = 0  # of the random direction d2
    d2_scale: str = "filter"  # "filter": β = 1 moves each row by its own norm (Li et al.); "d1": ‖d2‖ = ‖d1‖

    def __post_init__(self) -> None:
        for name in ("alpha_range", "beta_range"):
            value = tuple(getattr(self, name))
            if (len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           and math.isfinite(v) for v in value) or value[0] >= value[1]):
                raise ValueError(f"LandscapeConfig.{name}={getattr(self, name)!r} is not allowed: "
                                 "expected (low, high) with low < high")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        if self.d2_scale not in ("filter", "d1"):
            raise ValueError(f"LandscapeConfig.d2_scale={self.d2_scale!r} is not allowed: expected 'filter' "
                             "(Li et al.: each row of d2 as long as the same row of θ₁) or 'd1' (‖d2‖ = ‖d1‖)")
        for name, lo, optional in (("grid", 2, False), ("n_eval", 1, False), ("n1d", 2, False),
                                   ("path_every", 1, True), ("seed", 0, False)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"LandscapeConfig.{name}={value!r} is not allowed: expected an "
                                 f"integer >= {lo}" + (" or None" if optional else ""))

    def to_dict(self) -> dict[str, Any]:
        # d2_scale="d1" (the first version's only behaviour) is left out, so its stored landscapes keep their ids
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self) if not (f.name == "d2_scale" and self.d2_scale == "d1")}

    def alphas(self) -> np.ndarray:
        return _axis(*self.alpha_range, self.grid)

    def betas(self) -> np.ndarray:
        return _axis(*self.beta_range, self.grid)

    def line_alphas(self) -> np.ndarray:
        return _axis(-0.25, 1.25, self.n1d)


def _axis(lo: float, hi: float, n: int) -> np.ndarray:
    # Rounded so that 0 and 1 come out exactly when they lie on the grid (for lookups and joins).
    return np.round(np.linspace(lo, hi, n), 12) + 0.0  # + 0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------- the path callback
class PathRecorder(Callback):
    """Keeps θ₀ (at fit start) and snapshots of the trainable parameters every ``every`` steps.

    Snapshots are float16 differences to θ₀ with a power-of-two scale per tensor (see the module
    docstring); the last one is taken at fit end, after any callback that restores weights."""

    # Last at every event: at fit start no callback changes weights, and at fit end the weights
    # are final only after the others (early stopping restores its best weights at fit end).
    order = 1000

    def __init__(self, every: int | None = None):
        self.every = every
        self.theta0: dict[str, torch.Tensor] = {}
        self.names: list[str] = []  # parameters trainable at some point, in model order
        self.snapshots: list[tuple[int, float, dict]] = []  # (step, train loss, {name: (q, scale)})

    def on_fit_start(self, t: Trainer) -> None:
        if self.every is None:
            self.every = max(1, math.ceil(t.total_steps / PATH_POINTS))
        self.theta0 = {n: p.detach().clone() for n, p in t.model.named_parameters()}
        self._snapshot(t, float("nan"))

    def on_step_end(self, t: Trainer) -> None:
        if t.step % self.every == 0:
            self._snapshot(t, t.loss)

    def on_fit_end(self, t: Trainer) -> None:
        restored = t.summary.get("restored_step")
        if restored is not None:
            # Early stopping put back the weights of an earlier step: the path ran on to t.step,
            # then returned there. θ₁ is that point; its batch loss is not known here.
            self._snapshot(t, float("nan"), step=restored)
        elif self.snapshots[-1][0] != t.step:
            self._snapshot(t, t.loss)

    def _trainable_names(self, model: torch.nn.Module) -> list[str]:
        """Names trainable now or at an earlier snapshot (gradual unfreezing adds some), in model order."""
        seen = set(self.names)
        return [n for n, p in model.named_parameters() if p.requires_grad or n in seen]

    @torch.no_grad()
    def _snapshot(self, t: Trainer, loss: float, step: int | None = None) -> None:
        self.names = self._trainable_names(t.model)
        params = dict(t.model.named_parameters())
        snap = {n: _encode(params[n].detach().float() - self.theta0[n]) for n in self.names}
        self.snapshots.append((t.step if step is None else step, float(loss), snap))


def _encode(delta: torch.Tensor) -> tuple[torch.Tensor | None, float]:
    """float16 of ``delta × 2^k``, k chosen so the largest entry lies in [2¹⁴, 2¹⁵)."""
    m = float(delta.abs().max()) if delta.numel() else 0.0
    if m == 0.0:
        return None, 1.0
    scale = 2.0 ** (14 - math.floor(math.log2(m)))
    return (delta * scale).to("cpu", torch.float16), scale


def _decode(code: tuple[torch.Tensor | None, float], like: torch.Tensor) -> torch.Tensor:
    q, scale = code
    if q is None:
        return torch.zeros_like(like)
    return q.to(like.device, torch.float32) / scale  # dividing by a power of two is exact


# --------------------------------------------------------------------------- the plane
def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """⟨a, b⟩ of two flattened parameter vectors: float32 products summed in float64."""
    return float(sum((a[n] * b[n]).sum(dtype=torch.float64) for n in a))


def filter_normalized(random: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Li et al.'s filter normalization: each row (dim 0) of every ≥2-D tensor of ``random`` is
    scaled to the norm of the same row of ``reference``; 1-D tensors (biases, LayerNorm) become 0."""
    out = {}
    for n, r in random.items():
        if r.dim() < 2:
            out[n] = torch.zeros_like(r)
            continue
        rows, ref = r.reshape(r.shape[0], -1), reference[n].reshape(r.shape[0], -1)
        factor = ref.norm(dim=1, keepdim=True) / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
        out[n] = (rows * factor).reshape(r.shape)
    return out


@dataclass
class Plane:
    """θ₀ and the two directions, as {parameter name: tensor} over the plane's parameters."""

    theta0: dict[str, torch.Tensor]
    d1: dict[str, torch.Tensor]
    d2: dict[str, torch.Tensor]
    _sq: tuple[float, float] | None = field(default=None, repr=False)  # ‖d1‖², ‖d2‖², once

    @classmethod
    def through(cls, theta0: dict[str, torch.Tensor], theta1: dict[str, torch.Tensor], *,
                seed: int, d2_scale: str = "filter") -> Plane:
        """The plane through ``theta0`` and ``theta1`` (same keys) with a seeded second direction,
        filter-normalised to θ₁ (``d2_scale="filter"``) or then rescaled to ``‖d1‖`` (``"d1"``)."""
        d1 = {n: theta1[n].float() - theta0[n].float() for n in theta1}
        n1 = _dot(d1, d1)
        if n1 == 0.0:
            raise ValueError("θ₁ equals θ₀: fine-tuning changed no parameter, so there is no plane "
                             "to draw (is everything frozen, or the learning rate 0?)")
        gen = torch.Generator().manual_seed(seed)
        random = {n: torch.randn(t.shape, generator=gen).to(t.device) for n, t in theta1.items()}
        d2 = filter_normalized(random, theta1)
        for _ in range(2):  # Gram–Schmidt, twice: the second pass removes the first one's round-off
            c = _dot(d2, d1) / n1
            d2 = {n: d2[n] - c * d1[n] for n in d2}
        n2 = _dot(d2, d2)
        if n2 == 0.0:
            raise ValueError("the random direction vanished after orthogonalization (all plane "
                             "parameters are 1-D?); there is no second axis")
        if d2_scale == "d1":
            s = math.sqrt(n1 / n2)
            d2 = {n: v * s for n, v in d2.items()}
        return cls({n: theta0[n].float() for n in theta1}, d1, d2)

    @property
    def names(self) -> list[str]:
        return list(self.d1)

    def norms(self) -> dict[str, float]:
        n1, n2 = math.sqrt(_dot(self.d1, self.d1)), math.sqrt(_dot(self.d2, self.d2))
        return {"d1_norm": n1, "d2_norm": n2, "cos_d1_d2": _dot(self.d1, self.d2) / (n1 * n2)}

    def project(self, delta: dict[str, torch.Tensor]) -> tuple[float, float, float, float]:
        """(α, β, off-plane distance, distance) of θ₀ + ``delta``; distances in units of ‖d1‖.

        α = ⟨δ, d1⟩/‖d1‖², β = ⟨δ, d2⟩/‖d2‖² (d1 ⟂ d2), and the residual δ − α·d1 − β·d2 is
        formed explicitly rather than from ‖δ‖² − …, which would cancel for points near the plane."""
        if self._sq is None:
            self._sq = (_dot(self.d1, self.d1), _dot(self.d2, self.d2))
        n1, n2 = self._sq
        a, b = _dot(delta, self.d1) / n1, _dot(delta, self.d2) / n2
        resid = _dot(r := {n: delta[n] - a * self.d1[n] - b * self.d2[n] for n in self.d1}, r)
        return a, b, math.sqrt(resid / n1), math.sqrt(_dot(delta, delta) / n1)


# --------------------------------------------------------------------------- evaluation
def fixed_batches(data: TaskData, cfg: RunConfig, n_eval: int, device: torch.device | str = "cpu") -> list[dict]:
    """The fixed evaluation batch: ``n_eval`` examples of the validation split (stratified, seeded
    like every evaluation subset), in ``eval_loader``'s batches (sorted by length, padded per batch)."""
    part = _tokenized(cfg.task, cfg.model, EVAL_SPLIT, cfg.max_length)
    keep = stratified_subsample(part["label"], n_eval, EVAL_SUBSET_SEED)
    subset = {k: [part[k][i] for i in keep] for k in ("input_ids", "label")}
    view = dataclasses.replace(data, evals={"landscape": subset})
    return [{k: v.to(device) for k, v in b.items()} for b in eval_loader(view, "landscape")]


@torch.no_grad()
def batch_metrics(model: torch.nn.Module, batches: list[dict], autocast=None) -> tuple[float, float]:
    """(mean cross-entropy per example, accuracy) of ``model`` on ``batches``, in eval mode."""
    was_training = model.training
    model.eval()
    n, sums = 0, []
    try:
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != "labels"}
            with autocast if autocast is not None else contextlib.nullcontext():
                logits = model(**inputs).logits.float()
            sums.append(torch.stack([F.cross_entropy(logits, b["labels"], reduction="sum"),
                                     (logits.argmax(-1) == b["labels"]).sum().float()]))
            n += len(b["labels"])
        loss, correct = torch.stack(sums).sum(0).tolist()  # one device sync per point
    finally:
        model.train(was_training)
    return loss / n, correct / n


class _PlaneSetter:
    """Moves a model's plane parameters to θ₀ + α·d1 + β·d2 and back to θ₁ exactly."""

    def __init__(self, model: torch.nn.Module, plane: Plane):
        params = dict(model.named_parameters())
        self.params = [params[n] for n in plane.names]
        self.theta0 = [plane.theta0[n] for n in plane.names]
        self.d1 = [plane.d1[n] for n in plane.names]
        self.d2 = [plane.d2[n] for n in plane.names]
        self.theta1 = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def set(self, alpha: float, beta: float) -> None:
        torch._foreach_copy_(self.params, self.theta0)
        if alpha != 0.0:
            torch._foreach_add_(self.params, self.d1, alpha=float(alpha))
        if beta != 0.0:
            torch._foreach_add_(self.params, self.d2, alpha=float(beta))

    @torch.no_grad()
    def restore(self) -> None:
        torch._foreach_copy_(self.params, self.theta1)


# --------------------------------------------------------------------------- the result
@dataclass
class Landscape:
    """The measured landscape: ``surface``, ``path`` and ``line`` tables plus ``meta``."""

    surface: pd.DataFrame
    path: pd.DataFrame
    line: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # where it was loaded from / saved to

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {"surface": self.surface, "path": self.path, "line": self.line}

    def __repr__(self) -> str:
        m = self.meta
        lc = m.get("landscape", {})
        s = self.surface
        lines = [f"Landscape(run {m.get('run_id')}, task={m.get('config', {}).get('task')!r}, "
                 f"model={m.get('config', {}).get('model')!r})"]
        if len(s):
            best = s.loc[s["loss"].idxmin()]
            lines.append(f"  surface: {lc.get('grid')}×{lc.get('grid')} points, α in {lc.get('alpha_range')}, "
                         f"β in {lc.get('beta_range')}; loss {s['loss'].min():.4f}–{s['loss'].max():.4f}, "
                         f"lowest at (α={best['alpha']:g}, β={best['beta']:g})")
        if "loss_theta0" in m:
            lines.append(f"  θ₀: loss {m['loss_theta0']:.4f}, accuracy {m['acc_theta0']:.3f}; "
                         f"θ₁: loss {m['loss_theta1']:.4f}, accuracy {m['acc_theta1']:.3f} "
                         f"(on {m.get('n_eval')} {EVAL_SPLIT} examples)")
        if "d1_norm" in m:
            lines.append(f"  ‖d1‖ = ‖θ₁−θ₀‖ = {m['d1_norm']:.4g} over {m.get('n_plane_params', 0):,} parameters")
        if len(self.path):
            p = self.path
            lines.append(f"  path: {len(p)} snapshots (every {m.get('path_every')} steps), "
                         f"off the plane at most {p['off_plane'].max():.3g}·‖d1‖")
        if "timings" in m:
            t = m["timings"]
            lines.append(f"  time: fit {t.get('fit_s', 0):.1f}s, surface {t.get('surface_s', 0):.1f}s "
                         f"({t.get('per_point_s', 0):.3f}s/point), line {t.get('line_s', 0):.1f}s")
        return "\n".join(lines)

    # ---- disk: Parquet tables + meta.json with checksums, written atomically (as a RunRecord)
    def save(self, folder: str | os.PathLike) -> Path:
        self.folder = save_folder(folder, self.tables, {**self.meta, "schema_version": LANDSCAPE_SCHEMA})
        return self.folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Landscape:
        """Read a saved landscape, checking its schema version and every table's checksum."""
        meta, tables = load_folder(folder, what="saved landscape", schema_version=LANDSCAPE_SCHEMA)
        meta.pop("schema_version")
        if set(tables) != set(TABLE_COLUMNS):
            raise RecordError(f"{folder}: expected the tables {sorted(TABLE_COLUMNS)}, found {sorted(tables)}")
        for name, df in tables.items():
            if list(df.columns) != list(TABLE_COLUMNS[name]):
                raise RecordError(f"{folder}: table {name} has columns {list(df.columns)}")
        return cls(tables["surface"], tables["path"], tables["line"], meta, Path(folder))


def _frame(name: str, rows: list[tuple]) -> pd.DataFrame:
    cols = TABLE_COLUMNS[name]
    return pd.DataFrame(rows, columns=list(cols)).astype(cols)


# --------------------------------------------------------------------------- computing it
def compute_landscape(cfg: RunConfig, lcfg: LandscapeConfig = LandscapeConfig(), *,
                      trainer: Trainer | None = None) -> Landscape:
    """Fine-tune ``cfg`` (never from the run cache: the weights are needed) while recording the
    path, then measure the surface, the path's projection and the 1-D line.

    ``trainer``: a trainer for ``cfg`` from :func:`ftcore.engine.runs.build`, not yet fit (default: built
    here). Its model is left at θ₁, exactly as training left it."""
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    trainer = trainer if trainer is not None else runs.build(cfg)
    if trainer.step != 0:
        raise ValueError(f"compute_landscape needs a trainer that has not been fit (it is at step {trainer.step})")
    recorder = PathRecorder(lcfg.path_every)
    trainer.add_callback(recorder)
    trainer.fit()
    t_fit = time.perf_counter()

    model = trainer.model
    params = dict(model.named_parameters())
    names = recorder.names
    plane = Plane.through({n: recorder.theta0[n] for n in names},
                          {n: params[n].detach() for n in names}, seed=lcfg.seed, d2_scale=lcfg.d2_scale)
    recorder.theta0 = {}  # the plane holds what is needed of it
    norms = plane.norms()
    batches = fixed_batches(trainer.data, cfg, lcfg.n_eval, trainer.device)
    n_eval = sum(len(b["labels"]) for b in batches)
    setter = _PlaneSetter(model, plane)
    metrics = lambda: batch_metrics(model, batches, trainer.autocast)  # noqa: E731

    alphas, betas, line_alphas = lcfg.alphas(), lcfg.betas(), lcfg.line_alphas()
    show = cfg.progress
    surface_rows, line_rows = [], []
    try:
        loss1, acc1 = metrics()  # θ₁ itself, before any perturbation
        setter.set(0.0, 0.0)
        loss0, acc0 = metrics()
        t0 = time.perf_counter()
        with tqdm(total=len(alphas) * len(betas), desc="loss surface", unit="point", disable=not show,
                  dynamic_ncols=True) as bar:
            for b in betas:
                for a in alphas:
                    setter.set(a, b)
                    surface_rows.append((a, b, *metrics()))
                    bar.update(1)
        t_surface = time.perf_counter()
        for a in tqdm(line_alphas, desc="θ₀→θ₁ line", unit="point", disable=not show, dynamic_ncols=True):
            setter.set(a, 0.0)
            line_rows.append((a, *metrics()))
        t_line = time.perf_counter()
    finally:
        setter.restore()
        del setter  # its copy of θ₁ (the model holds θ₁ again)

    path_rows = []
    for step, train_loss, snap in recorder.snapshots:
        delta = {n: _decode(snap[n], plane.d1[n]) if n in snap else torch.zeros_like(plane.d1[n])
                 for n in names}
        path_rows.append((step, *plane.project(delta), train_loss))
    t_end = time.perf_counter()

    meta = {
        "run_id": runs.run_id(cfg),
        "config": cfg.to_dict(),
        "landscape": lcfg.to_dict(),
        "alphas": alphas.tolist(), "betas": betas.tolist(), "line_alphas": line_alphas.tolist(),
        "eval_split": EVAL_SPLIT, "n_eval": n_eval,
        **norms,
        "n_plane_params": sum(plane.d1[n].numel() for n in names),
        "plane_params": names,
        "path_every": recorder.every,
        "steps": trainer.step,
        "restored_step": trainer.summary.get("restored_step"),
        "loss_theta0": loss0, "acc_theta0": acc0, "loss_theta1": loss1, "acc_theta1": acc1,
        "directions": "d1 = θ₁−θ₀; d2 = seeded Gaussian, filter-normalized per row to θ₁ "
                      "(1-D tensors zeroed), orthogonalized to d1"
                      + (", scaled to ‖d1‖" if lcfg.d2_scale == "d1" else " (Li et al.'s scale)"),
        "snapshots": "float16 of (θ_t−θ₀)·2^k per tensor, in memory",
        "device": str(trainer.device), "threads": torch.get_num_threads(),
        "timings": {"fit_s": t_fit - t_start, "surface_s": t_surface - t0,
                    "per_point_s": (t_surface - t0) / max(1, len(surface_rows)),
                    "line_s": t_line - t_surface, "project_s": t_end - t_line,
                    "total_s": t_end - t_start},
    }
    return Landscape(_frame("surface", surface_rows), _frame("path", path_rows),
                     _frame("line", line_rows), meta)


# --------------------------------------------------------------------------- the cache
def landscape_path(cfg: RunConfig, lcfg: LandscapeConfig = LandscapeConfig(),
                   runs_dir: str | os.PathLike | None = None) -> Path:
    key = {"run_id": runs.run_id(cfg), "landscape": lcfg.to_dict(), "schema": LANDSCAPE_SCHEMA}
    return runs_dir_or_default(runs_dir) / key_id(key, prefix="landscape-")


def stored_landscape(cfg: RunConfig, lcfg: LandscapeConfig = LandscapeConfig(),
                     runs_dir: str | os.PathLike | None = None) -> Stored:
    """The landscape of ``cfg`` and ``lcfg`` as the cache sees it: its folder, the check that a
    stored one was measured on this run with this LandscapeConfig, and how to compute it."""
    rid = runs.run_id(cfg)

    def check(land: Landscape) -> None:
        if land.meta.get("run_id") != rid:
            raise RecordError(f"it holds the landscape of run {land.meta.get('run_id')}")
        if land.meta.get("landscape") != lcfg.to_dict():
            raise RecordError("it was measured with a different LandscapeConfig")
    return Stored("landscape", landscape_path(cfg, lcfg, runs_dir), Landscape.load,
                  lambda: compute_landscape(cfg, lcfg), check, describe=f"run {rid}")


def cached_landscape(cfg: RunConfig, lcfg: LandscapeConfig = LandscapeConfig(),
                     runs_dir: str | os.PathLike | None = None) -> Landscape | None:
    """The stored landscape of ``cfg`` and ``lcfg`` if a valid one exists; warns and returns None
    for a bad one."""
    return fetch(stored_landscape(cfg, lcfg, runs_dir))


def landscape(cfg: RunConfig, lcfg: LandscapeConfig = LandscapeConfig(), *,
              runs_dir: str | os.PathLike | None = None, force: bool = False,
              render_only: bool = False) -> Landscape:
    """The landscape of ``cfg``: from the cache next to the run records if present and valid, else
    computed (training the run) and saved. ``force=True`` recomputes and replaces it;
    ``render_only=True`` never computes (MissingRecordError)."""
    return fetch_or_compute(stored_landscape(cfg, lcfg, runs_dir), force=force, render_only=render_only)


__all__ = ["Landscape", "LandscapeConfig", "PathRecorder", "Plane",
           "batch_metrics", "cached_landscape", "compute_landscape", "filter_normalized",
           "fixed_batches", "landscape", "landscape_path", "stored_landscape"]
