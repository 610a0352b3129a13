"""The reviewed protocol (issue 24): choices made on validation with seeds no reported run uses,
never reading test; reported runs test the whole split with per-example predictions; verdicts by
Holm, McNemar/Newcombe and equivalence tests."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from chapter import protocol
from chapter.protocol import SELECTIONS, Selection, outcome, selection_config, validation_score
from chapter.scale import REVIEWED, SELECTION_SEEDS
from ftcore.records.record import RunRecord
from ftcore.records.stats import (holm, mcnemar_exact, newcombe_paired, paired_items_test, paired_rate_test,
                                  paired_test, resolve, t_sf)


def _record(val_acc: float, test_acc: float, *, share: float = 0.55, status: str = "completed") -> RunRecord:
    rows = []
    for split, acc in (("validation", val_acc), ("test", test_acc)):
        rows += [(126, "rt-sentiment", split, "accuracy", acc), (126, "rt-sentiment", split, "majority_frac", 0.578),
                 (126, "rt-sentiment", split, "max_class_frac", share)]
    evals = pd.DataFrame(rows, columns=["step", "task", "split", "metric", "value"])
    return RunRecord("x", {}, {}, status, {"steps": 126}, {"evals": evals})


def _sel(lrs=(1e-4, 3e-4, 1e-3), **kw) -> Selection:
    return Selection("t", lambda S: {f"lr {lr:.2g}": S.base.replace(lr=lr) for lr in lrs}, "nowhere", **kw)


# ------------------------------------------------------------------------------------ selection
def test_selection_seeds_are_disjoint_from_the_reporting_seeds_and_runs_never_test():
    assert not set(SELECTION_SEEDS) & set(REVIEWED.seeds)
    cfg = selection_config(REVIEWED.base, SELECTION_SEEDS[0])
    assert cfg.test_at_end is False and cfg.eval_splits == ("validation",) and cfg.eval_size is None
    with pytest.raises(ValueError, match="selection seeds"):
        selection_config(REVIEWED.base, REVIEWED.seeds[0])


def test_a_choice_never_reads_test_a_poisoned_test_split_gives_the_same_choice():
    val = {1e-4: 0.78, 3e-4: 0.80, 1e-3: 0.79}

    def clean(cfg):
        return _record(val[cfg.lr], 0.5)

    def poisoned(cfg):  # test says the opposite: the worst on validation is perfect on test
        return _record(val[cfg.lr], {1e-4: 1.0, 3e-4: 0.0, 1e-3: 0.2}[cfg.lr])
    a = outcome(_sel(), fetch=clean)
    b = outcome(_sel(), fetch=poisoned)
    assert a.chosen == b.chosen == "lr 0.0003"
    assert [r["scores"] for r in a.rows] == [r["scores"] for r in b.rows]
    assert validation_score(_record(0.8, 0.1))["score"] == 0.8


def test_every_candidate_scores_with_both_selection_seeds():
    seen = []

    def fetch(cfg):
        seen.append((cfg.lr, cfg.seed, cfg.test_at_end))
        return _record(0.8, 0.8)
    outcome(_sel(), fetch=fetch)
    assert {s for _, s, _ in seen} == set(SELECTION_SEEDS) and not any(t for _, _, t in seen)


def test_a_best_at_the_grid_edge_extends_the_grid_that_way():
    fetch = lambda cfg: _record(min(0.9, 0.7 + 100 * cfg.lr), 0.5)  # noqa: E731 - better as lr grows, to 1e-3
    out = outcome(_sel(extend=2), fetch=fetch)
    lrs = sorted(r["lr"] for r in out.rows)
    assert len(lrs) == 5 and lrs[-1] == pytest.approx(1e-3 * 10)  # two steps of √10 past 1e-3
    assert outcome(_sel(extend=0), fetch=fetch).chosen == "lr 0.001"


def test_a_candidate_that_did_not_learn_is_listed_with_why_and_never_chosen():
    def fetch(cfg):
        return _record(0.95, 0.95, share=0.99) if cfg.lr == 1e-3 else _record(0.79, 0.79)
    out = outcome(_sel(extend=0), fetch=fetch)
    bad = next(r for r in out.rows if r["lr"] == 1e-3)
    assert not bad["learned"] and "one class" in bad["why"][0]
    assert out.chosen != "lr 0.001" and "no: one class" in out.table()


def test_cheapest_rule_takes_the_fewest_steps_that_reach_the_target():
    cands = {"short": REVIEWED.base.replace(epochs=1), "long": REVIEWED.base.replace(epochs=2)}

    def fetch(cfg):
        r = _record(0.775 if cfg.epochs == 1 else 0.80, 0.5)
        r.summary["steps"] = 63 * int(cfg.epochs)
        return r
    sel = Selection("r", lambda S: cands, "nowhere", rule="cheapest", target=0.77, lr_grid=False)
    assert outcome(sel, fetch=fetch).chosen == "short"
    sel = Selection("r", lambda S: cands, "nowhere", rule="cheapest", target=0.79, lr_grid=False)
    assert outcome(sel, fetch=fetch).chosen == "long"


def test_first_failure_rule_takes_the_lowest_lr_that_fails_in_any_seed():
    def fetch(cfg):  # seed 101 collapses from 4e-4, seed 100 only from 8e-4
        bad = cfg.lr >= (4e-4 if cfg.seed == SELECTION_SEEDS[1] else 8e-4)
        return _record(0.58 if bad else 0.78, 0.5, share=0.99 if bad else 0.55)
    sel = _sel((2e-4, 4e-4, 8e-4), rule="first_failure", lr_grid=False)
    out = outcome(sel, fetch=fetch)
    assert out.chosen == "lr 0.0004"
    assert outcome(sel, fetch=lambda cfg: _record(0.78, 0.5)).chosen is None  # nothing failed: no "too high" here


def test_the_selections_have_the_reviewed_base_and_name_what_they_set():
    import dataclasses
    S = dataclasses.replace(REVIEWED, chosen={"reward": 3e-5, **REVIEWED.chosen})  # RLHF's builds on the reward model's
    for name, sel in SELECTIONS.items():
        cands = sel.candidates(S)
        assert cands and sel.sets, name
        for cfg in cands.values():
            # the studies (fp32 throughout) report on every test text, pair or opening
            if hasattr(cfg, "tune"):
                assert cfg.tune.n_eval is None and "test" in cfg.tune.eval_splits, name
                continue
            if hasattr(cfg, "rl"):
                assert cfg.rl.eval_openings is None and "test" in cfg.rl.eval_splits, name
                assert cfg.reward.n_test_pairs is None, name
                continue
            if hasattr(cfg, "cfg"):  # the reward model
                assert cfg.cfg.held_out() == {"validation": None, "test": None}, name
                continue
            cfg = getattr(cfg, "base", cfg)  # a task sequence's shared run settings
            assert cfg.precision == "fp32" and cfg.test_size is None, name


# ------------------------------------------------------------------------------------ statistics
def test_t_tail_matches_the_tables():
    assert t_sf(2.776, 4) == pytest.approx(0.025, abs=2e-4)
    assert t_sf(2.228, 10) == pytest.approx(0.025, abs=2e-4)
    assert t_sf(0.0, 7) == pytest.approx(0.5)
    assert t_sf(-2.776, 4) == pytest.approx(0.975, abs=2e-4)


def test_holm_adjusts_step_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.5]) == [0.5]
    assert max(holm([0.3, 0.4, 0.9])) <= 1.0


def test_exact_mcnemar_counts_only_the_discordant_pairs():
    assert mcnemar_exact(0, 7) == pytest.approx(2 * 0.5 ** 7)
    assert mcnemar_exact(1, 8) == pytest.approx(2 * 10 / 512)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_newcombe_interval_covers_the_true_paired_difference_about_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(1000):
        z = rng.random(20)
        a, b = z < 0.3, (z < 0.2) | (rng.random(20) < 0.3)  # true difference 0.3 - 0.44 = -0.14
        iv = newcombe_paired(a, b)
        hits += iv.low <= -0.14 <= iv.high
    assert 0.92 <= hits / 1000 <= 0.99
    iv = newcombe_paired([False] * 10, [False] * 10)
    assert iv.estimate == 0 and iv.low < 0 < iv.high


def test_paired_rates_a_fix_that_rescues_every_failing_seed_is_significant_alone():
    fix, base = [False] * 10, [True] * 8 + [False] * 2
    t = paired_rate_test(fix, base)
    assert t.p == pytest.approx(2 * 0.5 ** 8) and t.effect.high < 0
    assert resolve(t, -1, t.p, 1.0) == "agrees"


def test_items_interval_counts_test_item_noise_and_covers_a_null_effect():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(300):
        item = rng.normal(0, 1.2, 300)  # item difficulty, shared by both arms
        p = 1 / (1 + np.exp(-(1.0 + item)))
        a = {s: (rng.random(300) < p).astype(float) for s in range(5)}
        b = {s: (rng.random(300) < p).astype(float) for s in range(5)}
        t = paired_items_test(a, b)
        hits += t.effect.low <= 0 <= t.effect.high
    assert hits / 300 >= 0.93
    seeds_only = paired_test({s: a[s].mean() for s in a}, {s: b[s].mean() for s in b})
    assert t.effect.high - t.effect.low > 0 and seeds_only.effect.n == t.effect.n == 5


def test_equivalence_needs_a_margin_and_a_tight_interval():
    same = {s: 0.80 + 0.001 * s for s in range(5)}
    close = {s: v + 0.002 * (-1) ** s for s, v in same.items()}
    t = paired_test(close, same, margin=0.015)
    assert t.p_equivalent < 0.05
    assert resolve(t, +1, t.p, t.p_equivalent) == "equivalent"
    t0 = paired_test(close, same, margin=0.0)
    assert resolve(t0, +1, t0.p, t0.p_equivalent) == "undetectable"


def test_holm_turns_a_lone_significant_claim_into_cannot_tell_in_a_family():
    from chapter.claims import Claim, judge, judge_all
    from ftcore.records.runset import RunSet

    def rec(v):
        return _record(0.8, v)
    diffs = [0.006, 0.020, 0.002, 0.012, 0.016]  # t ≈ 3.4: p ≈ 0.03 alone, ≈ 0.16 among six
    rs = RunSet([({"arm": "a", "seed": s}, rec(0.8 + d)) for s, d in enumerate(diffs)]
                + [({"arm": "b", "seed": s}, rec(0.8)) for s in range(5)]
                + [({"arm": "c", "seed": s}, rec(0.8 + 0.01 * (s % 2))) for s in range(5)])
    c1 = Claim({"zh": "a", "en": "a"}, {"arm": "a"}, {"arm": "b"}, margin=0.0)
    others = [Claim({"zh": "c", "en": "c"}, {"arm": "c"}, {"arm": "b"}, margin=0.0) for _ in range(5)]
    assert judge(c1, {"runs": rs}).verdict == "agrees"
    fam = judge_all([c1, *others], {"runs": rs})
    assert fam[0].p_holm > judge(c1, {"runs": rs}).p_holm and fam[0].family == 6
    assert fam[0].verdict == "undetectable" and "Holm" in fam[0].line("en")


# ------------------------------------------------------------------------------------ reported runs
def test_a_reported_run_stores_every_test_example_prediction(tiny):
    from ftcore import train
    rec = train(tiny.replace(epochs=1, test_size=None, eval_splits=("validation",)))
    n = rec.summary["eval_examples"]["test"]
    p = rec.predictions
    assert len(p) == n and sorted(p["index"]) == list(range(n)) and set(p["split"]) == {"test"}
    assert rec.correct().mean() == pytest.approx(rec.metric("accuracy", "test"))
    assert rec.summary["cpu_s"] > 0


@pytest.mark.parametrize("loop", ["hf", "lightning"])
def test_hf_trainer_and_lightning_runs_store_every_test_example_prediction_too(tiny, loop):
    """The engines figure reports runs of all three loops: each stores its test predictions as
    ftcore's loop does, the same items, and they agree with the accuracy it recorded."""
    from ftcore import train
    if loop == "lightning":
        pytest.importorskip("lightning")
        from ftcore.engine.lightning import train_lightning as train_loop
    else:
        from ftcore.engine.hf import train_hf as train_loop
    # a run that learns (a model answering one class would hide predictions stored beside the wrong example)
    cfg = tiny.replace(epochs=4, test_size=None, eval_splits=("validation",))
    assert cfg.group_by_length  # HF Trainer then also groups evaluation by length unless told otherwise
    rec, ref = train_loop(cfg), train(cfg)
    p, q = rec.predictions, ref.predictions
    assert len(p) == rec.summary["eval_examples"]["test"] > 0 and set(p["split"]) == {"test"}
    assert p["index"].tolist() == q["index"].tolist() and p["label"].tolist() == q["label"].tolist()
    assert rec.metric("accuracy", "test") > 0.8  # it learned (chance 0.5)
    assert rec.correct().mean() == pytest.approx(rec.metric("accuracy", "test"))


def test_a_reviewed_figure_is_built_at_the_reviewed_scale_and_gated_on_validation():
    import dataclasses

    from chapter.registry import FigureSpec
    from chapter.scale import FULL, QUICK
    spec = FigureSpec(id="t", section="3.2", notebooks=(), caption="c", draw=lambda **kw: None,
                      needs=lambda S: {"base": S.base}, reviewed=True, must_learn={})
    assert spec.needs(FULL)["base"] == REVIEWED.base
    assert spec.needs(QUICK)["base"] == QUICK.base  # quick mode stays the code-path check
    legacy = dataclasses.replace(spec, id="u", reviewed=False)
    assert legacy.needs(FULL)["base"] == FULL.base
    assert math.isfinite(REVIEWED.base.lr)
    assert protocol.LEARN_MARGIN > 0


# ------------------------------------------------------------------------------------ the choices in the code
def _stored_outcome(name):
    return protocol.run_selection(SELECTIONS[name], REVIEWED, render_only=True)


def test_the_reviewed_regime_and_base_lr_are_what_their_selections_chose():
    regime = _stored_outcome("regime").chosen_config
    assert regime is not None
    for k in ("train_size", "epochs", "pooling", "max_length"):
        assert getattr(REVIEWED.base, k) == getattr(regime, k), k
    assert REVIEWED.base.lr == _stored_outcome("base").chosen_config.lr


@pytest.mark.parametrize("name", sorted(set(REVIEWED.chosen) & set(SELECTIONS)))
def test_each_chosen_lr_in_the_code_is_what_its_selection_chose_on_validation(name):
    out = _stored_outcome(name)
    assert out.chosen_config is not None, out.table()
    if name.startswith("reg_"):  # a regularizer's strength, not an LR
        from chapter.figures.problems import REG_STRENGTHS
        field_ = REG_STRENGTHS[name.removeprefix("reg_")][0]
        assert REVIEWED.chosen[name] == pytest.approx(getattr(out.chosen_config, field_)), out.table()
        return
    sequence = {"cl_ewc": "ewc_lambda", "cl_lora": "lora_lr"}  # a task sequence's setting
    if name in sequence:
        assert REVIEWED.chosen[name] == pytest.approx(getattr(out.chosen_config, sequence[name])), out.table()
        return
    assert REVIEWED.chosen[name] == pytest.approx(out.chosen_config.lr), out.table()
    if f"{name}_pooling" in REVIEWED.chosen:  # chosen over pooling x LR
        assert REVIEWED.chosen[f"{name}_pooling"] == out.chosen_config.pooling, out.table()
    if f"{name}_gamma" in REVIEWED.chosen:  # a schedule chosen over its shape x LR
        assert REVIEWED.chosen[f"{name}_gamma"] == pytest.approx(out.chosen_config.gamma), out.table()
    if f"{name}_mlm" in REVIEWED.chosen:  # continual pretraining: the continued model x LR
        from chapter.figures.pretraining import continued_model
        assert continued_model(REVIEWED, REVIEWED.chosen[f"{name}_mlm"]) == out.chosen_config.model, out.table()


def test_every_figure_under_the_reviewed_protocol_names_selections_that_set_its_values():
    from chapter import figures  # noqa: F401
    from chapter.registry import REGISTRY
    for fid, spec in REGISTRY.items():
        if spec.reviewed:
            assert spec.selections and set(spec.selections) <= set(SELECTIONS), fid
            from chapter.registry import Grid, Sequences
            from chapter.scale import FULL
            if any(isinstance(n, (Grid, Sequences)) for n in spec.needs(FULL).values()):  # the encoder's runs
                assert {"regime", "base"} <= set(spec.selections), fid
            assert set(spec.selections) - {"regime", "base"} <= set(REVIEWED.chosen), fid


def test_grids_extend_along_the_1_3_10_ladder():
    from chapter.protocol import next_lr
    assert next_lr(3e-3, up=True) == 1e-2 and next_lr(1e-2, up=True) == 3e-2
    assert next_lr(3e-4, up=False) == 1e-4 and next_lr(1e-4, up=False) == 3e-5


def test_reviewed_regularization_gives_augmentation_the_same_steps_and_says_how_strengths_were_chosen():
    import dataclasses

    from chapter import figures  # noqa: F401
    from chapter.figures.problems import regularization_base, regularizers
    from chapter.registry import REGISTRY
    S = dataclasses.replace(REVIEWED, chosen=dict(REVIEWED.chosen, reg_dropout=0.1, reg_weight_decay=0.01,
                                                  reg_label_smoothing=0.1, reg_early_stopping=4))
    arms_ = regularizers(S)
    assert arms_["augmentation"]["epochs"] * 2 == regularization_base(S).epochs  # a copy per example: 2x steps/epoch
    assert arms_["combined"]["dropout"] == 0.1 and arms_["combined"]["early_stopping_patience"] == 4
    caption = REGISTRY["regularization"].caption(S)
    assert "same optimizer steps" in caption["en"] and "doubles" not in caption["en"]
    assert "使优化步数相同" in caption["zh"] and "翻倍" not in caption["zh"]
    assert "chosen on the validation split" in caption["en"]


def test_reviewed_stability_fixes_use_the_fragile_lr_chosen_on_validation():
    import dataclasses

    from chapter import figures  # noqa: F401
    from chapter.registry import REGISTRY
    S = dataclasses.replace(REVIEWED, chosen=dict(REVIEWED.chosen, fragile=4e-4))
    runs = REGISTRY["stability-fixes"].needs(S)["runs"]
    assert {c.lr for _, c in runs.cells} == {4e-4} and len({lab["seed"] for lab, _ in runs.cells}) == 20
    assert "fragile LR was chosen on the validation split" in REGISTRY["stability-fixes"].caption(S)["en"]


def test_layerwise_lrs_are_tuned_on_full_fine_tunings_grid_and_drawn_from_their_selection_runs(monkeypatch):
    import dataclasses

    from chapter import figures  # noqa: F401
    from chapter.figures import basics
    from chapter.registry import REGISTRY
    llrd, base = SELECTIONS["llrd"], SELECTIONS["base"]
    cands = llrd.candidates(REVIEWED)
    assert [c.lr for c in cands.values()] == [c.lr for c in base.candidates(REVIEWED).values()]  # one grid
    assert llrd.rule == base.rule and llrd.lr_grid and llrd.extend == base.extend  # one rule
    assert all(c.lr_strategy == "layerwise" and c.layer_decay < 1 for c in cands.values())
    # the right panel's sweep is the selection's runs: selection seeds, validation only, never test
    rows = [{"label": k, "config": c, "lr": c.lr} for k, c in cands.items()]
    monkeypatch.setattr(protocol, "run_selection", lambda *a, **k: protocol.Outcome(llrd, rows=rows))
    S = dataclasses.replace(REVIEWED, chosen=dict(REVIEWED.chosen, llrd=3e-4, random_init=3e-4))
    sweep = basics._llrd_sweep(S)
    assert {lab["seed"] for lab, _ in sweep} == set(SELECTION_SEEDS) and len(sweep) == 2 * len(cands)
    assert all(not c.test_at_end and c.eval_splits == ("validation",) for _, c in sweep)
    assert basics.llrd_lr(S) == 3e-4
    runs = REGISTRY["data-size-strategy"].needs(S)["runs"]
    assert {c.lr for lab, c in runs.cells if lab["strategy"] == "layerwise"} == {3e-4}
    assert "chosen on the same grid by the same rule" in REGISTRY["data-size-strategy"].caption(S)["en"]


def _sequence_record(first, last, *, majority=0.5, share=0.6, test=None) -> RunRecord:
    """A two-task sequence's record: validation accuracy ``first`` on task a right after it and
    ``last`` on each task after the second (test rows, if given, hold ``test`` everywhere)."""
    tasks = ["a", "b"]
    rows = []
    for end, accs in ((10, {"a": first}), (20, dict(zip(tasks, last)))):
        for t, acc in accs.items():
            for split, v in (("validation", acc), *((("test", test),) if test is not None else ())):
                rows += [(end, t, split, "accuracy", v), (end, t, split, "majority_frac", majority),
                         (end, t, split, "max_class_frac", share)]
    evals = pd.DataFrame(rows, columns=["step", "task", "split", "metric", "value"])
    events = pd.DataFrame([(10, "task_end", "a"), (20, "task_end", "b")], columns=["step", "kind", "detail"])
    return RunRecord("s", {"continual": {"tasks": tasks}}, {}, "completed",
                     {"per_task": [{"steps": 10}, {"steps": 10}]}, {"evals": evals, "events": events})


def test_a_sequence_is_scored_on_validation_by_what_stays_of_every_task():
    from chapter.protocol import sequence_validation_score
    s = validation_score(_sequence_record(0.9, (0.7, 0.8)))
    assert s["score"] == pytest.approx(0.75) and s["learned"] and s["steps"] == 20  # ACC after the last task
    poisoned = validation_score(_sequence_record(0.9, (0.7, 0.8), test=0.0))
    assert poisoned["score"] == s["score"]  # test rows never read
    bad = sequence_validation_score(_sequence_record(0.51, (0.5, 0.8)))
    assert not bad["learned"] and "a: not above the majority class" in bad["why"]
    assert not validation_score(_sequence_record(0.9, (0.7, 0.8), share=0.99))["learned"]


def test_sequence_choices_run_on_selection_seeds_without_test_and_set_the_forgetting_figures():
    import dataclasses

    from chapter import figures  # noqa: F401
    from chapter.figures.problems import CL_SEEDS_REVIEWED, cl_methods, sequences
    from ftcore.analysis.continual import ContinualConfig
    for name, key in (("cl_ewc", "ewc_lambda"), ("cl_lora", "lora_lr")):
        cands = SELECTIONS[name].candidates(REVIEWED)
        assert len({getattr(c, key) for c in cands.values()}) == len(cands) >= 3
        cfg = selection_config(next(iter(cands.values())), SELECTION_SEEDS[0])
        assert isinstance(cfg, ContinualConfig) and cfg.base.seed == SELECTION_SEEDS[0]
        assert not cfg.base.test_at_end and cfg.matrix_split == "validation" and cfg.base.eval_size is None
    S = dataclasses.replace(REVIEWED, chosen=dict(REVIEWED.chosen, cl_ewc=1e5, cl_lora=1e-3))
    m = cl_methods(S)
    assert m["ewc"][1]["ewc_lambda"] == m["replay_ewc"][1]["ewc_lambda"] == 1e5 and m["lora"][1]["lora_lr"] == 1e-3
    assert m["ewc_1000"][1]["ewc_lambda"] == 1000.0  # seed 001's variant stays as the seed gives it
    cells = sequences(S)["runs"].cells
    assert all(c.base.test_size is None and c.base.test_at_end for _, c in cells)  # the whole test split
    assert {lab["seed"] for lab, _ in cells} == set(S.seeds[:CL_SEEDS_REVIEWED])


def test_strategies_gate_exempts_only_from_scratch_below_the_whole_split_and_the_frozen_encoder_at_100():
    """The exemption made after the reviewed runs is exactly as the caption states it, and the
    gallery lists the exempted seeds below the bar (a note beside the claims)."""
    from chapter import figures  # noqa: F401
    from chapter.figures.basics import FULL_SPLIT, SMALLEST, STRATEGY_SIZES
    from chapter.registry import REGISTRY
    spec = REGISTRY["strategies"]
    must = spec.must_learn["runs"]
    sizes = [s or FULL_SPLIT for s in STRATEGY_SIZES]
    assert [must({"strategy": "full", "size": s}) for s in sizes] == [True] * len(sizes)
    assert [must({"strategy": "frozen", "size": s}) for s in sizes] == [s != SMALLEST for s in sizes]
    assert [must({"strategy": "random", "size": s}) for s in sizes] == [s == FULL_SPLIT for s in sizes]
    caption = spec.caption(spec.scale_for(__import__("chapter.scale", fromlist=["FULL"]).FULL))
    assert "exempted after the reviewed runs" in caption["en"] and "复审协议的运行之后才放宽" in caption["zh"]
    assert "gallery's note" in caption["en"]


def test_pretraining_gate_exempts_the_model_pretrained_here_and_keeps_it_in_the_verdicts():
    """The pretrained-here exemption (decided after the reviewed runs: a seed collapsed at the chosen
    LR) is as the caption states: the default model at every size and random init at the largest
    must still learn; the collapsed seeds stay in the claims (intention to treat, not dropped)."""
    from chapter import figures  # noqa: F401
    from chapter.figures.pretraining import PRETRAIN_SIZES
    from chapter.registry import REGISTRY
    from chapter.scale import FULL
    spec = REGISTRY["pretraining"]
    must = spec.must_learn["runs"]
    assert all(must({"arm": "default", "size": s}) for s in PRETRAIN_SIZES)
    assert [must({"arm": "scratch", "size": s}) for s in PRETRAIN_SIZES] == [s == PRETRAIN_SIZES[-1] for s in PRETRAIN_SIZES]
    assert not any(must({"arm": "here", "size": s}) for s in PRETRAIN_SIZES)
    assert all(c.where == {"size": PRETRAIN_SIZES[-1]} for c in spec.claims)
    caption = spec.caption(spec.scale_for(FULL))
    assert "intention to treat" in caption["en"] and "意向性分析" in caption["zh"]
    assert "exempted after the reviewed runs" in caption["en"] and "gallery's note" in caption["en"]


def _instruction_study(val: float, maj: float, share: float, test: float):
    from ftcore.records.studies import Study
    rows = [{"task": "all", "split": split, "metric": m, "value": v}
            for split, acc in (("validation", val), ("test", test))
            for m, v in (("accuracy", acc), ("majority_frac", maj), ("max_class_frac", share))]
    return Study("instruction-tuning", {}, {"evals": pd.DataFrame(rows)}, {"steps": 300})


def test_an_instruction_tuning_study_is_scored_on_its_validation_texts_only():
    s = validation_score(_instruction_study(0.7, 0.45, 0.5, test=0.9))
    assert s["score"] == 0.7 and s["learned"] and s["steps"] == 300
    assert validation_score(_instruction_study(0.7, 0.45, 0.5, test=0.0))["score"] == 0.7  # test never read
    assert not validation_score(_instruction_study(0.46, 0.45, 0.5, test=0.9))["learned"]
    assert "one class" in validation_score(_instruction_study(0.7, 0.45, 0.9, test=0.9))["why"]


def test_instruction_lr_choices_run_on_selection_seeds_with_validation_texts_only():
    from chapter.figures.alignment import WHOLE_SPLITS, tuned_arm
    from ftcore.alignment.instructions import InstructionRun
    for name, mask in (("it_mask", True), ("it_nomask", False)):
        cands = SELECTIONS[name].candidates(REVIEWED)
        assert len({c.lr for c in cands.values()}) == len(cands) >= 3
        c = next(iter(cands.values()))
        assert isinstance(c, InstructionRun) and c.tune.mask_prompt is mask and c.tuned
        run = selection_config(c, SELECTION_SEEDS[1])
        assert run.seed == SELECTION_SEEDS[1] and run.tune.eval_splits == ("validation",) and run.tune.n_eval is None
        assert c.tune.eval_splits == WHOLE_SPLITS["eval_splits"]  # the candidate is the reported tuning
        if name in REVIEWED.chosen:  # the reported arm is the candidate at the chosen LR, on whole splits
            arm = tuned_arm(REVIEWED, "mask" if mask else "nomask")
            assert arm == c.tune.replace(lr=REVIEWED.chosen[name])


def _rl_study(start: float, end: float, test_end: float):
    from ftcore.records.studies import Study
    rows = [{"step": step, "split": split, "metric": "objective", "value": v}
            for split, pair in (("validation", (start, end)), ("test", (start, test_end))) for step, v in zip((0, 120), pair)]
    return Study("rlhf", {"rl": {"steps": 120}}, {"evals": pd.DataFrame(rows)}, {})


def test_reward_model_and_rlhf_studies_are_scored_on_validation_only():
    from ftcore.records.studies import Study
    rm = Study("reward-model", {"steps": 200}, {"evals": pd.DataFrame(
        [{"step": 200, "split": "validation", "metric": "pairwise_accuracy", "value": 0.7},
         {"step": 200, "split": "test", "metric": "pairwise_accuracy", "value": 0.1}])}, {})
    s = validation_score(rm)
    assert s["score"] == 0.7 and s["learned"] and s["majority"] == 0.5 and s["steps"] == 200
    up, poisoned = validation_score(_rl_study(0.2, 0.5, 0.9)), validation_score(_rl_study(0.2, 0.5, -9.0))
    assert up["score"] == poisoned["score"] == 0.5 and up["learned"]  # test openings never read
    down = validation_score(_rl_study(0.2, 0.1, 0.9))
    assert not down["learned"] and "did not rise" in down["why"]


def test_rlhf_choices_run_on_selection_seeds_with_validation_only_and_cover_the_figures_betas():
    import dataclasses

    from chapter.figures.alignment import KL_COEFS, reward_run, rl_run
    from ftcore.alignment.reward import RewardRun
    from ftcore.alignment.rlhf import RLRun
    assert {f"rl_beta_{b:g}" for b in KL_COEFS} <= set(SELECTIONS)
    S = dataclasses.replace(REVIEWED, chosen=dict(REVIEWED.chosen, reward=3e-5))
    rm = selection_config(next(iter(SELECTIONS["reward"].candidates(S).values())), SELECTION_SEEDS[0])
    assert isinstance(rm, RewardRun) and rm.cfg.held_out() == {"validation": None} and rm.seed == SELECTION_SEEDS[0]
    for b in KL_COEFS:
        cands = SELECTIONS[f"rl_beta_{b:g}"].candidates(S)
        run = selection_config(next(iter(cands.values())), SELECTION_SEEDS[1])
        assert isinstance(run, RLRun) and run.rl.kl_coef == b and run.rl.eval_splits == ("validation",)
        assert run.reward == reward_run(S).cfg and run.seed == SELECTION_SEEDS[1]  # against the chosen reward model
        assert rl_run(S, b, lr=1e-4).rl.eval_splits == ("validation", "test")  # the reported run: both


def test_a_selection_table_says_what_it_scores():
    """Not every selection scores accuracy: the table's header names the score it read."""
    from chapter.protocol import SELECTIONS, Outcome
    assert "| validation objective (reward − β·KL) per seed |" in Outcome(SELECTIONS["rl_beta_0.2"]).table()
    assert "| validation pairwise accuracy per seed |" in Outcome(SELECTIONS["reward"]).table()
    assert "| validation accuracy per seed |" in Outcome(SELECTIONS["base"]).table()
