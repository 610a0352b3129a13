"""The chapter's figures as a pipeline: each figure declares the runs it needs (``chapter.figures``), the
build trains what the cache lacks (``ftcore``) and draws the figure from the records (``viz``).

``python -m chapter`` (``make figures``) regenerates every figure; ``--quick`` is the small version CI runs.
"""


def inputs(figure_id: str, *, quick: bool = False, train: bool = False) -> dict:
    """The inputs of a figure (RunSets of records, studies) from the stored records; with
    ``train=True`` missing runs are trained first (as ``make figures`` does)."""
    from . import figures  # noqa: F401 (registers the figures)
    from .build import Collector
    from .registry import REGISTRY
    from .scale import SCALES

    if figure_id not in REGISTRY:
        raise KeyError(f"unknown figure {figure_id!r}; known: {', '.join(REGISTRY)}")
    return Collector(SCALES["quick" if quick else "full"], render_only=not train).collect(REGISTRY[figure_id])


def draw(figure_id: str, lang: str = "zh", *, quick: bool = False):
    """The figure ``figure_id`` drawn from stored records, as a matplotlib Figure (no training).

    >>> import chapter; fig = chapter.draw("warmup", lang="en")   # doctest: +SKIP
    """
    import viz
    from .registry import REGISTRY

    import matplotlib.pyplot as plt

    from .claims import annotate

    from ftcore.records.cache import MissingRecordError

    viz.set_theme(lang)
    try:
        data = inputs(figure_id, quick=quick)  # registers the figures, checks the id
    except MissingRecordError as err:  # a clone whose records are not all there yet: say what to run
        return _missing(figure_id, err, lang)
    spec = REGISTRY[figure_id]
    fig = spec.render(data)
    annotate(fig, spec, data, lang, quick=quick)  # the same verdict note as the gallery
    plt.close(fig)  # returned, not also pyplot-managed: a notebook shows it once
    return viz.on_screen(fig)


def findings(figure_id: str, lang: str = "zh", *, quick: bool = False):
    """What the figure's records say, as Markdown for a notebook: the validity gate and each claim's
    effect, interval and verdict, the same lines as the gallery and the figure's note (so a
    notebook's text cannot drift from the measurements)."""
    from IPython.display import Markdown

    from ftcore.records.cache import MissingRecordError
    from .registry import REGISTRY

    try:
        data = inputs(figure_id, quick=quick)
    except MissingRecordError as err:
        return Markdown(f"*{_text('missing_records', lang, figure=figure_id)}* ({str(err).split('. ')[0]})")
    spec = REGISTRY[figure_id]
    head = {"zh": "实测结论", "en": "What the runs measured"}[lang]
    lines = [f"**{head}** (`{figure_id}`):", ""]
    g = spec.gate(data, quick=quick)
    if g is not None and not g.passed:
        from .claims import gate_reason
        lines.append(f"- ⚠ {_text('gate_failed', lang)}: {gate_reason(g, lang, limit=3)}")
    lines += [f"- {j.line(lang)}" for j in spec.verdicts(data)]
    if not spec.claims:
        lines.append("- " + {"zh": "这幅图不检验教材的论断，只展示测量本身。",
                            "en": "This figure tests no claim of the chapter; it shows the measurement itself."}[lang])
    return Markdown("\n".join(lines))


def summary(lang: str = "zh", *, quick: bool = False):
    """Every figure's findings (:func:`findings`) in one Markdown block: the section's measured results."""
    from IPython.display import Markdown

    from . import figures  # noqa: F401 (registers the figures)
    from .registry import REGISTRY
    parts = []
    for fid, spec in REGISTRY.items():
        if spec.claims:
            parts.append(f"#### {spec.title[lang]}\n\n" + findings(fid, lang, quick=quick).data)
    return Markdown("\n\n".join(parts))


def _text(key: str, lang: str, **kw) -> str:
    from viz import t
    return t(key, lang=lang, **kw)


def _missing(figure_id: str, err: Exception, lang: str):
    """A small figure that says which record is missing and how to make it (instead of a traceback)."""
    import matplotlib.pyplot as plt
    from viz import t
    from viz.geometry import figsize

    fig = plt.figure(figsize=figsize(3.0))
    fig.add_axes((0, 0, 1, 1)).axis("off")  # IPython renders no image for a figure without axes
    fig.text(0.02, 0.9, t("missing_records", lang=lang, figure=figure_id), fontsize=9, va="top", wrap=True)
    fig.text(0.02, 0.45, str(err).split(". ")[0] + ".", fontsize=7.5, va="top", color="#a33", wrap=True)
    plt.close(fig)
    return fig
