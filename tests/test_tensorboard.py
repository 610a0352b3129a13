"""`ftcore tensorboard`: a record's scalars and events, read back from the event files."""
import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from ftcore import train  # noqa: E402
from ftcore.cli import main  # noqa: E402


def _read(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_writes_every_scalar_and_event(tiny, tmp_path, capsys):
    rec = train(tiny.replace(epochs=1, eval_every=5, early_stopping_patience=50))
    rec.save(tmp_path / "runs" / "tiny-run")
    assert main(["tensorboard", str(tmp_path / "runs" / "tiny-run"), "--logdir", str(tmp_path / "tb")]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    acc = _read(tmp_path / "tb" / "tiny-run")
    tags = set(acc.Tags()["scalars"])
    layers = set(rec.lrs["layer"])
    assert {"train/loss", "train/epoch"} <= tags
    assert {f"lr/{g}" for g in layers} <= tags
    assert {f"grad_norm/{g}" for g in rec.grad_norms["group"]} <= tags
    for split in ("validation", "test"):
        for metric in ("loss", "accuracy", "macro_f1", "max_class_frac", "majority_frac"):
            assert f"{split}/{metric}" in tags
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == rec.steps["step"].tolist()
    assert [e.value for e in loss] == pytest.approx(rec.steps["loss"].tolist(), rel=1e-6)
    head = rec.lrs[rec.lrs.layer == "head"].drop_duplicates("step")
    assert [e.value for e in acc.Scalars("lr/head")] == pytest.approx(head["lr"].tolist(), rel=1e-6)
    norms = rec.grad_norms[rec.grad_norms.group == "layer.0"]
    assert [e.value for e in acc.Scalars("grad_norm/layer.0")] == pytest.approx(norms["norm"].tolist(), rel=1e-6)
    test_acc = acc.Scalars("test/accuracy")
    assert test_acc[-1].value == pytest.approx(rec.metric("accuracy", "test"))
    val = rec.evals[(rec.evals.split == "validation") & (rec.evals.metric == "accuracy")]
    assert [e.step for e in acc.Scalars("validation/accuracy")] == val["step"].tolist()
    # events and the run's config as text
    text_tags = set(acc.Tags()["tensors"])
    assert {"events/text_summary", "run/text_summary"} <= text_tags or {"events", "run"} <= text_tags
    events_tag = "events/text_summary" if "events/text_summary" in text_tags else "events"
    written = [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(events_tag)]
    for kind in rec.events["kind"]:
        assert any(kind in t for t in written)


def test_tensorboard_several_runs_and_a_missing_one(tiny, tmp_path, capsys):
    rec = train(tiny.replace(max_steps=3, test_at_end=False))
    for name in ("a", "b"):
        rec.save(tmp_path / name)
    assert main(["tensorboard", str(tmp_path / "a"), str(tmp_path / "b"), "--logdir", str(tmp_path / "tb")]) == 0
    assert {p.name for p in (tmp_path / "tb").iterdir()} == {"a", "b"}
    assert main(["tensorboard", str(tmp_path / "nope"), "--logdir", str(tmp_path / "tb")]) == 2
    assert "does not exist" in capsys.readouterr().err
