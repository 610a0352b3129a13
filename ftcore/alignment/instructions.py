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
training phrasings, ``phrasing`` = the same texts with the held-out phrasing.

Answer accuracy is the share of greedy answers (up to ``answer_tokens`` tokens, stopped at ``</s>``
or a new line) equal to the gold answer word; ``choice_accuracy`` compares the log-likelihood of each
allowed answer instead (it scores the un-tuned model fairly, which never says "Answer: positive").
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

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
    optimizer steps of ``batch`` examples; ``n_train`` and ``n_eval`` are examples per task."""

    mask_prompt: bool = True
    n_train: int = 800  # per task, stratified from its train split (bbc-topic has 1,487, rt-subjectivity 1,515)
    n_eval: int = 100  # per task, stratified from its test split (the same for every run)
    text_tokens: int = 48  # the text is cut to its first 48 tokens
    steps: int = 300  # 4,800 examples: 2 passes over the 2,400 training examples
    batch: int = 16
    lr: float = 5e-4
    warmup: int = 20  # linear warmup, then linear decay to 0
    answer_tokens: int = 4  # greedy decoding budget for the answer
    seed: int = 0
    threads: int = 1

    def quick(self) -> TuneConfig:
        return replace(self, n_train=24, n_eval=12, steps=12, batch=8, warmup=2)


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
    """The fixed evaluation prompts: ``n_eval`` test texts per task (stratified, seed 0), each under
    a training phrasing (round robin; condition ``test``) and under the held-out one (``phrasing``)."""
    from ftcore.engine.tasks import stratified_subsample

    out = []
    for name, spec in INSTRUCTION_TASKS.items():
        task = _task(name)
        test = task.splits["test"]
        idx = stratified_subsample(test["label"], cfg.n_eval, 0)
        seen = spec["phrasings"][:HELD_OUT_PHRASING]
        for k, i in enumerate(idx):
            label = task.label_names[test["label"][int(i)]]
            for split, instr in (("test", seen[k % len(seen)]), ("phrasing", spec["phrasings"][HELD_OUT_PHRASING])):
                out.append({"task": name, "split": split, "instruction": instr, "text": test["text"][int(i)],
                            "answer": spec["answers"][label]})
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
        for e, p, g in zip(chunk, prompts, gen.tolist()):
            g = g[: g.index(eos)] if eos in g else g
            said = tokenizer.decode(g).split("\n")[0].strip()
            choices = sorted(set(INSTRUCTION_TASKS[e["task"]]["answers"].values()))
            scores = [_answer_logprob(model, tokenizer, p, c) for c in choices]
            rows.append({**{k: e[k] for k in ("task", "split", "answer")}, "said": said,
                         "correct": said == e["answer"], "choice": choices[int(np.argmax(scores))],
                         "choice_correct": choices[int(np.argmax(scores))] == e["answer"]})
    return pd.DataFrame(rows)


def _answer_logprob(model, tokenizer, prompt: list[int], answer_word: str) -> float:
    ans = tokenizer(" " + answer_word)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt + ans])
    logp = model(input_ids=ids).logits[0, len(prompt) - 1:-1].log_softmax(-1)
    return float(logp.gather(1, torch.tensor(ans)[:, None]).sum())


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


def instruction_study(gpt_cfg, cfg: TuneConfig | None, runs_dir=None) -> tuple[dict, dict]:
    """One arm of the figure: the pretrained tiny GPT (``cfg=None``: un-tuned) or that model tuned
    per ``cfg``, evaluated on the fixed prompts. Tables: ``evals`` (task, split, metric, value),
    ``answers`` (one row per prompt), ``steps`` (training), ``mask`` (the masking table)."""
    from ftcore.engine.record_builder import hand_loop

    from .causal_lm import pretrained_gpt

    model, tok, st = pretrained_gpt(gpt_cfg, runs_dir)
    tcfg = cfg or TuneConfig()
    with hand_loop("instruction-tuning", threads=tcfg.threads) as prov:
        steps = pd.DataFrame({c: pd.Series(dtype="float64") for c in ("step", "loss", "answer_loss", "lr", "wall_s")})
        t0 = time.perf_counter()
        if cfg is not None:
            steps = tune(model, tok, cfg)
        train_s = time.perf_counter() - t0
        ans = answer(model, tok, eval_examples(tcfg), tcfg)
    evals = accuracy_rows(ans)
    meta = {"tuned": cfg is not None, "tune_config": asdict(cfg) if cfg else None, "gpt_study": st.path.name,
            "train_s": train_s, "n_train_examples": len(INSTRUCTION_TASKS) * tcfg.n_train if cfg else 0,
            "phrasings": {k: list(v["phrasings"]) for k, v in INSTRUCTION_TASKS.items()},
            "held_out_phrasing": {k: v["phrasings"][HELD_OUT_PHRASING] for k, v in INSTRUCTION_TASKS.items()},
            "provenance": prov}
    return {"evals": evals, "answers": ans, "steps": steps, "mask": mask_table(tok)}, meta


__all__ = ["HELD_OUT_PHRASING", "INSTRUCTION_TASKS", "TuneConfig", "accuracy_rows", "answer", "collate", "encode",
           "eval_examples", "instruction_study", "mask_table", "training_examples", "tune"]
