"""EDA text augmentation: cheap, label-preserving edits that make extra training examples.

EDA ("Easy Data Augmentation", Wei & Zou 2019) applies one of four word-level edits to a text:

``synonym``  replace a few words by a synonym          "a good film"  -> "a beneficial film"
``insert``   insert a synonym of some word at a random position  -> "a good film movie"
``delete``   drop each word with probability ``rate``   -> "a film"
``swap``     swap two random words, a few times         -> "film good a"

``rate`` sets how much a text changes: ``n = max(1, round(rate * words))`` words are touched (for
``delete`` it is the per-word probability). Everything is driven by one seeded ``random.Random``, so
the same seed gives the same augmented data set.

Where synonyms come from:

* **WordNet** (:class:`WordNetSynonyms`) when Debian's ``wordnet-base`` is installed
  (``/usr/share/wordnet``). It is what EDA used; we read its database files directly rather than
  through nltk, which would need a download.
* otherwise the **model's own embedding neighbours** (:class:`EmbeddingNeighbours`): the words whose
  input embeddings are closest (cosine) in the default model's vocabulary. That needs nothing beyond
  the model we fine-tune anyway, but the neighbours are "related words", not strictly synonyms:
  ``film -> movies``, and antonyms share contexts (``good -> bad`` scores 0.53, just under our threshold).

Back-translation (translate to another language and back) is a popular stronger augmentation, but it
is deliberately absent: it needs translation models, which are not available offline.
"""
from __future__ import annotations

import functools
import random
import re
from pathlib import Path

import numpy as np

from .assets import WORDNET_DIR, asset_path
from ..config import AUGMENT_OPS  # one vocabulary for config validation and augmentation

# Embedding neighbours: at most this many per word, and only those at least this similar. 0.55 keeps
# near-synonyms of content words (big -> huge, large; funny -> hilarious, amusing) and drops most
# merely-related words. At 0.5 antonyms pass (good -> bad is 0.53 in MiniLM's input embeddings),
# which would flip a review's sentiment label: the very noise augmentation must not add.
NEIGHBOURS_K = 5
MIN_SIMILARITY = 0.55
MIN_WORD_LENGTH = 3  # shorter vocabulary entries are mostly abbreviations and word fragments

# Function words carry no meaning a synonym could preserve (and their embedding neighbours are other
# function words: the -> and), so, like EDA, we never pick them for replacement - nor, here, as the
# source of an inserted synonym.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she should
so some such than that the their theirs them themselves then there these they this those through to
too under until up very was we were what when where which while who whom why will with would you
your yours yourself yourselves
""".split())

_POS = ("noun", "verb", "adj", "adv")
_AFFIXES = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)  # leading punctuation, word, trailing punctuation


class SynonymSource:
    """Where synonyms come from. Subclasses set ``name`` and implement :meth:`synonyms`."""

    name: str = "none"

    def synonyms(self, word: str) -> list[str]:
        """Synonyms of a lowercase word: sorted, lowercase, without ``word`` itself; [] if none."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# --------------------------------------------------------------------------------------- WordNet
def wordnet_installed(root: Path = WORDNET_DIR) -> bool:
    """Whether the WordNet database files this module reads are all present."""
    return all((root / f"{kind}.{pos}").exists() for kind in ("index", "data") for pos in _POS)


@functools.lru_cache(maxsize=2)
def _load_wordnet(root: str) -> tuple[dict[str, list[tuple[str, int]]], dict[str, bytes]]:
    """Parse WordNet's index files and read its data files, once per process.

    Returns ``lemma -> [(pos, byte offset of a synset in data.<pos>), ...]`` and the data files'
    bytes. The offsets in the index are byte positions in the data files, so a synset is found by
    slicing at its offset rather than by parsing all ~117k synsets up front.
    """
    index: dict[str, list[tuple[str, int]]] = {}
    data: dict[str, bytes] = {}
    for pos in _POS:
        for line in (Path(root) / f"index.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):  # licence header
                continue
            # lemma pos synset_cnt p_cnt [ptr_symbol ...] sense_cnt tagsense_cnt offset ...
            fields = line.split()
            n_synsets = int(fields[2])
            index.setdefault(fields[0], []).extend((pos, int(o)) for o in fields[-n_synsets:])
        data[pos] = (Path(root) / f"data.{pos}").read_bytes()
    return index, data


def _synset_words(data: bytes, offset: int) -> list[str]:
    """The lemmas of the synset stored at byte ``offset`` of a data file."""
    line = data[offset:data.index(b"\n", offset)].decode("latin-1")
    # offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt ...
    fields = line.split()
    n_words = int(fields[3], 16)
    return [fields[4 + 2 * k] for k in range(n_words)]


class WordNetSynonyms(SynonymSource):
    """Synonyms from WordNet 3.0: every lemma of every synset (any part of speech) of the word.

    Only single-word, purely alphabetic lemmas are kept: multi-word lemmas (``in_effect``) and
    hyphenated ones are skipped, so a replacement is one word and the word-count arithmetic of
    ``synonym``/``insert`` stays exact. Words are looked up as they are (no lemmatisation), so
    ``films`` finds nothing while ``film`` does.
    """

    name = "wordnet"

    def __init__(self, root: str | Path = WORDNET_DIR):
        self.root = Path(root)
        self._cache: dict[str, tuple[str, ...]] = {}

    def synonyms(self, word: str) -> list[str]:
        word = word.lower()
        if word not in self._cache:
            index, data = _load_wordnet(str(self.root))
            found = set()
            for pos, offset in index.get(word, ()):
                for lemma in _synset_words(data[pos], offset):
                    lemma = re.sub(r"\(\w+\)$", "", lemma).lower()  # adjective markers: good(a)
                    if lemma.isalpha() and lemma.isascii() and lemma != word:
                        found.add(lemma)
            self._cache[word] = tuple(sorted(found))
        return list(self._cache[word])


# ------------------------------------------------------------------------- embedding neighbours
class EmbeddingNeighbours(SynonymSource):
    """Nearest neighbours by cosine similarity in a model's input word-embedding matrix.

    Only whole-word alphabetic vocabulary entries take part: no ``##`` word pieces, no ``[CLS]``-style
    specials, at least ``MIN_WORD_LENGTH`` letters. A word outside that vocabulary (one the tokenizer
    splits into pieces) has no neighbours. Neighbours are computed on demand and cached per word.
    """

    name = "embedding-neighbours"

    def __init__(self, tokenizer, embeddings, *, k: int = NEIGHBOURS_K,
                 min_similarity: float = MIN_SIMILARITY):
        if hasattr(embeddings, "detach"):  # torch tensor
            embeddings = embeddings.detach().cpu().float().numpy()
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"embeddings must be a [vocab, dim] matrix, got shape {matrix.shape}")
        self.k, self.min_similarity = k, min_similarity
        rows: dict[str, int] = {}  # lowercase word -> embedding row (lowest id wins, for determinism)
        for token, row in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
            if (token.isalpha() and token.isascii() and len(token) >= MIN_WORD_LENGTH
                    and row < len(matrix)):
                rows.setdefault(token.lower(), row)
        self.words = list(rows)
        self._row_of = {w: i for i, w in enumerate(self.words)}
        vectors = matrix[list(rows.values())]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._unit = vectors / np.maximum(norms, 1e-12)  # cosine similarity becomes a dot product
        self._cache: dict[str, tuple[str, ...]] = {}

    def synonyms(self, word: str) -> list[str]:
        word = word.lower()
        if word not in self._cache:
            i = self._row_of.get(word)
            found: tuple[str, ...] = ()
            if i is not None:
                sims = self._unit @ self._unit[i]
                sims[i] = -np.inf  # a word is not its own neighbour
                close = np.flatnonzero(sims >= self.min_similarity)
                best = close[np.argsort(-sims[close], kind="stable")][:self.k]
                found = tuple(sorted(self.words[j] for j in best))
            self._cache[word] = found
        return list(self._cache[word])


_DEFAULT_NEIGHBOURS: EmbeddingNeighbours | None = None


def default_embedding_neighbours(tokenizer=None) -> EmbeddingNeighbours:
    """Embedding neighbours of the default model, built once per process.

    The matrix is read straight from ``model.safetensors`` (no model is instantiated). Its rows are
    indexed by the default model's token ids, so a passed ``tokenizer`` is used only if its vocabulary
    has as many entries as the matrix has rows (a run fine-tuning another model passes its own); else
    the default model's tokenizer is loaded. Later calls return the cached source.
    """
    global _DEFAULT_NEIGHBOURS
    if _DEFAULT_NEIGHBOURS is None:
        from safetensors import safe_open

        folder = asset_path("model")
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
            matrix = f.get_tensor(key)
        if tokenizer is None or len(tokenizer.get_vocab()) != matrix.shape[0]:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        _DEFAULT_NEIGHBOURS = EmbeddingNeighbours(tokenizer, matrix)
    return _DEFAULT_NEIGHBOURS


@functools.lru_cache(maxsize=1)
def _default_wordnet() -> WordNetSynonyms:
    return WordNetSynonyms()  # one instance, so its per-word cache is shared by every run


def default_synonym_source(tokenizer=None) -> SynonymSource:
    """WordNet if Debian's ``wordnet-base`` is installed, else the default model's embedding
    neighbours (``tokenizer`` is only used for the latter)."""
    if wordnet_installed():
        return _default_wordnet()
    return default_embedding_neighbours(tokenizer)


# ------------------------------------------------------------------------------------ the edits
def _split_affixes(word: str) -> tuple[str, str, str]:
    """``'"Good,'`` -> ``('"', 'Good', ',')``: punctuation stays put when the word is replaced."""
    return _AFFIXES.match(word).groups()


def _lookup(word: str, synonyms: SynonymSource) -> list[str]:
    core = _split_affixes(word)[1].lower()
    if not core or core in STOP_WORDS:
        return []
    return synonyms.synonyms(core)


def augment_text(text: str, op: str, *, rate: float, rng: random.Random,
                 synonyms: SynonymSource) -> str:
    """One EDA edit of ``text`` (see the module docstring). The result's words are joined by single
    spaces; a text the op cannot change (no synonyms, fewer than two words to swap) comes back as is."""
    if op not in AUGMENT_OPS:
        raise ValueError(f"unknown augmentation op {op!r}; expected one of {AUGMENT_OPS}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    words = text.split()
    if not words:
        return text
    n = max(1, round(rate * len(words)))

    if op == "synonym":
        # sorted candidate positions + rng.sample: the choice depends on the seed only
        candidates = [i for i, w in enumerate(words) if _lookup(w, synonyms)]
        if not candidates:
            return text
        for i in rng.sample(candidates, min(n, len(candidates))):
            before, core, after = _split_affixes(words[i])
            new = rng.choice(_lookup(words[i], synonyms))
            if core[:1].isupper():  # keep sentence-initial / proper-noun capitals
                new = new[:1].upper() + new[1:]
            words[i] = before + new + after
        return " ".join(words)

    if op == "insert":
        candidates = [w for w in words if _lookup(w, synonyms)]
        if not candidates:
            return text
        for _ in range(n):
            new = rng.choice(_lookup(rng.choice(candidates), synonyms))
            words.insert(rng.randint(0, len(words)), new)
        return " ".join(words)

    if op == "delete":
        kept = [w for w in words if rng.random() >= rate]
        if not kept:  # an empty example would be useless: keep one word
            kept = [rng.choice(words)]
        return " ".join(kept)

    # swap
    if len(words) < 2:
        return text
    for _ in range(n):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def augment_texts(texts: list[str], *, ops: tuple[str, ...], rate: float, copies: int, seed: int,
                  tokenizer=None, synonyms: SynonymSource | None = None) -> list[tuple[str, int]]:
    """``copies`` augmented versions of every text, as ``(augmented text, source index)`` pairs.

    Copy ``c`` of text ``i`` uses ``ops[(i + c) % len(ops)]``, so the ops take turns and each is
    used about equally often. One ``random.Random(seed)`` drives the whole call: same inputs and
    seed, same output. ``synonyms`` defaults to :func:`default_synonym_source` (built only when an op
    needs it; ``tokenizer`` is passed on to it).
    """
    if not ops:
        raise ValueError("ops must name at least one augmentation op")
    for op in ops:
        if op not in AUGMENT_OPS:
            raise ValueError(f"unknown augmentation op {op!r}; expected one of {AUGMENT_OPS}")
    if synonyms is None and {"synonym", "insert"} & set(ops):
        synonyms = default_synonym_source(tokenizer)
    rng = random.Random(seed)
    out = []
    for i, text in enumerate(texts):
        for c in range(copies):
            op = ops[(i + c) % len(ops)]
            out.append((augment_text(text, op, rate=rate, rng=rng, synonyms=synonyms), i))
    return out


def augment_examples(text: str, *, seed: int = 0, rate: float = 0.1,
                     synonyms: SynonymSource | None = None) -> dict[str, str]:
    """One augmented version of ``text`` per op (for the textbook's augmentation figure).

    Each op gets its own ``random.Random(seed)``, so an op's example does not depend on the others."""
    synonyms = synonyms if synonyms is not None else default_synonym_source()
    return {op: augment_text(text, op, rate=rate, rng=random.Random(seed), synonyms=synonyms)
            for op in AUGMENT_OPS}
