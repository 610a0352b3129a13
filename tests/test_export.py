"""A model you can keep: `--save-model` folders load with plain transformers; `ftcore predict`."""
import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ftcore import build, train
from ftcore.cli import main
from ftcore.engine.export import ExportError, predict, save_model

TEXTS = ["good great film", "the plot was bad and awful", "the movie", "superb " * 40]


def _trained(cfg):
    trainer = build(cfg)
    rec = train(cfg, trainer=trainer)
    return trainer, rec


def _logits(model, tok, texts):
    enc = tok(texts, truncation=True, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**enc).logits


@pytest.mark.parametrize("kw", [{}, {"pooling": "mean"}, {"peft": "lora", "lora_targets": ("query", "value")}],
                         ids=["cls", "mean", "lora"])
def test_saved_model_reloads_with_plain_transformers(tiny, tmp_path, kw):
    cfg = tiny.replace(epochs=1, **kw)
    trainer, rec = _trained(cfg)
    out = save_model(trainer.model, tmp_path / "m", cfg=cfg, label_names=trainer.data.task.label_names,
                     tokenizer=trainer.data.tokenizer, run_id=rec.run_id, record=rec)
    mean = kw.get("pooling") == "mean"
    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=mean)
    assert tok.model_max_length == cfg.max_length  # the run's truncation
    model = AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=mean)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert model.config.label2id == {"neg": 0, "pos": 1}
    assert model.config.ftcore_run_id == rec.run_id
    info = json.loads((out / "ftcore.json").read_text())
    assert info["run_id"] == rec.run_id and info["pooling"] == kw.get("pooling", "cls")
    assert (out / "run_record" / "meta.json").is_file()
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged
    a = _logits(trainer.model, tok, TEXTS)
    b = _logits(model, tok, TEXTS)
    assert torch.allclose(a, b, atol=1e-5)
    preds = predict(out, TEXTS)
    assert [p["label"] for p in preds] == [model.config.id2label[i] for i in b.argmax(-1).tolist()]
    assert all(abs(sum(p["probs"].values()) - 1) < 1e-5 for p in preds)


def test_mean_pooled_folder_needs_its_code(tiny, tmp_path):
    """Plain from_pretrained without trust_remote_code refuses a mean-pooled model (a stock BERT
    head would read a random first-token pooler) and says which flag loads it."""
    cfg = tiny.replace(max_steps=2, pooling="mean", test_at_end=False)
    trainer, rec = _trained(cfg)
    out = save_model(trainer.model, tmp_path / "m", cfg=cfg, label_names=["neg", "pos"], run_id=rec.run_id)
    with pytest.raises((ValueError, OSError), match="trust_remote_code"):
        AutoModelForSequenceClassification.from_pretrained(out)


def test_prompt_tuning_is_refused(tiny, tmp_path):
    cfg = tiny.replace(max_steps=1, peft="prompt", test_at_end=False)
    trainer, _ = _trained(cfg)
    with pytest.raises(ExportError, match="prompt"):
        save_model(trainer.model, tmp_path / "m", cfg=cfg, label_names=["neg", "pos"])


def test_cli_save_model_and_predict(tiny, tmp_path, capsys):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(tiny.replace(epochs=4).to_dict(), default=list))
    model_dir = tmp_path / "model"
    assert main(["run", "--config", str(cfg_file), "--runs-dir", str(tmp_path / "runs"),
                 "--save-model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "model:" in out and (model_dir / "config.json").is_file()
    lines = tmp_path / "lines.txt"
    lines.write_text("awful bad boring the film\n\nsuperb brilliant the story\n")
    assert main(["predict", str(model_dir), "great excellent movie", "--file", str(lines)]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows] == ["pos", "neg", "pos"]  # the trained model is right on these
    assert [r[3] for r in rows] == ["great excellent movie", "awful bad boring the film", "superb brilliant the story"]
    assert all(0.5 <= float(r[1]) <= 1 for r in rows)
    assert main(["predict", str(model_dir), "fine", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probs"]) == {"neg", "pos"}
    assert main(["predict", str(tmp_path / "nothing"), "x"]) == 2
    assert "not a saved model folder" in capsys.readouterr().err
