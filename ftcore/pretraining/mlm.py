"""Masked-language-model pretraining at small scale: a small RoBERTa from scratch on a tokenizer
trained here, or the default model continued on review text (domain-adaptive pretraining).

A pretraining recipe is an :class:`MLMConfig`; named recipes live in :data:`RECIPES`. A recipe's
checkpoint is a model the engine can fine-tune by name, ``RunConfig(model="pretrained-here:<recipe>")``
(this module registers :func:`resolve` for the prefix with :mod:`ftcore.engine.model_sources`). Its fingerprint is
the recipe plus its data and starting model, not the weights' bytes: pretraining is deterministic
(one thread, fixed seeds), so a record can name the model before the weights exist on this machine,
and the weights are trained the first time a run needs them (:func:`ensure_checkpoint`, under a
lock), then kept in the models folder (``$FTCORE_MODELS_DIR``, default ``<checkout>/runs/cache/models``;
not committed: they are a cache). The loss and accuracy curves are saved with the weights and become
a study of the figure that shows them (:func:`curves`).

What is recorded, per optimizer step: the MLM loss (mean over masked tokens), the masked-token
accuracy of that batch and the LR; every ``eval_every`` steps: loss and accuracy on held-out blocks
packed from the corpus tasks' validation splits (test text is never seen), with one fixed mask.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..engine.model_sources import ModelLoadError, ModelSource, register_model_resolver, resolve_model
from .tokenizer import CORPUS_TASKS, corpus_stats, plain_backend, pretraining_texts, train_bpe_tokenizer

PREFIX = "pretrained-here:"
MLM_SCHEMA = 1
SCRATCH = "scratch"


@dataclass(frozen=True)
class MLMConfig:
    """One MLM pretraining recipe. Steps count optimizer steps; lengths count tokens."""

    init: str = SCRATCH  # "scratch": new RoBERTa + BPE trained here; else a model to continue (e.g. the default)
    corpus: tuple[str, ...] = CORPUS_TASKS  # tasks whose train splits are the corpus (held-out text removed)
    vocab_size: int = 8000  # BPE vocabulary (scratch only)
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 1024  # feed-forward width, 4 × hidden as in BERT/RoBERTa
    block: int = 64  # tokens per packed training sequence, <s> and </s> included
    batch_size: int = 32
    steps: int = 2000
    lr: float = 1e-3  # peak LR; small models from scratch take ~1e-3, continual pretraining far less
    warmup: float = 0.06  # share of steps with linear warmup, then linear decay to 0
    weight_decay: float = 0.01
    mlm_probability: float = 0.15  # BERT's share of tokens chosen (80% <mask>, 10% random, 10% kept)
    eval_every: int = 100
    eval_blocks: int = 256
    # "fp32", or "bf16" autocast: 2.5x faster than fp32 on a CPU with native bf16 (avx512_bf16), 20-150x
    # slower on one without (ftcore.engine.precision). A recipe pins one: its checkpoint is shared by name.
    precision: str = "fp32"
    seed: int = 0
    # LR of a freshly initialised MLM head (continual pretraining): at the encoder's 1e-5 a random head
    # would barely learn in 400 steps and send the encoder nothing but noise. None: ``lr`` for all.
    head_lr: float | None = None

    def to_dict(self) -> dict:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        if d["head_lr"] is None:  # added later: recipes without it keep their fingerprint
            del d["head_lr"]
        return d


# Continual pretraining of the default model on review text only (rt-sentiment train split): one base,
# two learning rates. A fresh MLM head learns at head_lr (see MLMConfig.head_lr).
REVIEWS = MLMConfig(init="all-MiniLM-L6-v2", corpus=("rt-sentiment",), block=64, batch_size=16, steps=400,
                    eval_every=50, eval_blocks=128, head_lr=1e-3, precision="bf16")
REVIEWS_QUICK = dataclasses.replace(REVIEWS, block=32, batch_size=8, steps=8, eval_every=4, eval_blocks=16,
                                    precision="fp32")  # quick mode / tests: seconds
REVIEW_LRS = (1e-5, 1e-4)

# Named recipes: the names RunConfig.model uses ("pretrained-here:roberta-small"). A recipe's to_dict()
# names its checkpoint (fingerprint): a change to any value here is a new checkpoint.
RECIPES: dict[str, MLMConfig] = {
    # the full-scale small RoBERTa: about 5.3M parameters; about 10 min on one CPU thread
    # bf16: the recorded checkpoint's recipe (fp32 at the protocol regeneration, issue 24)
    "roberta-small": MLMConfig(steps=1800, precision="bf16"),
    # the same in fp32, for the notebook's fill-mask box on a CPU without native bf16
    "roberta-small-fp32": MLMConfig(steps=1800),
    # quick mode / tests: 2 layers × 64, a 1,000-token vocabulary, 60 steps (seconds)
    "roberta-quick": MLMConfig(vocab_size=1000, hidden=64, layers=2, heads=2, intermediate=256,
                               steps=60, batch_size=16, eval_every=20, eval_blocks=32),
    **{f"minilm-reviews-{lr:.0e}": dataclasses.replace(REVIEWS, lr=lr) for lr in REVIEW_LRS},
    **{f"minilm-reviews-quick-{lr:.0e}": dataclasses.replace(REVIEWS_QUICK, lr=lr) for lr in REVIEW_LRS},
    # the same in fp32, which every CPU runs fast: the reviewed protocol's continued models (issue 24)
    **{f"minilm-reviews-fp32-{lr:.0e}": dataclasses.replace(REVIEWS, lr=lr, precision="fp32") for lr in REVIEW_LRS},
}


def model_name(recipe: str) -> str:
    """The ``RunConfig.model`` value of a recipe's checkpoint."""
    if recipe not in RECIPES:
        raise KeyError(f"no pretraining recipe {recipe!r}; known: {sorted(RECIPES)}")
    return PREFIX + recipe


def fingerprint(cfg: MLMConfig) -> str:
    """Identity of a recipe's checkpoint: the recipe, its corpus, its starting model, the code schema."""
    from ftcore.engine.tasks import load_task
    from ftcore.records.cache import key_id

    start = None if cfg.init == SCRATCH else resolve_model(cfg.init).fingerprint
    key = {"recipe": cfg.to_dict(), "data": [load_task(t).fingerprint for t in cfg.corpus],
           "start": start, "schema": MLM_SCHEMA}
    if cfg.init != SCRATCH:
        # v1 packed the starting tokenizer's own padding (the default model pads every text to 128
        # [PAD]) into the blocks; v2 packs the real tokens only (tokenizers trained here never pad)
        key["packing"] = 2
    return key_id(key)


def models_dir() -> Path:
    env = os.environ.get("FTCORE_MODELS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    from ftcore.records.cache import default_runs_dir
    return default_runs_dir().parent / "cache" / "models"


def checkpoint_dir(recipe: str) -> Path:
    return models_dir() / f"{recipe}-{fingerprint(RECIPES[recipe])}"


def resolve(name: str):
    """``pretrained-here:<recipe>`` → the engine's ModelSource (the folder may not exist yet)."""
    recipe = name[len(PREFIX):]
    if recipe not in RECIPES:
        raise ModelLoadError(f"model {name!r}: no pretraining recipe {recipe!r} (known: {sorted(RECIPES)})")
    cfg = RECIPES[recipe]
    return ModelSource(name, str(checkpoint_dir(recipe)), "here-" + fingerprint(cfg),
                       ensure=lambda: ensure_checkpoint(recipe))


register_model_resolver(PREFIX, resolve)  # RunConfig(model="pretrained-here:<recipe>") reaches resolve()


def ensure_checkpoint(recipe: str) -> Path:
    """The recipe's checkpoint folder, pretraining it first if this machine has none (locked, so two
    processes never train it twice)."""
    from ftcore.records.cache import result_lock

    path = checkpoint_dir(recipe)
    if (path / "pretraining.json").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with result_lock(path):
        if not (path / "pretraining.json").is_file():
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            import sys
            print(f"pretraining {recipe!r} (recipe {RECIPES[recipe]}) into {path}", file=sys.stderr)
            pretrain(RECIPES[recipe], tmp, log=lambda m: print(f"  {recipe}: {m}", file=sys.stderr, flush=True))
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
    return path


def curves(recipe: str) -> tuple[dict, dict]:
    """The recipe's recorded curves as a study's ``(tables, meta)`` (pretraining it if needed)."""
    path = ensure_checkpoint(recipe)
    meta = json.loads((path / "pretraining.json").read_text())
    tables = {name: pd.read_csv(path / f"mlm_{name}.csv") for name in ("steps", "evals")}
    return tables, {**meta, "recipe": recipe}


# --------------------------------------------------------------------------- data
def pack_blocks(ids_per_text: list[list[int]], block: int, bos: int, eos: int) -> list[list[int]]:
    """RoBERTa's FULL-SENTENCES packing: texts joined by ``</s>``, cut into ``<s> … </s>`` blocks of
    ``block`` tokens (the last partial block is dropped)."""
    stream = [t for ids in ids_per_text for t in (*ids, eos)]
    body = block - 2
    return [[bos, *stream[i:i + body], eos] for i in range(0, len(stream) - body + 1, body)]


def _held_out_texts(corpus) -> list[str]:
    from ftcore.engine.tasks import load_task
    return [x for t in corpus for x in load_task(t).splits["validation"]["text"]]


def _blocks(tokenizer, texts, block):
    enc = plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)
    return pack_blocks([e.ids for e in enc], block, tokenizer.cls_token_id, tokenizer.sep_token_id)


# --------------------------------------------------------------------------- model
def build_model(cfg: MLMConfig, tokenizer):
    """A new RoBERTa MLM sized by ``cfg``, or the starting model with an MLM head (see :func:`pretrain`)."""
    import torch
    from transformers import AutoModelForMaskedLM, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(cfg.seed)
    if cfg.init == SCRATCH:
        config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                               num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate,
                               max_position_embeddings=cfg.block + 2 + 2,  # RoBERTa's positions start at pad+1
                               pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                               eos_token_id=tokenizer.eos_token_id, type_vocab_size=1, tie_word_embeddings=True)
        return RobertaForMaskedLM(config)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "cls.predictions.* newly initialised" is the point, see pretrain()
    try:
        model = AutoModelForMaskedLM.from_pretrained(resolve_model(cfg.init).path, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model


def keep_pooler(init: str, model, out: Path) -> None:
    """Give a continued checkpoint the starting model's own pooler. An MLM model has no pooler, so
    MLM leaves it untouched, yet ``save_pretrained`` drops it: without this a classifier on the
    first-token pooler (``pooling="cls"``) of the continued model would start from a random pooler
    while the original starts from its pretrained one, and the comparison would measure that."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    src = AutoModel.from_pretrained(resolve_model(init).path, dtype=torch.float32)
    pooler = getattr(src, "pooler", None)
    if pooler is None:
        return
    path = Path(out) / "model.safetensors"
    weights = load_file(path)
    prefix = model.base_model_prefix  # "bert": the key a sequence classifier of this model reads
    weights.update({f"{prefix}.pooler.{k}": v.detach().clone().contiguous() for k, v in pooler.state_dict().items()})
    save_file(weights, path, metadata={"format": "pt"})


def _mlm_head(model):
    return model.lm_head if hasattr(model, "lm_head") else model.cls


def mlm_step_outputs(model, batch, precision: str = "fp32"):
    """(loss, correct, n_masked) of an MLM batch. The vocabulary projection is computed at the masked
    positions only (15% of tokens): the same loss as ``model(**batch).loss``, about 6× less work in
    the output layer."""
    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    chosen = labels != -100
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        logits = _mlm_head(model)(hidden[chosen]).float()
    target = labels[chosen]
    loss = F.cross_entropy(logits, target)
    return loss, int((logits.argmax(-1) == target).sum()), int(target.numel())


def pretrain(cfg: MLMConfig, out_dir: str | os.PathLike, *, threads: int = 1, log=None) -> dict:
    """Pretrain ``cfg`` and save into ``out_dir``: model + tokenizer (``from_pretrained`` loads them),
    ``mlm_steps.csv``, ``mlm_evals.csv`` and ``pretraining.json`` (what was done, sizes, time).

    Continual pretraining (``init`` = a model without an MLM head, such as the default model, a
    sentence-transformers encoder): ``AutoModelForMaskedLM.from_pretrained`` keeps the encoder and
    builds BERT's head fresh: the output projection is tied to the word embeddings (so it starts as
    the embeddings' own similarity), its bias starts at zero, and the transform (dense + GELU +
    LayerNorm) starts at the usual random init. Runs on ``threads`` CPU threads (one by default: the
    result must not depend on the machine's thread count)."""
    import torch
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling, get_linear_schedule_with_warmup

    from ftcore.engine.precision import warn_bf16_slow
    if cfg.precision not in ("fp32", "bf16"):
        raise ValueError(f"MLMConfig.precision={cfg.precision!r} is not allowed: expected fp32 or bf16")
    if cfg.precision == "bf16":
        warn_bf16_slow("cpu")

    from ftcore.engine.models import count_parameters
    from ftcore.engine.record_builder import hand_loop

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with hand_loop("mlm", threads=threads) as prov:
        t0 = time.perf_counter()
        texts = pretraining_texts(cfg.corpus)
        if cfg.init == SCRATCH:
            tokenizer = train_bpe_tokenizer(texts, vocab_size=cfg.vocab_size, model_max_length=cfg.block)
        else:
            tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.init).path)
        tokenizer_s = time.perf_counter() - t0
        train_blocks = _blocks(tokenizer, texts, cfg.block)
        eval_blocks = _blocks(tokenizer, _held_out_texts(cfg.corpus), cfg.block)[: cfg.eval_blocks]
        model = build_model(cfg, tokenizer)
        head_tied = _mlm_head(model) is not None and (
            model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr())

        collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=cfg.mlm_probability,
                                                   return_tensors="pt")
        gen = torch.Generator().manual_seed(cfg.seed)

        def collate(rows):
            # the collator draws its masks from torch's global generator: seed it from ours
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            return collator([{"input_ids": r} for r in rows])

        eval_batches = [collate(eval_blocks[i:i + cfg.batch_size]) for i in range(0, len(eval_blocks), cfg.batch_size)]

        # param groups: weight decay on matrices only; a fresh MLM head (the transform and the output
        # bias; the output weight is the word embeddings, tied) at ``head_lr`` when given
        head_ids = {id(p) for p in _mlm_head(model).parameters()} - {id(model.get_input_embeddings().weight)}
        groups = {}
        for n, p in model.named_parameters():
            in_head = cfg.head_lr is not None and id(p) in head_ids
            decays = p.ndim >= 2 and "LayerNorm" not in n
            groups.setdefault((in_head, decays), []).append(p)
        opt = torch.optim.AdamW([{"params": ps, "weight_decay": cfg.weight_decay if decays else 0.0,
                                  "lr": cfg.head_lr if in_head else cfg.lr}
                                 for (in_head, decays), ps in sorted(groups.items())], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
        sched = get_linear_schedule_with_warmup(opt, math.ceil(cfg.warmup * cfg.steps), cfg.steps)

        @torch.no_grad()
        def evaluate(step):
            model.eval()
            loss_sum = correct = n = 0
            for b in eval_batches:
                loss, c, k = mlm_step_outputs(model, b, cfg.precision)
                loss_sum += float(loss) * k
                correct += c
                n += k
            model.train()
            return {"step": step, "loss": loss_sum / n, "accuracy": correct / n, "masked": n}

        steps, evals = [], [evaluate(0)]
        order = torch.randperm(len(train_blocks), generator=gen).tolist()
        pos, epoch, tokens = 0, 0, 0
        model.train()
        t_train = time.perf_counter()
        for step in range(1, cfg.steps + 1):
            if pos + cfg.batch_size > len(order):
                order, pos, epoch = torch.randperm(len(train_blocks), generator=gen).tolist(), 0, epoch + 1
            batch = collate([train_blocks[i] for i in order[pos:pos + cfg.batch_size]])
            pos += cfg.batch_size
            loss, correct, n = mlm_step_outputs(model, batch, cfg.precision)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            lr = sched.get_last_lr()[0] if cfg.head_lr is None else min(sched.get_last_lr())  # the encoder's
            opt.step()
            sched.step()
            tokens += int(batch["attention_mask"].sum())
            steps.append({"step": step, "epoch": epoch + pos / len(order), "tokens_seen": tokens,
                          "loss": loss.item(), "accuracy": correct / n, "lr": lr, "grad_norm": grad_norm,
                          "wall_s": time.perf_counter() - t_train})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                evals.append(evaluate(step))
                if log:
                    log(f"step {step}/{cfg.steps} loss {steps[-1]['loss']:.3f} held-out acc {evals[-1]['accuracy']:.3f} "
                        f"({time.perf_counter() - t_train:.0f} s)")
        train_s = time.perf_counter() - t_train
        model.save_pretrained(out)
        if cfg.init != SCRATCH:
            keep_pooler(cfg.init, model, out)
        tokenizer.save_pretrained(out)
        pd.DataFrame(steps).to_csv(out / "mlm_steps.csv", index=False)
        pd.DataFrame(evals).to_csv(out / "mlm_evals.csv", index=False)
        import transformers
        meta = {"recipe_params": cfg.to_dict(), "fingerprint": fingerprint(cfg), "schema": MLM_SCHEMA,
                "corpus": corpus_stats(texts, tokenizer), "vocab_size": len(tokenizer),
                "train_blocks": len(train_blocks), "eval_blocks": len(eval_blocks),
                "parameters": count_parameters(model),
                "parameters_without_embeddings": count_parameters(model) - model.get_input_embeddings().weight.numel(),
                "head_tied_to_embeddings": bool(head_tied), "epochs": steps[-1]["epoch"],
                "tokens_seen": tokens, "train_s": train_s, "tokenizer_s": tokenizer_s, "threads": threads,
                "final": evals[-1], "start": evals[0],
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                "provenance": prov}
        (out / "pretraining.json").write_text(json.dumps(meta, indent=1))
        return meta


@contextlib.contextmanager
def extra_recipes(**recipes: MLMConfig):
    """Register recipes for a block (tests use tiny ones)."""
    RECIPES.update(recipes)
    try:
        yield
    finally:
        for k in recipes:
            RECIPES.pop(k, None)
