"""Schedules: warmup shapes match their definitions; decays match the libraries' schedulers."""
import math

import pytest
import torch
from transformers import (get_cosine_schedule_with_warmup, get_cosine_with_hard_restarts_schedule_with_warmup,
                          get_linear_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup)

from ftcore import RunConfig, train
from ftcore.engine.schedules import multiplier, num_warmup_steps, preview, warmup_factor

T, W = 100, 20


def lrs_of(cfg, total=T, spe=25):
    return preview(cfg, total, spe)["all"]


@pytest.mark.parametrize("kind, formula", [
    ("linear", lambda p: p),
    ("cosine", lambda p: (1 - math.cos(math.pi * p)) / 2),
    ("sqrt", lambda p: math.sqrt(p)),
    ("exponential", lambda p: (1 - math.exp(-5 * p)) / (1 - math.exp(-5))),
])
def test_warmup_shapes(kind, formula):
    cfg = RunConfig(lr=1.0, warmup=kind, warmup_steps=W, schedule="constant")
    lrs = lrs_of(cfg)
    for k in range(W):
        assert lrs[k] == pytest.approx(formula((k + 1) / W), rel=1e-9)
    assert lrs[W - 1] == pytest.approx(1.0) and all(lr == pytest.approx(1.0) for lr in lrs[W:])
    assert all(a < b for a, b in zip(lrs[:W - 1], lrs[1:W]))  # strictly rising


def test_no_warmup_starts_at_peak():
    assert lrs_of(RunConfig(lr=1.0, warmup="none", schedule="constant"))[0] == 1.0


def _hf(factory, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    s = factory(opt, num_warmup_steps=W, num_training_steps=T, **kw)
    out = []
    for _ in range(T):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


@pytest.mark.parametrize("schedule, factory, kw", [
    ("linear", get_linear_schedule_with_warmup, {}),
    ("cosine", get_cosine_schedule_with_warmup, {}),
    ("polynomial", get_polynomial_decay_schedule_with_warmup, {"power": 2.0, "lr_end": 0.0}),
    ("cosine_restarts", get_cosine_with_hard_restarts_schedule_with_warmup, {"num_cycles": 3}),
])
def test_decay_matches_transformers_after_warmup(schedule, factory, kw):
    ours = lrs_of(RunConfig(lr=1.0, warmup_steps=W, schedule=schedule, restarts=3, poly_power=2.0))
    theirs = _hf(factory, **kw)
    assert ours[W:] == pytest.approx(theirs[W:], abs=1e-9)


def test_exponential_and_step_decay_per_epoch():
    spe = 10
    exp = lrs_of(RunConfig(lr=1.0, warmup="none", schedule="exponential", gamma=0.5), total=40, spe=spe)
    assert exp[10] == pytest.approx(0.5) and exp[20] == pytest.approx(0.25)
    step = lrs_of(RunConfig(lr=1.0, warmup="none", schedule="step", gamma=0.1, step_every=2.0), total=60, spe=spe)
    assert step[19] == 1.0 and step[20] == pytest.approx(0.1) and step[40] == pytest.approx(0.01)


def test_cyclic_one_cycle_and_range_test():
    cyc = lrs_of(RunConfig(lr=1.0, schedule="cyclic", cycle_epochs=0.4, min_lr_ratio=0.1), total=40, spe=25)
    assert min(cyc) == pytest.approx(0.1) and max(cyc) == pytest.approx(1.0)
    assert cyc.index(max(cyc)) == 10  # half cycle = 0.4 epoch * 25 steps
    one = lrs_of(RunConfig(lr=1.0, schedule="one_cycle", warmup_ratio=0.25))
    assert one.index(max(one)) == 24 and one[-1] < 1e-3  # torch: peak at pct_start * total - 1
    rng = lrs_of(RunConfig(lr=1.0, schedule="range_test", range_start_lr=1e-6))
    assert rng[0] == pytest.approx(1e-6) and rng[-1] == pytest.approx(1.0)
    ratios = [b / a for a, b in zip(rng, rng[1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # exponential: constant ratio


def test_warmup_steps_from_ratio():
    assert num_warmup_steps(RunConfig(warmup_ratio=0.1), 200) == 20
    assert num_warmup_steps(RunConfig(warmup="none"), 200) == 0
    f = multiplier(RunConfig(warmup_ratio=0.1, schedule="linear"), 200, 50)
    assert f(19) == 1.0 and f(199) == pytest.approx(1 / 180)
    with pytest.raises(ValueError):
        warmup_factor("quadratic", 0.5)


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_one_cycle_survives_very_short_runs(tiny, steps):
    rec = train(tiny.replace(schedule="one_cycle", max_steps=steps, eval_splits=(), test_at_end=False))
    assert len(rec.steps) == steps and rec.lrs["lr"].notna().all()


def test_one_cycle_cycles_momentum_inversely_to_the_lr_as_smith_and_topin_define_it():
    import torch

    from ftcore import RunConfig
    from ftcore.engine.schedules import LRSchedule

    def betas(on: bool) -> list[float]:
        m = torch.nn.Linear(2, 2)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        cfg = RunConfig(schedule="one_cycle", warmup_ratio=0.3, lr=1e-3, one_cycle_momentum=on)
        s, out = LRSchedule(opt, cfg, 20, 10), []
        for _ in range(20):
            out.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"][0]))
            opt.step()
            s.step()
        return out
    on, off = betas(True), betas(False)
    peak = max(range(20), key=lambda i: on[i][0])
    assert on[0][1] == pytest.approx(0.95) and on[peak][1] == pytest.approx(0.85) and on[-1][1] > 0.94
    assert {b for _, b in off} == {0.9}  # off: AdamW's own beta1 throughout
    assert [lr for lr, _ in on] == pytest.approx([lr for lr, _ in off])  # the LR cycle is the same
