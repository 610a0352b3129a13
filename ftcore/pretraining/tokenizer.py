"""A byte-level BPE tokenizer trained here, on the offline corpora (seed 003: "where the
pretrained model comes from" starts with its vocabulary).

Public API (stable; issue 16's tiny GPT imports it):

``pretraining_texts(tasks=CORPUS_TASKS) -> list[str]``
    The train-split texts of the offline tasks, with every text that appears in *any* of those
    tasks' validation or test splits removed (rt-subjectivity samples its reviews from the same
    file as rt-sentiment, so its train split holds some of rt-sentiment's test reviews).

``train_bpe_tokenizer(texts, vocab_size=8000, *, min_frequency=2, model_max_length=128,
add_special_tokens=True) -> transformers.PreTrainedTokenizerFast``
    Byte-level BPE (GPT-2/RoBERTa style: every byte is in the base alphabet, so no text is ever
    ``<unk>``) with RoBERTa's special tokens at fixed ids: ``<s>``=0, ``<pad>``=1, ``</s>``=2,
    ``<unk>``=3, ``<mask>``=4. With ``add_special_tokens=True`` the tokenizer wraps each text as
    ``<s> … </s>`` (RoBERTa's template, what MLM wants); with ``False`` it adds nothing (a causal
    LM adds its own ``</s>`` between documents). The result saves with ``save_pretrained`` and
    loads back with ``AutoTokenizer.from_pretrained``. Training is deterministic for the same texts.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

CORPUS_TASKS = ("rt-sentiment", "rt-subjectivity", "bbc-topic")
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # RoBERTa's ids 0..4


def pretraining_texts(tasks: Sequence[str] = CORPUS_TASKS) -> list[str]:
    """Train-split texts of ``tasks``, minus any text held out (validation/test) by any of them.

    Order: task by task, each in its split order; duplicates across tasks are kept once."""
    from ftcore.engine.tasks import load_task

    loaded = [load_task(t) for t in tasks]
    held_out = {x for t in loaded for s in ("validation", "test") for x in t.splits[s]["text"]}
    seen, out = set(), []
    for t in loaded:
        for x in t.splits["train"]["text"]:
            if x not in held_out and x not in seen:
                seen.add(x)
                out.append(x)
    return out


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                        model_max_length: int = 128, add_special_tokens: bool = True):
    """Train a byte-level BPE tokenizer on ``texts``; see the module docstring for the contract.

    ``vocab_size`` counts everything: the 5 special tokens, the 256 byte symbols and the merges.
    ``min_frequency``: a pair must occur this often to be merged.
    ``model_max_length``: the longest sequence (in tokens) the tokenizer will truncate to."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # deterministic, and no fork warnings
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size={vocab_size} is too small: byte-level BPE needs at least "
                         f"{len(SPECIAL_TOKENS) + 256} (5 special tokens + 256 bytes)")
    tok = Tokenizer(models.BPE())
    # add_prefix_space: "good" at the start of a text and " good" inside it become the same token
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    # as RoBERTa: "<mask>" absorbs the space before it, so "a <mask>" masks the token " word"
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    if add_special_tokens:
        tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                          ("<s>", tok.token_to_id("<s>")),
                                                          add_prefix_space=True, trim_offsets=True)
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=model_max_length,
        bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        pad_token="<pad>", unk_token="<unk>",
        mask_token="<mask>")


def corpus_stats(texts: Sequence[str], tokenizer=None) -> dict:
    """Size of a corpus: texts, characters, whitespace words and (with a tokenizer) tokens."""
    out = {"texts": len(texts), "chars": sum(map(len, texts)), "words": sum(len(x.split()) for x in texts)}
    if tokenizer is not None:
        enc = plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)
        out["tokens"] = sum(len(e.ids) for e in enc)
    return out


def plain_backend(tokenizer):
    """The tokenizer's fast backend without padding or truncation (a checkpoint's tokenizer.json
    may pad every text to a fixed length, which must not reach a packed stream or a token count)."""
    import copy
    bt = copy.deepcopy(tokenizer.backend_tokenizer)
    bt.no_padding()
    bt.no_truncation()
    return bt
