"""``python -m chapter``: train what the figures need (only what the cache lacks), draw every
figure in Chinese and English, and write the gallery.

    python -m chapter                 # full scale: records in runs/reference, figures in figures/
    python -m chapter --quick         # every figure end to end, tiny and fast (CI)
    python -m chapter --render-only   # redraw from the records; an error names any missing run
    python -m chapter --force         # retrain everything the figures need (replaces records)
    python -m chapter --only warmup decay
    python -m chapter --jobs 2        # train missing runs in 2 workers × 1 thread (see --help)

Training: every figure's needs are first resolved into the distinct stored results; those the runs
folder lacks are trained in --jobs worker processes (joblib; Ray with --backend ray) with the
--threads budget split between them, each saving its records atomically under the run's lock; then
the figures are collected (all cache hits) and drawn in --draw-jobs processes.

Reproducibility: the thread count changes a run's numbers slightly but not its id. Every record
keeps its thread count (config and provenance). The reviewed protocol's reference records were
trained by 2 workers × 1 thread (`make figures`' JOBS=2 THREADS=2), the earlier protocol's by 1 worker
× 2 threads; `make figures` reproduces them (same machine and libraries), and the reference test
retrains a sample with each record's own thread count.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from ftcore.records.cache import MissingRecordError, Stored, fetch_or_compute  # noqa: F401 (MissingRecordError: re-exported)
from ftcore.records.record import RecordError

from .claims import annotate
from .registry import REGISTRY, FigureSpec
from .scale import SCALES, Scale

FORMATS = ("png", "svg", "pdf")


def _quiet_loading() -> None:
    """One progress bar for the build, not one per model load."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()


class Collector:
    """Resolves a figure's needs into inputs through the one cache (``ftcore.records.cache``): runs,
    task sequences, studies and landscapes take the same path. Within one build each stored result
    is loaded (or computed, or forced) once, however many figures share it; with ``render_only``
    nothing is ever computed and a missing or corrupt result is a MissingRecordError."""

    def __init__(self, S: Scale, *, force: bool = False, render_only: bool = False):
        self.S, self.force, self.render_only = S, force, render_only
        self.results: dict[Path, object] = {}  # what this build fetched, by folder
        self.trained = 0  # results computed in this build
        self.current = ""

    def fetch(self, item: Stored):
        if item.path not in self.results:
            def compute():
                self.trained += 1
                return item.compute()
            self.results[item.path] = fetch_or_compute(dataclasses.replace(item, compute=compute),
                                                       force=self.force, render_only=self.render_only)
        return self.results[item.path]

    def collect(self, spec: FigureSpec) -> dict:
        """The figure's inputs by name: each need fetched as its kind says (``Need.collect``)."""
        self.current = spec.id
        return {name: need.collect(self) for name, need in spec.needs(self.S).items()}


def render(spec: FigureSpec, inputs: dict, lang: str, out_dir: Path, *, quick: bool = False) -> list[Path]:
    import matplotlib.pyplot as plt

    import viz
    viz.set_theme(lang)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing from")  # boxes instead of text: fail
        fig = spec.render(inputs)
        # The rule of FIGURES.md: the verdicts (and any disagreement or failed gate) are on the figure.
        annotate(fig, spec, inputs, lang, quick=quick)
        fig.canvas.draw()
    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        p = out_dir / f"{spec.id}.{fmt}"
        # a fixed salt: the SVG's clip-path ids (random by default) repeat, so a rebuild of
        # unchanged records leaves the committed files unchanged
        with plt.rc_context({"svg.hashsalt": spec.id}):
            fig.savefig(p, dpi=300 if fmt == "png" else None, bbox_inches="tight",
                        metadata=_NO_DATE.get(fmt))
        if fmt == "svg":
            p.write_text(stable_svg_ids(p.read_text(encoding="utf-8")), encoding="utf-8")
        paths.append(p)
    plt.close(fig)
    return paths


# matplotlib's hashed clip-path, marker and hatch ids, where defined (id="…") or referenced (#…),
# never inside the base64 of an embedded image
_SVG_ID = re.compile(r'(?<=id=")([pmh])[0-9a-f]{10}(?=")|(?<=#)([pmh])[0-9a-f]{10}(?=[")])')


def stable_svg_ids(svg: str) -> str:
    """``svg`` with matplotlib's hashed ids renumbered by first appearance (``p0``, ``p1``, … per
    kind). The hash covers a clip box's float bounds, whose last bits depend on what the process
    drew before (the other language, the other figures of a worker), so the same drawing could
    get other ids; numbered, a rebuild of unchanged records writes the same bytes."""
    names: dict[str, str] = {}
    counts: Counter = Counter()

    def rename(m: re.Match) -> str:
        if m.group(0) not in names:
            kind = m.group(1) or m.group(2)
            names[m.group(0)] = f"{kind}{counts[kind]}"
            counts[kind] += 1
        return names[m.group(0)]
    return _SVG_ID.sub(rename, svg)


# no build date in the files (each backend names it differently): unchanged records, unchanged files
_NO_DATE = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
_DRAW: dict = {}  # what the drawing workers read (inherited through fork)


def _draw_one(fid: str) -> float:
    t = time.perf_counter()
    for lang in _DRAW["langs"]:
        render(REGISTRY[fid], _DRAW["inputs"][fid], lang, _DRAW["out"] / lang, quick=_DRAW["quick"])
    return round(time.perf_counter() - t, 2)


def main(argv: list[str] | None = None) -> int:
    paras = __doc__.split("\n\n")
    ap = argparse.ArgumentParser(prog="python -m chapter", description=paras[0], epilog="\n\n".join(paras[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and one seed (CI)")
    ap.add_argument("--force", action="store_true", help="retrain every run the figures need")
    ap.add_argument("--render-only", action="store_true", help="draw from stored records, never train")
    ap.add_argument("--partial", action="store_true",
                    help="with --render-only: draw the figures whose records are all stored and list the "
                         "others in the gallery as pending (exit 4 when any is), e.g. while a "
                         "regeneration is still running")
    ap.add_argument("--only", nargs="+", metavar="ID", help="these figure ids only")
    ap.add_argument("--runs-dir", default=None, help="records folder (default: the scale's)")
    ap.add_argument("--out", default=None, help="output folder (default: figures/, or build/figures-quick with --quick)")
    ap.add_argument("--collect-only", action="store_true", help="train/fetch the runs, draw nothing")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="worker processes training the missing runs in parallel, the --threads budget "
                         "split between them (default 1; `make figures` runs 2 × 1 thread, as the reviewed "
                         "protocol's records were made)")
    ap.add_argument("--threads", type=int, default=None, metavar="T",
                    help="CPU threads in all, split as T // N per worker, at least 1 (default: the scale's: "
                         "1 for the book's figures, 2 in quick mode); a record keeps its thread count, which is "
                         "not part of its id")
    ap.add_argument("--backend", choices=("joblib", "ray"), default="joblib",
                    help="joblib: processes on this machine (default); ray: tasks on a Ray cluster, "
                         "each returns its result and this process saves it in the runs folder")
    ap.add_argument("--address", default=None, metavar="HOST:PORT",
                    help="the Ray cluster to use with --backend ray (default: start a local Ray)")
    ap.add_argument("--draw-jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                    help="processes drawing figures in parallel (default: 2 or the CPU count)")
    ap.add_argument("--langs", nargs="+", default=["zh", "en"], choices=["zh", "en"])
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    from tqdm.auto import tqdm

    from . import figures  # noqa: F401  (registers the figures)
    from .gallery import write_gallery

    _quiet_loading()
    S = SCALES["quick" if args.quick else "full"]
    if args.runs_dir:
        S = dataclasses.replace(S, runs_dir=args.runs_dir)
    ids = args.only or list(REGISTRY)
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        ap.error(f"unknown figure id(s) {unknown}; known: {', '.join(REGISTRY)}")
    out = Path(args.out or ("build/figures-quick" if args.quick else "figures"))
    for flag in ("jobs", "threads", "draw_jobs"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.address and args.backend != "ray":
        ap.error("--address is for --backend ray")
    if args.partial and not args.render_only:
        ap.error("--partial is for --render-only (a build that trains makes every figure's records)")
    col = Collector(S, force=args.force, render_only=args.render_only)
    timings, inputs_by_id, pending = {}, {}, {}
    t0 = time.perf_counter()
    try:
        if not args.render_only:  # train what is missing first, in parallel where asked
            from .parallel import default_threads, plan, split_threads, train_missing
            missing = plan(col, ids)
            threads = split_threads(args.threads or default_threads(S), args.jobs)
            if missing:
                print(f"{len(missing)} results to train ({args.jobs} worker(s) × {threads} thread(s), "
                      f"{args.backend}); records go to {S.runs_dir}", flush=True)
            train_missing(col, missing, workers=args.jobs, threads=threads, backend=args.backend,
                          address=args.address)
        for fid in tqdm(ids, desc="runs for the figures", unit="figure"):
            t = time.perf_counter()
            try:
                inputs_by_id[fid] = col.collect(REGISTRY[fid])
            except RecordError as exc:
                if not args.partial:
                    raise
                pending[fid] = str(exc).split(". ")[0]  # drawn once its records are all stored
                continue
            timings[fid] = {"collect_s": round(time.perf_counter() - t, 2)}
    except RecordError as exc:  # render-only: a missing or corrupt result; else an unwritable runs folder
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t_collect = time.perf_counter() - t0
    if args.collect_only:
        print(f"{len(ids)} figures' runs ready in {S.runs_dir}/ ({col.trained} trained, {t_collect:.0f}s)")
        return 0
    t1 = time.perf_counter()
    all_ids, ids = ids, [fid for fid in ids if fid in inputs_by_id]
    _DRAW["inputs"], _DRAW["langs"], _DRAW["out"], _DRAW["quick"] = inputs_by_id, args.langs, out, S.quick
    jobs = max(1, min(args.draw_jobs, len(ids)))
    if jobs > 1:  # figures are independent: draw them in forked workers that share the inputs
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            drawn = list(tqdm(pool.map(_draw_one, ids), total=len(ids), desc="drawing", unit="figure"))
    else:
        drawn = [_draw_one(fid) for fid in tqdm(ids, desc="drawing", unit="figure")]
    for fid, secs in zip(ids, drawn):
        timings[fid]["render_s"] = secs
    t_render = time.perf_counter() - t1
    from .gallery import _rel
    summary = {"scale": S.name, "runs_dir": _rel(S.runs_dir), "figures": len(ids), "runs_trained": col.trained,
               "collect_s": round(t_collect, 1), "render_s": round(t_render, 1),
               "total_s": round(time.perf_counter() - t0, 1), "per_figure": timings}
    if set(all_ids) == set(REGISTRY):  # the gallery and its timings describe a whole build: a
        # partial one (--only) leaves both as the last whole build wrote them
        write_gallery(out, S, inputs_by_id, summary, pending)
        (out / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(ids)} figures × {len(args.langs)} languages in {out}/ ({col.trained} runs trained; "
          f"collect {t_collect:.0f}s, render {t_render:.0f}s)")
    for fid, why in pending.items():
        print(f"pending: figure {fid!r} not drawn: {why}", file=sys.stderr)
    return check_gates(ids, inputs_by_id, quick=S.quick) or (4 if pending else 0)


def check_gates(ids, inputs_by_id: dict, *, quick: bool) -> int:
    """Report every figure whose must-learn runs did not learn (also marked in red in the gallery and
    on the figure). A full build fails on them (exit 3): such a figure shows under-training, not
    the method. Quick-mode runs are too small to learn, so there the gates are only reported."""
    enforce = not quick
    failed = {fid: g for fid in ids if (g := REGISTRY[fid].gate(inputs_by_id[fid], quick=quick)) is not None and not g.passed}
    for fid, g in failed.items():
        print(f"{'error' if enforce else 'note'}: figure {fid!r} is not a valid result: {g.reason()}",
              file=sys.stderr)
    return 3 if failed and enforce else 0
