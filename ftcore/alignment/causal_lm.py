"""A tiny GPT pretrained here on review text (issue 15 part 2; the base of issue 16's alignment).

Corpus: the train splits of ``rt-sentiment`` and ``rt-subjectivity`` (reviews and plot summaries
from Rotten Tomatoes) minus every text that either task holds out for validation or test
(:func:`ftcore.pretraining.tokenizer.pretraining_texts`), so no test review is ever seen.
Tokenizer: byte-level BPE trained on that corpus (:func:`ftcore.pretraining.tokenizer.train_bpe_tokenizer`).
Model: ``GPT2LMHeadModel`` from a small ``GPT2Config`` (random init), trained nanoGPT-style on
random windows of the concatenated documents (``</s>`` between documents).

Recorded (a cached study ``tiny-gpt``): loss per step, held-out perplexity on the first
``heldout_docs`` validation reviews of ``rt-sentiment`` every ``eval_every`` steps, and samples
from fixed prompts at a few checkpoints. The weights and tokenizer are saved under
``<runs_dir>/models/tiny-gpt-<id>/`` (fp16 safetensors; every later step loads them from there, so
a model just trained and one loaded later give the same numbers).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

PROMPTS = ("The film", "This movie is", "A story about", "The acting")  # sample openings (our own)


@dataclass(frozen=True)
class GPTConfig:
    """One tiny-GPT pretraining run. Sizes in tokens; ``steps`` are optimizer steps."""

    tasks: tuple[str, ...] = ("rt-sentiment", "rt-subjectivity")  # train splits only
    vocab_size: int = 4096  # BPE vocabulary (5 special + 256 bytes + merges)
    n_embd: int = 192
    n_layer: int = 4
    n_head: int = 4
    n_positions: int = 128  # longest sequence the model can read (instruction prompts fit)
    dropout: float = 0.1
    block: int = 64  # tokens per training window
    batch: int = 32  # windows per step: 2,048 tokens
    steps: int = 1000  # about 5 passes over the 415k-token corpus; ~8 min on 1 thread
    lr: float = 1e-3  # peak; small models take a high LR (nanoGPT's shakespeare-char uses 1e-3)
    warmup: int = 60  # linear warmup steps, then cosine decay to lr/10
    weight_decay: float = 0.1
    eval_every: int = 100
    heldout_docs: int = 400  # validation reviews of rt-sentiment for perplexity
    sample_at: tuple[int, ...] = (0, 100, 400)  # steps at which to sample (and at the end)
    sample_tokens: int = 24
    max_docs: int | None = None  # a corpus cap (quick mode)
    seed: int = 0
    threads: int = 1

    def quick(self) -> GPTConfig:
        """Seconds on a CPU: a 2-layer 64-wide model on 2,000 documents."""
        return replace(self, vocab_size=512, n_embd=64, n_layer=2, n_head=2, batch=8, steps=60,
                       warmup=5, eval_every=20, heldout_docs=64, sample_at=(0, 20), max_docs=2000)


def corpus(cfg: GPTConfig) -> tuple[list[str], list[str]]:
    """(pretraining texts, held-out reviews for perplexity)."""
    from ftcore.engine.tasks import load_task
    from ftcore.pretraining.tokenizer import pretraining_texts

    texts = pretraining_texts(cfg.tasks)
    if cfg.max_docs:
        texts = texts[: cfg.max_docs]
    heldout = list(load_task("rt-sentiment").splits["validation"]["text"][: cfg.heldout_docs])
    return texts, heldout


def new_model(cfg: GPTConfig, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=cfg.n_positions, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout,
                        embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config)


def lr_at(step: int, cfg: GPTConfig) -> float:
    """Linear warmup then cosine decay to a tenth of the peak (a pure function of the step)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


@torch.no_grad()
def perplexity(model, tokenizer, texts: list[str]) -> float:
    """exp(mean NLL per predicted token) of ``</s> text </s>`` (the end of a review is predicted too)."""
    model.eval()
    eos, nll, n = tokenizer.eos_token_id, 0.0, 0
    for i in range(0, len(texts), 32):
        seqs = [[eos] + tokenizer(t)["input_ids"][: model.config.n_positions - 2] + [eos] for t in texts[i:i + 32]]
        ids, labels = _pad(seqs, tokenizer.pad_token_id)
        out = model(input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id).long(), labels=labels)
        k = int((labels[:, 1:] != -100).sum())
        nll += float(out.loss) * k
        n += k
    return math.exp(nll / n)


def _pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and labels (-100 on padding and on the first token, which nothing predicts)."""
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        labels[r, 1:len(s)] = torch.tensor(s[1:])
    return ids, labels


@torch.no_grad()
def generate(model, tokenizer, prompts, *, max_new_tokens: int = 24, seed: int = 0,
             temperature: float = 0.8, top_k: int = 40, sample: bool = True) -> list[str]:
    """Continuations of ``prompts`` (each read as the start of a document); the text after the prompt."""
    model.eval()
    eos = tokenizer.eos_token_id
    out = []
    for i, prompt in enumerate(prompts):
        ids = torch.tensor([[eos] + tokenizer(prompt)["input_ids"]])
        torch.manual_seed(seed * 1000 + i)
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=sample, temperature=temperature if sample else None,
                             top_k=top_k if sample else None, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=eos)
        new = gen[0, ids.shape[1]:].tolist()
        out.append(tokenizer.decode([t for t in new if t != eos][: new.index(eos) if eos in new else None]))
    return out


def pretrain(cfg: GPTConfig, out_dir: str | Path) -> tuple[dict, dict]:
    """Train the tokenizer and the model per ``cfg``; save both to ``out_dir``; return the study's
    ``(tables, meta)``: ``steps`` (step, loss, lr, wall_s), ``evals`` (step, perplexity),
    ``samples`` (step, prompt, text)."""
    from ftcore.engine.record_builder import hand_loop
    from ftcore.pretraining.tokenizer import train_bpe_tokenizer

    with hand_loop("causal-lm", threads=cfg.threads) as prov:
        t0 = time.perf_counter()
        texts, heldout = corpus(cfg)
        tok = train_bpe_tokenizer(texts, vocab_size=cfg.vocab_size, model_max_length=cfg.n_positions,
                                  add_special_tokens=False)
        eos = tok.eos_token_id
        stream = []
        for ids in tok(texts, verbose=False)["input_ids"]:
            stream += ids + [eos]
        data = torch.tensor(stream, dtype=torch.long)
        tok_s = time.perf_counter() - t0

        model = new_model(cfg, tok)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]  # matrices decay,
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]  # biases and norms do not
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
        g = torch.Generator().manual_seed(cfg.seed)
        steps, evals, samples = [], [], []

        def checkpoint(step: int):
            evals.append({"step": step, "perplexity": perplexity(model, tok, heldout)})
            if step in cfg.sample_at or step == cfg.steps:
                for p, s in zip(PROMPTS, generate(model, tok, PROMPTS, max_new_tokens=cfg.sample_tokens, seed=cfg.seed)):
                    samples.append({"step": step, "prompt": p, "text": s})
            model.train()

        checkpoint(0)
        t1 = time.perf_counter()
        model.train()
        for step in range(1, cfg.steps + 1):
            starts = torch.randint(0, len(data) - cfg.block - 1, (cfg.batch,), generator=g)
            x = torch.stack([data[s:s + cfg.block] for s in starts])
            lr = lr_at(step - 1, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = model(input_ids=x, labels=x).loss  # the model shifts the labels by one
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            steps.append({"step": step, "loss": loss.item(), "lr": lr, "wall_s": time.perf_counter() - t1})
            if step % cfg.eval_every == 0 or step == cfg.steps or step in cfg.sample_at:
                checkpoint(step)
        train_s = time.perf_counter() - t1

        out_dir = Path(out_dir)
        model.half().save_pretrained(out_dir)  # fp16 on disk: half the size, loaded back as fp32
        tok.save_pretrained(out_dir)
        meta = {"config": asdict(cfg), "n_params": sum(p.numel() for p in model.parameters()),
                "vocab_size": len(tok), "corpus_docs": len(texts), "corpus_tokens": int(len(data)),
                "heldout_docs": len(heldout), "tokens_seen": cfg.steps * cfg.batch * cfg.block,
                "epochs": cfg.steps * cfg.batch * cfg.block / len(data), "train_s": train_s,
                "tokenizer_s": tok_s, "threads": cfg.threads, "weights": out_dir.name,
                "final_perplexity": evals[-1]["perplexity"], "initial_perplexity": evals[0]["perplexity"],
                "provenance": prov}
    return {"steps": pd.DataFrame(steps), "evals": pd.DataFrame(evals), "samples": pd.DataFrame(samples)}, meta


def n_parameters(cfg: dict, vocab_size: int) -> int:
    """GPT-2's parameter count from its sizes (``cfg``: a GPTConfig as a dict), output layer tied to
    the token embedding: embeddings V·d + P·d, per layer 12·d² + 13·d (attention and MLP weights,
    biases, two layer norms), a final layer norm 2·d."""
    d, layers = cfg["n_embd"], cfg["n_layer"]
    return vocab_size * d + cfg["n_positions"] * d + layers * (12 * d * d + 13 * d) + 2 * d


def models_dir(runs_dir) -> Path:
    from ftcore.records.cache import runs_dir_or_default
    return runs_dir_or_default(runs_dir) / "models"


def gpt_study(cfg: GPTConfig, runs_dir=None):
    """The cache entry (``Stored``) of the pretraining study and the folder of its weights."""
    from ftcore.records.cache import key_id
    from ftcore.records.studies import stored_study

    params = asdict(cfg)
    weights = models_dir(runs_dir) / key_id(params, prefix="tiny-gpt-")
    return stored_study("tiny-gpt", params, lambda: pretrain(cfg, weights), runs_dir), weights


def pretrained_gpt(cfg: GPTConfig, runs_dir=None, *, render_only: bool = False):
    """``(model, tokenizer, study)``: the study fetched or computed, the weights loaded from disk
    (retrained if the study is there but its weights are not)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from ftcore.records.cache import fetch_or_compute

    stored, weights = gpt_study(cfg, runs_dir)
    st = fetch_or_compute(stored, render_only=render_only)
    if not (weights / "model.safetensors").is_file():
        st = fetch_or_compute(stored, force=True)
    model = GPT2LMHeadModel.from_pretrained(weights, dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(weights), st


__all__ = ["GPTConfig", "PROMPTS", "corpus", "generate", "gpt_study", "lr_at", "n_parameters", "new_model", "perplexity",
           "pretrain", "pretrained_gpt"]
