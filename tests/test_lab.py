"""The notebooks' widgets, driven without a browser (quick mode: tiny live runs)."""
from __future__ import annotations

import os

os.environ["FTLAB_QUICK"] = "1"  # before lab is imported: live runs of a few steps

import pytest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _theme(lang_theme):
    lang_theme("zh")


def test_schedule_explorer_redraws_from_the_real_schedulers():
    from lab.widgets import ScheduleExplorer
    ex = ScheduleExplorer(total_steps=50, steps_per_epoch=50)
    first, fig = list(ex.result), ex.fig
    assert len(first) == 50 and max(first) == pytest.approx(2e-4)
    ex.warmup_ratio.value = 0.3  # a slider move triggers update()
    assert ex.fig is not fig and ex.result != first
    ex.schedule.value = "constant"
    ex.warmup.value = "none"
    assert set(ex.result) == {2e-4}


def test_span_corruption_hides_spans_behind_matching_sentinels():
    from ftcore.analysis.collate import span_corruption
    ids = list(range(100, 140))
    inp, tgt = span_corruption(ids, seed=3)
    sentinels = [p for p in inp if isinstance(p, str)]
    assert sentinels and sentinels == [p for p in tgt if isinstance(p, str)][:len(sentinels)]
    # putting the spans back where their sentinels are gives the original sequence
    spans, cur = {}, None
    for p in tgt:
        if isinstance(p, str):
            cur = p
            spans[cur] = []
        else:
            spans[cur].append(p)
    rebuilt = [x for p in inp for x in (spans[p] if isinstance(p, str) else [p])]
    assert rebuilt == ids
    assert 0.05 < sum(len(v) for v in spans.values()) / len(ids) < 0.3


def test_collator_box_shows_each_objective_for_the_typed_text():
    from lab.widgets import CollatorBox
    box = CollatorBox(text="A gentle and funny film.")
    views = box.result
    assert set(views) == {"classification", "mlm", "causal_lm", "span_corruption"}
    mlm = views["mlm"]
    assert ((mlm["label"] == -100) | (mlm["label"] > 0)).all()
    clm = views["causal_lm"]
    assert (clm["label"] == clm["input_id"]).all()  # the model shifts them inside its loss
    box.text.value = "Another sentence entirely, and longer than the first one."
    assert len(box.result["classification"]) > len(views["classification"])
    assert "<table" in box.table.value


def test_freeze_slider_freezes_the_real_model():
    from lab.widgets import FreezeExplorer
    ex = FreezeExplorer()
    all_trainable = ex.result["trainable"].all()
    ex.depth.value = 4  # embeddings, layer.0 … layer.2 frozen
    df = ex.result
    assert all_trainable and not df["trainable"].iloc[:4].any() and df["trainable"].iloc[4:].all()
    assert "trainable" in ex.text.value.lower() or "可训练" in ex.text.value


def test_lr_slider_trains_a_short_live_run():
    from lab.widgets import LRInstability
    ctl = LRInstability()
    ctl.slider.value = 1e-3
    rec = ctl.update()
    assert rec.status in ("completed", "diverged") and rec.summary["steps"] >= 1
    assert rec.config["lr"] == pytest.approx(1e-3) and rec.config["clip_grad_norm"] is None
    assert ctl.fig is not None and "LR = 0.001" in ctl.summary.value


def test_hf_trainer_demo_returns_a_record_with_our_schema():
    import lab
    from ftcore.records.record import TABLES
    rec = lab.hf_demo.train_with_hf_trainer(lab.live_config())
    assert len(rec.steps) >= 1 and rec.steps["loss"].notna().all()
    assert set(rec.tables) >= set(TABLES) - {"examples"}
