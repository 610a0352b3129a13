"""Pretraining at small scale (seed 003, issue 15): a BPE tokenizer trained here, a small RoBERTa
pretrained with MLM, and continual (domain-adaptive) MLM on review text before fine-tuning.

Modules: ``tokenizer`` (byte-level BPE, RoBERTa special tokens), ``mlm`` (MLM pretraining recorded
as a study; checkpoints reusable by ``RunConfig(model=<path>)``)."""
