"""What each pretraining / fine-tuning objective feeds the model for one text (seed 003):
classification padding, MLM masking and causal-LM labels from the real ``transformers``
collators, and T5-style span corruption (transformers ships no collator for it, so it is written
here after Raffel et al. 2020: ~15% of tokens in spans of mean length 3, each span replaced by one
sentinel in the input and listed after its sentinel in the target)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def _frame(tok, ids, mask=None, labels=None) -> pd.DataFrame:
    df = pd.DataFrame({"token": tok.convert_ids_to_tokens(list(ids)), "input_id": list(ids)})
    if mask is not None:
        df["attention_mask"] = list(mask)
    if labels is not None:
        df["label"] = list(labels)
        df["label_token"] = ["" if x == -100 else tok.convert_ids_to_tokens(int(x)) for x in labels]
    return df


def span_corruption(ids: list[int], *, density: float = 0.15, mean_span: float = 3.0, seed: int = 0,
                    sentinel=lambda i: f"<extra_id_{i}>") -> tuple[list[str], list[str]]:
    """(input pieces, target pieces) of T5's span corruption over ``ids`` (special tokens excluded
    by the caller). Pieces are token ids or sentinel names."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    n_noise = max(1, round(n * density))
    n_spans = max(1, round(n_noise / mean_span))
    masked = np.zeros(n, dtype=bool)
    starts = np.sort(rng.choice(np.arange(n), size=min(n_spans, n), replace=False))
    per_span = max(1, n_noise // len(starts))
    for s in starts:
        masked[s:s + per_span] = True
    inp, tgt, k, i = [], [], 0, 0
    while i < n:
        if masked[i]:
            inp.append(sentinel(k))
            tgt.append(sentinel(k))
            while i < n and masked[i]:
                tgt.append(ids[i])
                i += 1
            k += 1
        else:
            inp.append(ids[i])
            i += 1
    tgt.append(sentinel(k))
    return inp, tgt


def collated_views(tok, text: str, *, seed: int = 0, mlm_probability: float = 0.15) -> dict[str, pd.DataFrame]:
    import torch
    from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

    enc = tok(text, truncation=True, max_length=64)
    out = {}
    b = DataCollatorWithPadding(tok, return_tensors="pt")([dict(enc)])
    out["classification"] = _frame(tok, b["input_ids"][0].tolist(), b["attention_mask"][0].tolist())
    torch.manual_seed(seed)
    m = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=mlm_probability, seed=seed)([dict(enc)])
    out["mlm"] = _frame(tok, m["input_ids"][0].tolist(), m["attention_mask"][0].tolist(), m["labels"][0].tolist())
    c = DataCollatorForLanguageModeling(tok, mlm=False)([dict(enc)])
    # the model shifts labels by one inside its loss: position t predicts token t+1
    out["causal_lm"] = _frame(tok, c["input_ids"][0].tolist(), c["attention_mask"][0].tolist(), c["labels"][0].tolist())
    body = [i for i in enc["input_ids"] if i not in tok.all_special_ids]
    inp, tgt = span_corruption(body, seed=seed)
    name = lambda p: p if isinstance(p, str) else tok.convert_ids_to_tokens(p)  # noqa: E731
    out["span_corruption"] = pd.DataFrame({"input": pd.Series([name(p) for p in inp]),
                                           "target": pd.Series([name(p) for p in tgt])}).fillna("")
    return out


__all__ = ["collated_views", "span_corruption"]
