"""Instruction tuning, the reward model and RLHF (ftcore.alignment) on tiny configs: seconds each."""
from __future__ import annotations

import math
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from ftcore.alignment import causal_lm, instructions, reward, rlhf  # noqa: E402

TEXTS = ["a good film with great acting", "a bad film with awful acting", "the plot is dull and weak",
         "a moving story and a superb cast", "Is this review positive or negative?", "Answer: positive negative"] * 20


@pytest.fixture(scope="module")
def tok():
    from ftcore.pretraining.tokenizer import train_bpe_tokenizer
    return train_bpe_tokenizer(TEXTS, vocab_size=300, add_special_tokens=False)


@pytest.fixture
def gpt(tok):
    cfg = replace(causal_lm.GPTConfig().quick(), n_embd=16, n_head=2, n_layer=1, n_positions=64, dropout=0.0)
    return causal_lm.new_model(cfg, tok)


def test_prompt_tokens_are_masked_to_minus_100_and_the_answer_is_kept(tok):
    on = instructions.encode(tok, "Is this review positive or negative?", "a good film", "positive", text_tokens=8)
    off = instructions.encode(tok, "Is this review positive or negative?", "a good film", "positive", text_tokens=8,
                              mask_prompt=False)
    n = on["prompt_len"]
    assert on["input_ids"] == off["input_ids"] and on["input_ids"][0] == tok.eos_token_id
    assert on["labels"][:n] == [-100] * n  # no loss on the prompt
    assert on["labels"][n:] == on["input_ids"][n:] and on["labels"][-1] == tok.eos_token_id  # answer + </s>
    assert off["labels"] == off["input_ids"]  # without the mask every token is a target
    assert tok.decode(on["input_ids"][n:-1]).strip() == "positive"
    batch = instructions.collate([on, off], tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape
    assert int((batch["labels"][0] != -100).sum()) == len(on["input_ids"]) - n


def test_the_text_is_cut_to_text_tokens(tok):
    long = " ".join(["good"] * 50)
    a = instructions.encode(tok, "Opinion or plot?", long, None, text_tokens=5)
    b = instructions.encode(tok, "Opinion or plot?", long, None, text_tokens=10)
    assert b["prompt_len"] - a["prompt_len"] == 5 and "labels" not in a


def test_accuracy_rows_pool_the_tasks():
    import pandas as pd
    ans = pd.DataFrame({"task": ["a"] * 4 + ["b"] * 2, "split": "test",
                        "answer": ["x", "x", "y", "y", "u", "v"], "said": ["x", "x", "x", "", "u", "u"],
                        "correct": [True, True, False, False, True, False],
                        "choice_correct": [True] * 6})
    rows = instructions.accuracy_rows(ans).set_index(["task", "metric"])["value"]
    assert rows[("a", "accuracy")] == 0.5 and rows[("b", "accuracy")] == 0.5
    assert rows[("a", "max_class_frac")] == 0.75 and rows[("all", "accuracy")] == 0.5
    assert rows[("all", "majority_frac")] == 0.5


def test_bradley_terry_loss_is_log2_at_a_tie_and_falls_when_training():
    from ftcore.engine.models import load_model, load_tokenizer
    assert float(reward.bradley_terry_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2))
    assert float(reward.bradley_terry_loss(torch.tensor([5.0]), torch.tensor([-5.0]))) < 1e-4
    torch.manual_seed(0)
    rm = reward.RewardModel(load_model("tiny-bert", 1, seed=0), load_tokenizer("tiny-bert"), 16)
    chosen = ["a great and moving film", "superb acting and a fine cast", "wonderful, brilliant story"] * 2
    rejected = ["a dull and awful film", "poor acting and a weak cast", "boring, tedious story"] * 2
    opt = torch.optim.AdamW(rm.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        r = rm(chosen + rejected)
        loss = reward.bradley_terry_loss(r[:6], r[6:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5, losses
    import pandas as pd
    assert reward.pairwise_accuracy(rm, pd.DataFrame({"chosen": chosen, "rejected": rejected})) == 1.0


def test_one_rloo_step_changes_the_policy_and_reports_kl(tok, gpt):
    import copy
    ref = copy.deepcopy(gpt).eval()
    before = [p.detach().clone() for p in gpt.parameters()]

    def reward_fn(texts):  # prefers texts that say "good"
        return torch.tensor([float(t.count("good")) for t in texts])
    cfg = replace(rlhf.RLConfig().quick(), k=3, max_new_tokens=6, lr=1e-2)
    opt = torch.optim.AdamW(gpt.parameters(), lr=cfg.lr)
    m = rlhf.rloo_step(gpt, ref, tok, reward_fn, ["a", "the"], opt, cfg, step_seed=1)
    assert set(m) >= {"reward", "kl", "length", "repetition"}
    assert math.isfinite(m["kl"]) and abs(m["kl"]) < 1e-4  # sampled from the starting model: KL estimate 0
    assert 0 <= m["length"] <= cfg.max_new_tokens
    assert any(not torch.equal(a, b) for a, b in zip(before, gpt.parameters()))
    m2 = rlhf.rloo_step(gpt, ref, tok, reward_fn, ["a", "the"], opt, cfg, step_seed=2)
    assert m2["kl"] != 0.0  # the policy has moved away from the reference


def test_sequence_logprobs_only_count_the_response(tok, gpt):
    ids, plen, mask, texts, lengths = rlhf.sample(gpt.eval(), tok, ["a good", "the"], rlhf.RLConfig().quick(),
                                                  generator_seed=0)
    lp = rlhf.sequence_logprobs(gpt, ids, plen, mask)
    assert lp.shape == (ids.shape[0], ids.shape[1] - 1)
    assert (lp[mask[:, 1:] == 0] == 0).all() and (lp[mask[:, 1:] == 1] < 0).all()
    assert all(n <= int(m.sum()) <= n + 1 for m, n in zip(mask, lengths))  # the response, and its </s> if any


def test_repetition_share():
    assert rlhf.repetition([1, 2, 3]) == 0 and rlhf.repetition([5, 5, 5, 5]) == 0.75 and rlhf.repetition([]) == 0


def test_pretraining_study_saves_reloads_and_keeps_its_weights(tmp_path):
    from ftcore.records.studies import load_study
    cfg = replace(causal_lm.GPTConfig().quick(), steps=4, eval_every=2, sample_at=(0,), heldout_docs=8,
                  max_docs=200, vocab_size=300, n_embd=16, n_layer=1, batch=2, block=16, sample_tokens=4)
    model, tok, st = causal_lm.pretrained_gpt(cfg, tmp_path)
    assert list(st["steps"]["step"]) == [1, 2, 3, 4] and list(st["evals"]["step"]) == [0, 2, 4]
    assert st.meta["n_params"] == causal_lm.n_parameters(st.meta["config"], st.meta["vocab_size"])
    assert set(st["samples"]["step"]) == {0, 4} and len(st["samples"]) == 2 * len(causal_lm.PROMPTS)
    again = load_study(st.path)
    assert again.params == st.params and again["evals"].equals(st["evals"])
    model2, _, st2 = causal_lm.pretrained_gpt(cfg, tmp_path)  # cached: no training, same weights
    assert st2.path == st.path
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    assert math.isclose(causal_lm.perplexity(model, tok, ["a good film"]),
                        causal_lm.perplexity(model2, tok, ["a good film"]))


def test_lr_schedule_is_a_pure_function_of_the_step():
    cfg = causal_lm.GPTConfig()
    assert causal_lm.lr_at(0, cfg) == pytest.approx(cfg.lr / cfg.warmup)
    assert causal_lm.lr_at(cfg.warmup - 1, cfg) == pytest.approx(cfg.lr)
    assert causal_lm.lr_at(cfg.steps, cfg) == pytest.approx(cfg.lr / 10)


@pytest.mark.parametrize("fid", ["instruction-tuning", "rlhf"])
def test_specs_resolve_and_draw_in_quick_mode(figure_inputs, fid):
    import matplotlib.pyplot as plt

    import viz
    from chapter.registry import REGISTRY
    spec = REGISTRY[fid]
    inputs = figure_inputs(fid)
    for lang in ("zh", "en"):
        with viz.set_theme(lang):
            fig = spec.render(inputs)
            assert fig.axes
            plt.close(fig)
    assert spec.gate(inputs) is not None
    verdicts = spec.verdicts(inputs)
    assert len(verdicts) == len(spec.claims) and all(j.line("en") for j in verdicts)
    assert spec.measure(inputs)["en"]


def test_rlhf_draws_samples_before_and_after(figure_inputs):
    """FIGURES.md: the rlhf figure shows sample texts before and after RL. One opening's sample by the
    starting model and by the policy after RL at each β, as recorded, with their reward scores."""
    import matplotlib.pyplot as plt

    import viz
    from chapter.registry import REGISTRY
    from viz.alignment import sample_rows
    samples = REGISTRY["rlhf"].judged_inputs(figure_inputs("rlhf"))["samples"]
    rows = sample_rows(samples)
    betas = sorted(samples["beta"].unique())
    assert list(rows["when"]) == ["before"] + ["after"] * len(betas)
    assert rows["beta"].iloc[1:].tolist() == betas and rows["prompt"].nunique() == 1
    with viz.set_theme("en"):
        fig = REGISTRY["rlhf"].render(figure_inputs("rlhf"))
        (ax,) = [a for a in fig.axes if a.get_title().startswith("Samples")]
        drawn = " ".join(x.get_text().replace("\n", " ") for x in ax.texts)
        for r in rows.itertuples():
            assert " ".join(r.text.split()) in " ".join(drawn.split()) and f"{r.reward:+.2f}" in drawn
        plt.close(fig)


def test_choice_scores_in_one_batch_equal_one_prompt_at_a_time(tok, gpt):
    """Right padding keeps each sequence's positions: the batched log-likelihoods are the ones
    each (prompt, answer) pair gets alone."""
    gpt.eval()
    prompts = [instructions.encode(tok, "Is this review positive or negative?", t, None, text_tokens=8)["input_ids"]
               for t in ("a good film", "the plot is dull and weak and the cast is awful")]
    pairs = [(p, w) for p in prompts for w in ("positive", "negative")]
    with torch.no_grad():
        together = instructions._answer_logprobs(gpt, tok, pairs)
        alone = [instructions._answer_logprobs(gpt, tok, [pair])[0] for pair in pairs]
    assert together == pytest.approx(alone, abs=1e-4)
    assert len(set(round(x, 3) for x in together)) > 1  # the scores differ: not a constant


def test_tune_config_evaluates_named_splits_and_keeps_earlier_keys():
    cfg = instructions.TuneConfig()
    assert "eval_splits" not in cfg.to_dict()  # the studies stored before the field keep their keys
    whole = cfg.replace(eval_splits=("validation", "test"), n_eval=None)
    assert whole.to_dict()["eval_splits"] == ("validation", "test") and whole.to_dict()["n_eval"] is None
    with pytest.raises(ValueError, match="eval_splits"):
        instructions.TuneConfig(eval_splits=("train",))
    with pytest.raises(ValueError, match="n_eval"):
        instructions.TuneConfig(n_eval=0)
    assert instructions.conditions("test") == ("test", "phrasing")
    assert instructions.conditions("validation") == ("validation", "validation_phrasing")


def test_eval_examples_read_the_validation_texts_whole_under_both_phrasings():
    from ftcore.engine.tasks import load_task
    cfg = instructions.TuneConfig(eval_splits=("validation",), n_eval=None)
    ex = instructions.eval_examples(cfg)
    sizes = {name: len(load_task(spec["task"]).splits["validation"]["label"])
             for name, spec in instructions.INSTRUCTION_TASKS.items()}
    assert len(ex) == 2 * sum(sizes.values())
    assert {e["split"] for e in ex} == {"validation", "validation_phrasing"}
    for name, n in sizes.items():  # every validation text once per condition, by its row
        rows = sorted(e["index"] for e in ex if e["task"] == name and e["split"] == "validation")
        assert rows == list(range(n))
    held = {e["instruction"] for e in ex if e["split"] == "validation_phrasing"}
    assert held == {s["phrasings"][instructions.HELD_OUT_PHRASING] for s in instructions.INSTRUCTION_TASKS.values()}


def test_instruction_run_reads_and_changes_its_tuning():
    run = instructions.InstructionRun(causal_lm.GPTConfig().quick(), instructions.TuneConfig())
    moved = run.replace(lr=1e-3, seed=7)
    assert (moved.lr, moved.seed, run.lr) == (1e-3, 7, instructions.TuneConfig().lr)
    assert moved.params()["tune"]["lr"] == 1e-3 and moved.params()["tuned"] is True
    assert run.params()["tune"] == instructions.TuneConfig().to_dict()


def test_held_out_openings_compare_the_trained_policy_with_its_start_sample_by_sample(tok, gpt):
    import copy
    start = copy.deepcopy(gpt).eval()

    def reward_fn(texts):
        return torch.tensor([float(t.count("good")) for t in texts])
    cfg = replace(rlhf.RLConfig().quick(), max_new_tokens=6, eval_k=2, eval_splits=("validation",))
    prompts = ["a", "the", "a good"]
    at_start = rlhf.measure_held_out(start, start, tok, reward_fn, prompts, cfg, seed=5, batch=4)
    again = rlhf.measure_held_out(start, start, tok, reward_fn, prompts, cfg, seed=5, batch=4)
    assert len(at_start) == len(prompts) * cfg.eval_k and sorted(set(at_start["opening"])) == [0, 1, 2]
    assert (at_start["kl"] == 0).all() and at_start.equals(again)  # the same draws: paired samples
    with torch.no_grad():  # move the policy: its held-out samples now differ from the start's
        for p in gpt.parameters():
            p.add_(0.5 * torch.randn_like(p))
    moved = rlhf.measure_held_out(gpt, start, tok, reward_fn, prompts, cfg, seed=5, batch=4)
    assert (moved["kl"] != 0).any()


def test_rl_and_reward_configs_keep_earlier_keys_and_name_their_held_out_splits():
    rl = rlhf.RLConfig()
    assert not {"eval_splits", "eval_openings", "eval_k"} & set(rl.to_dict())
    assert rl.replace(eval_splits=("test",)).to_dict()["eval_k"] == rl.eval_k
    with pytest.raises(ValueError, match="eval_splits"):
        rlhf.RLConfig(eval_splits=("train",))
    rm = reward.RewardConfig()
    assert "n_validation_pairs" not in rm.to_dict() and rm.held_out() == {"test": 400}
    whole = rm.replace(n_validation_pairs=None, n_test_pairs=None)
    assert whole.held_out() == {"validation": None, "test": None} and whole.to_dict()["n_validation_pairs"] is None
    assert rm.replace(n_test_pairs=0, n_validation_pairs=None).held_out() == {"validation": None}  # a selection run


def test_every_preference_pair_of_a_split_uses_each_review_once():
    pairs = reward.preference_pairs("validation", None, 0)
    assert len(pairs) > 50
    assert pairs["chosen"].is_unique and pairs["rejected"].is_unique
    assert not set(pairs["chosen"]) & set(pairs["rejected"])
    assert len(reward.preference_pairs("validation", 10, 0)) == 10 < len(pairs)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_reward_panel_draws_a_line_per_split_and_the_note_names_them(lang):
    """A reward model measured on validation and test pairs (the reviewed protocol): a line each,
    test solid and validation dashed, at the recorded accuracies; the figure's note says which is which."""
    import matplotlib.pyplot as plt
    import pandas as pd

    import viz
    from ftcore.records.studies import Study
    from viz.alignment import plot_reward_model
    from viz.text import t
    rows = [{"step": s, "split": sp, "metric": "pairwise_accuracy", "value": v}
            for s in (0, 50, 100) for sp, v in (("validation", 0.5 + s / 300), ("test", 0.48 + s / 250))]
    rm = Study("reward-model", {}, {"evals": pd.DataFrame(rows), "steps": pd.DataFrame({"step": [1], "loss": [0.7]})}, {})
    with viz.set_theme(lang):
        fig, ax = plt.subplots()
        plot_reward_model(rm, ax=ax)
        lines = {ln.get_gid(): ln for ln in ax.get_lines()}
        assert lines["pairs-test"].get_linestyle() == "-" and lines["pairs-validation"].get_linestyle() == "--"
        for sp in ("validation", "test"):
            want = [r["value"] for r in rows if r["split"] == sp]
            assert list(lines[f"pairs-{sp}"].get_ydata()) == pytest.approx(want)
        plt.close(fig)
        assert t("rlhf.note_splits") and "0.5" in t("rlhf.note", n="5")
