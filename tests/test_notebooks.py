"""The notebooks follow the house rules (nbval runs them separately, in quick mode):
generated from notebooks/make_notebooks.py, thin code, outputs only where checked."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_one_notebook_per_section_and_topic():
    names = [p.name for p in NOTEBOOKS]
    prefixes = [n[:3] for n in names]
    assert len(set(prefixes)) == len(names), names  # one notebook per number
    for prefix in ("01_", "02_", "03_", "04_", "05_", "06_", "07_", "08_", "09_", "10_", "11_", "12_", "13_"):
        assert prefix in prefixes, f"no notebook {prefix}*: sections 3.2.1-3.2.6, then topics 07-13"


def test_notebooks_match_their_generator(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in mod.NOTEBOOKS:
        committed = [c for c in _cells(NB_DIR / name)]
        assert [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in committed] == \
               [c.source for c in mod.notebook_cells(name)], f"{name} is out of date: run python notebooks/make_notebooks.py --execute"


def test_each_figure_is_drawn_in_the_notebooks_its_spec_names():
    from chapter import figures  # noqa: F401
    from chapter.registry import REGISTRY
    drawn = {p.name[:2]: {"".join(c["source"]).split('"')[1] for c in _cells(p)
                          if c["cell_type"] == "code" and "".join(c["source"]).startswith("chapter.draw(")}
             for p in NOTEBOOKS}
    for fid, spec in REGISTRY.items():
        assert spec.notebooks and all(fid in drawn[nb] for nb in spec.notebooks), (fid, spec.notebooks)
    assert {fid for ids in drawn.values() for fid in ids} == set(REGISTRY)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_thin_code_versions_first_parameters_second(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    src = lambda c: "".join(c["source"])  # noqa: E731
    assert "lab.versions()" in src(code[0])
    assert "parameters" in code[1]["metadata"].get("tags", [])
    for c in code:
        tree = ast.parse(src(c))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        assert not defs, f"{path.name}: define functions in lab/, not in notebooks"
        assert len(src(c).splitlines()) <= 12


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_outputs_only_in_checked_cells_and_small(path):
    for c in _cells(path):
        if c["cell_type"] != "code":
            continue
        tags = c["metadata"].get("tags", [])
        if "nbval-check-output" in tags:
            assert c["outputs"], f"{path.name}: a checked cell needs its committed output"
            assert all(o.get("output_type") == "stream" for o in c["outputs"])
            assert len(json.dumps(c["outputs"])) < 4000
            assert isinstance(c["execution_count"], int)  # nbval skips "unrun" cells with outputs
        else:
            assert c["outputs"] == [] and c["execution_count"] is None, f"{path.name}: clear outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_widget_and_training_cells_are_ignored_by_nbval(path):
    for c in _cells(path):
        s = "".join(c["source"]) if c["cell_type"] == "code" else ""
        if any(k in s for k in ("lab.widgets", "train_live", ".update()", "chapter.draw", "lr_find", "hf_demo")):
            assert "nbval-ignore-output" in c["metadata"].get("tags", []), s


def test_each_reference_figure_is_shown_once():
    """A figure cell is one ``chapter.draw(...)`` expression: its returned Figure is the cell's one
    display, and chapter.draw hands it back closed (not pyplot-managed), so the inline backend does
    not show it a second time at the end of the cell."""
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    import chapter
    for path in NOTEBOOKS:
        for c in _cells(path):
            s = "".join(c["source"]) if c["cell_type"] == "code" else ""
            if "chapter.draw(" in s:
                assert s.count("chapter.draw(") == 1 and "plt.show" not in s and "display(" not in s, s
                tree = ast.parse(s)
                assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), f"{path.name}: {s}"
    before = set(plt.get_fignums())
    fig = chapter.draw("concept", lang="zh", quick=True)
    assert fig is not None and set(plt.get_fignums()) == before


def test_training_waits_for_a_click():
    """Run All never blocks a notebook's widgets: no cell trains on its own (a widget's button
    starts its run, the LR range test included)."""
    for path in NOTEBOOKS:
        for c in _cells(path):
            s = "".join(c["source"]) if c["cell_type"] == "code" else ""
            assert "train_live(" not in s and ".update()" not in s and "train_with_hf_trainer(" not in s \
                and "lr_find(" not in s, \
                f"{path.name}: {s}"


VERDICT_WORDS = ("与教材一致", "与教材不同", "无法判断", "无法分辨", "agrees with the chapter", "differs from the chapter",
                 "cannot tell at this n", "equivalent within")


def test_results_are_stated_by_the_records_not_by_the_text():
    """Markdown never states a verdict; after every figure that tests a claim of the chapter comes
    ``chapter.findings`` of the same figure (the gallery's lines, computed from the records), and the
    section summary (06) shows them all."""
    from chapter import figures  # noqa: F401
    from chapter.registry import REGISTRY
    for path in NOTEBOOKS:
        cells = _cells(path)
        for cell in cells:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                assert not any(w in text for w in VERDICT_WORDS), (path.name, text[:80])
        sources = ["".join(c["source"]) for c in cells]
        for i, src in enumerate(sources):
            if src.startswith("chapter.draw(") and REGISTRY[fid := src.split('"')[1]].claims:
                assert sources[i + 1] == f'chapter.findings("{fid}", lang=LANG)', (path.name, fid)
    summary = next(p for p in NOTEBOOKS if p.name.startswith("06"))
    assert any("chapter.summary(" in "".join(c["source"]) for c in _cells(summary))


def test_findings_are_the_gallery_lines():
    import chapter
    from chapter.registry import REGISTRY
    md = chapter.findings("warmup", "en", quick=True).data
    judged = REGISTRY["warmup"].verdicts(chapter.inputs("warmup", quick=True))
    assert all(j.line("en") in md for j in judged) and len(judged) == 2
