"""Notebook 09's explanations of what each pretraining objective feeds the model, computed from
the real tokenizer and collators (``ftcore.analysis.collate.collated_views``):

* the causal shift: a decoder reads tokens 1..t and is trained to predict token t+1, shown side by
  side (the collator's ``labels`` equal the inputs because the model shifts them inside its loss);
* a decoder-style view without BERT's [CLS]/[SEP] (a GPT-style model has no such tokens);
* the 80/10/10 rule on the rows MLM selected: [MASK], a random token, or the token left as is;
* why Chinese text becomes [UNK] for this English WordPiece vocabulary (measured on the vocabulary)."""
from __future__ import annotations

import html

import pandas as pd

from .strings import tr


def title(view: str) -> str:
    key = f"lab.obj.{view}"
    from viz.text import has, t
    return t(key) if has(key) else view


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def causal_shift(tok, text: str, max_length: int = 64) -> pd.DataFrame:
    """Decoder view of ``text`` (no special tokens): at position t the model has read x_1..x_t and
    its target is x_{t+1}; the last position has no target."""
    ids = tok(text, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    rows = []
    for i, x in enumerate(toks):
        seen = " ".join(toks[max(0, i - 5):i + 1])
        rows.append({tr("col.pos"): i + 1, tr("col.seen"): ("… " if i > 5 else "") + seen, tr("col.input"): x,
                     tr("col.target"): toks[i + 1] if i + 1 < len(toks) else tr("end")})
    return pd.DataFrame(rows)


def mlm_rule(tok, original: pd.DataFrame, mlm: pd.DataFrame) -> pd.DataFrame:
    """The rows MLM selected (label != -100), each with the 80/10/10 branch it took: the input
    shows [MASK] (80%), another token (10%) or the original token (10%); the label is the original."""
    rows = []
    for i, (orig, shown, label) in enumerate(zip(original["token"], mlm["token"], mlm["label"])):
        if label == -100:
            continue
        rule = "mask" if shown == tok.mask_token else ("keep" if shown == orig else "random")
        rows.append({tr("col.pos"): i, tr("col.original"): orig, tr("col.shown"): shown,
                     tr("col.rule"): tr(f"rule.{rule}"), tr("col.label"): tok.convert_ids_to_tokens(int(label))})
    return pd.DataFrame(rows, columns=[tr("col.pos"), tr("col.original"), tr("col.shown"), tr("col.rule"),
                                       tr("col.label")])


def explained_views(tok, text: str, views: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {"causal_shift": causal_shift(tok, text), "mlm_rule": mlm_rule(tok, views["classification"], views["mlm"])}


def unk_note(tok, text: str) -> str:
    """Why Chinese becomes [UNK], with the vocabulary's measured numbers (and the typed text's)."""
    vocab = tok.get_vocab()
    cjk = sum(any(_is_cjk(c) for c in w) for w in vocab)
    chars = [c for c in text if _is_cjk(c)]
    if chars:
        m = sum(tok.convert_tokens_to_ids(tok.tokenize(c))[:1] == [tok.unk_token_id] for c in chars)
        example = tr("unk_example", n=len(chars), m=m)
    else:
        example = tr("unk_try")
    return tr("unk", vocab=len(vocab), cjk=cjk, example=html.escape(example))


__all__ = ["causal_shift", "explained_views", "mlm_rule", "title", "unk_note"]
