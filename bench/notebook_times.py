"""How long the chapter notebooks take on their real (full-size) settings: Run All, then every live
run a reader starts with a click.

What it measures
----------------
``Run All``    each notebook (``notebooks/*.ipynb``, or those named with ``--only``) executed headless
               by nbclient in a fresh ``python3`` kernel, working directory ``notebooks/``, in full
               mode (``FTLAB_QUICK`` unset; ``--quick`` sets it) with ``FTLAB_THREADS=--threads``.
               Wall seconds from the kernel's start to the end of the last cell (``run_all_s``; the
               kernel start is included), the sum of the cells' own execution times (``cells_s``)
               and the slowest cells. Run All never trains (every live run is behind a button): this
               is the cost of opening a notebook and drawing its figures from the stored records.
               An exception stops the notebook; it is recorded (cell, error name, message), and so
               is any stderr output that mentions an error.
``live runs``  every widget the notebook constructs whose button trains (LiveRun, GradualUnfreeze,
               LabelNoise, LRFinder, LRInstability, DoctorRun, ForgettingControl, LoraRank,
               HFTrainerRun, the tokenizer and fill-mask boxes of 11, QuantizeLive, MaskToggle,
               KLKnob), built in this process by the notebook's own line (its cell's source, run
               here), then its button's method (``update()`` or ``run()``) called once at the default
               setting: wall seconds of that call (the reader's wait after the click), the test
               accuracy (a fraction, 0-1), the majority-class share of the test split (fraction) and
               whether the run learned (``lab.widgets.verdict``: ``ftcore.records.validity.learned``,
               completed, not collapsed to one class, accuracy >= majority + margin).
               ForgettingControl: both tasks' accuracy right after training, task 1 at the end,
               the forgetting and ``learned_sequence``. QuantizeLive: the fp32 accuracy (and every
               int8 form's). MaskToggle: answer accuracy on held-out examples. KLKnob: reward and KL
               over the last 10 steps. The runs use an empty temporary runs folder, so nothing comes
               from the result cache (a reader's first click); pretrained checkpoints the widgets
               start from (the small RoBERTa of 11, the tiny GPT and the reward model of 13) are
               used where this machine has them, and trained inside the click where it has not
               (``checkpoint_ready`` says which, for 11's fill-mask box).

How to run
----------
    make bench-notebooks                                # = python bench/notebook_times.py --threads 2
    python bench/notebook_times.py --only 01 07         # some notebooks (merged into the JSON file)
    python bench/notebook_times.py --skip-live          # Run All only
    FTLAB_QUICK=1 python bench/notebook_times.py --only 10 --quick   # smoke test of this script

Units: seconds (wall clock, ``time.perf_counter``) and accuracies as fractions. A markdown table
per notebook goes to stdout, progress to stderr, everything (machine, threads, torch version,
date, per-notebook results) to ``--out`` (default ``bench/notebooks.json``; in quick mode
``build/notebooks-quick.json``). With ``--only`` the named notebooks replace their entries in an
existing file of the same mode. Run it on idle cores: other processes slow every number here.
A full run should take tens of minutes on 2 idle cores (an estimate from the live runs' documented
sizes: about half a minute per fine-tuning widget, a few minutes each for the two-task sequence,
the quantization study and 13's RL run, plus Run All of 13 notebooks), longer where a checkpoint
must be pretrained first.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
# `python bench/notebook_times.py` puts bench/ (not the repo root) on sys.path: make lab importable.
sys.path.insert(0, str(ROOT))

# A notebook cell that builds a widget: `name = lab.<module>.<Widget>(<args>)` on a line of its own.
WIDGET_LINE = re.compile(r"^(?P<name>\w+)\s*=\s*(?P<expr>lab\.\w+\.(?P<cls>\w+)\(.*\))\s*$", re.M)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- configuration
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--only", nargs="+", metavar="NN",
                   help="notebooks to measure, by number prefix, e.g. --only 01 07 (default: all)")
    p.add_argument("--threads", type=int, default=2,
                   help="FTLAB_THREADS for the kernels and the live runs, and torch's threads here (2)")
    p.add_argument("--quick", action="store_true",
                   help="set FTLAB_QUICK=1 (tiny live runs, quick records): a smoke test of this script, "
                        "not a measurement")
    p.add_argument("--skip-run-all", action="store_true", help="measure the live runs only")
    p.add_argument("--skip-live", action="store_true", help="measure Run All only")
    p.add_argument("--cell-timeout", type=int, default=3600,
                   help="seconds one cell may run under Run All before it counts as an error (3600)")
    p.add_argument("--out", default=None,
                   help="JSON results file (default bench/notebooks.json; build/notebooks-quick.json with --quick)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    args.quick = args.quick or os.environ.get("FTLAB_QUICK", "0") not in ("", "0")
    args.notebooks = select_notebooks(args.only)
    if not args.notebooks:
        p.error(f"--only {' '.join(args.only)}: no notebook in {NOTEBOOK_DIR} starts with that")
    if args.out is None:
        args.out = str(ROOT / ("build/notebooks-quick.json" if args.quick else "bench/notebooks.json"))
    return args


def select_notebooks(only: list[str] | None) -> list[Path]:
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    return [p for p in paths if not only or any(p.name.startswith(o) for o in only)]


def set_environment(args) -> None:
    """What the kernels inherit and lab reads at import: the mode and the threads."""
    if args.quick:
        os.environ["FTLAB_QUICK"] = "1"
    else:
        os.environ.pop("FTLAB_QUICK", None)
    os.environ["FTLAB_THREADS"] = str(args.threads)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


# ----------------------------------------------------------------------------- Run All
def cell_seconds(cell) -> float | None:
    """A cell's execution time from nbclient's timing metadata (execute_input to execute_reply)."""
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run_all(path: Path, cell_timeout: int) -> dict:
    """Execute ``path`` top to bottom in a fresh kernel (the committed file is not changed)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    error = None
    t0 = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, CellTimeoutError, DeadKernelError, ...
        error = {"type": type(exc).__name__, "ename": getattr(exc, "ename", type(exc).__name__),
                 "evalue": str(getattr(exc, "evalue", "") or exc).strip()[-2000:]}
    wall = time.perf_counter() - t0
    code = [c for c in nb.cells if c.cell_type == "code"]
    times = [(n, cell_seconds(c), c.source.splitlines()[0] if c.source else "") for n, c in enumerate(code, 1)]
    stderr = []
    for n, c in enumerate(code, 1):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error" and error is not None and "cell" not in error:
                error["cell"] = n
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and "Error" in o.get("text", ""):
                stderr.append({"cell": n, "text": o["text"].strip()[-1000:]})
    timed = [t for t in times if t[1] is not None]
    return {
        "run_all_s": round(wall, 2),
        "cells_s": round(sum(t[1] for t in timed), 2),
        "code_cells": len(code),
        "cells_run": sum(c.get("execution_count") is not None for c in code),
        "slowest_cells": [{"cell": n, "seconds": round(s, 2), "source": src[:80]}
                          for n, s, src in sorted(timed, key=lambda t: -t[1])[:3]],
        "error": error,
        "stderr_errors": stderr,
    }


# ----------------------------------------------------------------------------- live runs
def widget_lines(path: Path) -> list[dict]:
    """The widgets a notebook builds, in order: variable, expression, class (from its cells)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    return [m.groupdict() for c in nb.cells if c.cell_type == "code" for m in WIDGET_LINE.finditer(c.source)]


def trains_on_click(obj) -> str | None:
    """The method a widget's button calls (``run`` or ``update``), or None for a widget without a
    training button (the schedule explorer, the freeze slider, the collator box redraw at once)."""
    if not hasattr(obj, "button"):
        return None
    return "run" if callable(getattr(obj, "run", None)) else "update"


@contextlib.contextmanager
def fresh_runs_folder():
    """Every result a live run stores goes to an empty temporary folder for the block, so none is
    fetched from the cache (checkpoint folders, chosen elsewhere, are unaffected)."""
    from ftcore.records import cache
    old = cache.DEFAULT_RUNS_DIR
    with tempfile.TemporaryDirectory(prefix="ftcore-bench-notebooks-") as d:
        cache.DEFAULT_RUNS_DIR = Path(d)
        try:
            yield Path(d)
        finally:
            cache.DEFAULT_RUNS_DIR = old


@contextlib.contextmanager
def capture_sequence(store: dict):
    """ForgettingControl keeps the accuracy matrix, not the record: catch the record on its way."""
    from ftcore.analysis import continual
    original = continual.train_sequence

    def wrapped(ccfg):
        store["record"] = original(ccfg)
        return store["record"]

    continual.train_sequence = wrapped
    try:
        yield store
    finally:
        continual.train_sequence = original


def _f(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else round(x, 4)


def record_metrics(rec) -> dict:
    """A run record's test accuracy, majority share and the widget's own verdict (with the reason)."""
    from ftcore.records.validity import learned
    from lab.widgets import verdict
    ok, _ = verdict(rec)
    return {"accuracy": _f(rec.metric("accuracy")), "majority": _f(rec.metric("majority_frac")), "learned": ok,
            "verdict": "learned" if ok else learned(rec).reason,
            "detail": {"steps": int(rec.summary.get("steps", 0)), "train_wall_s": _f(rec.summary.get("wall_s")),
                       "status": rec.status}}


def measure(obj, result, extra: dict) -> dict:
    """Accuracy, majority share, learned and details of one widget's result, by its kind."""
    cls = type(obj).__name__
    if cls == "ForgettingControl":
        from ftcore.records.metrics import accuracy_matrix, forgetting_metrics
        from ftcore.records.validity import learned_sequence
        rec = extra["record"]
        m = accuracy_matrix(rec)
        a, f = m.to_numpy(float), forgetting_metrics(m)
        check = learned_sequence(rec)
        return {"accuracy": _f(f["average_accuracy"]),
                "majority": {t: _f(rec.metric("majority_frac", "test", task=t)) for t in m.index},
                "learned": check.passed, "verdict": "learned" if check.passed else check.reason,
                "detail": {"method": obj.method.value, "task1_just_trained": _f(a[0, 0]), "task1_at_end": _f(a[-1, 0]),
                           "task2": _f(a[-1, -1]), "forgetting": _f(f["forgetting"][0]),
                           "tasks": list(m.index), "train_wall_s": _f(rec.summary.get("wall_s"))}}
    if hasattr(result, "metric") and hasattr(result, "status"):  # a RunRecord: LiveRun and kin, HF Trainer
        out = record_metrics(result)
        if cls == "LabelNoise":
            k, p = obj.found(result)
            out["detail"].update(flipped=k, flipped_found_precision=_f(p))
        if cls == "LoraRank":
            out["detail"]["trainable_pct"] = _f(result.summary.get("trainable_pct_at_end"))
        return out
    if cls == "LRFinder":
        return {"accuracy": None, "majority": None, "learned": None, "verdict": "",
                "detail": {"steps": len(result.lrs), "planned_steps": obj.num_steps,
                           "steepest_lr": _f(result.suggestion), "min_loss_lr_over_10": _f(result.min_loss_lr_over_10)}}
    if cls == "QuantizeLive":
        from ftcore.records.validity import LEARN_MARGIN
        tables, meta = result
        arms = tables["arms"].set_index("arm")
        fp32 = tables["predictions"].query("arm == 'fp32'")
        maj = float(fp32["label"].value_counts(normalize=True).max())
        acc = float(arms.loc["fp32", "accuracy"])
        ok = acc >= maj + LEARN_MARGIN
        return {"accuracy": _f(acc), "majority": _f(maj), "learned": ok,
                "verdict": "learned" if ok else f"fp32 accuracy {acc:.3f} < majority {maj:.3f} + {LEARN_MARGIN}",
                "detail": {"accuracy_by_form": {a: _f(v) for a, v in arms["accuracy"].items()},
                           "fit_s": {k: _f(v) for k, v in meta["fit_s"].items()}, "n_test": meta["n_test"]}}
    if cls == "MaskToggle":
        acc = result["accuracy"]
        return {"accuracy": _f(acc.get("test")), "majority": None, "learned": None, "verdict": "",
                "detail": {"mask_prompt": bool(obj.mask.value), "phrasing_accuracy": _f(acc.get("phrasing")),
                           "answer_loss_last20": _f(result["steps"]["answer_loss"].tail(20).mean())}}
    if cls == "KLKnob":
        end = result["steps"].tail(10).mean(numeric_only=True)
        return {"accuracy": None, "majority": None, "learned": None, "verdict": "",
                "detail": {"beta": float(obj.beta.value), "reward_last10": _f(end["reward"]),
                           "kl_last10": _f(end["kl"]), "length_last10": _f(end["length"])}}
    if cls == "TokenizerExplorer":
        return {"accuracy": None, "majority": None, "learned": None, "verdict": "",
                "detail": {"vocab_size": int(obj.vocab.value), "tokens": len(result)}}
    if cls == "FillMask":
        return {"accuracy": None, "majority": None, "learned": None, "verdict": "",
                "detail": {"top_guess": str(result.iloc[0, 1]), "checkpoint_ready": extra.get("checkpoint_ready")}}
    return {"accuracy": None, "majority": None, "learned": None, "verdict": "", "detail": {}}


def live_runs(path: Path) -> tuple[list[str], list[dict]]:
    """Build the notebook's widgets as its cells do; click each training one once."""
    import matplotlib
    matplotlib.use("Agg")
    import lab
    import viz
    viz.set_theme("zh")  # the notebooks' parameters cell: LANG = "zh"
    offered, runs = [], []
    for w in widget_lines(path):
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                obj = eval(w["expr"], {"lab": lab})  # the notebook's own construction line
        except Exception as exc:
            offered.append(w["cls"])
            runs.append({"widget": w["cls"], "error": f"construction: {type(exc).__name__}: {exc}"})
            log(f"  {w['cls']}: construction failed: {exc}")
            continue
        built_s = time.perf_counter() - t0
        cls = type(obj).__name__
        offered.append(cls)
        method = trains_on_click(obj)
        if method is None:
            log(f"  {cls}: no training button (built in {built_s:.1f} s)")
            continue
        extra = {}
        if cls == "FillMask":
            from ftcore.pretraining.mlm import checkpoint_dir
            extra["checkpoint_ready"] = (checkpoint_dir(lab.pretraining.recipe()) / "pretraining.json").is_file()
        log(f"  {cls}.{method}() ...")
        entry = {"widget": cls, "line": w["expr"], "method": method, "built_s": round(built_s, 2)}
        t0 = time.perf_counter()
        try:
            # outside a kernel the widgets' output areas print to stdout: keep it for the tables
            with fresh_runs_folder(), capture_sequence(extra), contextlib.redirect_stdout(sys.stderr):
                t0, c0 = time.perf_counter(), time.process_time()
                returned = getattr(obj, method)()
                entry["seconds"] = round(time.perf_counter() - t0, 2)
                # CPU seconds of this process (all its threads): unlike wall time, what other
                # processes do barely changes it; on idle cores wall ~ cpu_s / threads
                entry["cpu_s"] = round(time.process_time() - c0, 2)
            result = obj.result if getattr(obj, "result", None) is not None else returned
            entry.update(measure(obj, result, extra))
            entry["error"] = None
        except Exception as exc:
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()[-3000:]
        log(f"  {cls}: {entry['seconds']:.1f} s ({entry.get('cpu_s', float('nan')):.0f} CPU-s), accuracy {entry.get('accuracy')}, learned {entry.get('learned')}"
            + (f", ERROR {entry['error']}" if entry["error"] else ""))
        runs.append(entry)
    return offered, runs


# ----------------------------------------------------------------------------- report
def machine_info(args) -> dict:
    import torch
    cpu = "unknown"
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": args.threads,
        "mode": "quick" if args.quick else "full",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _num(x, fmt=".3f") -> str:
    if x is None:
        return "–"
    if isinstance(x, dict):
        return " / ".join(_num(v, fmt) for v in x.values())
    return format(x, fmt)


def _learned(x) -> str:
    return "–" if x is None else ("yes" if x else "NO")


def notes(run: dict) -> str:
    d = run.get("detail") or {}
    if run.get("error"):
        return f"ERROR {run['error'][:120]}"
    if run["widget"] == "ForgettingControl":
        return (f"{d['method']}: task 1 {d['task1_just_trained']:.3f} → {d['task1_at_end']:.3f} "
                f"(forgetting {d['forgetting']:.3f}), task 2 {d['task2']:.3f}")
    def show(v):
        if isinstance(v, dict):
            return "(" + ", ".join(f"{k} {show(x)}" for k, x in v.items()) + ")"
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k} {show(v)}" for k, v in d.items() if k not in ("status", "tasks"))[:240]


def print_tables(report: dict, names: list[str]) -> None:
    info = report["machine"]
    lines = [f"# Notebook times ({info['mode']} mode, {info['threads']} threads, torch {info['torch']}, "
             f"{info['cpu_count']} CPUs, {info['date']})", ""]
    for name in names:
        nb = report["notebooks"][name]
        ra = nb.get("run_all")
        head = (f"Run All {ra['run_all_s']:.1f} s ({ra['cells_run']}/{ra['code_cells']} code cells)"
                + (f" — ERROR in cell {ra['error'].get('cell', '?')}: {ra['error']['ename']}: "
                   f"{ra['error']['evalue'][:200]}" if ra["error"] else "")) if ra else "Run All not measured"
        lines += [f"## {name}", "", head, "", f"Widgets offered: {', '.join(nb.get('widgets') or []) or 'none'}", ""]
        if ra and ra["stderr_errors"]:
            lines += [f"stderr mentioning an error in cell {e['cell']}: {e['text'][:200]}" for e in ra["stderr_errors"]]
            lines.append("")
        if nb.get("live_runs"):
            lines += ["| live run | seconds | CPU seconds | test accuracy | majority | learned | notes |",
                      "|---|---:|---:|---:|---:|:---:|---|"]
            for r in nb["live_runs"]:
                lines.append(f"| {r['widget']}.{r.get('method', '?')}() | {_num(r.get('seconds'), '.1f')} | "
                             f"{_num(r.get('cpu_s'), '.0f')} | {_num(r.get('accuracy'))} | {_num(r.get('majority'))} | {_learned(r.get('learned'))} | "
                             f"{notes(r)} |")
            lines.append("")
    print("\n".join(lines), flush=True)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    set_environment(args)  # before lab (and the kernels) read it
    import torch
    torch.set_num_threads(args.threads)
    info = machine_info(args)
    log(f"{len(args.notebooks)} notebook(s), {info['mode']} mode, {args.threads} threads")

    out = Path(args.out)
    report = {"machine": info, "notebooks": {}}
    if out.is_file():  # keep the other notebooks' entries of an earlier run of the same mode
        with contextlib.suppress(ValueError, KeyError):
            old = json.loads(out.read_text())
            if old["machine"]["mode"] == info["mode"]:
                report["notebooks"] = old["notebooks"]

    names = []
    for path in args.notebooks:
        name = path.stem
        names.append(name)
        entry = report["notebooks"].setdefault(name, {})
        if not args.skip_run_all:
            log(f"{name}: Run All")
            entry["run_all"] = run_all(path, args.cell_timeout)
            ra = entry["run_all"]
            log(f"{name}: Run All {ra['run_all_s']:.1f} s" + (f", ERROR {ra['error']['ename']}" if ra["error"] else ""))
        if not args.skip_live:
            log(f"{name}: live runs")
            entry["widgets"], entry["live_runs"] = live_runs(path)
        entry["measured"] = {"date": info["date"], "threads": args.threads}

    report["notes"] = {
        "units": "seconds (wall clock), cpu_s (this process's CPU seconds, all threads); accuracies and majority shares as fractions of the test split",
        "run_all": "nbclient, fresh python3 kernel per notebook, cwd notebooks/, kernel start included",
        "live_runs": "the widget built by the notebook's own line, its button's method called once at the "
                     "default setting, on an empty temporary runs folder (no cached result)",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print_tables(report, names)
    log(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
