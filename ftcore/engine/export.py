"""A fine-tuned model you can keep: saved for plain ``transformers``, and predictions from it.

``ftcore run ... --save-model DIR`` (or :func:`train_and_save`) trains the config and writes::

    DIR/config.json              the model config, with id2label / label2id from the task's label names
                                 and ftcore_run_id / ftcore_task / ftcore_pooling
    DIR/model.safetensors        the weights (LoRA merged into them; BitFit needs nothing)
    DIR/tokenizer*.json, vocab   the tokenizer, its model_max_length = the run's max_length
    DIR/ftcore.json              run id, task, label names, pooling, max_length, the full RunConfig
    DIR/run_record/              the run's RunRecord (``ftcore show DIR/run_record``)

and it loads with nothing but ``transformers``::

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(DIR)
    tokenizer = AutoTokenizer.from_pretrained(DIR)

Mean pooling (``pooling="mean"``) is not something a stock ``BertForSequenceClassification`` can
compute (its head reads the pooler on the first token), so such a model is saved with a 20-line
``modeling_ftcore.py`` beside it (a subclass whose pooler is the masked mean, registered through
``auto_map``) and a model type of its own: load it with
``from_pretrained(DIR, trust_remote_code=True)`` (the tokenizer too: transformers reads the config
first, and without the flag asks whether to run the code, then falls back to the plain tokenizer).
Without the flag the model is refused with an error that names ``trust_remote_code`` (at a terminal,
transformers first asks), instead of being built silently with a random first-token pooler.
Prompt tuning cannot be merged into the weights (its virtual tokens are an extra input), so saving
it is refused.

:func:`predict` / ``ftcore predict DIR "text" ...`` gives each text's label and class probabilities.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch

from ..config import ConfigError, RunConfig
from ..config.peft_kinds import PEFT_METHODS

INFO_FILE = "ftcore.json"
REMOTE_CODE_FILE = "modeling_ftcore.py"
MEAN_MODEL_TYPE = "ftcore_mean_pooled"

_MODELING_TEMPLATE = '''"""Written by ftcore (ftcore/engine/export.py): {base_cls} with ftcore's mean pooling.

The classification head reads the mean of the last hidden states over the real (unpadded) tokens
instead of the pooler on the first token. Load with
AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).
"""
import torch
from torch import nn
from transformers import {base_cls}, {config_cls}


class FtcoreMeanPooledConfig({config_cls}):
    model_type = "{model_type}"


class MeanPooler(nn.Module):
    """Masked mean over tokens; the attention mask is handed over by a pre-hook on the encoder."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, hidden):
        if self.mask is None:
            return hidden.mean(dim=1)
        m = self.mask[:, : hidden.shape[1]].unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)


class FtcoreMeanPooledForSequenceClassification({base_cls}):
    config_class = FtcoreMeanPooledConfig

    def __init__(self, config):
        super().__init__(config)
        encoder = getattr(self, self.base_model_prefix)
        encoder.pooler = pooler = MeanPooler()

        def hand_over_mask(module, args, kwargs):
            mask = kwargs.get("attention_mask")
            if mask is None and len(args) > 1:
                mask = args[1]
            pooler.mask = mask

        encoder.register_forward_pre_hook(hand_over_mask, with_kwargs=True)
'''


def not_mergeable(peft: str) -> str | None:
    """Why a model trained with ``peft`` cannot be saved as plain transformers weights (None: it can)."""
    why = PEFT_METHODS[peft].unmergeable
    if why is None:
        return None
    savable = [n for n, m in PEFT_METHODS.items() if m.unmergeable is None and n != "none"]
    return (f"RunConfig.peft={peft!r} cannot be saved as a plain transformers model: {why}; use "
            f"{', '.join(savable)} or none with --save-model")


class ExportError(ConfigError):
    """The model cannot be saved as a plain transformers folder (e.g. prompt tuning)."""


def _merged(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of ``model`` with PEFT adapters merged into the weights (the model is untouched)."""
    from .adapters import has_adapters
    from .lora import has_lora, merge_lora
    from .prefix import has_prefixes

    if has_adapters(model):
        raise ExportError(not_mergeable("adapter"))
    if has_prefixes(model):
        raise ExportError(not_mergeable("prefix"))
    model = copy.deepcopy(model).cpu().eval()
    if has_lora(model):  # peft="lora_scratch": fold B A into the weights
        model = merge_lora(model)
    if hasattr(model, "peft_config"):
        kinds = {str(getattr(c, "peft_type", "")) for c in model.peft_config.values()}
        if any("PREFIX" in k for k in kinds):
            raise ExportError(not_mergeable("prefix"))
        if not hasattr(model, "merge_and_unload") or any("PROMPT" in k for k in kinds):
            raise ExportError(not_mergeable("prompt"))
        model = model.merge_and_unload()
    return model


def _pooling_of(model: torch.nn.Module) -> str:
    from .pooling import MeanPooler
    base = getattr(model, "base_model", model)
    return "mean" if isinstance(getattr(base, "pooler", None), MeanPooler) else "cls"


def save_model(model: torch.nn.Module, directory: str | os.PathLike, *, cfg: RunConfig,
               label_names, tokenizer=None, run_id: str | None = None, record=None) -> Path:
    """Write ``model`` (trained on ``cfg``) to ``directory`` for ``from_pretrained``; returns the path.

    ``label_names``: class names in label order (the task's); ``run_id``: stored in the config and
    in ``ftcore.json``; ``record``: the run's RunRecord, saved as ``directory/run_record``."""
    from .models import load_tokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model = _merged(model)
    pooling = _pooling_of(model)
    labels = [str(x) for x in label_names]
    config = model.config
    config.id2label = {i: name for i, name in enumerate(labels)}
    config.label2id = {name: i for i, name in enumerate(labels)}
    config.num_labels = len(labels)
    config.ftcore_run_id = run_id
    config.ftcore_task = cfg.task
    config.ftcore_pooling = pooling
    model.save_pretrained(out)
    tok = tokenizer or load_tokenizer(cfg.model)
    tok.save_pretrained(out)
    _set_json(out / "tokenizer_config.json", model_max_length=cfg.max_length)  # the run's truncation
    if pooling == "mean":
        base_cls, config_cls = type(model).__name__, type(config).__name__
        (out / REMOTE_CODE_FILE).write_text(_MODELING_TEMPLATE.format(
            base_cls=base_cls, config_cls=config_cls, model_type=MEAN_MODEL_TYPE), encoding="utf-8")
        _set_json(out / "config.json", model_type=MEAN_MODEL_TYPE,
                  architectures=["FtcoreMeanPooledForSequenceClassification"],
                  auto_map={"AutoConfig": "modeling_ftcore.FtcoreMeanPooledConfig",
                            "AutoModelForSequenceClassification":
                                "modeling_ftcore.FtcoreMeanPooledForSequenceClassification"})
    info = {"run_id": run_id, "task": cfg.task, "label_names": labels, "pooling": pooling,
            "max_length": cfg.max_length, "model": cfg.model, "peft": cfg.peft,
            "trust_remote_code": pooling == "mean", "config": cfg.to_dict()}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    if record is not None:
        record.save(out / "run_record")
    return out


def _set_json(path: Path, **fields) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(fields)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def train_and_save(cfg: RunConfig, directory: str | os.PathLike, *, runs_dir=None):
    """Train ``cfg`` now (weights are not cached, so this always trains), save the model to
    ``directory`` and return ``(record, path)``. The record also goes to the run cache if no valid
    record of this config is stored there yet."""
    from .runs import build, cached, record_path, train

    if refused := not_mergeable(cfg.peft):  # refused before training, not after
        raise ExportError(refused)
    trainer = build(cfg)
    rec = train(cfg, trainer=trainer)
    if cached(cfg, runs_dir) is None:
        rec.save(record_path(cfg, runs_dir))
    path = save_model(trainer.model, directory, cfg=cfg, label_names=trainer.data.task.label_names,
                      tokenizer=trainer.data.tokenizer, run_id=rec.run_id, record=rec)
    return rec, path


# ---------------------------------------------------------------------------- using a saved model
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # what from_pretrained can read
_SAVE_AGAIN = "save it again with `ftcore run ... --save-model DIR`"


def check_saved(directory: str | os.PathLike) -> Path:
    """Refuse, in one line, a folder ``from_pretrained`` would fail on with a long traceback: a
    missing folder, a file, no or unreadable config.json, no weights."""
    path = Path(directory)
    if not path.exists():
        raise ExportError(f"{path} is not a saved model folder (it does not exist); give a folder written "
                          "by `ftcore run ... --save-model DIR`")
    if not path.is_dir():
        raise ExportError(f"{path} is not a saved model folder (it is a file); give a folder written by "
                          "`ftcore run ... --save-model DIR`")
    if not (path / "config.json").is_file():
        raise ExportError(f"{path} is not a saved model folder (no config.json); write one with "
                          "`ftcore run ... --save-model DIR`")
    for name in ("config.json", INFO_FILE):
        try:
            if (path / name).is_file():
                json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExportError(f"{path / name} cannot be read ({type(exc).__name__}): {_SAVE_AGAIN}") from None
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ExportError(f"{path} has no model weights (none of {', '.join(WEIGHT_FILES[::2])}): "
                          f"the save did not finish; {_SAVE_AGAIN}")
    return path


def load_saved(directory: str | os.PathLike):
    """``(model, tokenizer, info)`` of a folder written by :func:`save_model` (or any sequence
    classifier folder: info is then ``{}``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = check_saved(directory)
    info_file = path / INFO_FILE
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
    remote = bool(info.get("trust_remote_code")) or (path / REMOTE_CODE_FILE).is_file()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=remote).eval()
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
    except Exception as exc:  # noqa: BLE001 - damaged files (OSError, SafetensorError...): one line, not 30
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ExportError(f"the model in {path} cannot be loaded ({type(exc).__name__}: {first}): "
                          f"{_SAVE_AGAIN}") from None
    return model, tokenizer, info


def read_texts(file: str | os.PathLike) -> list[str]:
    """The non-empty lines of a UTF-8 text file (``ftcore predict --file``), stripped; one-line
    ExportErrors for a missing file, a folder, a binary or non-UTF-8 file, or no text at all."""
    p, fix = Path(file), "give a UTF-8 text file with one text per line"
    if not p.exists():
        raise ExportError(f"--file {p} does not exist; {fix}")
    if p.is_dir():
        raise ExportError(f"--file {p} is a folder; {fix}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ExportError(f"--file {p} cannot be read ({exc.strerror or exc}); {fix}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExportError(f"--file {p} is UTF-16 text; re-save it as UTF-8 with one text per line")
    if b"\x00" in data:
        raise ExportError(f"--file {p} is a binary file (it contains NUL bytes), not text; {fix}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(f"--file {p} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "re-save it as UTF-8 with one text per line") from None
    lines = [t.strip() for t in text.splitlines() if t.strip()]
    if not lines:
        raise ExportError(f"--file {p} has no text (it is empty or blank); {fix}")
    return lines


@torch.no_grad()
def predict(directory_or_loaded, texts: list[str], *, batch_size: int = 32) -> list[dict]:
    """Label and class probabilities of each text: ``[{"text", "label", "probs": {name: p}}]``."""
    model, tokenizer, info = (load_saved(directory_or_loaded) if isinstance(directory_or_loaded, (str, os.PathLike))
                              else directory_or_loaded)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    max_length = info.get("max_length") or tokenizer.model_max_length
    out = []
    for i in range(0, len(texts), batch_size):
        chunk = list(texts[i:i + batch_size])
        enc = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        probs = torch.softmax(model(**enc).logits.float(), dim=-1)
        for text, p in zip(chunk, probs.tolist()):
            best = max(range(len(p)), key=p.__getitem__)
            out.append({"text": text, "label": names[best], "probs": dict(zip(names, p))})
    return out


def format_predictions(preds: list[dict]) -> str:
    """One line per text: label, its probability, every class's probability, the text."""
    lines = []
    for r in preds:
        probs = "  ".join(f"{k}={v:.3f}" for k, v in r["probs"].items())
        lines.append(f"{r['label']}\t{r['probs'][r['label']]:.3f}\t[{probs}]\t{r['text']}")
    return "\n".join(lines)


__all__ = ["ExportError", "check_saved", "format_predictions", "load_saved", "not_mergeable", "predict",
           "read_texts", "save_model", "train_and_save"]
