"""The Lightning path (ftcore.engine.lightning): same model/data/config, same RunRecord."""
import math

import pytest

pytest.importorskip("lightning")

from ftcore import RunRecord, train  # noqa: E402
from ftcore.engine.lightning import lightning_run_id, train_lightning  # noqa: E402
from ftcore.records.doctor import diagnose  # noqa: E402
from ftcore.records.record import TABLES  # noqa: E402


def test_lightning_run_records_the_same_tables_and_learns(tiny, tmp_path):
    cfg = tiny.replace(epochs=4)
    rec = train_lightning(cfg)
    assert rec.status == "completed"
    assert rec.provenance["trainer"].startswith("lightning")
    assert rec.run_id == lightning_run_id(cfg)
    assert rec.metric("accuracy", "test") > 0.8  # chance is 0.5
    assert 0 < rec.summary["cpu_s"]  # as ftcore's loop records it (report --cost)
    steps = rec.steps
    assert steps["step"].tolist() == list(range(1, rec.summary["total_steps_planned"] + 1))
    assert steps["loss"].notna().all()
    losses = steps["loss"].tolist()
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    # every table of an ftcore run, with rows where an ftcore run has them
    ref = train(cfg)
    for name in TABLES:
        assert list(rec.tables[name].columns) == list(ref.tables[name].columns)
    assert set(rec.lrs["group"]) == set(ref.lrs["group"])
    assert set(rec.grad_norms["group"]) == set(ref.grad_norms["group"])
    assert len(rec.lrs) == len(ref.lrs) and len(rec.grad_norms) == len(ref.grad_norms)
    assert rec.layer_state.equals(ref.layer_state)
    ev, ref_ev = rec.evals, ref.evals
    assert set(zip(ev.step, ev.split, ev.metric)) == set(zip(ref_ev.step, ref_ev.split, ref_ev.metric))
    # same pieces, same batches: the first updates are the same numbers (the LR schedule too)
    assert losses[:3] == pytest.approx(ref.steps["loss"].tolist()[:3], rel=1e-4)
    assert rec.lrs["lr"].tolist() == pytest.approx(ref.lrs["lr"].tolist())
    # it saves, loads and the doctor reads it
    rec.save(tmp_path / "pl")
    back = RunRecord.load(tmp_path / "pl")
    assert back.summary["test_accuracy"] == rec.summary["test_accuracy"]
    text = diagnose(back).to_text("en")
    assert text.startswith(f"diagnosis of run {rec.run_id}")
    assert "still collapsed at the last evaluation" not in text  # it learned


def test_lightning_early_stopping_restores_best(tiny):
    cfg = tiny.replace(epochs=6, eval_every=2, early_stopping_patience=1, lr=3e-2)
    rec = train_lightning(cfg)
    kinds = set(rec.events["kind"])
    if rec.status == "early_stopped":
        assert "early_stop" in kinds
    if "restored_best" in kinds:
        assert rec.summary["restored_step"] == rec.summary["best_step"]
        last_val = rec.evals[(rec.evals.split == "validation") & (rec.evals.metric == "loss")]
        assert last_val["step"].iloc[-1] == rec.summary["steps"]
    assert not math.isnan(rec.metric("accuracy", "test"))


def test_lightning_refuses_what_it_does_not_do(tiny):
    from ftcore import ConfigError
    with pytest.raises(ConfigError, match="gradual"):
        train_lightning(tiny.replace(freeze="gradual"))


def test_cli_lightning_caches_and_saves_a_model(tiny, tmp_path, capsys):
    import json

    from ftcore.cli import main
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(tiny.replace(max_steps=4).to_dict(), default=list))
    args = ["lightning", "--config", str(cfg_file), "--runs-dir", str(tmp_path / "runs")]
    assert main(args + ["--save-model", str(tmp_path / "model")]) == 0
    assert "model:" in capsys.readouterr().out
    rid = lightning_run_id(tiny.replace(max_steps=4))
    assert (tmp_path / "runs" / rid / "meta.json").is_file()
    assert (tmp_path / "model" / "config.json").is_file()
    assert main(args) == 0  # now from the cache
    assert rid in capsys.readouterr().out


def test_lightning_trains_in_training_mode_as_ftcores_loop(tiny):
    """Lightning 2.x does not call .train() at the start of fit and restores each module's mode after
    validation; a from_pretrained model starts in eval mode. The module sets training mode each
    batch (dropout on, frozen layers off), or its runs would train with dropout off."""
    import lightning.pytorch as pl

    from ftcore.engine.lightning import FtcoreLightningModule
    cfg = tiny.replace(epochs=1, eval_splits=("validation",), eval_every=1)  # validation between updates
    module = FtcoreLightningModule.from_config(cfg)
    module.model.eval()  # as from_pretrained returns a pretrained model (the tiny random one starts in train mode)
    seen = []

    class Probe(pl.Callback):
        def on_before_backward(self, trainer, pl_module, loss):
            seen.append(sum(not m.training for m in pl_module.model.modules()))
    train_lightning(cfg, module=module, callbacks=[Probe()])
    assert len(seen) > 1 and set(seen) == {0}
