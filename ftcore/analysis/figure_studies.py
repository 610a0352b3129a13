"""Measurements behind figures that are not a run's record: they need a fine-tuned model in hand
(drift per layer, predictions on augmented text), probes of the encoder, one training step's
memory in bytes, or only the tokenizer.
Each returns ``(tables, meta)`` for :func:`ftcore.records.studies.study`, which caches it."""
from __future__ import annotations

import re

import pandas as pd
import torch

from ftcore import RunConfig
from ftcore.engine.runs import run_id

WORDS = (8, 18)  # length of the example review (words): long enough to augment, short enough to read


def example_review() -> dict:
    """A real review that names its film, chosen by rule (the first, in file order, of 8-18 words):
    the same sentence serves the augmentation and the data-format figures."""
    from ftcore.engine.tasks import _rotten_tomatoes_frame

    frame = _rotten_tomatoes_frame()
    for row in frame[frame["category"] != "plot"].itertuples():
        title, text = str(row.movie_name).replace("_", " "), str(row.text)
        if title.lower() in text.lower() and WORDS[0] < len(text.split()) < WORDS[1]:
            return {"text": text, "title": title, "label": str(row.category)}
    raise LookupError("no review names its film")  # cannot happen with the packaged corpus


@torch.no_grad()
def _predict(model, tokenizer, texts: list[str], cfg: RunConfig) -> torch.Tensor:
    model.eval()
    enc = tokenizer(texts, truncation=True, max_length=cfg.max_length, padding=True, return_tensors="pt")
    enc = {k: v.to(next(model.parameters()).device) for k, v in enc.items()}
    return model(**enc).logits.float().softmax(-1).cpu()


def finetuned(cfg: RunConfig, *, n_examples: int = 256) -> tuple[dict, dict]:
    """Fine-tune ``cfg`` once and measure (1) how far each layer group moved (‖Δw‖/‖w‖, CKA to the
    pretrained model) and (2) the fine-tuned model's prediction on real augmentations of a review."""
    from ftcore.engine.augment import augment_examples, default_synonym_source
    from ftcore.analysis.drift import measure_drift

    drift, trainer = measure_drift(cfg, n_examples=n_examples, return_trainer=True)
    test_accuracy = drift.attrs["final_eval"].get("test", {}).get("accuracy", float("nan"))
    drift.attrs.clear()  # the study's meta says what matters; attrs do not go to Parquet

    review = example_review()
    synonyms = default_synonym_source(trainer.data.tokenizer)
    variants = {"original": review["text"], **augment_examples(review["text"], seed=cfg.seed, rate=0.2,
                                                               synonyms=synonyms)}
    probs = _predict(trainer.model, trainer.data.tokenizer, list(variants.values()), cfg)
    names = list(trainer.data.task.label_names)
    augment = pd.DataFrame({"op": list(variants), "text": list(variants.values()),
                            "predicted": [names[i] for i in probs.argmax(-1).tolist()],
                            "p_predicted": probs.max(-1).values.tolist(),
                            f"p_{names[-1]}": probs[:, -1].tolist()})
    meta = {"run_id": run_id(cfg), "test_accuracy": test_accuracy, "review": review,
            "synonym_source": type(synonyms).__name__, "label_names": names, "n_examples": n_examples,
            "left_out": ["back_translation"]}
    return {"drift": drift, "augment": augment}, meta


def task_formats(model: str, *, max_length: int = 48, seed: int = 0) -> tuple[dict, dict]:
    """What the real tokenizer and collators make of one review, per task type: sequence
    classification (one label for the text), token classification (the film's title tagged
    B-TITLE/I-TITLE, labels on the first piece of each word, -100 elsewhere) and masked language
    modelling (``DataCollatorForLanguageModeling``, 15% of tokens chosen; -100 = not predicted)."""
    from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification

    from ftcore.engine.models import load_tokenizer

    tok = load_tokenizer(model)
    review = example_review()
    rows = []

    def add(fmt: str, ids: list[int], mask: list[int], labels: list[int] | None, label_text: list[str]):
        for pos, (i, m) in enumerate(zip(ids, mask)):
            rows.append({"format": fmt, "position": pos, "token": tok.convert_ids_to_tokens(i),
                         "input_id": int(i), "attention_mask": int(m),
                         "label": None if labels is None else int(labels[pos]),
                         "label_text": label_text[pos] if label_text else ""})

    enc = tok(review["text"], truncation=True, max_length=max_length)
    label_id = 1 if review["label"] == "fresh" else 0
    add("classification", enc["input_ids"], enc["attention_mask"], None, [])

    words = review["text"].split()
    title = review["title"].lower().split()
    tags = ["O"] * len(words)
    clean = [re.sub(r"\W", "", w).lower() for w in words]
    for s in range(len(words) - len(title) + 1):
        if clean[s:s + len(title)] == [re.sub(r"\W", "", w) for w in title]:
            tags[s:s + len(title)] = ["B-TITLE"] + ["I-TITLE"] * (len(title) - 1)
            break
    tag_ids = {"O": 0, "B-TITLE": 1, "I-TITLE": 2}
    wenc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length)
    labels, prev = [], None
    for w in wenc.word_ids():
        labels.append(-100 if w is None or w == prev else tag_ids[tags[w]])
        prev = w
    batch = DataCollatorForTokenClassification(tok)([{**wenc, "labels": labels}])
    add("token_classification", batch["input_ids"][0].tolist(), batch["attention_mask"][0].tolist(),
        batch["labels"][0].tolist(), [{v: k for k, v in tag_ids.items()}.get(x, "") for x in labels])

    torch.manual_seed(seed)
    mlm = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=seed)([dict(enc)])
    add("mlm", mlm["input_ids"][0].tolist(), mlm["attention_mask"][0].tolist(), mlm["labels"][0].tolist(),
        [tok.convert_ids_to_tokens(x) if x != -100 else "" for x in mlm["labels"][0].tolist()])
    meta = {"review": review, "sequence_label": label_id, "tokenizer": type(tok).__name__, "model": model}
    return {"tokens": pd.DataFrame(rows)}, meta


def pretrained_probe(cfg: RunConfig, probe_task: str, *, n_train: int, n_test: int) -> tuple[dict, dict]:
    """Linear-probe and kNN accuracy of the encoder's features on ``probe_task``, before and after
    fine-tuning per ``cfg`` (WordNet retrieval left out: it is optional on a machine)."""
    from ftcore.analysis.probe import forgetting_of_pretrained

    res = forgetting_of_pretrained(cfg, probe_task, definitions=False, n_train=n_train, n_test=n_test,
                                   max_length=cfg.max_length)
    keep = {k: v for k, v in res.items() if isinstance(v, (int, float, str)) and k != "config"}
    return {"probe": pd.DataFrame([keep])}, {"run_id": run_id(cfg)}


MEMORY_PARTS = ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")


def memory(configs: dict[str, RunConfig]) -> tuple[dict, dict]:
    """What training keeps in memory for one step of each arm (:func:`ftcore.analysis.memory.training_memory`):
    bytes of parameters, gradients, optimizer state and activations saved for backward, and the
    trainable parameter count; one row per arm (column ``arm``), in the dict's order. Each config
    runs with its own ``threads``; torch's thread count is restored afterwards. The meta gives the
    batch the bytes were counted on (the first config's: examples, tokens, ``max_length``) and the
    precision."""
    from ftcore.analysis.memory import training_memory

    if not configs:
        raise ValueError("memory() needs at least one config")
    threads = torch.get_num_threads()
    rows, first = [], None
    try:
        for arm, cfg in configs.items():
            m = training_memory(cfg)
            first = first or m
            rows.append({"arm": str(arm), **{k: int(m[k]) for k in (*MEMORY_PARTS, "trainable_params")}})
    finally:
        torch.set_num_threads(threads)
    from ..engine.precision import resolved_precision
    cfg0 = next(iter(configs.values()))
    meta = {"batch_examples": int(first["batch_examples"]), "batch_tokens": int(first["batch_tokens"]),
            "max_length": int(cfg0.max_length), "precision": resolved_precision(cfg0)}
    return {"memory": pd.DataFrame(rows)}, meta


__all__ = ["MEMORY_PARTS", "example_review", "finetuned", "memory", "pretrained_probe", "task_formats"]
