"""What notebook 12 (量化) calls: which layers int8 quantization touches in the real model, the
measured table from the stored studies, and a button that fine-tunes and quantizes a live run.

Everything measured comes from :mod:`ftcore.analysis.quantization`; nothing here trains unless the
reader clicks. Texts follow ``viz.set_theme(LANG)``."""
from __future__ import annotations

import html
import re

import ipywidgets as W
import pandas as pd

from viz.theme import current_lang

from .env import QUICK, THREADS, live_config
from .strings import tr


def _t(key: str, **kw) -> str:
    """This notebook's text ``key`` (lab/texts: ``quantization.<key>``) in the theme's language."""
    return tr(f"quantization.{key}", **kw)


def quantized_layers(model: str | None = None) -> pd.DataFrame:
    """The default model (untrained head, mean pooling) by kind of layer: how many, their parameters,
    and whether dynamic int8 quantization stores them in int8 or leaves them in fp32."""
    import torch.nn as nn

    from ftcore import RunConfig
    from ftcore.engine.runs import init_model

    cfg = RunConfig(pooling="mean", **({"model": model} if model else {}))
    m = init_model(cfg, 2)
    rows = {}
    for name, mod in m.named_modules():
        if type(mod) is nn.Linear:
            kind, int8 = re.sub(r"^.*layer\.\d+\.", "", name), True  # per kind, over the 6 layers
        elif isinstance(mod, nn.Embedding):
            kind, int8 = name.rsplit(".", 1)[-1], False
        elif isinstance(mod, nn.LayerNorm):
            kind, int8 = "LayerNorm", False
        else:
            continue
        r = rows.setdefault(kind, {_t("group"): kind, _t("layers"): 0, _t("params"): 0,
                                   _t("stored"): _t("int8") if int8 else _t("fp32")})
        r[_t("layers")] += 1
        r[_t("params")] += sum(p.numel() for p in mod.parameters(recurse=False))
    return pd.DataFrame(list(rows.values()))


def _table(summary: pd.DataFrame) -> pd.DataFrame:
    import viz
    lang = current_lang()
    return pd.DataFrame({
        _t("arm"): [viz.t(f"quantization.arm.{a}", lang) for a in summary.index],
        _t("acc"): summary["acc"].round(3),
        _t("ci"): [f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "—" for lo, hi in zip(summary["lo"], summary["hi"])],
        _t("n"): summary["n"].astype(int),
        _t("agree"): summary["agree"].map(lambda v: f"{v:.1%}"),
        _t("size"): summary["size_mb"].round(1),
        _t("lat1"): summary["lat1"].round(2),
        _t("lat32"): summary["lat32"].round(2),
    })


def measured_table(*, quick: bool = False) -> pd.DataFrame:
    """The figure's numbers as a table (from the stored studies, never trains): per form, test
    accuracy mean with its 95% t interval over seeds, agreement with fp32, size, median latency."""
    import chapter
    from ftcore.records.cache import MissingRecordError
    from viz.quantization import quantization_summary

    try:
        inputs = chapter.inputs("quantization", quick=quick)
    except MissingRecordError as err:  # a clone whose records are not all there yet: say what to run
        import viz
        return pd.DataFrame({"": [viz.t("missing_records", current_lang(), figure="quantization"),
                                  str(err).split(". ")[0]]})
    return _table(quantization_summary([v for k, v in inputs.items() if k.startswith("study_")]))


class QuantizeLive:
    """A button: fine-tune the live regime (:func:`lab.live_config`) as it is and with
    quantization-aware training, then measure fp32, bf16, int8 (post-training, with 8-bit
    embeddings, QAT): the same study as the figure, on one seed. ``.result`` = (tables, meta)."""

    def __init__(self, seed: int = 0):
        self.seed, self.result = seed, None
        self.button = W.Button(description=_t("button"), button_style="primary", icon="play",
                               layout=W.Layout(width="auto", min_width="110px"))
        self.button.on_click(lambda _: self.update())
        self.status = W.HTML(_t("waiting"))
        self.table = W.HTML()
        self.widget = W.VBox([self.button, self.status, self.table])

    def config(self):
        # half the live regime's reviews: two fine-tunings and four forms evaluated one review at a time
        # still fit in about a minute on 2 cores in fp32 (a CPU without native bf16), and it learns
        return live_config(seed=self.seed, eval_splits=(), **({} if QUICK else {"train_size": 500, "test_size": 300}))

    def update(self):
        from ftcore.analysis.quantization import ARMS, quantization_study
        from ftcore.engine.precision import native_bf16
        from viz.quantization import quantization_summary

        from ftcore.records.studies import Study
        self.button.disabled = True
        self.status.value = _t("running")
        try:
            n, reps = (8, 2) if QUICK else (32, 5)
            arms = tuple(a for a in ARMS if a != "bf16" or native_bf16("cpu"))
            tables, meta = quantization_study(self.config(), n_latency=n, repeats=reps, threads=THREADS, arms=arms)
            self.result = (tables, meta)
            st = Study("quantization", {}, tables, meta)
            self.table.value = _table(quantization_summary([st])).to_html(index=False, border=0)
            self.status.value = html.escape(_t("done", n=meta["n_test"], reps=reps, threads=THREADS)
                                            + ("" if "bf16" in arms else " " + _t("no_bf16")))
        finally:
            self.button.disabled = False
        return self.result

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


__all__ = ["QuantizeLive", "measured_table", "quantized_layers"]
