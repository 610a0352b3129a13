"""A pairwise (Bradley–Terry) reward model on the default encoder (issue 16 part 2).

Preferences from real data, for the goal "write a positive review of this film": Rotten Tomatoes
gives each review a film (``movie_name``) and a verdict, so every pair is a *fresh* review of a film
(chosen) and a *rotten* review of the same film (rejected). Both texts are about the same film,
so what separates them is the critic's verdict, not the topic. Training pairs use reviews of the
``rt-sentiment`` train split only, held-out pairs the test split only (no review in both).

Model: the default encoder (``ftcore.engine.models.load_model``, all-MiniLM-L6-v2) with a one-output
head r(x). Loss: -log σ(r(chosen) − r(rejected)) (Bradley–Terry: P(chosen ≻ rejected) =
σ(r_c − r_r)), mean over the batch of pairs. Held-out pairwise accuracy = share of held-out pairs with
r(chosen) > r(rejected). The weights are saved to the (uncommitted) model cache,
``$FTCORE_RUNS_DIR`` or ``runs/cache``, ``models/reward-<id>/``: ~90 MB, retrained in minutes.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .study_job import TunableStudy


@dataclass(frozen=True)
class RewardConfig:
    """One reward model. Pair counts: ``None`` is every pair the split makes (one per fresh and rotten
    review of a film, no review twice); ``n_validation_pairs`` (0: none) are what an LR choice and the
    validity gate read, ``n_test_pairs`` (0: none, as in a selection run) what the figure reports."""

    model: str = "all-MiniLM-L6-v2"  # the project's default encoder
    n_train_pairs: int = 2000
    n_test_pairs: int | None = 400
    max_length: int = 48  # tokens per review (as the base fine-tuning runs)
    steps: int = 200  # optimizer steps of ``batch`` pairs: 1.6 passes over the training pairs
    batch: int = 16
    lr: float = 5e-5
    warmup: int = 15
    eval_every: int = 50
    seed: int = 0
    threads: int = 1
    n_validation_pairs: int | None = 0

    def quick(self) -> RewardConfig:
        return replace(self, n_train_pairs=64, n_test_pairs=32, steps=8, batch=8, warmup=1, eval_every=4)

    def replace(self, **changes) -> RewardConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Its settings as the study's parameters; a field added later is left out while it holds its
        default, so the studies stored before it keep their keys."""
        d = asdict(self)
        if d["n_validation_pairs"] == 0:
            del d["n_validation_pairs"]
        return d

    def held_out(self) -> dict[str, int | None]:
        """The held-out splits it is measured on and their pair counts (None: every pair)."""
        return {split: n for split, n in (("validation", self.n_validation_pairs), ("test", self.n_test_pairs))
                if n != 0}


def preference_pairs(split: str, n: int | None, seed: int) -> pd.DataFrame:
    """``n`` pairs (film, chosen, rejected; ``None``: every pair the split makes): a fresh and a rotten
    review of the same film, both from ``split`` of rt-sentiment. Films are visited in a seeded order,
    one pair per film per round, so the pairs spread over as many films as possible; no review is
    used twice."""
    n = np.inf if n is None else n
    from ftcore.engine.tasks import _rotten_tomatoes_frame, load_task

    in_split = set(load_task("rt-sentiment").splits[split]["text"])
    frame = _rotten_tomatoes_frame()
    frame = frame[frame["category"].isin(["fresh", "rotten"]) & frame["text"].isin(in_split)]
    rng = np.random.default_rng(seed)
    pools = {}
    for film, g in frame.groupby("movie_name", sort=True):
        fresh, rotten = g[g["category"] == "fresh"]["text"].tolist(), g[g["category"] == "rotten"]["text"].tolist()
        if fresh and rotten:
            pools[film] = (list(rng.permutation(fresh)), list(rng.permutation(rotten)))
    films, rows = list(rng.permutation(sorted(pools))), []
    while len(rows) < n and films:
        left = []
        for film in films:
            fresh, rotten = pools[film]
            if fresh and rotten and len(rows) < n:
                rows.append({"film": str(film).replace("_", " "), "chosen": fresh.pop(), "rejected": rotten.pop()})
                left.append(film)
        films = left
    return pd.DataFrame(rows)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """-log σ(r_c − r_r), the mean over pairs (``logsigmoid`` keeps it stable for large margins)."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


class RewardModel:
    """The encoder with a scalar head, and its tokenizer: ``rm(texts) -> tensor of rewards``."""

    def __init__(self, model, tokenizer, max_length: int):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    def __call__(self, texts: list[str]) -> torch.Tensor:
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="pt")
        return self.model(**enc).logits[:, 0]

    @torch.no_grad()
    def score(self, texts: list[str], batch: int = 64) -> np.ndarray:
        self.model.eval()
        return np.concatenate([self(texts[i:i + batch]).float().numpy() for i in range(0, len(texts), batch)])


def pairwise_accuracy(rm: RewardModel, pairs: pd.DataFrame) -> float:
    return float(np.mean(rm.score(pairs["chosen"].tolist()) > rm.score(pairs["rejected"].tolist())))


def train_reward_model(cfg: RewardConfig, out_dir: str | Path | None = None) -> tuple[dict, dict]:
    """Train per ``cfg`` (weights saved to ``out_dir`` if given); the study's ``(tables, meta)``:
    ``steps`` (step, loss, margin, lr), ``evals`` (step, split, metric, value: pairwise accuracy on
    held-out pairs), ``scored`` (held-out reviews with their reward, the top and bottom 8)."""
    from transformers import get_linear_schedule_with_warmup

    from ftcore.engine.models import load_model, load_tokenizer
    from ftcore.engine.record_builder import hand_loop

    with hand_loop("reward-model", threads=cfg.threads) as prov:
        train = preference_pairs("train", cfg.n_train_pairs, cfg.seed)
        held = {split: preference_pairs(split, n, 0) for split, n in cfg.held_out().items()}
        rm = RewardModel(load_model(cfg.model, 1, seed=cfg.seed), load_tokenizer(cfg.model), cfg.max_length)
        opt = torch.optim.AdamW(rm.model.parameters(), lr=cfg.lr, weight_decay=0.01)
        sched = get_linear_schedule_with_warmup(opt, cfg.warmup, cfg.steps)
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        order, pos, steps, evals, t0 = rng.permutation(len(train)), 0, [], [], time.perf_counter()

        def measure(step):
            evals.extend({"step": step, "split": split, "metric": "pairwise_accuracy",
                          "value": pairwise_accuracy(rm, pairs)} for split, pairs in held.items())
        measure(0)
        for step in range(1, cfg.steps + 1):
            if pos + cfg.batch > len(order):
                order, pos = rng.permutation(len(train)), 0
            b = train.iloc[order[pos:pos + cfg.batch]]
            pos += cfg.batch
            rm.model.train()
            r = rm(b["chosen"].tolist() + b["rejected"].tolist())  # one forward for both sides
            rc, rr = r[:len(b)], r[len(b):]
            loss = bradley_terry_loss(rc, rr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(rm.model.parameters(), 1.0)
            opt.step()
            sched.step()
            steps.append({"step": step, "loss": loss.item(), "margin": (rc - rr).mean().item(),
                          "train_pair_acc": (rc > rr).float().mean().item(), "lr": sched.get_last_lr()[0],
                          "wall_s": time.perf_counter() - t0})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                measure(step)
        train_s = time.perf_counter() - t0
        # each held-out pair's rewards: the per-example predictions
        pair_rows = pd.concat([pairs.assign(split=split, r_chosen=rm.score(pairs["chosen"].tolist()),
                                            r_rejected=rm.score(pairs["rejected"].tolist()))
                               for split, pairs in held.items()], ignore_index=True)
        pair_rows["correct"] = pair_rows["r_chosen"] > pair_rows["r_rejected"]
        shown = held.get("test", held.get("validation"))  # the reviews ranked below: test's where measured
        texts = pd.unique(pd.concat([shown["chosen"], shown["rejected"]])).tolist()
        chosen = set(shown["chosen"])
        s = rm.score(texts)
        scored = pd.DataFrame({"text": texts, "reward": s, "label": ["fresh" if x in chosen else "rotten" for x in texts]})
        scored = scored.sort_values("reward", ascending=False, kind="stable").reset_index(drop=True)
        scored["rank"] = np.arange(len(scored))
        top_bottom = pd.concat([scored.head(8).assign(end="top"), scored.tail(8).assign(end="bottom")], ignore_index=True)
        if out_dir is not None:
            rm.model.save_pretrained(out_dir)
            rm.tokenizer.save_pretrained(out_dir)
    fresh_share_top = float((scored.head(len(scored) // 10)["label"] == "fresh").mean())
    final = {split: next(e["value"] for e in reversed(evals) if e["split"] == split) for split in held}
    first = {split: next(e["value"] for e in evals if e["split"] == split) for split in held}
    meta = {"config": asdict(cfg), "n_train_pairs": len(train), "train_films": int(train["film"].nunique()),
            **{f"n_{split}_pairs": len(pairs) for split, pairs in held.items()},
            **{f"{split}_films": int(pairs["film"].nunique()) for split, pairs in held.items()},
            # the test split's under the names the earlier studies used
            "pairwise_accuracy": final.get("test", float("nan")), "initial_pairwise_accuracy": first.get("test", float("nan")),
            **({"validation_pairwise_accuracy": final["validation"]} if "validation" in final else {}),
            "train_s": train_s, "fresh_share_top_decile": fresh_share_top,
            "example_pair": shown.iloc[0].to_dict(), "provenance": prov}
    return {"steps": pd.DataFrame(steps), "evals": pd.DataFrame(evals), "scored": top_bottom, "pairs": pair_rows}, meta


def reward_study(cfg: RewardConfig, runs_dir=None):
    """The cache entry of the reward-model study and the folder of its weights (the model cache)."""
    from ftcore.records.cache import default_runs_dir, key_id
    from ftcore.records.studies import stored_study

    params = cfg.to_dict()
    weights = default_runs_dir() / "models" / key_id(params, prefix="reward-")
    return stored_study("reward-model", params, lambda: train_reward_model(cfg, weights), runs_dir), weights


@dataclass(frozen=True)
class RewardRun(TunableStudy):
    """The reward-model study as a job a worker can compute (picklable); ``lr``, ``seed`` and
    ``replace`` read and change its config, as a learning-rate selection does a run's."""

    settings_field = "cfg"
    cfg: RewardConfig

    def params(self) -> dict:
        return self.cfg.to_dict()

    def stored(self, runs_dir=None):
        return reward_study(self.cfg, runs_dir)[0]


def trained_reward_model(cfg: RewardConfig, runs_dir=None) -> tuple[RewardModel, object]:
    """``(RewardModel, study)``: the study fetched or computed, the weights loaded (retrained when
    the study is stored but its weights are not in this machine's model cache)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftcore.records.cache import fetch_or_compute

    stored, weights = reward_study(cfg, runs_dir)
    st = fetch_or_compute(stored)
    if not (weights / "model.safetensors").is_file():
        weights.mkdir(parents=True, exist_ok=True)
        tables, _ = train_reward_model(cfg, weights)  # the same seed: the same model as the study's
    model = AutoModelForSequenceClassification.from_pretrained(weights)
    model.eval()
    return RewardModel(model, AutoTokenizer.from_pretrained(weights), cfg.max_length), st


__all__ = ["RewardConfig", "RewardModel", "RewardRun", "bradley_terry_loss", "pairwise_accuracy", "preference_pairs",
           "reward_study", "train_reward_model", "trained_reward_model"]
