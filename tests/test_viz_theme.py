"""viz.set_theme as a plain call and as a context manager; the small axes functions lab draws with."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import viz  # noqa: E402
from viz.text import STRINGS, t  # noqa: E402


@pytest.fixture(autouse=True)
def _restore():
    yield
    plt.close("all")
    matplotlib.rcdefaults()
    viz.set_theme("zh")
    matplotlib.rcdefaults()


def test_plain_call_sets_the_language_and_fonts():
    viz.set_theme("en")
    assert viz.current_lang() == "en" and matplotlib.rcParams["font.family"][0] == "DejaVu Sans"
    viz.set_theme("zh")
    assert viz.current_lang() == "zh" and matplotlib.rcParams["font.family"][0] != "DejaVu Sans"
    with pytest.raises(ValueError, match="lang="):
        viz.set_theme("fr")


def test_context_manager_restores_language_and_rcparams():
    viz.set_theme("zh", font_scale=1.0)
    before = dict(matplotlib.rcParams)
    with viz.set_theme("en", font_scale=1.5) as theme:
        assert theme.lang == "en" and viz.current_lang() == "en"
        assert t("step") == STRINGS["en"]["step"]
        assert matplotlib.rcParams["font.size"] != before["font.size"]
    assert viz.current_lang() == "zh" and t("step") == STRINGS["zh"]["step"]
    assert {k: v for k, v in matplotlib.rcParams.items() if before[k] != v} == {}


def test_context_manager_restores_after_an_error():
    viz.set_theme("zh")
    with pytest.raises(RuntimeError):
        with viz.set_theme("en"):
            raise RuntimeError
    assert viz.current_lang() == "zh"


def test_labels_are_one_table_per_language():
    assert set(STRINGS["zh"]) == set(STRINGS["en"]) and len(STRINGS["zh"]) > 200
    assert t("freeze-map.title", "en") != t("freeze-map.title", "zh")


def test_live_panels_are_axes_level():
    viz.set_theme("en")
    _, axes = plt.subplots(1, 4)
    steps = pd.DataFrame({"step": [1, 2, 3], "loss": [0.7, 0.6, 0.5]})
    assert viz.plot_training_loss(steps, ax=axes[0]) is axes[0] and len(axes[0].get_lines()) == 1
    grads = pd.DataFrame({"step": [1, 1, 2, 2], "group": ["a", "b"] * 2, "norm": [3.0, 4.0, 6.0, 8.0]})
    assert viz.plot_global_grad_norm(grads, ax=axes[1]) is axes[1]
    assert axes[1].get_lines()[0].get_ydata().tolist() == [5.0, 10.0] and axes[1].get_yscale() == "log"
    assert viz.plot_lr_schedule([1e-4, 2e-4, 1e-4], ax=axes[2]) is axes[2]
    assert axes[2].get_lines()[0].get_xdata().tolist() == [1, 2, 3] and axes[2].get_ylabel() == t("lr")
    evals = pd.DataFrame({"step": [2, 1], "split": "validation", "metric": "accuracy", "value": [0.8, 0.6]})
    assert viz.plot_eval_curve(evals, ax=axes[3]) is axes[3]
    assert axes[3].get_lines()[0].get_ydata().tolist() == [0.6, 0.8] and axes[3].get_ylabel() == t("val_accuracy")


def test_on_screen_the_smallest_text_is_projector_readable():
    """A notebook at 100% zoom: the smallest text allowed in print (7 pt) is at least 12 px, and a
    full-width figure fits a JupyterLab cell unscaled (≤ 800 px), so nothing shrinks it again."""
    import matplotlib as mpl
    import viz
    from viz import geometry
    import matplotlib.pyplot as plt
    with viz.set_theme("zh"):
        fig = viz.on_screen(plt.figure(figsize=geometry.figsize(5)))
        assert 7 * fig.dpi / 72 >= 12
        assert fig.get_figwidth() * fig.dpi <= 800
        assert mpl.rcParams["savefig.dpi"] == 300  # the saved files keep print resolution
        plt.close(fig)


def test_chapter_draw_shows_figures_at_screen_size():
    import chapter
    import viz
    fig = chapter.draw("layer-lr", lang="zh", quick=True)
    assert fig.dpi == viz.SCREEN_DPI
