"""EDA augmentation: determinism, each op's invariant, and both synonym sources."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from ftcore.engine import augment as aug
from ftcore.engine.assets import MissingAssetError
from ftcore.engine.augment import (AUGMENT_OPS, EmbeddingNeighbours, SynonymSource, WordNetSynonyms,
                            augment_examples, augment_text, augment_texts, default_synonym_source)

REVIEW = "the film is a good and funny story about a big family"
TEXTS = [REVIEW, "a dull , overlong mess of a film", "Funny and sad at once", "great"]


class FakeSynonyms(SynonymSource):
    """A tiny fixed thesaurus, so these tests do not depend on WordNet or a model."""

    name = "fake"
    TABLE = {"good": ["fine", "nice"], "funny": ["amusing"], "film": ["movie"], "big": ["large"]}

    def synonyms(self, word: str) -> list[str]:
        return list(self.TABLE.get(word, []))


FAKE = FakeSynonyms()


def run(text: str, op: str, seed: int = 0, rate: float = 0.2) -> str:
    return augment_text(text, op, rate=rate, rng=random.Random(seed), synonyms=FAKE)


@pytest.mark.parametrize("op", AUGMENT_OPS)
def test_same_seed_same_output_different_seed_differs(op):
    a = augment_texts(TEXTS, ops=(op,), rate=0.3, copies=3, seed=1, synonyms=FAKE)
    b = augment_texts(TEXTS, ops=(op,), rate=0.3, copies=3, seed=1, synonyms=FAKE)
    assert a == b
    outputs = {tuple(augment_texts(TEXTS, ops=(op,), rate=0.3, copies=3, seed=s, synonyms=FAKE))
               for s in range(5)}
    assert len(outputs) > 1, f"{op}: five seeds gave identical augmentations"


def test_delete_never_returns_empty():
    for seed in range(50):
        assert run("only", "delete", seed, rate=1.0) == "only"
        out = run("two words here", "delete", seed, rate=1.0)
        assert len(out.split()) == 1 and out in "two words here"
        assert run(REVIEW, "delete", seed, rate=0.9).split()


def test_delete_removes_about_rate_of_the_words():
    words = REVIEW.split() * 20
    kept = len(run(" ".join(words), "delete", 0, rate=0.25).split())
    assert 0.6 * len(words) < kept < 0.9 * len(words)


def test_swap_keeps_the_words():
    for seed in range(20):
        out = run(REVIEW, "swap", seed, rate=0.3)
        assert Counter(out.split()) == Counter(REVIEW.split())
        assert out != REVIEW
    assert run("alone", "swap") == "alone"


def test_synonym_replaces_words_with_synonyms_only():
    src = REVIEW.split()
    replaced = set()
    for seed in range(20):
        out = run(REVIEW, "synonym", seed, rate=0.2).split()
        assert len(out) == len(src)
        changed = [(a, b) for a, b in zip(src, out) if a != b]
        assert len(changed) == 2  # n = round(0.2 * 12) = 2 of the 4 words with synonyms
        assert all(b in FAKE.TABLE[a] for a, b in changed)
        replaced.update(a for a, _ in changed)
    assert replaced == set(FAKE.TABLE)  # the words to replace are chosen at random too
    assert run("no known words here", "synonym") == "no known words here"


def test_synonym_keeps_punctuation_and_capitals():
    out = run('"Good," she said.', "synonym", rate=1.0)
    assert out.split()[0] in ('"Fine,"', '"Nice,"')
    assert out.endswith("she said.")


def test_insert_adds_n_synonyms():
    for seed in range(20):
        out = run(REVIEW, "insert", seed, rate=0.25).split()
        assert len(out) == len(REVIEW.split()) + 3  # n = round(0.25 * 12) = 3
        extra = Counter(out) - Counter(REVIEW.split())
        assert set(extra) <= {s for syns in FAKE.TABLE.values() for s in syns}


def test_unknown_op_raises():
    with pytest.raises(ValueError, match="shuffle") as e:
        run(REVIEW, "shuffle")
    assert "synonym" in str(e.value)
    with pytest.raises(ValueError, match="shuffle"):
        augment_texts(TEXTS, ops=("swap", "shuffle"), rate=0.1, copies=1, seed=0, synonyms=FAKE)


def test_augment_texts_pairs_indices_and_cycles_ops():
    out = augment_texts(TEXTS, ops=AUGMENT_OPS, rate=0.2, copies=2, seed=0, synonyms=FAKE)
    assert len(out) == 2 * len(TEXTS)
    assert [i for _, i in out] == [0, 0, 1, 1, 2, 2, 3, 3]
    # text 0 gets ops 0 and 1 (synonym, insert): same length, then round(0.2 * 12) = 2 words longer
    assert len(out[0][0].split()) == len(TEXTS[0].split())
    assert len(out[1][0].split()) == len(TEXTS[0].split()) + 2
    # text 1 gets insert then delete: longer, then not longer
    assert len(out[2][0].split()) > len(TEXTS[1].split()) >= len(out[3][0].split())
    # text 2 gets delete then swap (swap keeps the words)
    assert Counter(out[5][0].split()) == Counter(TEXTS[2].split())
    assert augment_texts(TEXTS, ops=("swap",), rate=0.2, copies=0, seed=0) == []


def test_augment_examples_gives_one_per_op():
    ex = augment_examples(REVIEW, seed=0, rate=0.2, synonyms=FAKE)
    assert list(ex) == list(AUGMENT_OPS)
    assert ex == augment_examples(REVIEW, seed=0, rate=0.2, synonyms=FAKE)
    assert ex["synonym"] != REVIEW and ex["swap"] != REVIEW


# ---------------------------------------------------------------------------- synonym sources
class FakeTokenizer:
    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)


def test_embedding_neighbours_on_a_tiny_matrix():
    vocab = ["[CLS]", "[SEP]", "##ing", "good", "great", "##ood", "bad", "cat", "ok", "fine"]
    vectors = np.array([
        [1.0, 1.0, 0.0], [1.0, 1.0, 0.1], [1.0, 0.0, 0.02], [1.0, 0.0, 0.0],  # [CLS] [SEP] ##ing good
        [0.9, 0.1, 0.0], [1.0, 0.0, 0.01], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0],  # great ##ood bad cat
        [1.0, 0.0, 0.0], [0.8, 0.6, 0.0],  # ok (too short) fine
    ], dtype=np.float32)
    src = EmbeddingNeighbours(FakeTokenizer({w: i for i, w in enumerate(vocab)}), vectors, k=1)
    assert src.name == "embedding-neighbours"
    assert src.synonyms("good") == ["great"]  # not ##ood, ##ing, [CLS] or the too-short "ok"
    assert src.synonyms("Good") == ["great"]
    wide = EmbeddingNeighbours(FakeTokenizer({w: i for i, w in enumerate(vocab)}), vectors, k=5)
    assert wide.synonyms("good") == ["fine", "great"]  # sorted; bad and cat are below 0.5
    assert wide.synonyms("cat") == []
    assert wide.synonyms("ing") == wide.synonyms("unknownword") == []
    assert all(not w.startswith("#") and w.isalpha() for w in wide.words)


def test_embedding_neighbours_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    tok = FakeTokenizer({"good": 0, "great": 1, "bad": 2})
    src = EmbeddingNeighbours(tok, torch.tensor([[1.0, 0.0], [0.9, 0.2], [-1.0, 0.0]]))
    assert src.synonyms("great") == ["good"]


@pytest.fixture(scope="module")
def model_neighbours():
    try:
        return aug.default_embedding_neighbours()
    except MissingAssetError as e:
        pytest.skip(str(e))


def test_default_model_embedding_neighbours(model_neighbours, monkeypatch):
    monkeypatch.setattr(aug, "wordnet_installed", lambda *a, **k: False)
    src = default_synonym_source()
    assert src is model_neighbours  # built once, cached
    assert "movie" in src.synonyms("film")
    assert {"huge", "large"} & set(src.synonyms("big"))
    for word in ("film", "big", "funny", "story"):
        syns = src.synonyms(word)
        assert syns == sorted(syns) and word not in syns and len(syns) <= aug.NEIGHBOURS_K
        assert all(s.isalpha() and len(s) >= aug.MIN_WORD_LENGTH for s in syns)
    out = augment_texts([REVIEW], ops=("synonym",), rate=0.2, copies=1, seed=0)
    assert len(out[0][0].split()) == len(REVIEW.split())


@pytest.mark.skipif(not aug.wordnet_installed(), reason="WordNet (apt-get install wordnet-base) missing")
def test_wordnet_synonyms():
    src = WordNetSynonyms()
    assert default_synonym_source().name == "wordnet"
    good = src.synonyms("good")
    assert {"well", "beneficial", "proficient"} <= set(good)
    assert "large" in src.synonyms("big") and "movie" in src.synonyms("Film")
    assert "good" not in good and good == sorted(good)
    assert all(w.isalpha() and w == w.lower() for w in good)  # no multi-word lemmas
    assert src.synonyms("qwzxv") == [] and src.synonyms("the") == []


def test_default_neighbours_ignore_a_foreign_tokenizer(model_neighbours, monkeypatch):
    # another model's tokenizer does not index the default matrix: the default one is loaded instead
    monkeypatch.setattr(aug, "_DEFAULT_NEIGHBOURS", None)
    src = aug.default_embedding_neighbours(FakeTokenizer({"good": 0, "great": 1}))
    assert src.words == model_neighbours.words
