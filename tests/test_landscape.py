"""The loss landscape on the plane through θ₀ and θ₁: geometry, evaluation, path, cache."""
from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import ftcore.analysis.landscape as lmod
from ftcore import RunConfig, build
from ftcore.analysis.landscape import (Landscape, LandscapeConfig, Plane, batch_metrics,
                              compute_landscape, filter_normalized, fixed_batches, landscape,
                              landscape_path)
from ftcore.records.cache import StaleResultWarning
from ftcore.records.record import RecordError
from ftcore.engine.runs import run_id
from ftcore.engine.trainer import Callback

# 5 points per axis: α in {-0.5, 0, 0.5, 1, 1.5}, β in {-1, -0.5, 0, 0.5, 1}; the line has α in
# {-0.25, 0, ..., 1.25}. 24 of the toy task's 30 validation examples.
LC = LandscapeConfig(grid=5, n1d=7, path_every=5, n_eval=24)


@pytest.fixture(scope="module")
def cfg(toy_task) -> RunConfig:
    # The ``tiny`` fixture's run (function-scoped there), so one landscape serves the module.
    return RunConfig(model="tiny-bert", task=toy_task, train_size=None, epochs=2, batch_size=16,
                     lr=3e-3, eval_size=None, max_length=16, progress=False, threads=1)


class _CaptureAtFitEnd(Callback):
    """θ₁ as training left it, after every other callback (the landscape must give it back)."""

    order = 10_000

    def on_fit_end(self, t) -> None:
        self.state = {n: p.detach().clone() for n, p in t.model.named_parameters()}
        self.training = t.model.training


@pytest.fixture(scope="module")
def measured(cfg):
    trainer = build(cfg)
    theta0 = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    capture = _CaptureAtFitEnd()
    trainer.add_callback(capture)
    land = compute_landscape(cfg, LC, trainer=trainer)
    return SimpleNamespace(land=land, trainer=trainer, theta0=theta0, theta1=capture.state,
                           training=capture.training)


def _at(df: pd.DataFrame, **where) -> pd.Series:
    sel = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        sel &= df[k].to_numpy() == v
    assert sel.sum() == 1, f"expected one row at {where}, found {sel.sum()}"
    return df[sel].iloc[0]


# --------------------------------------------------------------------------- geometry
def test_theta0_and_theta1_project_to_0_0_and_1_0(measured):
    path, steps = measured.land.path, measured.trainer.step
    assert path["step"].tolist() == [0, 5, 10, 15, 20, 25, steps] and steps == 28
    first, last = path.iloc[0], path.iloc[-1]
    assert (first.alpha, first.beta, first.off_plane, first.distance) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(first.train_loss) and np.isfinite(path["train_loss"].iloc[1:]).all()
    # float16 snapshots: a rounding of about 2^-11 of each entry, hence the tolerances
    assert last.alpha == pytest.approx(1.0, abs=1e-4) and abs(last.beta) < 1e-4
    assert last.off_plane < 1e-3 and last.distance == pytest.approx(1.0, abs=1e-4)
    # the real path leaves the plane in between, and moves away from θ₀
    assert path["off_plane"].iloc[1:-1].max() > 0.01
    assert path["distance"].is_monotonic_increasing


class _RestoreStep10(Callback):
    """Stands in for early stopping: at fit end, put back the weights of step 10."""

    order = 10

    def on_step_end(self, t) -> None:
        if t.step == 10:
            self.state = {k: v.clone() for k, v in t.model.state_dict().items()}

    def on_fit_end(self, t) -> None:
        t.model.load_state_dict(self.state)
        t.summary["restored_step"] = 10


def test_restored_weights_are_theta1_and_end_the_path(cfg):
    trainer = build(cfg)
    trainer.add_callback(_RestoreStep10())
    land = compute_landscape(cfg, LandscapeConfig(grid=2, n1d=2, path_every=5, n_eval=8), trainer=trainer)
    path = land.path
    assert path["step"].tolist() == [0, 5, 10, 15, 20, 25, 10]  # ran on to step 28, then back
    last, at10 = path.iloc[-1], path.iloc[2]
    assert last.alpha == pytest.approx(1.0, abs=1e-4) and last.off_plane < 1e-3
    assert (at10.alpha, at10.beta, at10.off_plane) == (last.alpha, last.beta, last.off_plane)
    assert land.meta["restored_step"] == 10


def test_projection_recovers_known_coordinates(measured):
    names = measured.land.meta["plane_params"]
    plane = Plane.through({n: measured.theta0[n] for n in names},
                          {n: measured.theta1[n] for n in names}, seed=0)
    gen = torch.Generator().manual_seed(1)
    r = {n: torch.randn(plane.d1[n].shape, generator=gen) * 1e-3 for n in names}
    r1, r2 = lmod._dot(r, plane.d1) / lmod._dot(plane.d1, plane.d1), lmod._dot(r, plane.d2) / lmod._dot(plane.d2, plane.d2)
    r = {n: r[n] - r1 * plane.d1[n] - r2 * plane.d2[n] for n in names}  # off the plane
    delta = {n: 0.3 * plane.d1[n] - 0.7 * plane.d2[n] + r[n] for n in names}
    a, b, off, dist = plane.project(delta)
    d1_norm = math.sqrt(lmod._dot(plane.d1, plane.d1))
    assert a == pytest.approx(0.3, abs=1e-6) and b == pytest.approx(-0.7, abs=1e-6)
    assert off == pytest.approx(math.sqrt(lmod._dot(r, r)) / d1_norm, rel=1e-4)
    ratio = math.sqrt(lmod._dot(plane.d2, plane.d2)) / d1_norm  # distances are in units of ‖d1‖
    assert dist == pytest.approx(math.sqrt(0.3**2 + (0.7 * ratio)**2 + off**2), rel=1e-5)


def test_second_direction_is_orthogonal_and_filter_normalised(measured):
    names = measured.land.meta["plane_params"]
    theta0 = {n: measured.theta0[n] for n in names}
    theta1 = {n: measured.theta1[n] for n in names}
    plane = Plane.through(theta0, theta1, seed=0)
    for n in names:
        assert torch.equal(plane.d1[n], theta1[n] - theta0[n])
    norms = plane.norms()
    assert abs(norms["cos_d1_d2"]) < 1e-6
    # Li et al.'s scale: d2 about as long as θ₁ itself (orthogonalisation removes a sliver), far
    # longer than the fine-tuning displacement; the first version's scale makes it as long as d1
    theta_norm = math.sqrt(lmod._dot(theta1, theta1))
    assert 0.5 * theta_norm < norms["d2_norm"] <= theta_norm * 1.001
    assert Plane.through(theta0, theta1, seed=0, d2_scale="d1").norms()["d2_norm"] == pytest.approx(norms["d1_norm"], rel=1e-6)
    assert measured.land.meta["d1_norm"] == pytest.approx(norms["d1_norm"], rel=1e-9)
    assert abs(measured.land.meta["cos_d1_d2"]) < 1e-6
    # still filter-normalized: row norms of a weight matrix follow θ₁'s rows (up to one factor)
    w = "bert.encoder.layer.0.attention.self.query.weight"
    ratio = plane.d2[w].norm(dim=1) / theta1[w].norm(dim=1)
    assert (ratio.std() / ratio.mean()) < 0.05
    other = Plane.through(theta0, theta1, seed=1)
    assert not torch.allclose(other.d2[w], plane.d2[w])


def test_filter_normalization_rows_and_vectors():
    gen = torch.Generator().manual_seed(0)
    ref = {"w": torch.randn(6, 4, generator=gen) * torch.arange(1, 7).view(6, 1).float(),
           "b": torch.randn(6, generator=gen), "ln.weight": torch.ones(4)}
    rand = {k: torch.randn(v.shape, generator=gen) for k, v in ref.items()}
    out = filter_normalized(rand, ref)
    torch.testing.assert_close(out["w"].norm(dim=1), ref["w"].norm(dim=1))
    cos = torch.nn.functional.cosine_similarity(out["w"], rand["w"], dim=1)
    torch.testing.assert_close(cos, torch.ones(6))  # rescaled, not redrawn
    assert not out["b"].any() and not out["ln.weight"].any()  # 1-D tensors: zero (Li et al.)


def test_only_trainable_parameters_span_the_plane(cfg):
    land = compute_landscape(cfg.replace(freeze="head_only"), LandscapeConfig(grid=2, n1d=2, n_eval=8))
    names = land.meta["plane_params"]
    assert names and all(not n.startswith("bert.embeddings") and ".encoder." not in n for n in names)
    model = build(cfg.replace(freeze="head_only")).model
    assert land.meta["n_plane_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- evaluation
def test_surface_grid_and_its_values_at_theta0_and_theta1(measured, cfg):
    s, trainer = measured.land.surface, measured.trainer
    assert len(s) == LC.grid ** 2 and list(s.columns) == ["alpha", "beta", "loss", "accuracy"]
    assert sorted(s["alpha"].unique()) == [-0.5, 0.0, 0.5, 1.0, 1.5]
    assert sorted(s["beta"].unique()) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert np.isfinite(s["loss"]).all() and s["accuracy"].between(0, 1).all()
    batches = fixed_batches(trainer.data, cfg, LC.n_eval)
    assert sum(len(b["labels"]) for b in batches) == LC.n_eval == measured.land.meta["n_eval"]
    loss0, acc0 = batch_metrics(build(cfg).model, batches)  # a fresh θ₀
    loss1, acc1 = batch_metrics(trainer.model, batches)  # θ₁
    assert abs(loss1 - loss0) > 1e-3  # the two points are distinguishable
    at0, at1 = _at(s, alpha=0.0, beta=0.0), _at(s, alpha=1.0, beta=0.0)
    assert at0.loss == pytest.approx(loss0, rel=1e-6) and at0.accuracy == acc0
    assert at1.loss == pytest.approx(loss1, rel=1e-5) and at1.accuracy == acc1
    assert measured.land.meta["loss_theta1"] == pytest.approx(loss1, rel=1e-6)
    # the random direction matters: the surface is not constant along β
    assert s.groupby("alpha")["loss"].std().max() > 1e-6


def test_line_agrees_with_surface_on_beta_zero(measured):
    line, s = measured.land.line, measured.land.surface
    assert line["alpha"].tolist() == [-0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    both = line.merge(s[s["beta"] == 0.0], on="alpha", suffixes=("_line", "_surface"))
    assert both["alpha"].tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(both["loss_line"], both["loss_surface"], rtol=1e-6)
    np.testing.assert_array_equal(both["accuracy_line"], both["accuracy_surface"])
    assert line["loss"].iloc[1] != line["loss"].iloc[5]


def test_model_is_restored_exactly(measured):
    model = measured.trainer.model
    assert measured.trainer.step > 0
    params = dict(model.named_parameters())
    assert set(params) == set(measured.theta1)
    changed = [n for n in params if not torch.equal(params[n], measured.theta1[n])]
    assert changed == []
    assert model.training == measured.training
    assert any(not torch.equal(measured.theta0[n], measured.theta1[n]) for n in params)  # it trained


# --------------------------------------------------------------------------- files and cache
def test_save_load_round_trip(measured, tmp_path):
    land = measured.land
    folder = land.save(tmp_path / "land")
    land.save(folder)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["land"]  # no temporary folders left
    back = Landscape.load(folder)
    for name in ("surface", "path", "line"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(land, name))
    assert back.meta == land.meta and back.folder == folder
    text = repr(back)
    assert land.meta["run_id"] in text and "5×5" in text and "path: 7 snapshots" in text
    (folder / "path.parquet").write_bytes(b"\x00")
    with pytest.raises(RecordError, match="checksum"):
        Landscape.load(folder)


def test_cache_hit_skips_training_and_corrupt_is_recomputed(cfg, tmp_path, monkeypatch):
    calls = []
    real = lmod.compute_landscape
    monkeypatch.setattr(lmod, "compute_landscape", lambda c, l: calls.append(c) or real(c, l))
    first = landscape(cfg, LC, runs_dir=tmp_path)
    folder = landscape_path(cfg, LC, tmp_path)
    assert len(calls) == 1 and folder.is_dir() and folder.name.startswith("landscape-")
    assert first.meta["run_id"] == run_id(cfg)

    again = landscape(cfg.replace(threads=2), LC, runs_dir=tmp_path)  # threads: not identity
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again.surface, first.surface)

    (folder / "surface.parquet").write_bytes(b"\x00")
    with pytest.warns(StaleResultWarning, match="checksum"):
        fresh = landscape(cfg, LC, runs_dir=tmp_path)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(fresh.surface, first.surface)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert landscape(cfg, LC, runs_dir=tmp_path).meta == fresh.meta  # valid again, no recompute
    assert len(calls) == 2
    # another LandscapeConfig or another run is another folder
    assert landscape_path(cfg, LandscapeConfig(grid=5, n1d=7, path_every=5, n_eval=24, seed=1), tmp_path) != folder
    assert landscape_path(cfg.replace(lr=1e-3), LC, tmp_path) != folder


def test_same_seed_same_surface_other_seed_other_plane(measured, cfg):
    again = compute_landscape(cfg, LC)
    pd.testing.assert_frame_equal(again.surface, measured.land.surface)
    pd.testing.assert_frame_equal(again.path, measured.land.path)
    other = compute_landscape(cfg, LandscapeConfig(grid=5, n1d=7, path_every=5, n_eval=24, seed=1))
    on_line = other.surface["beta"] == 0.0
    # β = 0 does not involve d2; elsewhere a different random direction gives other losses
    pd.testing.assert_frame_equal(other.surface[on_line], measured.land.surface[on_line])
    assert not np.allclose(other.surface.loc[~on_line, "loss"], measured.land.surface.loc[~on_line, "loss"])


def test_config_is_validated():
    assert LandscapeConfig().alphas()[[2, 6]].tolist() == [0.0, 1.0]  # default grid holds θ₀, θ₁
    assert 0.0 in LandscapeConfig().betas() and {0.0, 1.0} <= set(LandscapeConfig().line_alphas())
    for bad in (dict(grid=1), dict(n_eval=0), dict(alpha_range=(1, 0)), dict(path_every=0),
                dict(beta_range=(0, float("nan"))), dict(grid=True)):
        with pytest.raises(ValueError, match="LandscapeConfig"):
            LandscapeConfig(**bad)
