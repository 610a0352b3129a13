"""Per-class metrics (issue 14 part 7): precision, recall, F1, support and the confusion matrix are
recorded on the test split, read back by queries, printed by `ftcore show` and drawn by viz."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ftcore import train  # noqa: E402
from ftcore.engine.trainer import metrics_from_confusion  # noqa: E402
from ftcore.records.queries import confusion_matrix, per_class_table  # noqa: E402


def test_metrics_from_confusion_per_class_by_hand():
    cm = torch.tensor([[8, 2], [1, 9]])  # rows true, columns predicted
    m = metrics_from_confusion(cm, loss_sum=4.0, per_class=True)
    assert m["precision/0"] == 8 / 9 and m["recall/0"] == 8 / 10 and m["support/1"] == 10
    assert np.isclose(m["f1/1"], 2 * (9 / 11) * (9 / 10) / (9 / 11 + 9 / 10))
    assert m["confusion/0/1"] == 2 and m["confusion/1/0"] == 1
    assert np.isclose(m["macro_f1"], (m["f1/0"] + m["f1/1"]) / 2)
    assert "precision/0" not in metrics_from_confusion(cm, loss_sum=4.0)  # only when asked


def test_a_run_records_them_on_test_only_and_show_prints_them(tiny, tmp_path):
    from ftcore.cli import summarize
    rec = train(tiny.replace(eval_splits=("validation",)))
    names = rec.summary["label_names"]
    table = per_class_table(rec.evals, "test", names)
    assert list(table["class"]) == list(names) and table["support"].sum() == rec.summary["eval_examples"]["test"]
    cm = confusion_matrix(rec.evals, "test", names)
    assert int(cm.to_numpy().sum()) == table["support"].sum()
    assert np.isclose(np.trace(cm.to_numpy()) / cm.to_numpy().sum(), rec.metric("accuracy", "test"))
    assert per_class_table(rec.evals, "validation").empty  # validation stays compact
    assert not any("/" in k for k in rec.summary)  # per-class rows live in the evals table only
    text = summarize(rec)
    assert "test per class" in text and "confusion" in text and str(names[0])[:14] in text


def test_viz_draws_the_confusion_matrix_and_says_when_a_record_has_none(tiny):
    import viz
    rec = train(tiny)
    with viz.set_theme("en"):
        ax = viz.plot_confusion_matrix(rec)
        texts = [t.get_text() for t in ax.texts]
        assert sum(int(x) for x in texts if x.isdigit()) == rec.summary["eval_examples"]["test"]
        plt.close("all")
        old = rec.__class__(rec.run_id, rec.config, rec.provenance, rec.status, rec.summary,
                            {**rec.tables, "evals": rec.evals[~rec.evals["metric"].str.contains("/")]})
        ax = viz.plot_confusion_matrix(old)
        assert "no per-class metrics" in ax.texts[0].get_text()
        plt.close("all")
