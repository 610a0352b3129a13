"""Notebook 11 (pretraining here): the facts of the recorded pretraining, a tokenizer explorer and a
fill-the-mask box over the small RoBERTa pretrained here. ``FTLAB_QUICK=1`` uses the quick recipes
(seconds) instead of the full ones."""
from __future__ import annotations

import ipywidgets as W
import pandas as pd

from .env import QUICK
from .strings import tr
from .widgets import _button


def _t(key: str, **kw) -> str:
    """This notebook's text ``key`` (lab/texts: ``pretraining.<key>``) in the theme's language."""
    return tr(f"pretraining.{key}", **kw)


def recipe() -> str:
    """The small RoBERTa's recipe of this mode and CPU (``roberta-small``, or ``roberta-small-fp32``
    without native bf16; ``roberta-quick`` under FTLAB_QUICK=1)."""
    if QUICK:
        return "roberta-quick"
    from ftcore.engine.precision import native_bf16
    # the recorded recipe trains in bf16; a CPU without native bf16 would take hours over it, so there
    # the same recipe in fp32 (its own checkpoint, about 2.5x a bf16 CPU's minutes)
    return "roberta-small" if native_bf16("cpu") else "roberta-small-fp32"


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


class _SentenceBox:
    """A sentence, a button and the table it makes: ``table(text)`` (the subclass's) runs on a click."""

    def __init__(self, text: str, button: str, waiting: str, *beside):
        self.text = W.Text(value=text, description=_t("text"), layout=W.Layout(width="90%"))
        self.button = _button(_t(button))
        self.msg, self.out = W.HTML(_t(waiting)), W.HTML("")
        self.result = None
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([self.text, W.HBox([*beside, self.button]) if beside else self.button, self.msg, self.out])

    def table(self, text: str) -> pd.DataFrame:
        raise NotImplementedError

    def html(self, table: pd.DataFrame) -> str:
        return table.to_html(index=False, border=0)

    def run(self) -> pd.DataFrame:
        self.msg.value = _t("running")
        self.result = self.table(self.text.value)
        self.msg.value = ""
        self.out.value = self.html(self.result)
        return self.result

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class TokenizerExplorer(_SentenceBox):
    """Vocabulary size + a sentence; the button trains a BPE tokenizer here and splits the sentence."""

    def __init__(self, text: str = "An unexpectedly moving, beautifully acted film."):
        self.vocab = W.Dropdown(options=[500, 2000, 8000, 16000], value=500 if QUICK else 8000, description=_t("vocab"))
        super().__init__(text, "tokenize", "wait_tok", self.vocab)

    def table(self, text: str) -> pd.DataFrame:
        from ftcore.pretraining.tokenizer import pretraining_texts, train_bpe_tokenizer
        texts = pretraining_texts()
        return tokenize_table(train_bpe_tokenizer(texts[:500] if QUICK else texts, vocab_size=int(self.vocab.value)), text)

    def html(self, table: pd.DataFrame) -> str:
        return table.T.to_html(header=False, border=0)  # one row per token is too tall: tokens across


class FillMask(_SentenceBox):
    """A sentence with ``<mask>``; the button shows the small RoBERTa's top guesses."""

    def __init__(self, text: str = "This is one of the best <mask> of the year."):
        super().__init__(text, "fill", "wait_fill")

    def table(self, text: str) -> pd.DataFrame:
        return fill_mask(text)
