"""Notebook 11 (pretraining here): the facts of the recorded pretraining, a tokenizer explorer and a
fill-the-mask box over the small RoBERTa pretrained here. ``FTLAB_QUICK=1`` uses the quick recipes
(seconds) instead of the full ones."""
from __future__ import annotations

import ipywidgets as W
import pandas as pd

from viz.theme import current_lang

from .env import QUICK

TEXT = {
    "zh": {"vocab": "词表大小", "tokenize": "训练分词器", "text": "句子", "fill": "预测 <mask>",
           "wait_tok": "选择词表大小，点击“训练分词器”：在离线语料的训练划分上训练字节级 BPE（约几秒），再切分上面的句子。",
           "wait_fill": "点击“预测 <mask>”：用本地预训练的小 RoBERTa 猜被遮住的词。若本机还没有它的权重，第一次会先按记录的配方预训练（正常模式约 10–20 分钟）。",
           "running": "运行中……", "token": "词元", "id": "编号", "rank": "名次", "guess": "猜测", "prob": "概率",
           "facts": "分词器词表 {vocab}；语料 {texts} 篇、{tokens} 个词元（{words} 个词）；模型 {params}M 参数；"
                    "预训练 {steps} 步（{epochs:.1f} 轮，{minutes:.1f} 分钟，{threads} 个线程）；留出掩码词元准确率 {start:.3f} → {acc:.3f}。"},
    "en": {"vocab": "vocabulary", "tokenize": "Train tokenizer", "text": "sentence", "fill": "Predict <mask>",
           "wait_tok": "Choose a vocabulary size and click “Train tokenizer”: byte-level BPE on the train splits of "
                       "the offline corpora (a few seconds), then the sentence above split by it.",
           "wait_fill": "Click “Predict <mask>”: the small RoBERTa pretrained here guesses the masked word. If this "
                        "machine has no weights for it yet, the first click pretrains it by the recorded recipe "
                        "(10-20 minutes in normal mode).",
           "running": "running…", "token": "token", "id": "id", "rank": "rank", "guess": "guess", "prob": "probability",
           "facts": "Tokenizer vocabulary {vocab}; corpus {texts} texts, {tokens} tokens ({words} words); model "
                    "{params}M parameters; pretrained {steps} steps ({epochs:.1f} epochs, {minutes:.1f} min, {threads} "
                    "thread(s)); held-out masked-token accuracy {start:.3f} → {acc:.3f}."},
}


def _t(key: str, **kw) -> str:
    return TEXT[current_lang()][key].format(**kw)


def recipe() -> str:
    """The small RoBERTa's recipe of this mode (``roberta-small``; ``roberta-quick`` under FTLAB_QUICK=1)."""
    return "roberta-quick" if QUICK else "roberta-small"


def facts(study=None) -> str:
    """One line from the recorded pretraining study: tokenizer, corpus, steps, time, MLM accuracy."""
    import chapter
    st = study if study is not None else chapter.inputs("pretraining", quick=QUICK)["mlm"]
    m = st.meta
    c = m["corpus"]
    return _t("facts", vocab=f"{m['vocab_size']:,}", texts=f"{c['texts']:,}", tokens=f"{c['tokens']:,}",
              words=f"{c['words']:,}", params=f"{m['parameters'] / 1e6:.1f}", steps=f"{m['recipe_params']['steps']:,}",
              epochs=m["epochs"], minutes=m["train_s"] / 60, threads=m["threads"], start=m["start"]["accuracy"],
              acc=m["final"]["accuracy"])


def tokenize_table(tokenizer, text: str) -> pd.DataFrame:
    """How ``tokenizer`` splits ``text``: one row per token (Ġ marks a leading space)."""
    ids = tokenizer(text)["input_ids"]
    return pd.DataFrame({_t("token"): tokenizer.convert_ids_to_tokens(ids), _t("id"): ids})


def fill_mask(text: str, *, top_k: int = 5, name: str | None = None) -> pd.DataFrame:
    """The pretrained-here model's top guesses for the ``<mask>`` in ``text`` (pretraining it first if
    this machine has no weights for the recipe)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from ftcore.pretraining.mlm import ensure_checkpoint
    path = ensure_checkpoint(name or recipe())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32).eval()
    enc = tok(text, return_tensors="pt")
    pos = (enc["input_ids"][0] == tok.mask_token_id).nonzero()
    if len(pos) == 0:
        raise ValueError(f"the text has no {tok.mask_token}: {text!r}")
    with torch.no_grad():
        probs = model(**enc).logits[0, pos[0, 0]].softmax(-1)
    p, i = probs.topk(top_k)
    return pd.DataFrame({_t("rank"): range(1, top_k + 1), _t("guess"): tok.convert_ids_to_tokens(i.tolist()),
                         _t("prob"): [round(float(x), 3) for x in p]})


class TokenizerExplorer:
    """Vocabulary size + a sentence; the button trains a BPE tokenizer here and splits the sentence."""

    def __init__(self, text: str = "An unexpectedly moving, beautifully acted film."):
        self.vocab = W.Dropdown(options=[500, 2000, 8000, 16000], value=500 if QUICK else 8000, description=_t("vocab"))
        self.text = W.Text(value=text, description=_t("text"), layout=W.Layout(width="90%"))
        self.button = W.Button(description=_t("tokenize"), button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self.msg, self.out = W.HTML(_t("wait_tok")), W.HTML("")
        self.result = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([self.text, W.HBox([self.vocab, self.button]), self.msg, self.out])

    def run(self) -> pd.DataFrame:
        from ftcore.pretraining.tokenizer import pretraining_texts, train_bpe_tokenizer
        self.msg.value = _t("running")
        texts = pretraining_texts()
        tok = train_bpe_tokenizer(texts[:500] if QUICK else texts, vocab_size=int(self.vocab.value))
        self.result = tokenize_table(tok, self.text.value)
        self.msg.value = ""
        self.out.value = self.result.T.to_html(header=False, border=0)
        return self.result

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class FillMask:
    """A sentence with ``<mask>``; the button shows the small RoBERTa's top guesses."""

    def __init__(self, text: str = "This is one of the best <mask> of the year."):
        self.text = W.Text(value=text, description=_t("text"), layout=W.Layout(width="90%"))
        self.button = W.Button(description=_t("fill"), button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self.msg, self.out = W.HTML(_t("wait_fill")), W.HTML("")
        self.result = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([self.text, self.button, self.msg, self.out])

    def run(self) -> pd.DataFrame:
        self.msg.value = _t("running")
        self.result = fill_mask(self.text.value)
        self.msg.value = ""
        self.out.value = self.result.to_html(index=False, border=0)
        return self.result

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
