"""RL from the reward model with a KL penalty to the starting model (issue 16 part 3).

Which algorithm and why: RLOO (REINFORCE Leave-One-Out, Ahmadian et al. 2024) written out here in
one readable loop, not trl's PPO. trl is not a dependency of this project (it is not installed in
the environment), and since trl 0.2x its PPO trainer needs a separate value model and reward model
objects built around ``AutoModelForCausalLMWithValueHead``-style wrappers and ``accelerate``; for a
2.6M-parameter GPT on one CPU thread a value network doubles the work and adds a second learner whose
errors a reader must also understand. RLOO needs no value model: each prompt is sampled ``k`` times
and each sample's baseline is the mean reward of the other ``k − 1``. The KL penalty is the same as
PPO-RLHF's: the sequence reward is

    R(y) = r_φ(prompt + y) − β · Σ_t [log π_θ(y_t | ·) − log π_ref(y_t | ·)]

(``r_φ`` the Bradley–Terry reward model, ``π_ref`` the frozen starting model, the sum a one-sample
estimate of KL(π_θ ‖ π_ref) for this sequence), and the loss is −(R − baseline) · log π_θ(y).
One policy-gradient step per batch (on-policy, so no clipping ratio is needed).

Recorded per step (a cached study ``rlhf``): mean reward-model score, mean KL estimate (nats per
sequence), mean sample length (tokens before ``</s>``), the share of repeated tokens (a symptom of
reward hacking), and samples from fixed prompts before and after.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from .causal_lm import GPTConfig
from .reward import RewardConfig
from .study_job import TunableStudy

# Openings of the samples shown before/after (our own words; the policy writes the rest).
SHOW_PROMPTS = ("The film", "This movie", "The story", "The director", "It is", "A")


@dataclass(frozen=True)
class RLConfig:
    kl_coef: float = 0.05  # β
    steps: int = 120
    prompts_per_step: int = 8
    k: int = 4  # samples per prompt (RLOO's group): 32 samples per step
    max_new_tokens: int = 24
    lr: float = 2e-4
    n_prompts: int = 400  # openings (the first two words of training reviews) sampled from
    seed: int = 0
    threads: int = 1
    # after training, the policy and the starting model are measured on held-out openings: those of
    # each split's reviews (``eval_openings`` of them, None: all), ``eval_k`` samples each
    eval_splits: tuple[str, ...] = ()
    eval_openings: int | None = None
    eval_k: int = 2

    def __post_init__(self):
        unknown = [x for x in self.eval_splits if x not in ("validation", "test")]
        if unknown:
            raise ValueError(f"RLConfig.eval_splits={self.eval_splits!r}: measure on 'validation' and/or 'test'")
        if self.eval_k < 1:
            raise ValueError(f"RLConfig.eval_k={self.eval_k}: take at least one sample per held-out opening")

    def quick(self) -> RLConfig:
        return replace(self, steps=4, prompts_per_step=2, k=2, max_new_tokens=8, n_prompts=16)

    def replace(self, **changes) -> RLConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Its settings as a study's parameters; the held-out measurement's fields are left out while
        none is asked for, so the studies stored before them keep their keys."""
        d = asdict(self)
        if not self.eval_splits:
            for k in ("eval_splits", "eval_openings", "eval_k"):
                del d[k]
        return d


def openings(n: int | None, seed: int = 0, split: str = "train") -> list[str]:
    """The first two words of ``n`` rt-sentiment reviews of ``split`` (a seeded sample; ``None``:
    every review of four words or more): prompts that start a review the way critics start them,
    whatever its verdict."""
    from ftcore.engine.tasks import load_task

    texts = load_task("rt-sentiment").splits[split]["text"]
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(len(texts)):
        words = texts[int(i)].split()
        if len(words) >= 4:
            out.append(" ".join(words[:2]))
        if len(out) == n:
            break
    return out


def sequence_logprobs(model, ids: torch.Tensor, prompt_len: torch.Tensor, resp_mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probabilities of the response tokens (zero elsewhere), shape like ``ids[:, 1:]``."""
    attn = (torch.arange(ids.shape[1])[None, :] < (prompt_len[:, None] + resp_mask.sum(1, keepdim=True) + 1)).long()
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
    lp = logits.log_softmax(-1).gather(2, ids[:, 1:, None])[..., 0]
    return lp * resp_mask[:, 1:]


def sample(model, tokenizer, prompts: list[str], cfg: RLConfig, *, generator_seed: int):
    """Sample one continuation per prompt from the policy itself (temperature 1, no top-k: the
    samples follow π_θ, as the policy gradient assumes). Returns ids, prompt lengths, a mask of
    response tokens (through the first ``</s>``) aligned with ``ids`` and the decoded texts."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    enc = [[eos] + tokenizer(p)["input_ids"] for p in prompts]
    width = max(map(len, enc))
    # right-aligned prompts (left padding) so every sequence continues at the same column
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
    attn = (ids != pad).long()
    torch.manual_seed(generator_seed)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=attn, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos)
    resp = out[:, width:]
    # re-pack to right padding: prompt, response, then padding (what sequence_logprobs reads)
    rows, masks, plen, texts, lengths = [], [], [], [], []
    for e, r in zip(enc, resp.tolist()):
        n = r.index(eos) + 1 if eos in r else len(r)
        toks = e + r[:n]
        rows.append(toks)
        masks.append([0] * len(e) + [1] * n)
        plen.append(len(e))
        texts.append(tokenizer.decode(r[:n - 1] if r[n - 1] == eos else r[:n]))
        lengths.append(n - 1 if r[n - 1] == eos else n)
    w = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (w - len(r)) for r in rows])
    mask = torch.tensor([m + [0] * (w - len(m)) for m in masks], dtype=torch.float32)
    return ids, torch.tensor(plen), mask, texts, lengths


def repetition(text_ids: list[int]) -> float:
    """Share of a sample's tokens that repeat an earlier token of the same sample (0: all distinct)."""
    return 1 - len(set(text_ids)) / len(text_ids) if text_ids else 0.0


def rloo_step(policy, ref, tokenizer, reward_fn, prompts: list[str], opt, cfg: RLConfig, *, step_seed: int) -> dict:
    """One RLOO update on ``len(prompts) × k`` samples; returns the step's measurements."""
    group = [p for p in prompts for _ in range(cfg.k)]
    policy.eval()  # no dropout: the log-probabilities are those of the policy that sampled
    ids, plen, mask, texts, lengths = sample(policy, tokenizer, group, cfg, generator_seed=step_seed)
    full = [p + t for p, t in zip(group, texts)]
    with torch.no_grad():
        score = reward_fn(full).float()
        ref_lp = sequence_logprobs(ref, ids, plen, mask)
    lp = sequence_logprobs(policy, ids, plen, mask)
    kl = (lp.detach() - ref_lp).sum(1)  # per sequence, nats
    R = score - cfg.kl_coef * kl
    Rg = R.view(-1, cfg.k)
    baseline = (Rg.sum(1, keepdim=True) - Rg) / (cfg.k - 1)  # leave-one-out mean
    adv = (Rg - baseline).view(-1)
    loss = -(adv * lp.sum(1)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    eos = tokenizer.eos_token_id
    reps = [repetition([t for t, m in zip(r.tolist(), mk.tolist()) if m and t != eos]) for r, mk in zip(ids, mask)]
    return {"reward": float(score.mean()), "kl": float(kl.mean()), "objective": float(R.mean()),
            "length": float(np.mean(lengths)), "repetition": float(np.mean(reps)), "loss": loss.item(),
            "example": full[0]}


@torch.no_grad()
def show(policy, tokenizer, reward_fn, cfg: RLConfig, *, seed: int, when: str) -> list[dict]:
    """Samples from :data:`SHOW_PROMPTS` (two each, fixed seed) with their rewards."""
    policy.eval()
    prompts = [p for p in SHOW_PROMPTS for _ in range(2)]
    ids, plen, mask, texts, lengths = sample(policy, tokenizer, prompts, cfg, generator_seed=10_000 + seed)
    full = [p + t for p, t in zip(prompts, texts)]
    return [{"when": when, "prompt": p, "text": f, "reward": float(r), "length": n}
            for p, f, r, n in zip(prompts, full, reward_fn(full).float().tolist(), lengths)]


def rlhf(policy, tokenizer, reward_fn, cfg: RLConfig, *, on_step=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Optimise ``policy`` in place against ``reward_fn`` with a KL penalty to a frozen copy of
    itself; returns (steps, samples)."""
    import copy

    ref = copy.deepcopy(policy).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    pool = openings(cfg.n_prompts, seed=0)
    rng = np.random.default_rng(cfg.seed)
    samples = show(policy, tokenizer, reward_fn, cfg, seed=cfg.seed, when="before")
    rows, t0 = [], time.perf_counter()
    for step in range(1, cfg.steps + 1):
        prompts = [pool[i] for i in rng.choice(len(pool), cfg.prompts_per_step, replace=False)]
        m = rloo_step(policy, ref, tokenizer, reward_fn, prompts, opt, cfg, step_seed=cfg.seed * 100_000 + step)
        rows.append({"step": step, **m, "wall_s": time.perf_counter() - t0})
        if on_step:
            on_step(rows[-1])
    samples += show(policy, tokenizer, reward_fn, cfg, seed=cfg.seed, when="after")
    return pd.DataFrame(rows), pd.DataFrame(samples)


@torch.no_grad()
def measure_held_out(policy, ref, tokenizer, reward_fn, prompts: list[str], cfg: RLConfig, *, seed: int,
                     batch: int = 64) -> pd.DataFrame:
    """``cfg.eval_k`` samples of ``policy`` per held-out opening, one row each: the opening's number,
    the reward-model score, the KL estimate to ``ref`` (nats per sequence; 0 when ``policy`` is
    ``ref``), the length and the repeated share. The same ``seed`` draws the same random numbers
    for any policy, so the starting model and the trained one are compared sample by sample."""
    policy.eval()
    group = [(i, p) for i, p in enumerate(prompts) for _ in range(cfg.eval_k)]
    rows, eos = [], tokenizer.eos_token_id
    for start in range(0, len(group), batch):
        chunk = group[start:start + batch]
        texts_in = [p for _, p in chunk]
        ids, plen, mask, texts, lengths = sample(policy, tokenizer, texts_in, cfg, generator_seed=seed + start)
        score = reward_fn([p + t for p, t in zip(texts_in, texts)]).float()
        kl = ((sequence_logprobs(policy, ids, plen, mask) - sequence_logprobs(ref, ids, plen, mask)).sum(1)
              if policy is not ref else torch.zeros(len(chunk)))
        for (i, _), r, k, n, row, mk in zip(chunk, score.tolist(), kl.tolist(), lengths, ids, mask):
            reps = repetition([t for t, m in zip(row.tolist(), mk.tolist()) if m and t != eos])
            rows.append({"opening": i, "reward": r, "kl": k, "length": n, "repetition": reps})
    return pd.DataFrame(rows)


def _held_out_evals(policy, start, tokenizer, reward_fn, cfg: RLConfig) -> tuple[list[dict], pd.DataFrame]:
    """The evals rows (step 0: the starting model; step ``cfg.steps``: the trained policy) and the
    per-sample table of each held-out split in ``cfg.eval_splits``."""
    evals, tables = [], []
    for split in cfg.eval_splits:
        prompts = openings(cfg.eval_openings, seed=0, split=split)
        for step, model in ((0, start), (cfg.steps, policy)):
            t = measure_held_out(model, start, tokenizer, reward_fn, prompts, cfg, seed=20_000 + cfg.seed * 1_000_000)
            t = t.assign(split=split, step=step)
            tables.append(t)
            means = t[["reward", "kl", "length", "repetition"]].mean()
            evals += [{"step": step, "split": split, "metric": k, "value": float(v)} for k, v in means.items()]
            evals.append({"step": step, "split": split, "metric": "objective",
                          "value": float(means["reward"] - cfg.kl_coef * means["kl"])})
    return evals, pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def rlhf_study(gpt_cfg: GPTConfig, rm_cfg: RewardConfig, cfg: RLConfig, runs_dir=None) -> tuple[dict, dict]:
    """One RLHF run from the pretrained tiny GPT against the trained reward model; with
    ``cfg.eval_splits``, the starting model and the trained policy then measured on held-out
    openings (tables ``evals`` and ``held_out``)."""
    import copy

    from ftcore.engine.record_builder import hand_loop

    from .causal_lm import pretrained_gpt
    from .reward import trained_reward_model

    policy, tok, gst = pretrained_gpt(gpt_cfg, runs_dir)
    rm, rst = trained_reward_model(rm_cfg, runs_dir)
    start = copy.deepcopy(policy).eval()
    reward_fn = lambda texts: rm(texts).detach()  # noqa: E731
    with hand_loop("rloo", threads=cfg.threads) as prov:
        torch.manual_seed(cfg.seed)
        steps, samples = rlhf(policy, tok, reward_fn, cfg)
        evals, held_out = _held_out_evals(policy, start, tok, reward_fn, cfg)
    first, last = steps.head(10).mean(numeric_only=True), steps.tail(10).mean(numeric_only=True)
    extra = {"evals": pd.DataFrame(evals), "held_out": held_out} if cfg.eval_splits else {}
    meta = {"config": asdict(cfg), "gpt_study": gst.path.name, "reward_study": rst.path.name,
            "reward_start": float(first["reward"]), "reward_end": float(last["reward"]),
            "kl_end": float(last["kl"]), "length_start": float(first["length"]), "length_end": float(last["length"]),
            "repetition_start": float(first["repetition"]), "repetition_end": float(last["repetition"]),
            "train_s": float(steps["wall_s"].iloc[-1]), "provenance": prov}
    return {"steps": steps.drop(columns=["example"]), "examples": steps[["step", "example"]],
            "samples": samples, **extra}, meta


@dataclass(frozen=True)
class RLRun(TunableStudy):
    """One RLHF study as a job a worker can compute (picklable): the tiny GPT, the reward model it
    optimises, the RL settings; ``lr``, ``seed`` and ``replace`` read and change ``rl``."""

    settings_field = "rl"
    gpt: GPTConfig
    reward: RewardConfig
    rl: RLConfig

    def params(self) -> dict:
        return {"gpt": asdict(self.gpt), "reward": self.reward.to_dict(), "rl": self.rl.to_dict()}

    def stored(self, runs_dir=None):
        from ftcore.records.studies import stored_study
        return stored_study("rlhf", self.params(), lambda: rlhf_study(self.gpt, self.reward, self.rl, runs_dir), runs_dir)


__all__ = ["RLConfig", "RLRun", "SHOW_PROMPTS", "measure_held_out", "openings", "repetition", "rlhf", "rlhf_study", "rloo_step", "sample",
           "sequence_logprobs", "show"]
