"""Instruction tuning of the tiny GPT (issue 16 part 1): the labelled tasks turned into
instruction / answer pairs, the prompt masked out of the loss, answer accuracy measured.

Format of one example (token ids; the model reads it left to right)::

    </s> {instruction}\\nText: {first text_tokens tokens of the text}\\nAnswer: {answer}</s>
    └──────────────────────────── prompt ─────────────────────────────────┘ └─ answer ─┘

With the prompt mask, the labels are -100 on every prompt token (no loss there: the model is not
taught to write reviews or instructions, only to answer them); without it, every token is a target
(the loss also asks the model to reproduce the instruction and the text, and the answer's few
tokens are a small share of it).

Each task has four phrasings of its instruction (our own wording); three are used in training and
one is held out, to measure whether the model follows an instruction it never saw. Evaluation on the
test split's texts (never seen by pretraining or tuning): ``test`` = held-out texts with the
training phrasings, ``phrasing`` = the same texts with the held-out phrasing. With
``eval_splits=("validation", ...)`` the validation texts are read the same way (``validation``,
``validation_phrasing``): what a choice of LR and the validity gate read, never test.

Answer accuracy is the share of greedy answers (up to ``answer_tokens`` tokens, stopped at ``</s>``
or a new line) equal to the gold answer word; ``choice_accuracy`` compares the log-likelihood of each
allowed answer instead (it scores the un-tuned model fairly, which never says "Answer: positive").
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from .study_job import TunableStudy

# task -> the labelled task, answer word per label, instruction phrasings (the last one held out)
INSTRUCTION_TASKS: dict[str, dict] = {
    "sentiment": {
        "task": "rt-sentiment",
        "answers": {"rotten": "negative", "fresh": "positive"},
        "phrasings": ("Is this review positive or negative?",
                      "Does the critic like the film? Say positive or negative.",
                      "Classify the sentiment of this review.",
                      "Tell me whether the reviewer's opinion is positive or negative."),
    },
    "subjectivity": {
        "task": "rt-subjectivity",
        "answers": {"objective": "plot", "subjective": "opinion"},
        "phrasings": ("Is this sentence an opinion or a plot summary?",
                      "Does this text describe the plot or give an opinion?",
                      "Opinion or plot?",
                      "Decide if the sentence expresses an opinion or summarises the plot."),
    },
    "topic": {
        "task": "bbc-topic",
        "answers": {"business": "business", "entertainment": "entertainment", "politics": "politics",
                    "sports": "sport", "tech": "tech"},
        "phrasings": ("What is this news article about?",
                      "Which section of the newspaper is this story from?",
                      "Give the topic of this article.",
                      "Name the subject area of this news story."),
    },
}
HELD_OUT_PHRASING = -1  # index of the phrasing never used in training


@dataclass(frozen=True)
class TuneConfig:
    """One instruction-tuning run. ``mask_prompt``: labels -100 on the prompt. ``steps`` are
    optimizer steps of ``batch`` examples; ``n_train`` and ``n_eval`` are examples per task
    (``n_eval=None``: every text of each evaluated split). ``eval_splits``: the data splits whose
    texts are evaluated, each under a training phrasing and under the held-out one."""

    mask_prompt: bool = True
    n_train: int = 800  # per task, stratified from its train split (bbc-topic has 1,487, rt-subjectivity 1,515)
    n_eval: int | None = 100  # per task, stratified from each evaluated split (the same for every run)
    text_tokens: int = 48  # the text is cut to its first 48 tokens
    steps: int = 300  # 4,800 examples: 2 passes over the 2,400 training examples
    batch: int = 16
    lr: float = 5e-4
    warmup: int = 20  # linear warmup, then linear decay to 0
    answer_tokens: int = 4  # greedy decoding budget for the answer
    seed: int = 0
    threads: int = 1
    eval_splits: tuple[str, ...] = ("test",)

    def __post_init__(self):
        unknown = [x for x in self.eval_splits if x not in EVAL_SPLITS]
        if unknown or not self.eval_splits:
            raise ValueError(f"TuneConfig.eval_splits={self.eval_splits!r}: evaluate one or more of {EVAL_SPLITS}")
        if self.n_eval is not None and self.n_eval < 1:
            raise ValueError(f"TuneConfig.n_eval={self.n_eval}: give a positive count per task, or None for whole splits")

    def quick(self) -> TuneConfig:
        return replace(self, n_train=24, n_eval=12, steps=12, batch=8, warmup=2)

    def replace(self, **changes) -> TuneConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Its settings as a study's parameters. A field added later is left out while it holds its
        default, so the studies stored before it keep their keys."""
        d = asdict(self)
        if d["eval_splits"] == ("test",):
            del d["eval_splits"]
        return d


EVAL_SPLITS = ("validation", "test")


def conditions(split: str) -> tuple[str, str]:
    """The two evaluation conditions of a data split's texts: a training phrasing, the held-out one
    (the test split's keep their first names, ``test`` and ``phrasing``)."""
    return (split, "phrasing") if split == "test" else (split, f"{split}_phrasing")


def _task(name: str):
    from ftcore.engine.tasks import load_task
    return load_task(INSTRUCTION_TASKS[name]["task"])


def encode(tokenizer, instruction: str, text: str, answer: str | None, *, text_tokens: int,
           mask_prompt: bool = True) -> dict:
    """``input_ids`` and ``labels`` of one example (``answer=None``: the prompt only, for generation)."""
    eos = tokenizer.eos_token_id
    head = tokenizer(f"{instruction}\nText:")["input_ids"]
    body = tokenizer(" " + " ".join(text.split()))["input_ids"][:text_tokens]
    tail = tokenizer("\nAnswer:")["input_ids"]
    prompt = [eos] + head + body + tail
    if answer is None:
        return {"input_ids": prompt, "prompt_len": len(prompt)}
    ans = tokenizer(" " + answer)["input_ids"] + [eos]
    ids = prompt + ans
    labels = ([-100] * len(prompt) + ans) if mask_prompt else list(ids)
    return {"input_ids": ids, "labels": labels, "prompt_len": len(prompt)}


def mask_table(tokenizer, *, text_tokens: int = 12) -> pd.DataFrame:
    """The first training example's tokens with its labels with and without the prompt mask (what
    the loss sees): one row per position. Labels are what the model must predict *after* reading
    the token at that position's left (the model shifts them by one)."""
    spec = INSTRUCTION_TASKS["sentiment"]
    task = _task("sentiment")
    text, label = task.splits["train"]["text"][0], task.label_names[task.splits["train"]["label"][0]]
    kw = dict(text_tokens=text_tokens)
    on = encode(tokenizer, spec["phrasings"][0], text, spec["answers"][label], mask_prompt=True, **kw)
    off = encode(tokenizer, spec["phrasings"][0], text, spec["answers"][label], mask_prompt=False, **kw)
    toks = [tokenizer.decode([i], clean_up_tokenization_spaces=False) for i in on["input_ids"]]  # " ne", "\n"
    return pd.DataFrame({"position": range(len(toks)), "token": toks,
                         "input_id": on["input_ids"], "label_masked": on["labels"], "label_unmasked": off["labels"],
                         "in_prompt": [i < on["prompt_len"] for i in range(len(toks))]})


def training_examples(cfg: TuneConfig) -> list[dict]:
    """(instruction, text, answer) per training example: ``n_train`` per task (stratified, seeded),
    each with one of the task's training phrasings drawn at random."""
    from ftcore.engine.tasks import stratified_subsample

    rng = np.random.default_rng(cfg.seed)
    out = []
    for name, spec in INSTRUCTION_TASKS.items():
        task = _task(name)
        train = task.splits["train"]
        idx = stratified_subsample(train["label"], cfg.n_train, cfg.seed)
        phr = spec["phrasings"][:HELD_OUT_PHRASING]
        for i in idx:
            label = task.label_names[train["label"][int(i)]]
            out.append({"task": name, "instruction": phr[rng.integers(len(phr))], "text": train["text"][int(i)],
                        "answer": spec["answers"][label]})
    return out


def eval_examples(cfg: TuneConfig) -> list[dict]:
    """The fixed evaluation prompts: per evaluated split and task ``n_eval`` texts (stratified,
    seed 0; ``None``: all of them, in order), each under a training phrasing (round robin; condition
    ``test``/``validation``) and under the held-out one (``phrasing``/``validation_phrasing``).
    ``index`` is the text's row in its split (per-example predictions can be paired across runs)."""
    from ftcore.engine.tasks import stratified_subsample

    out = []
    for data_split in cfg.eval_splits:
        seen_cond, held_cond = conditions(data_split)
        for name, spec in INSTRUCTION_TASKS.items():
            task = _task(name)
            texts = task.splits[data_split]
            idx = (range(len(texts["label"])) if cfg.n_eval is None
                   else stratified_subsample(texts["label"], cfg.n_eval, 0))
            seen = spec["phrasings"][:HELD_OUT_PHRASING]
            for k, i in enumerate(idx):
                label = task.label_names[texts["label"][int(i)]]
                for split, instr in ((seen_cond, seen[k % len(seen)]), (held_cond, spec["phrasings"][HELD_OUT_PHRASING])):
                    out.append({"task": name, "split": split, "index": int(i), "instruction": instr,
                                "text": texts["text"][int(i)], "answer": spec["answers"][label]})
    return out


@torch.no_grad()
def answer(model, tokenizer, examples: list[dict], cfg: TuneConfig) -> pd.DataFrame:
    """Each example's greedy answer and its choice among the task's allowed answers (by summed
    log-likelihood of the answer's tokens and ``</s>``). One row per example."""
    model.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    rows = []
    for start in range(0, len(examples), 32):
        chunk = examples[start:start + 32]
        prompts = [encode(tokenizer, e["instruction"], e["text"], None, text_tokens=cfg.text_tokens)["input_ids"]
                   for e in chunk]
        width = max(map(len, prompts))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # left padding for generation
        mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
        gen = model.generate(ids, attention_mask=mask, max_new_tokens=cfg.answer_tokens, do_sample=False,
                             pad_token_id=pad, eos_token_id=eos)[:, width:]
        choices = [sorted(set(INSTRUCTION_TASKS[e["task"]]["answers"].values())) for e in chunk]
        scores = _answer_logprobs(model, tokenizer, [(p, c) for p, cs in zip(prompts, choices) for c in cs])
        for e, g, cs in zip(chunk, gen.tolist(), choices):
            g = g[: g.index(eos)] if eos in g else g
            said = tokenizer.decode(g).split("\n")[0].strip()
            mine, scores = scores[:len(cs)], scores[len(cs):]
            choice = cs[int(np.argmax(mine))]
            rows.append({**{k: e[k] for k in ("task", "split", "answer")}, **({"index": e["index"]} if "index" in e else {}),
                         "said": said, "correct": said == e["answer"], "choice": choice,
                         "choice_correct": choice == e["answer"]})
    return pd.DataFrame(rows)


def _answer_logprobs(model, tokenizer, pairs: list[tuple[list[int], str]]) -> list[float]:
    """The summed log-likelihood of each answer word (and ``</s>``) after its prompt, for
    (prompt ids, answer word) pairs: one forward pass over them all, right-padded, so each sequence
    keeps the positions it has alone."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    seqs = [(p, tokenizer(" " + word)["input_ids"] + [eos]) for p, word in pairs]
    width = max(len(p) + len(a) for p, a in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (p, a) in enumerate(seqs):
        ids[r, :len(p) + len(a)], mask[r, :len(p) + len(a)] = torch.tensor(p + a), 1
    logp = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
    return [float(logp[r, len(p) - 1:len(p) + len(a) - 1].gather(1, torch.tensor(a)[:, None]).sum())
            for r, (p, a) in enumerate(seqs)]


def accuracy_rows(answers: pd.DataFrame) -> pd.DataFrame:
    """Tidy metrics per (task, split) and pooled (task ``all``: the mean over tasks): accuracy
    (greedy answer), choice_accuracy, majority_frac (largest gold answer's share), max_class_frac
    (largest share of one answer among the greedy answers)."""
    rows = []
    for (task, split), g in answers.groupby(["task", "split"], sort=False):
        vals = {"accuracy": g["correct"].mean(), "choice_accuracy": g["choice_correct"].mean(),
                "majority_frac": g["answer"].value_counts(normalize=True).iloc[0],
                "max_class_frac": g["said"].value_counts(normalize=True).iloc[0],
                "valid_answer_frac": g["said"].isin(set(g["answer"])).mean()}
        rows += [{"task": task, "split": split, "metric": k, "value": float(v)} for k, v in vals.items()]
    df = pd.DataFrame(rows)
    pooled = df.groupby(["split", "metric"], sort=False)["value"].mean().reset_index().assign(task="all")
    return pd.concat([df, pooled[df.columns]], ignore_index=True)


def collate(batch: list[dict], pad: int) -> dict:
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(b["input_ids"]), torch.tensor(b["labels"]), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def tune(model, tokenizer, cfg: TuneConfig, *, on_step=None) -> pd.DataFrame:
    """Instruction-tune ``model`` in place; returns the steps table (step, loss, answer_loss, lr).
    ``answer_loss`` is the loss on the answer tokens alone, comparable between mask on and off."""
    from transformers import get_linear_schedule_with_warmup

    examples = [encode(tokenizer, e["instruction"], e["text"], e["answer"], text_tokens=cfg.text_tokens,
                       mask_prompt=cfg.mask_prompt) for e in training_examples(cfg)]
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, cfg.warmup, cfg.steps)
    order, pos, rows, t0 = rng.permutation(len(examples)), 0, [], time.perf_counter()
    model.train()
    for step in range(1, cfg.steps + 1):
        if pos + cfg.batch > len(order):
            order, pos = rng.permutation(len(examples)), 0
        batch = [examples[i] for i in order[pos:pos + cfg.batch]]
        pos += cfg.batch
        enc = collate(batch, tokenizer.pad_token_id)
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=enc["labels"])
        with torch.no_grad():  # the answer tokens' loss, whatever the labels
            ans = torch.full_like(enc["labels"], -100)
            for r, b in enumerate(batch):
                ans[r, b["prompt_len"]:len(b["input_ids"])] = enc["input_ids"][r, b["prompt_len"]:len(b["input_ids"])]
            lp = out.logits[:, :-1].log_softmax(-1)
            tgt = ans[:, 1:]
            ok = tgt != -100
            answer_loss = float(-(lp.gather(2, tgt.clamp(min=0)[..., None])[..., 0] * ok).sum() / ok.sum())
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        rows.append({"step": step, "loss": out.loss.item(), "answer_loss": answer_loss,
                     "lr": sched.get_last_lr()[0], "wall_s": time.perf_counter() - t0})
        if on_step:
            on_step(rows[-1])
    model.eval()
    return pd.DataFrame(rows)


def instruction_study(gpt_cfg, cfg: TuneConfig | None, runs_dir=None, *, tuned: bool | None = None) -> tuple[dict, dict]:
    """One arm of the figure: the pretrained tiny GPT or that model tuned per ``cfg``, evaluated on
    the fixed prompts (``cfg``'s ``eval_splits`` and ``n_eval``). ``tuned`` (default: whether a
    ``cfg`` is given) says whether to train; ``cfg=None`` evaluates the un-tuned model with
    ``TuneConfig()``'s prompts. Tables: ``evals`` (task, split, metric, value), ``answers`` (one row
    per prompt: the per-example predictions), ``steps`` (training), ``mask`` (the masking table)."""
    from ftcore.engine.record_builder import hand_loop

    from .causal_lm import pretrained_gpt

    tuned = cfg is not None if tuned is None else tuned
    model, tok, st = pretrained_gpt(gpt_cfg, runs_dir)
    tcfg = cfg or TuneConfig()
    with hand_loop("instruction-tuning", threads=tcfg.threads) as prov:
        steps = pd.DataFrame({c: pd.Series(dtype="float64") for c in ("step", "loss", "answer_loss", "lr", "wall_s")})
        t0 = time.perf_counter()
        if tuned:
            steps = tune(model, tok, tcfg)
        train_s = time.perf_counter() - t0
        ans = answer(model, tok, eval_examples(tcfg), tcfg)
        eval_s = time.perf_counter() - t0 - train_s
    evals = accuracy_rows(ans)
    meta = {"tuned": tuned, "tune_config": asdict(tcfg) if tuned else None, "gpt_study": st.path.name,
            "train_s": train_s, "eval_s": eval_s, "steps": tcfg.steps if tuned else 0,
            "n_train_examples": len(INSTRUCTION_TASKS) * tcfg.n_train if tuned else 0,
            "eval_prompts": {k: int(v) for k, v in ans["split"].value_counts(sort=False).items()},
            "phrasings": {k: list(v["phrasings"]) for k, v in INSTRUCTION_TASKS.items()},
            "held_out_phrasing": {k: v["phrasings"][HELD_OUT_PHRASING] for k, v in INSTRUCTION_TASKS.items()},
            "provenance": prov}
    return {"evals": evals, "answers": ans, "steps": steps, "mask": mask_table(tok)}, meta


@dataclass(frozen=True)
class InstructionRun(TunableStudy):
    """One instruction-tuning study as a job a worker can compute (picklable): the tiny GPT, the
    tuning settings, and whether to tune (``tuned=False``: the pretrained model evaluated on
    ``tune``'s prompts). ``lr``, ``seed`` and ``replace`` read and change ``tune``, so a
    learning-rate selection treats it as it treats a run's config."""

    settings_field = "tune"
    gpt: Any
    tune: TuneConfig
    tuned: bool = True

    def params(self) -> dict:
        """The study's parameters (its cache key): the GPT's, the tuning's, whether tuned."""
        return {"gpt": asdict(self.gpt), "tune": self.tune.to_dict(), "tuned": self.tuned}

    def stored(self, runs_dir=None):
        """Its cache entry (``ftcore.records.cache.Stored``) in ``runs_dir``."""
        from ftcore.records.studies import stored_study
        return stored_study("instruction-tuning", self.params(),
                            lambda: instruction_study(self.gpt, self.tune, runs_dir, tuned=self.tuned), runs_dir)


__all__ = ["EVAL_SPLITS", "HELD_OUT_PHRASING", "INSTRUCTION_TASKS", "InstructionRun", "TuneConfig", "conditions", "accuracy_rows", "answer", "collate", "encode",
           "eval_examples", "instruction_study", "mask_table", "training_examples", "tune"]
