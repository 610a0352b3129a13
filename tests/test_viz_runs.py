"""RunSet and mean_sd: the long-form frames every figure reads."""
import pandas as pd
import pytest

from ftcore.records.runset import RunSet, mean_sd


def test_runset_finals_table_and_select(figure_inputs):
    runs = figure_inputs("decay")["runs"]
    f = runs.finals("accuracy", "test")
    assert len(f) == len(runs) and {"schedule", "seed", "value", "status", "wall_s"} <= set(f.columns)
    assert f["value"].between(0, 1).all()
    lrs = runs.table("lrs")
    assert set(lrs["schedule"]) == set(runs.values("schedule"))
    one = runs.one(schedule="cosine", seed=0)
    assert one.config["schedule"] == "cosine"
    with pytest.raises(LookupError, match="expected one run"):
        runs.one(schedule="no-such-schedule")
    assert "RunSet(" in repr(runs) and "schedule=" in repr(runs)


def test_mean_sd_keeps_group_order_and_counts():
    df = pd.DataFrame({"k": ["b", "b", "a", "a", "a"], "value": [1.0, 3.0, 2.0, 2.0, 2.0]})
    out = mean_sd(df, "k")
    assert out["k"].tolist() == ["b", "a"]
    assert out["mean"].tolist() == [2.0, 2.0] and out["n"].tolist() == [2, 3]
    assert out.loc[0, "sd"] == pytest.approx(2 ** 0.5) and out.loc[1, "sd"] == 0.0


def test_empty_runset_is_harmless():
    rs = RunSet([])
    assert len(rs) == 0 and rs.table("steps").empty and rs.values("x") == []
