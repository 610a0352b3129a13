"""The figure pipeline: every figure of FIGURES.md is registered and drawable, the theme renders
Chinese with the pip-installed font, viz stays torch-free, and reference records reproduce."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chapter import figures  # noqa: F401 (registers the figures)
from chapter.registry import REGISTRY
from chapter.scale import FULL, QUICK

ROOT = Path(__file__).resolve().parents[1]
FIGURES_MD = ROOT.parent / "shared" / "FIGURES.md"


def figure_ids_in_figures_md() -> list[str]:
    rows = re.findall(r"^\| ([a-z][a-z-]+) \| ", FIGURES_MD.read_text(encoding="utf-8"), re.M)
    return [r for r in rows if r != "id"]


@pytest.mark.skipif(not FIGURES_MD.exists(), reason="shared/FIGURES.md is not beside this checkout")
def test_every_row_of_figures_md_is_registered():
    from chapter.registry import PLANNED, extra
    EXTRA = extra()  # each spec's ``beyond``
    in_md = set(figure_ids_in_figures_md())
    assert set(REGISTRY) - set(EXTRA) <= in_md, "a registered figure is neither in FIGURES.md nor declared EXTRA"
    assert set(EXTRA) <= set(REGISTRY) and not set(EXTRA) & in_md
    assert in_md - set(REGISTRY) == set(PLANNED), "FIGURES.md rows neither registered nor planned"
    assert not set(PLANNED) & set(REGISTRY)


def test_every_figure_has_a_viz_function_and_bilingual_texts():
    import viz
    for fid, spec in REGISTRY.items():
        draw = getattr(spec.draw, "func", spec.draw)  # a functools.partial fixes a keyword (decay's target)
        assert draw is getattr(viz, fid.replace("-", "_"), None), f"{fid} is not drawn by its viz function"
        for d in (spec.title, spec.caption_for(FULL), spec.caption_for(QUICK)) + ((spec.claim,) if spec.claim else ()):
            assert set(d) == {"zh", "en"} and all(d.values()), fid


def test_strings_exist_in_both_languages():
    from viz.text import STRINGS
    assert set(STRINGS["zh"]) == set(STRINGS["en"]) and len(STRINGS["zh"]) > 50


def test_viz_does_not_import_torch():
    code = "import sys, viz; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_shared_runs_are_declared_once_and_grids_use_the_scale_seeds():
    from ftcore.engine.runs import run_id
    from chapter.registry import Grid
    from chapter.figures.problems import FIX_SEEDS, FIX_SEEDS_REVIEWED
    from chapter.figures.base import MORE_SEEDS
    from chapter.figures.schedules import WARMUP_SEEDS_REVIEWED
    from chapter.scale import SELECTION_SEEDS
    # figures whose five seeds could not tell a claim take ten (chapter.figures.base.more_seeds)
    ten = {"peft", "freeze-effects", "freeze-map", "unfreeze", "adaptive", "engines", "regularization",
           "data-size-strategy"}
    ids = {}
    for spec in REGISTRY.values():
        for need in spec.needs(FULL).values():
            if isinstance(need, Grid):
                for labels, cfg in need.cells:
                    # the scale's paired seeds; failure rates (stability fixes, warmup's compared arms) need more
                    fixes = FIX_SEEDS_REVIEWED if spec.reviewed else FIX_SEEDS
                    more = {"stability-fixes": fixes, "warmup": WARMUP_SEEDS_REVIEWED if spec.reviewed else FULL.seeds,
                            **{f: MORE_SEEDS for f in ten}}
                    if spec.reviewed and cfg.seed in SELECTION_SEEDS:  # a selection's run drawn (a sweep): validation only
                        assert not cfg.test_at_end and tuple(cfg.eval_splits) == ("validation",), (spec.id, labels)
                        continue
                    assert cfg.seed in more.get(spec.id, FULL.seeds)
                    ids.setdefault(run_id(cfg), set()).add(spec.id)
    shared = [v for v in ids.values() if len(v) > 1]
    assert shared, "figures should share runs (e.g. the base run)"
    # 5 paired seeds per arm (20 for stability fixes' failure rates, 10 for warmup's and where 5 could
    # not tell); a guard against
    # a grid exploding by accident (the cost itself: python -m chapter.report --cost)
    assert 200 < len(ids) < 800


def test_quick_scale_is_small():
    from chapter.registry import Grid
    for spec in REGISTRY.values():
        for need in spec.needs(QUICK).values():
            if isinstance(need, Grid):
                for _, cfg in need.cells:
                    assert (cfg.train_size or 0) <= 160 and cfg.seed == 0


def test_chinese_renders_with_the_packaged_font_and_pdf_rasterizes(lang_theme, tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    import viz
    lang_theme("zh")
    font = viz.theme.cjk_font()
    assert font == "Noto Sans SC"
    fig, ax = plt.subplots()
    ax.set_title("学习率调度：预热与衰减 − θ₀")
    found = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.sans-serif"]))
    assert found.endswith("NotoSansSC-Regular.ttf")
    pdf = tmp_path / "zh.pdf"
    fig.savefig(pdf)  # a missing glyph would raise (pyproject: Glyph warnings are errors)
    assert plt.rcParams["figure.facecolor"] == "white"
    import pypdfium2
    page = pypdfium2.PdfDocument(str(pdf))[0]
    img = page.render(scale=1).to_pil()
    assert img.getextrema()[0][0] < 100  # dark text pixels exist: the PDF renders


def test_unknown_language_is_a_clear_error():
    import viz
    with pytest.raises(ValueError, match="lang='fr' is not allowed"):
        viz.set_theme("fr")


def test_render_only_names_a_missing_record(tmp_path, capsys):
    from chapter.build import main
    rc = main(["--quick", "--render-only", "--runs-dir", str(tmp_path / "empty"), "--only", "layer-lr",
               "--out", str(tmp_path / "out")])
    assert rc == 2 and "no record of run" in capsys.readouterr().err


@pytest.mark.parametrize("fid", ["layer-lr", "forgetting"])
def test_build_renders_png_svg_pdf_in_both_languages(fid, tmp_path):
    from chapter.build import main
    assert main(["--quick", "--render-only", "--only", fid, "--out", str(tmp_path)]) == 0
    for lang in ("zh", "en"):
        for fmt in ("png", "svg", "pdf"):
            f = tmp_path / lang / f"{fid}.{fmt}"
            assert f.exists() and f.stat().st_size > 1000, f


def test_a_rebuild_from_the_same_records_writes_the_same_svg_and_pdf(tmp_path):
    """No build date and no random clip-path ids: committed figures change only when records do."""
    from chapter.build import main
    for out in ("a", "b"):
        assert main(["--quick", "--render-only", "--only", "layer-lr", "--out", str(tmp_path / out)]) == 0
    for fmt in ("svg", "pdf"):
        a, b = (tmp_path / out / "en" / f"layer-lr.{fmt}" for out in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), fmt
    # what a process drew before (here the other language first) leaves the bytes alone
    import dataclasses

    from chapter.build import Collector, render
    from chapter.registry import REGISTRY
    from chapter.scale import QUICK
    spec = REGISTRY["layer-lr"]
    inputs = Collector(dataclasses.replace(QUICK), render_only=True).collect(spec)
    render(spec, inputs, "zh", tmp_path / "c" / "zh")
    render(spec, inputs, "en", tmp_path / "c" / "en")
    for fmt in ("svg", "pdf"):
        assert (tmp_path / "c" / "en" / f"layer-lr.{fmt}").read_bytes() == (tmp_path / "a" / "en" / f"layer-lr.{fmt}").read_bytes()
    # a partial build (--only) leaves the whole build's gallery and timings alone
    assert not (tmp_path / "a" / "timings.json").exists() and not (tmp_path / "a" / "README.md").exists()


def test_draw_with_missing_records_says_what_to_run_instead_of_a_traceback(tmp_path, monkeypatch):
    """A notebook cell on a clone whose reference records are incomplete shows how to make them."""
    import dataclasses

    import chapter
    from chapter import scale
    empty = dataclasses.replace(scale.QUICK, runs_dir=str(tmp_path / "empty"))
    monkeypatch.setitem(scale.SCALES, "quick", empty)
    fig = chapter.draw("warmup", lang="zh", quick=True)
    texts = " ".join(a.get_text() for a in fig.texts)
    assert "make figures" in texts and "warmup" in texts and "runs/reference" in texts
    assert fig.axes  # IPython shows no image for a figure without axes: the reader would see nothing


def test_report_gives_gate_must_learn_accuracy_and_verdicts(capsys):
    from chapter.report import main
    assert main(["--quick", "--only", "concept", "warmup"]) == 0
    out = capsys.readouterr().out
    assert "### `concept`" in out and "Gate: " in out and "| runs | run=base |" in out
    assert "linear warmup ends above no warmup" in out  # the warmup claim's verdict line


def test_partial_render_draws_what_is_stored_and_names_what_is_pending(tmp_path, capsys):
    """While a regeneration runs: draw the complete figures, list the others, exit 4."""
    import shutil
    from chapter.build import main
    from chapter.scale import QUICK
    runs = tmp_path / "runs"
    shutil.copytree(QUICK.runs_dir, runs)
    for d in runs.glob("landscape-*"):
        shutil.rmtree(d)
    rc = main(["--quick", "--render-only", "--partial", "--only", "landscape", "layer-lr", "--runs-dir", str(runs),
               "--out", str(tmp_path / "out"), "--langs", "en", "--draw-jobs", "1"])
    assert rc == 4
    assert (tmp_path / "out" / "en" / "layer-lr.png").exists() and not (tmp_path / "out" / "en" / "landscape.png").exists()
    assert "pending: figure 'landscape' not drawn" in capsys.readouterr().err


def test_report_cost_counts_each_result_once_and_sums(capsys):
    from chapter.report import main
    assert main(["--quick", "--cost", "--only", "concept", "warmup"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|") for line in out.splitlines() if line.startswith("| ")}
    assert {"concept", "warmup", "**all**"} <= set(rows)
    # columns: figure, protocol, needed, new, optimizer steps, CPU min, wall min
    rows = {k: v for k, v in rows.items() if k in ("concept", "warmup", "**all**")}
    steps = {k: int(v[5].strip(" *").replace(",", "")) for k, v in rows.items()}
    assert steps["**all**"] == steps["concept"] + steps["warmup"] > 0
    wall = {k: float(v[7].strip(" *")) for k, v in rows.items()}
    assert abs(wall["concept"] + wall["warmup"] - wall["**all**"]) < 0.11  # rounding of each row
    assert int(rows["**all**"][4]) == int(rows["concept"][4]) + int(rows["warmup"][4])
    assert "CPU min" in out and "unmeasured" in out  # the committed quick records predate cpu_s


def test_gallery_lists_results_derived_from_studies():
    """A RunSet of study-derived results (no provenance, e.g. quantization's arms) is named, not read as runs."""
    from types import SimpleNamespace

    from chapter.gallery import _runs_line
    from ftcore.records.runset import RunSet
    arm = SimpleNamespace(run_id="study-x/int8", config={}, summary={}, status="completed")
    line = _runs_line(FULL, None, {"gate_arms": RunSet([({"arm": "int8", "seed": 0}, arm)])})
    assert line == "1 results (gate_arms) derived from studies"


def test_report_reads_figures_whose_runs_are_derived_from_studies(capsys):
    from chapter.report import main
    assert main(["--quick", "--only", "rlhf"]) == 0
    out = capsys.readouterr().out
    assert "### `rlhf`" in out and "Gate: " in out and "| runs | arm=" in out


def test_a_grid_names_each_cells_training_loop():
    """The engines figure's cells are trained by the loop their ``engine`` label names, through the
    same cache and workers as ftcore runs (their ids differ, so no record is shared by mistake)."""
    from chapter.parallel import jobs_of
    from chapter.scale import QUICK
    jobs = jobs_of(REGISTRY["engines"], QUICK)
    assert {j.kind for j in jobs} == {"run", "hf run", "lightning run"}
    paths = {j.stored(QUICK.runs_dir).path for j in jobs}
    assert len(paths) == len(jobs)  # the same config under three loops: three records
    hf = next(j for j in jobs if j.kind == "hf run")
    assert hf.with_threads(1).spec.threads == 1 and hf.stored(QUICK.runs_dir).kind == "hf run"


def test_every_job_names_its_own_kind_of_stored_result_whatever_its_threads():
    """Each need says what it resolves to: every job of every figure is a cache entry of its own
    kind, and the same entry (folder) on another thread count."""
    from chapter.needs import JOB_KINDS, Need
    from chapter.parallel import jobs_of
    kinds = set()
    for spec in REGISTRY.values():
        assert all(isinstance(n, Need) for n in spec.needs(QUICK).values()), spec.id
        for job in jobs_of(spec, QUICK):
            item = job.stored(QUICK.runs_dir)
            assert item.kind == job.kind and job.with_threads(1).stored(QUICK.runs_dir).path == item.path
            kinds.add(job.kind)
    assert kinds == set(JOB_KINDS)  # every kind of job is used by some figure


def test_a_new_kind_of_need_is_one_class(tmp_path):
    """A need kind carries its jobs and its collection: the build and the workers read them, so a new
    kind needs no table or if-chain anywhere else."""
    import dataclasses

    from chapter.build import Collector
    from chapter.needs import Need
    from chapter.parallel import jobs_of
    from chapter.registry import FigureSpec, Value

    @dataclasses.dataclass
    class Pair(Need):  # two values drawn side by side
        a: int
        b: int

        def collect(self, col):
            return (self.a, self.b)
    spec = FigureSpec(id="toy", section="", notebooks=(), caption={"zh": "", "en": ""}, draw=lambda **kw: None,
                      needs=lambda S: {"pair": Pair(1, 2), "n": Value(lambda: 3)})
    col = Collector(dataclasses.replace(QUICK, runs_dir=str(tmp_path)), render_only=True)
    assert col.collect(spec) == {"pair": (1, 2), "n": 3} and jobs_of(spec, QUICK) == []


def test_retime_stores_a_retrained_run_only_when_its_metrics_are_identical(tiny, tmp_path, monkeypatch):
    """``python -m chapter.retime`` re-measures a run's time; a run whose metrics would change is kept."""
    from chapter import retime as rt
    from ftcore import run
    from ftcore.engine.runs import cached
    rec = run(tiny.replace(max_steps=3, progress=False), runs_dir=tmp_path)
    old = dict(rec.summary, train_s=1e6)  # as if trained on a crowded machine
    slow = type(rec)(rec.run_id, rec.config, rec.provenance, rec.status, old, rec.tables)
    ok, line = rt.retime(slow, runs_dir=str(tmp_path))
    assert ok and "train_s 1000000 ->" in line
    again = cached(tiny.replace(max_steps=3, progress=False), runs_dir=tmp_path)
    assert again.summary["train_s"] < 1e6 and again.summary["test_accuracy"] == rec.summary["test_accuracy"]
    changed = type(rec)(rec.run_id, rec.config, rec.provenance, rec.status,
                        dict(rec.summary, test_accuracy=rec.summary["test_accuracy"] + 0.5), rec.tables)
    ok, line = rt.retime(changed, runs_dir=str(tmp_path))
    assert not ok and "metrics differ" in line


def test_svg_ids_are_numbered_by_first_appearance_not_by_hashed_float_bounds():
    """The same drawing with clip boxes off in the last float bits gets other hashed ids: numbered,
    both are the same file; ids inside an embedded image's base64 are left alone."""
    from chapter.build import stable_svg_ids
    image = '<image xlink:href="data:image/png;base64,AAp0123456789/"/>'
    one = ('<clipPath id="p0123456789"/><path clip-path="url(#p0123456789)"/><use xlink:href="#mabcdef0123"/>'
           '<path clip-path="url(#pfedcba9876)"/>')
    one, two = one + image, one.replace("p0123456789", "p9999999999") + image
    assert stable_svg_ids(one) == stable_svg_ids(two) == (
        '<clipPath id="p0"/><path clip-path="url(#p0)"/><use xlink:href="#m0"/><path clip-path="url(#p1)"/>'
        '<image xlink:href="data:image/png;base64,AAp0123456789/"/>')


def test_every_selection_candidate_has_a_place_in_the_cache(tmp_path):
    """``chapter.report --cost`` and ``chapter.protocol`` find every candidate's record through
    ``stored_of``: runs, task sequences and studies alike (a ContinualConfig once crashed --cost)."""
    from chapter.protocol import SELECTIONS, _Placeholder, outcome, stored_of
    from chapter.scale import REVIEWED
    paths = []

    def fetch(cfg):
        paths.append(stored_of(cfg, tmp_path).path)
        return _Placeholder()
    kinds = set()
    for sel in SELECTIONS.values():
        n = len(paths)
        outcome(sel, REVIEWED, fetch=fetch)
        assert len(paths) > n, sel.name
        kinds |= {p.name.split("-")[0] for p in paths[n:]}
    assert all(p.parent == tmp_path for p in paths)
    assert len(kinds) >= 3, kinds  # runs, task sequences and studies


def test_report_cost_reads_a_studys_cost_file_and_a_sequences_steps(tmp_path):
    from chapter.report import _cost
    from ftcore.records.cache import write_cost
    study = tmp_path / "study-x"
    study.mkdir()
    (study / "meta.json").write_text(json.dumps({"name": "rlhf", "params": {}}))
    assert _cost(study)["cpu_s"] is None  # made before costs were measured
    write_cost(study, {"cpu_s": 12.5, "wall_s": 13.0, "threads": 1})
    assert _cost(study)["cpu_s"] == 12.5 and _cost(study)["wall_s"] == 13.0
    seq = tmp_path / "seq-x"
    seq.mkdir()
    (seq / "meta.json").write_text(json.dumps({"summary": {"per_task": [{"steps": 3}, {"steps": 4}], "wall_s": 2.0}}))
    assert _cost(seq)["steps"] == 7 and _cost(seq)["cpu_s"] is None


def test_regeneration_estimate_uses_only_batches_timed_on_idle_cores(tmp_path, monkeypatch):
    from chapter import report
    rows = [{"rc": 0, "wall_s": 1200.0, "cpu_s": 2300.0, "other_cpu_s": 10.0, "runs_cpu_s": 2000.0, "cores": 2},
            {"rc": 0, "wall_s": 9000.0, "cpu_s": 2000.0, "other_cpu_s": 1500.0, "runs_cpu_s": 2000.0, "cores": 2}]
    path = tmp_path / "regeneration.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert report.fill_factor(path) == (pytest.approx(1.2), 1)  # the shared-machine batch is left out
    assert report.fill_factor(tmp_path / "none.jsonl") == (1.0, 0)
    monkeypatch.setattr(report, "TIMED_BATCHES", path)
    monkeypatch.setattr(report, "fill_factor", lambda: (1.2, 1))
    line = report.regeneration_estimate({"cpu_s": 3600.0, "unmeasured_wall_s": 0.0, "no_cpu": 0},
                                        {"cpu_s": 3600.0, "unmeasured_wall_s": 1800.0, "no_cpu": 3}, cores=2)[0]
    assert "about 1.5 h" in line and "3 results made before" in line  # (7200 + 1800) s / 2 × 1.2 = 1.5 h
