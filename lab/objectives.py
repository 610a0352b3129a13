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
from viz.text import register

from .strings import tr

ZH = {
    "obj.classification": "分类：补齐（padding）后的输入与注意力掩码",
    "obj.mlm": "掩码语言模型（MLM）：整理器的输出",
    "obj.causal_lm": "因果语言模型（CLM）：整理器的原始输出（labels 与 input_ids 相同，错位发生在模型的损失函数里）",
    "obj.span_corruption": "T5 式跨度破坏：输入与目标",
    "obj.causal_shift": "因果语言模型：显式错位——第 t 个位置读到的输入与它要预测的下一个词元（解码器视角，没有 [CLS]/[SEP]）",
    "obj.mlm_rule": "MLM 的 80/10/10 规则：被选中（约 15%）的位置各自怎么处理",
    "col.pos": "位置 t", "col.seen": "模型已读到的前缀", "col.input": "输入词元 x_t", "col.target": "目标：下一个词元 x_{t+1}",
    "col.original": "原词元", "col.shown": "模型看到的输入", "col.rule": "规则", "col.label": "要预测的标签",
    "rule.mask": "80%：换成 [MASK]", "rule.random": "10%：换成随机词元", "rule.keep": "10%：保持原样（仍要预测它）",
    "end": "（序列结束，没有下一个词元）",
    "unk": ("<p><b>为什么中文会变成 [UNK]？</b>这个模型的分词器是英文 WordPiece 词表（{vocab:,} 个词元，来自 "
            "bert-base-uncased）。分词器先把每个汉字单独切开，再到词表里查；整个词表里只有 {cjk} 个词元含汉字"
            "，所以大多数简体字查不到，只能记作 [UNK]（未知）。"
            "{example}要处理中文，需要换用带中文词表的模型（如多语言或中文 BERT）。</p>"),
    "unk_example": "你输入的文字里有 {n} 个汉字，其中 {m} 个变成了 [UNK]。",
    "unk_try": "试着在上面的文本框里输入一句中文看看。",
    "mlm_none": "（这句话里没有位置被选中；换一句更长的话试试）",
}
EN = {
    "obj.classification": "Classification: padded input and attention mask",
    "obj.mlm": "Masked language modelling (MLM): the collator's output",
    "obj.causal_lm": "Causal LM: the collator's raw output (labels equal input_ids; the shift happens inside the model's loss)",
    "obj.span_corruption": "T5-style span corruption: input and target",
    "obj.causal_shift": "Causal LM with the shift made explicit: what position t has read and the next token it must predict (decoder view, no [CLS]/[SEP])",
    "obj.mlm_rule": "MLM's 80/10/10 rule: what happens to each selected (~15%) position",
    "col.pos": "position t", "col.seen": "prefix read so far", "col.input": "input token x_t",
    "col.target": "target: next token x_{t+1}",
    "col.original": "original token", "col.shown": "what the model sees", "col.rule": "rule", "col.label": "label to predict",
    "rule.mask": "80%: replaced by [MASK]", "rule.random": "10%: replaced by a random token",
    "rule.keep": "10%: kept as is (still predicted)",
    "end": "(end of sequence: no next token)",
    "unk": ("<p><b>Why does Chinese text become [UNK]?</b> This model's tokenizer has an English WordPiece "
            "vocabulary ({vocab:,} tokens, from bert-base-uncased). It splits every Chinese character off on "
            "its own and looks it up; only {cjk} entries of the whole vocabulary contain a Chinese character, so most simplified "
            "characters are not found and become [UNK] (unknown). {example}Chinese needs a model with a "
            "Chinese vocabulary (a multilingual or Chinese BERT).</p>"),
    "unk_example": "Your text has {n} Chinese characters; {m} of them became [UNK]. ",
    "unk_try": "Try typing a Chinese sentence into the box above. ",
    "mlm_none": "(no position was selected in this sentence; try a longer one)",
}
register({"zh": {f"lab.{k}": v for k, v in ZH.items()}, "en": {f"lab.{k}": v for k, v in EN.items()}})


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
