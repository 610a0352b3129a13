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
