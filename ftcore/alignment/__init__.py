"""Seed 003's last steps, for real at small scale (issues 15 part 2 and 16): a tiny GPT pretrained
on review text (:mod:`.causal_lm`), instruction tuning with the prompt masked out of the loss
(:mod:`.instructions`), a pairwise reward model on the default encoder (:mod:`.reward`) and RL from
that reward with a KL penalty to the starting model (:mod:`.rlhf`).

Each step is a cached study (``ftcore.records.studies``); weights that later steps reuse are saved
next to the records (``<runs_dir>/models/``) so nothing is trained twice."""
