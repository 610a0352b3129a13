"""The notebooks' widgets, driven without a browser (quick mode: tiny live runs)."""
from __future__ import annotations

import os

os.environ["FTLAB_QUICK"] = "1"  # before lab is imported: live runs of a few steps

import pytest  # noqa: E402

from ftcore import RunConfig  # noqa: E402

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


def test_schedule_explorer_offers_the_schedules_drawn_from_the_step_alone():
    """It reads the registry's flags: a schedule moved by the validation loss or the LR finder's sweep
    is left out, whatever its name; a new plain schedule is offered."""
    from ftcore.config import SCHEDULES, Schedule
    from lab.widgets import ScheduleExplorer
    SCHEDULES.add(Schedule("watch", "validation", lambda c, q, k, spe: 1.0, on_validation=True))
    SCHEDULES.add(Schedule("flat", "the peak LR", lambda c, q, k, spe: 1.0))
    try:
        kinds = ScheduleExplorer(total_steps=20, steps_per_epoch=20).schedule.options
    finally:
        SCHEDULES.remove("watch"), SCHEDULES.remove("flat")
    assert "flat" in kinds and "cosine" in kinds
    assert not {"watch", "plateau", "range_test"} & set(kinds)


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
    assert ctl.slider.value == pytest.approx(1e-4)  # the default learns; the reader tries larger ones
    ctl.slider.value = 1e-3
    rec = ctl.update()
    assert rec.status in ("completed", "diverged") and rec.summary["steps"] >= 1
    assert rec.config["lr"] == pytest.approx(1e-3) and rec.config["clip_grad_norm"] is None
    assert ctl.fig is not None and "1.0e-03" in ctl.summary.value
    assert "测试准确率" in ctl.summary.value and ("学到了" in ctl.summary.value or "没有学到" in ctl.summary.value)
    # progress inside the widget, not a tqdm bar in the log console
    assert ctl.progress.bar.max == rec.summary["steps"] == ctl.progress.bar.value
    assert rec.config["progress"] is False
    # earlier settings stay beside the new one
    ctl.slider.value = 1e-5
    ctl.update()
    assert len(ctl.history) == 2 and ctl.table.value.count("<tr") == 3 and "1.0e-05" in ctl.table.value


def test_verdict_flags_a_run_collapsed_to_one_class():
    from ftcore.records.record import RunRecord, table_from_rows
    from lab.widgets import verdict
    import viz
    evals = [(10, "rt-sentiment", "test", "accuracy", 0.422), (10, "rt-sentiment", "test", "max_class_frac", 1.0),
             (10, "rt-sentiment", "test", "majority_frac", 0.578)]
    rec = RunRecord("collapsed", {"task": "rt-sentiment"}, {}, "completed", {"steps": 10, "wall_s": 1.0},
                    {"evals": table_from_rows("evals", evals)})
    ok, text = verdict(rec)
    assert not ok and "100%" in text and "一个类别" in text
    with viz.set_theme("en"):
        ok, text = verdict(rec)
    assert not ok and "one class" in text
    good = [(10, "rt-sentiment", "test", "accuracy", 0.80), (10, "rt-sentiment", "test", "max_class_frac", 0.55),
            (10, "rt-sentiment", "test", "majority_frac", 0.578)]
    ok, text = verdict(RunRecord("good", {}, {}, "completed", {}, {"evals": table_from_rows("evals", good)}))
    assert ok and "学到了" in text


def test_live_regime_is_the_one_that_learns():
    """Outside quick mode the live runs use the recorded pilot's regime (1,000 reviews x 2 epochs,
    LR 1e-4, mean pooling), and LoRA its own LR."""
    import importlib

    import lab.env
    os.environ["FTLAB_QUICK"] = "0"
    try:
        env = importlib.reload(lab.env)
        cfg = env.live_config()
        assert (cfg.train_size, cfg.epochs, cfg.lr, cfg.pooling) == (1000, 2, 1e-4, "mean")
        assert cfg.test_size == 500 and env.LORA_LR == 3e-3
        # the base regime read from the figures' base run: the same config as when it was typed here
        assert cfg == RunConfig(task="rt-sentiment", train_size=1000, epochs=2, lr=1e-4, pooling="mean", max_length=48,
                                precision="auto", eval_splits=("validation",), eval_every=25, eval_size=200,
                                test_size=500, threads=env.THREADS)
        from chapter.figures.base import LORA_LR, regime
        from chapter.scale import FULL
        assert env.LORA_LR is LORA_LR
        assert {k: getattr(cfg, k) for k in regime()} == {**regime(FULL.base), "pooling": env.LIVE_POOLING}
    finally:
        os.environ["FTLAB_QUICK"] = "1"
        importlib.reload(lab.env)


def test_lab_texts_exist_in_both_languages():
    """Every widget text, the notebook modules' included, is in lab/texts for both languages."""
    import json
    from pathlib import Path

    import lab
    tables = {lang: json.loads((Path(lab.__file__).with_name("texts") / f"{lang}.json").read_text(encoding="utf-8"))
              for lang in ("zh", "en")}
    assert set(tables["zh"]) == set(tables["en"]) and all(v for t in tables.values() for v in t.values())
    assert {k.split(".")[0] for k in tables["zh"]} >= {"pretraining", "quantization", "alignment"}


def test_quick_live_runs_are_tiny():
    from lab.env import QUICK, live_config
    assert QUICK
    assert live_config() == RunConfig(task="rt-sentiment", train_size=32, epochs=1, lr=1e-4, pooling="mean", max_length=48,
                                      precision="auto", eval_splits=("validation",), eval_every=1, eval_size=32,
                                      test_size=32, threads=live_config().threads)


def test_lora_gradual_and_doctor_controls_report_accuracy():
    from lab.widgets import DoctorRun, GradualUnfreeze, LoraRank
    lora = LoraRank()
    rec = lora.update()
    assert rec.config["lr"] == pytest.approx(3e-3) and rec.config["peft"] == "lora"
    assert "可训练参数占比" in lora.summary.value and "%" in lora.summary.value
    g = GradualUnfreeze()
    rec = g.update()
    assert rec.config["freeze"] == "gradual" and "测试准确率" in g.summary.value
    d = DoctorRun()
    d.knobs[1].value = False
    rec = d.update()
    assert rec.config["clip_grad_norm"] is None and "运行医生" in d.extra.value


def test_forgetting_control_trains_two_tasks_and_keeps_a_table():
    from lab.widgets import ForgettingControl
    ctl = ForgettingControl()
    assert ctl.button.layout.width == "auto"  # the label is not cut off
    cfg = ctl.config()
    assert cfg.tasks == ("rt-sentiment", "bbc-topic") and cfg.base.pooling == "mean"
    ctl.method.value = "naive"
    m = ctl.update()
    assert m.shape == (2, 2) and "遗忘" in ctl.summary.value and len(ctl.history) == 1
    assert "直接顺序训练" in ctl.table.value


def test_widgets_speak_the_notebook_language():
    import viz
    from lab.widgets import LoraRank, ScheduleExplorer
    assert LoraRank().button.description == "训练" and ScheduleExplorer().schedule.description == "调度"
    with viz.set_theme("en"):
        assert LoraRank().button.description == "Train" and ScheduleExplorer().schedule.description == "schedule"


def test_freeze_share_shows_significant_digits():
    from lab.strings import pct
    assert pct(770 / 22_713_986) == "0.0034%" and pct(0.5) == "50%" and pct(0.031) == "3.1%"


def test_causal_shift_mlm_rule_and_unk_note():
    from lab.widgets import CollatorBox
    box = CollatorBox(text="A gentle and funny film about a family. 这部电影很好看", explain=True)
    shift = box.result["causal_shift"]
    inp, tgt = shift.columns[2], shift.columns[3]
    assert list(shift[tgt].iloc[:-1]) == list(shift[inp].iloc[1:])  # target = the next input token
    assert "[CLS]" not in set(shift[inp]) and "[SEP]" not in set(shift[inp])
    rule = box.result["mlm_rule"]
    assert len(rule) and rule.iloc[:, 3].str.contains("80%|10%").all()
    assert "[UNK]" in box.table.value and "30,522" in box.table.value


def test_hf_trainer_demo_evaluates_logs_sparsely_and_is_judged():
    import lab
    from ftcore.records.doctor import diagnose
    from ftcore.records.record import TABLES
    lines = []
    rec = lab.hf_demo.train_with_hf_trainer(lab.live_config(), log=lines.append)
    assert len(rec.steps) >= 1 and rec.steps["loss"].notna().all()
    assert set(rec.tables) >= set(TABLES) - {"examples"}
    assert set(rec.evals["split"]) >= {"validation", "test"} and rec.metric("accuracy") == rec.metric("accuracy")
    assert len(lines) <= 12  # a handful of lines, not one per step
    assert diagnose(rec).evaluated is True


def test_hf_trainer_widget_shows_accuracy_and_the_doctor():
    from lab.widgets import HFTrainerRun
    w = HFTrainerRun()
    rec = w.update()
    assert rec is not None and "测试准确率" in w.summary.value and "运行医生" in w.extra.value


def test_lr_finder_runs_on_its_button_and_plots(tmp_path, monkeypatch):
    monkeypatch.setenv("FTCORE_RUNS_DIR", str(tmp_path))  # the range test goes through the run cache
    from lab.widgets import LRFinder
    f = LRFinder()
    assert f.result is None and f.fig is None  # nothing runs before the click
    res = f.update()
    assert len(res.lrs) >= 1 and f.fig is not None and "1/10" in f.summary.value


def test_hf_trainer_widget_full_recipe_shows_per_class_metrics():
    from lab.widgets import HFTrainerRun
    w = HFTrainerRun()
    w.recipe.value = True
    cfg = w.config()
    assert cfg.lr_strategy == "layerwise" and cfg.label_smoothing == 0.1 and cfg.early_stopping_patience == 2
    rec = w.update()
    assert rec.config["label_smoothing"] == 0.1  # what trained is what is recorded
    assert "完整配方" in w.table.value and "精确率" in w.classes.value and "<table" in w.classes.value


def test_forgetting_control_offers_the_combination_and_the_upper_bound():
    from lab.widgets import ForgettingControl
    ctl = ForgettingControl()
    assert {"replay_ewc", "joint"} <= {v for _, v in ctl.method.options}
    ctl.method.value, ctl.lam.value, ctl.frac.value = "replay_ewc", 1e4, 0.25
    assert ctl.config().method == "replay_ewc" and ctl.describe() == "回放+EWC, λ = 1e+04, 回放比例 = 25%"
    ctl.method.value = "joint"
    assert ctl.describe() == "多任务联合（上界）"
    m = ctl.update()
    assert m.shape == (2, 2) and "多任务联合" in ctl.table.value
