"""Pretraining at small scale (issue 15): tokenizer, MLM pretraining, records, figure specs."""
from __future__ import annotations

import pytest

from ftcore.pretraining.tokenizer import SPECIAL_TOKENS, train_bpe_tokenizer

TEXTS = [f"the {a} film was {b} and {c}" for a in ("new", "old", "long", "short")
         for b in ("good", "bad", "dull", "moving") for c in ("funny", "sad", "slow")] * 3


def test_tokenizer_round_trip_and_special_ids(tmp_path):
    from transformers import AutoTokenizer

    tok = train_bpe_tokenizer(TEXTS, vocab_size=300, min_frequency=2)
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.mask_token_id) == (0, 1, 2, 4)
    text = "the old film was moving, naïve and 很好"   # unseen bytes still round-trip (byte-level)
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True).strip() == text
    # "<mask>" takes the space before it, as in RoBERTa
    assert tok("a good <mask> film")["input_ids"].count(tok.mask_token_id) == 1
    assert tok.convert_ids_to_tokens(tok("good film")["input_ids"])[1].startswith("Ġ")
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids and len(again) == len(tok) <= 300


def test_tokenizer_is_deterministic_and_plain_mode():
    a = train_bpe_tokenizer(TEXTS, vocab_size=300)
    b = train_bpe_tokenizer(TEXTS, vocab_size=300, add_special_tokens=False)
    assert a.get_vocab() == b.get_vocab()
    assert b("good film")["input_ids"] == a("good film")["input_ids"][1:-1]
    with pytest.raises(ValueError, match="too small"):
        train_bpe_tokenizer(TEXTS, vocab_size=100)


# ---------------------------------------------------------------------------------------- MLM
TINY = dict(corpus=("rt-subjectivity",), vocab_size=400, hidden=32, layers=2, heads=2, intermediate=64,
            block=32, batch_size=8, steps=30, lr=3e-3, eval_every=10, eval_blocks=16)


def test_pack_blocks_wraps_and_drops_the_tail():
    from ftcore.pretraining.mlm import pack_blocks

    blocks = pack_blocks([[5, 6, 7], [8, 9]], block=5, bos=0, eos=2)
    # the stream 5 6 7 </s> 8 9 </s> cut every 3 tokens, each piece wrapped; the last 1 token dropped
    assert blocks == [[0, 5, 6, 7, 2], [0, 2, 8, 9, 2]]


def test_mlm_steps_reduce_loss_on_a_tiny_model():
    import torch
    from transformers import DataCollatorForLanguageModeling

    from ftcore.pretraining.mlm import MLMConfig, build_model, mlm_step_outputs, pack_blocks

    torch.manual_seed(0)
    tok = train_bpe_tokenizer(TEXTS, vocab_size=300)
    cfg = MLMConfig(**{**TINY, "vocab_size": 300})
    model = build_model(cfg, tok)
    ids = [e.ids for e in tok.backend_tokenizer.encode_batch(TEXTS, add_special_tokens=False)]
    blocks = pack_blocks(ids, cfg.block, tok.bos_token_id, tok.eos_token_id)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    batch = collator([{"input_ids": b} for b in blocks[:8]])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, correct, n = mlm_step_outputs(model, batch)
        assert 0 <= correct <= n and n == int((batch["labels"] != -100).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # the masked-only loss is the model's own MLM loss (dropout off for the comparison)
    model.eval()
    with torch.no_grad():
        assert abs(float(mlm_step_outputs(model, batch)[0]) - float(model(**batch).loss)) < 1e-4


@pytest.fixture
def tiny_recipe(tmp_path, monkeypatch):
    from ftcore.pretraining.mlm import MLMConfig, extra_recipes

    from ftcore.engine.models import load_tokenizer, resolve_model

    monkeypatch.setenv("FTCORE_MODELS_DIR", str(tmp_path / "models"))
    resolve_model.cache_clear()  # the models folder is part of a resolved name's path
    load_tokenizer.cache_clear()
    with extra_recipes(**{"test-tiny": MLMConfig(**TINY)}):
        yield "test-tiny"


def test_checkpoint_curves_study_and_engine_run(tiny_recipe, tmp_path, toy_task):
    from ftcore import RunConfig, run
    from ftcore.pretraining.mlm import checkpoint_dir, curves, ensure_checkpoint, model_name
    from ftcore.records.cache import fetch_or_compute
    from ftcore.records.studies import load_study, stored_study

    path = ensure_checkpoint(tiny_recipe)
    assert path == checkpoint_dir(tiny_recipe) and (path / "config.json").is_file()
    tables, meta = curves(tiny_recipe)
    steps, evals = tables["steps"], tables["evals"]
    assert list(steps["step"]) == list(range(1, 31)) and list(evals["step"]) == [0, 10, 20, 30]
    assert steps["loss"].tail(5).mean() < steps["loss"].head(5).mean()  # it learned something
    assert meta["head_tied_to_embeddings"] and meta["corpus"]["texts"] > 1000 and meta["vocab_size"] <= 400
    # the curves as a study: stored, then reloaded from disk unchanged
    item = stored_study("mlm-pretraining", {"recipe": tiny_recipe}, lambda: curves(tiny_recipe), tmp_path / "runs")
    st = fetch_or_compute(item)
    again = load_study(st.path)
    assert again.meta["final"] == meta["final"] and again["steps"]["loss"].tolist() == steps["loss"].tolist()
    # the checkpoint fine-tunes through the ordinary engine, by name, from a record's point of view
    cfg = RunConfig(model=model_name(tiny_recipe), task=toy_task, train_size=None, epochs=1, batch_size=16,
                    lr=1e-3, eval_size=None, max_length=16, progress=False, threads=1, pooling="cls")
    rec = run(cfg, runs_dir=tmp_path / "runs")
    assert rec.status == "completed" and rec.config["model"] == "pretrained-here:test-tiny"
    assert {"embeddings", "layer.0", "layer.1", "head"} <= set(rec.layer_state["group"])


def test_pretrained_here_names_resolve_without_weights(tiny_recipe):
    from ftcore.engine.models import resolve_model
    from ftcore.pretraining.mlm import RECIPES, fingerprint, model_name

    src = resolve_model(model_name(tiny_recipe))  # a record can name the model before it exists here
    assert src.fingerprint == "here-" + fingerprint(RECIPES[tiny_recipe])
    assert not (src.path and __import__("pathlib").Path(src.path, "pretraining.json").exists())
    assert fingerprint(RECIPES["roberta-small"]) != fingerprint(RECIPES["roberta-quick"])


# ---------------------------------------------------------------------------------------- figures
def test_specs_resolve_in_quick_mode():
    from chapter import specs  # noqa: F401
    from chapter.registry import PLANNED, REGISTRY, Grid, StudyNeed
    from chapter.scale import QUICK

    for fid in ("pretraining", "continual-pretraining"):
        assert fid in REGISTRY and fid not in PLANNED
        needs = REGISTRY[fid].needs(QUICK)
        grids = [v for v in needs.values() if isinstance(v, Grid)]
        assert grids and all(c.model.startswith(("pretrained-here:", "all-MiniLM")) for g in grids for _, c in g.cells)
        assert any(isinstance(v, StudyNeed) for v in needs.values())
        assert REGISTRY[fid].must_learn and REGISTRY[fid].claims


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fid", ["pretraining", "continual-pretraining"])
def test_figures_draw_from_quick_records(fid, lang, figure_inputs):
    import matplotlib.pyplot as plt

    import viz
    from chapter.registry import REGISTRY

    with viz.set_theme(lang):
        fig = REGISTRY[fid].draw(**figure_inputs(fid))
    legends = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert len(fig.axes) >= 3 and legends and fig._suptitle.get_text()
    plt.close(fig)


def test_pretraining_says_from_its_records_whether_the_local_pretraining_beat_random_init(figure_inputs):
    """The figure writes, from the records, how many tokens the local pretraining saw and its held-out
    masked-token accuracy, and whether its fine-tuned mean is above random init's at any size (no
    typed numbers: the caption holds none of the sweep's or the pretraining's results)."""
    import matplotlib.pyplot as plt

    import viz
    from chapter.registry import REGISTRY
    from chapter.scale import FULL
    from viz.pretraining import pretraining_note
    from viz.text import t

    inputs = figure_inputs("pretraining")
    mlm, runs = inputs["mlm"], inputs["runs"]
    kw = {"tokens": f"{mlm.meta['tokens_seen'] / 1e6:.1f}", "acc": f"{mlm.meta['final']['accuracy']:.2f}"}
    with viz.set_theme("en"):
        m = runs.finals().groupby(["size", "arm"])["value"].mean().unstack()
        ahead = m["here"] > m["scratch"]
        note = pretraining_note(mlm, runs)
        assert kw["tokens"] in note and kw["acc"] in note
        if not ahead.any():
            assert note == t("pretraining.too_small", **kw)
        fig = REGISTRY["pretraining"].draw(**inputs)
        assert note in [x.get_text().replace("\n", " ") for x in fig.texts] + [fig.get_supxlabel()]
        plt.close(fig)
    caption = " ".join(REGISTRY["pretraining"].caption_for(FULL).values())
    assert "0.578" not in caption and "0.560" not in caption


def test_lab_widgets_tokenize_and_fill_mask(tiny_recipe):
    import lab.pretraining as lp

    ex = lp.TokenizerExplorer("a moving film")
    ex.vocab.value = 500
    table = ex.run()
    assert table.shape[0] >= 4 and "<s>" in set(table.iloc[:, 0])
    guesses = lp.fill_mask("a very <mask> film", top_k=3, name=tiny_recipe)
    assert len(guesses) == 3 and guesses.iloc[:, 2].is_monotonic_decreasing
    with pytest.raises(ValueError, match="mask"):
        lp.fill_mask("no mask here", name=tiny_recipe)


def test_packing_drops_a_checkpoints_own_padding():
    from ftcore.engine.models import load_tokenizer
    from ftcore.pretraining.mlm import _blocks

    tok = load_tokenizer("all-MiniLM-L6-v2")  # its tokenizer.json pads every text to 128 tokens
    blocks = _blocks(tok, ["a good film", "dull and far too long", "fine"], 8)
    assert blocks and all(len(b) == 8 for b in blocks)
    assert tok.pad_token_id not in {i for b in blocks for i in b}


def test_a_continued_checkpoint_keeps_the_starting_models_pooler(tmp_path):
    """MLM has no pooler, so continual pretraining never changes it, but save_pretrained drops it:
    keep_pooler puts the original back, so a CLS-pooled classifier of the continued model starts
    from the same pooler as the original's (a random one otherwise)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from ftcore.engine.models import load_tokenizer, resolve_model
    from ftcore.pretraining.mlm import MLMConfig, build_model, keep_pooler

    default = "all-MiniLM-L6-v2"
    mlm = build_model(MLMConfig(init=default), load_tokenizer(default))
    mlm.save_pretrained(tmp_path)
    original = AutoModel.from_pretrained(resolve_model(default).path).pooler.dense.weight
    dropped = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2).bert.pooler.dense.weight
    assert not torch.equal(dropped, original)  # what save_pretrained alone gives: a fresh pooler
    keep_pooler(default, mlm, tmp_path)
    kept = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2).bert.pooler.dense.weight
    assert torch.equal(kept, original)
    again = type(mlm).from_pretrained(tmp_path)  # the MLM model still loads (its own weights unchanged)
    assert torch.equal(again.bert.embeddings.word_embeddings.weight, mlm.bert.embeddings.word_embeddings.weight)


def test_probe_panel_draws_means_with_intervals_not_bars_on_its_zoomed_axis(figure_inputs):
    import matplotlib.pyplot as plt
    import numpy as np

    from viz.pretraining import CONTINUAL, plot_probe_cost
    probe = figure_inputs("continual-pretraining")["probe"]["probe"]
    fig, ax = plt.subplots()
    plot_probe_cost(probe, ax=ax)
    assert not [p for p in ax.patches if p.get_height() > 0]  # no bar: its length from 0 would mislead here
    order = [o for o in CONTINUAL if o in set(probe["continual"])]
    means = [c for c in ax.collections if c.get_gid() == "means"]
    assert len(means) == 2  # linear probe and kNN
    for coll, col in zip(means, ("linear", "knn")):
        want = probe.groupby("continual")[col].mean().reindex(order).to_numpy(float)
        assert np.allclose(coll.get_offsets()[:, 1], want)
    intervals = sum(c.get_gid() == "ci95" for c in ax.collections)
    assert intervals >= 2 if probe["probe_seed"].nunique() > 1 else intervals == 0  # none from one subset
    lo, hi = ax.get_ylim()
    assert lo > 0 and lo < probe[["linear", "knn"]].min().min() and hi > probe[["linear", "knn"]].max().max()
    plt.close(fig)
