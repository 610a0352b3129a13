"""Command line: ``ftcore run``, ``show``, ``doctor``, ``tasks``, ``lr-find``, ``lightning``, ``trainer``, ``tensorboard``, ``predict``.

Every RunConfig field is a flag (``--train-size 500 --freeze gradual --augment swap,delete``);
``--config FILE`` (JSON or YAML) supplies a base that flags override.

    ftcore run --task rt-sentiment --train-size 2000        # train (or fetch from the run cache)
    ftcore show runs/cache/<run id>                        # summarise a stored record
    ftcore doctor runs/cache/<run id>                      # diagnose it (overfitting, divergence, ...)
    ftcore run --task bbc-topic --save-model my-model       # train and keep the model (transformers folder)
    ftcore predict my-model "some text" "another text"      # its labels and class probabilities
    ftcore lightning --task bbc-topic                       # the same run under PyTorch Lightning
    ftcore trainer --lr-strategy layerwise --label-smoothing 0.1 --early-stopping-patience 2 \
        --early-stopping-metric accuracy --eval-every 16        # the same run under HF Trainer, full recipe
    ftcore tensorboard runs/cache/<run id> --logdir tb      # then: tensorboard --logdir tb
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .config import ConfigError, RunConfig, coerce, describe, load_config

_METAVARS = {"int": "INT", "float": "NUM", "bool": "BOOL", "str": "NAME", "tuple": "A,B"}


def _metavar(annotation: str) -> str:
    kind = _METAVARS.get(annotation.split("[")[0].split(" ")[0], "VALUE")
    return kind + ("|none" if "None" in annotation else "")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (``ftcore run: error: ...``), not usage + error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config_flags(p: argparse.ArgumentParser, *, hide: tuple[str, ...] = ()) -> None:
    """One flag per RunConfig field; its help (meaning, unit, allowed values, default) is generated
    from the field's documentation and validation rules in ``ftcore.config``. Flags in
    ``hide`` are accepted (so that using one can be answered with a clear line) but not listed."""
    p.add_argument("--config", metavar="FILE", help="a .json or .yaml file of RunConfig fields (name: value) "
                   "used as the base; flags given here override it")
    group = p.add_argument_group("run settings (RunConfig fields; `none` sets an optional one to None)")
    for f in dataclasses.fields(RunConfig):
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS,
                           metavar=_metavar(str(f.type)),
                           help=argparse.SUPPRESS if f.name in hide else describe(f.name).replace("%", "%%"))


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    """The config a command line asks for: ``--config`` file (if any), then each flag on top."""
    base = load_config(ns.config) if getattr(ns, "config", None) else RunConfig()
    names = {f.name for f in dataclasses.fields(RunConfig)}
    changes = {name: coerce(name, value) for name, value in vars(ns).items() if name in names}
    return base.replace(**changes) if changes else base


def summarize(rec) -> str:
    s = rec.summary
    lines = [repr(rec), f"  record:   {rec.path}" if rec.path else "  record:   (not saved)",
             f"  status:   {rec.status}  ({s.get('steps')} steps, {s.get('epochs')} epochs, "
             f"{s.get('train_examples')} training examples)"]
    for split in ("validation", "test"):
        if f"{split}_accuracy" in s:
            lines.append(f"  {split:<11}accuracy {s[f'{split}_accuracy']:.4f}   loss {s[f'{split}_loss']:.4f}   "
                         f"macro-F1 {s[f'{split}_macro_f1']:.4f}")
    from .records.queries import confusion_matrix, per_class_table
    names = s.get("label_names")
    per_class = per_class_table(rec.evals, "test", names)
    if len(per_class):
        lines.append("  test per class:  precision  recall     F1  support")
        lines += [f"    {str(r['class'])[:14]:<14} {r['precision']:>8.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} {r['support']:>8d}"
                  for _, r in per_class.iterrows()]
        cm = confusion_matrix(rec.evals, "test", names)
        lines.append("  confusion (rows: true, columns: predicted):")
        lines += ["    " + line for line in cm.to_string().splitlines()]
    if "wall_s" in s:
        lines.append(f"  time:     {s['wall_s']:.1f} s ({s.get('train_s', 0):.1f} s training, "
                     f"{s.get('eval_s', 0):.1f} s evaluating) on {rec.provenance.get('threads')} threads, "
                     f"{rec.provenance.get('device')}, {rec.config.get('precision', 'fp32')}")
    if s.get("peak_rss_mb"):
        lines.append(f"  memory:   peak {s['peak_rss_mb']:.0f} MiB resident")
    for _, ev in rec.events.iterrows():
        lines.append(f"  event:    step {ev.step}: {ev.kind} {ev.detail}")
    return "\n".join(lines)


def show(path: str) -> str:
    """The summary of whatever ftcore stored at ``path``: a run record, a landscape or a study."""
    import json
    from pathlib import Path

    from .records.record import RecordError, RunRecord, folder_kind

    if not Path(path).exists():
        raise RecordError(f"{path} does not exist (give a record folder, e.g. runs/cache/<run id>)")
    kind = folder_kind(path)
    if kind == "landscape":
        from .analysis.landscape import Landscape
        return "saved loss landscape (ftcore.analysis.landscape)\n" + repr(Landscape.load(path))
    if kind == "study":
        from .records.studies import load_study
        study = load_study(path)
        return f"saved study {study.name!r} (ftcore.records.studies)\n" + repr(study)
    if kind == "other":
        keys = sorted(json.loads((Path(path) / "meta.json").read_text(encoding="utf-8")))
        raise RecordError(f"{path} is not a run record, landscape or study ftcore can show "
                          f"(its meta.json has {keys})")
    return summarize(RunRecord.load(path))  # None: RunRecord.load says what is wrong with the folder


# What `ftcore lr-find` sets itself (its range test), and the flag to use instead.
LR_FIND_OWNS = {"lr": "--end-lr", "range_start_lr": "--start-lr", "max_steps": "--num-steps",
                "epochs": "--num-steps", "schedule": None, "warmup": None, "warmup_ratio": None,
                "warmup_steps": None, "divergence_factor": "--stop-factor", "eval_splits": None,
                "test_at_end": None, "early_stopping_patience": None}


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive value, got {text!r}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="ftcore", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_run = sub.add_parser("run", help="train one config (or fetch it from the run cache)",
                           description="Train one config, or fetch its record from the run cache. Units: "
                           "a step is one optimizer update (grad_accum batches); an epoch is one pass "
                           "over the training examples; a batch is batch_size examples.")
    _add_config_flags(p_run)
    p_run.add_argument("--runs-dir", default=None, metavar="DIR",
                       help="run cache folder (default: runs/cache in this checkout, else ~/.cache/ftcore/runs;"
                       " $FTCORE_RUNS_DIR overrides); checked to be writable before training")
    p_run.add_argument("--force", action="store_true", help="retrain even if a valid record exists")
    p_run.add_argument("--save-model", default=None, metavar="DIR",
                       help="also save the trained model to DIR for transformers' from_pretrained (with its "
                       "tokenizer, label names and run id); weights are not cached, so this always trains")
    p_pl = sub.add_parser("lightning", help="train one config with PyTorch Lightning (same record)",
                          description="Train one config with PyTorch Lightning over ftcore's model, data, "
                          "optimizer and schedule; a Lightning callback writes the same RunRecord (its run "
                          "id differs from `ftcore run`'s). Needs `pip install lightning`.")
    _add_config_flags(p_pl)
    p_pl.add_argument("--runs-dir", default=None, metavar="DIR", help="run cache folder (as for `ftcore run`)")
    p_pl.add_argument("--force", action="store_true", help="retrain even if a valid record exists")
    p_pl.add_argument("--save-model", default=None, metavar="DIR",
                      help="also save the trained model to DIR (as `ftcore run --save-model`); always trains")
    p_hf = sub.add_parser("trainer", help="train one config with Hugging Face Trainer (same record)",
                          description="Train one config with transformers.Trainer over ftcore's model, data and "
                          "optimizer param groups (ftcore.engine.hf.train_hf): evaluation every --eval-every "
                          "updates (else per epoch), per-class metrics, early stopping with the best weights "
                          "loaded at the end (--early-stopping-patience), label smoothing. Its run id differs "
                          "from `ftcore run`'s.")
    _add_config_flags(p_hf)
    p_hf.add_argument("--runs-dir", default=None, metavar="DIR", help="run cache folder (as for `ftcore run`)")
    p_hf.add_argument("--force", action="store_true", help="retrain even if a valid record exists")
    p_tb = sub.add_parser("tensorboard", help="write stored records as TensorBoard event files",
                          description="Write each run record's scalars (training loss, every layer group's "
                          "LR and gradient norm, every evaluation metric per split) and events to "
                          "LOGDIR/<record folder name>; open with `tensorboard --logdir LOGDIR`. Needs "
                          "`pip install tensorboard`.")
    p_tb.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run record folders")
    p_tb.add_argument("--logdir", required=True, metavar="DIR", help="TensorBoard log folder to write to")
    p_pred = sub.add_parser("predict", help="label texts with a model saved by --save-model",
                            description="Print each text's predicted label, its probability and every "
                            "class's probability (tab-separated), from a folder written by --save-model.")
    p_pred.add_argument("model_dir", metavar="DIR", help="the saved model folder")
    p_pred.add_argument("texts", nargs="*", metavar="TEXT", help="texts to label")
    p_pred.add_argument("--file", default=None, metavar="FILE", help="also label each non-empty line of FILE")
    p_pred.add_argument("--json", action="store_true", help="one JSON object per line instead")
    p_show = sub.add_parser("show", help="summarise a stored record (run, landscape or study)")
    p_show.add_argument("path", help="the record's folder")
    p_doctor = sub.add_parser("doctor", help="diagnose a stored record (overfitting, divergence, ...)")
    p_doctor.add_argument("path", help="the run record's folder")
    p_doctor.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the findings")
    sub.add_parser("tasks", help="list the built-in tasks available here")
    p_lr = sub.add_parser(
        "lr-find", help="learning-rate range test with a suggested LR",
        description="LR range test: train --num-steps optimizer steps while the LR rises exponentially "
                    "from --start-lr to --end-lr, stopping once the loss exceeds --stop-factor x its "
                    "first value; suggests the LR of the steepest descent. The other run settings "
                    "(model, task, data, batch, optimizer...) are those of `ftcore run`; the range "
                    "test sets " + ", ".join("--" + n.replace("_", "-") for n in LR_FIND_OWNS) + " itself.")
    from .analysis.lr_finder import DEFAULTS as LR_DEFAULTS
    p_lr.add_argument("--start-lr", type=_positive(float), default=LR_DEFAULTS["start_lr"], metavar="NUM",
                      help="LR of the first step; a number in (0, end-lr). Default: %(default)g.")
    p_lr.add_argument("--end-lr", type=_positive(float), default=LR_DEFAULTS["end_lr"], metavar="NUM",
                      help="LR of the last step; a number in (start-lr, 10]. Default: %(default)g.")
    p_lr.add_argument("--num-steps", type=_positive(int), default=LR_DEFAULTS["num_steps"], metavar="INT",
                      help="optimizer steps of the test; an integer >= 3. Default: %(default)d.")
    p_lr.add_argument("--stop-factor", type=_positive(float), default=LR_DEFAULTS["stop_factor"],
                      metavar="NUM", help="stop once the loss exceeds this factor x the first loss; a number "
                      "in (1, 100]. Default: %(default)g.")
    _add_config_flags(p_lr, hide=tuple(LR_FIND_OWNS))
    p_lr.add_argument("--runs-dir", default=None, metavar="DIR",
                      help="run cache folder (default: runs/cache in this checkout, else ~/.cache/ftcore/runs;"
                      " $FTCORE_RUNS_DIR overrides); checked to be writable before training")
    args = parser.parse_args(argv)

    import warnings

    from . import MissingAssetError, RecordError, TaskError
    from .analysis.lr_finder import RangeTestError
    from .engine.models import ModelLoadError
    from .engine.export import ExportError

    def one_line(message, category, *_args, **_kw):  # a warning is one line too, not file:line + source
        print(f"ftcore: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        try:
            return _dispatch(args, (ConfigError, TaskError, MissingAssetError, RecordError, ModelLoadError,
                                    RangeTestError, ExportError))
        except KeyboardInterrupt as exc:  # Ctrl-C: one line, not the traceback of wherever it landed
            print(f"ftcore: {interrupted(exc, args)}", file=sys.stderr)
            return 130  # 128 + SIGINT, as a shell reports it


def interrupted(exc: KeyboardInterrupt, args: argparse.Namespace) -> str:
    """The line for a Ctrl-C: where training stopped (``ftcore.engine.runs.RunInterrupted`` knows
    its step). Records are only ever saved whole, after training, so an interrupted run left
    nothing behind; TensorBoard files are written as they go."""
    step = getattr(exc, "step", None)
    where = "interrupted" if step is None else f"interrupted at step {step}"
    if args.command == "tensorboard":
        return f"{where}; {args.logdir} may be incomplete; rerun to write it again"
    return f"{where}; nothing was stored; rerun to start again"


def _dispatch(args: argparse.Namespace, expected: tuple[type[Exception], ...]) -> int:
    try:
        if args.command == "tasks":
            from .engine.tasks import load_task, task_names
            for name in task_names():
                print(load_task(name))
        elif args.command == "show":
            print(show(args.path))
        elif args.command == "doctor":
            from .records.doctor import diagnose
            from .records.record import load_run_record
            print(diagnose(load_run_record(args.path, "doctor")).to_text(args.lang))
        elif args.command == "run":
            from .engine.runs import run
            cfg = config_from_args(args)
            print(f"config: {cfg!r}", file=sys.stderr)
            if args.save_model:
                from .engine.export import train_and_save
                rec, path = train_and_save(cfg, args.save_model, runs_dir=args.runs_dir)
                print(summarize(rec))
                print(f"  model:    {path} (AutoModelForSequenceClassification.from_pretrained; "
                      f"ftcore predict {path} \"text\")")
            else:
                print(summarize(run(cfg, runs_dir=args.runs_dir, force=args.force)))
        elif args.command == "lightning":
            try:
                from .engine import lightning as ftl
            except ImportError as exc:
                raise ConfigError(str(exc)) from None
            cfg = config_from_args(args)
            print(f"config: {cfg!r}", file=sys.stderr)
            if args.save_model:
                from .engine.export import save_model
                module = ftl.FtcoreLightningModule.from_config(cfg)
                rec = ftl.train_lightning(cfg, module=module)
                stored = ftl.stored_lightning_run(cfg, args.runs_dir)
                if args.force or not stored.path.exists():
                    rec.save(stored.path)
                path = save_model(module.model, args.save_model, cfg=cfg, label_names=module.data.task.label_names,
                                  tokenizer=module.data.tokenizer, run_id=rec.run_id, record=rec)
                print(summarize(rec))
                print(f"  model:    {path}")
            else:
                print(summarize(ftl.run_lightning(cfg, runs_dir=args.runs_dir, force=args.force)))
        elif args.command == "trainer":
            from .engine.hf import run_hf
            cfg = config_from_args(args)
            print(f"config: {cfg!r}", file=sys.stderr)
            print(summarize(run_hf(cfg, runs_dir=args.runs_dir, force=args.force)))
        elif args.command == "tensorboard":
            from .records.tensorboard import write_records
            try:
                written = write_records(args.paths, args.logdir)
            except ImportError as exc:
                raise ConfigError(str(exc)) from None
            for p in written:
                print(f"wrote {p}")
            print(f"open with: tensorboard --logdir {args.logdir}   (then http://localhost:6006)")
        elif args.command == "predict":
            import json

            from .engine.export import ExportError, check_saved, format_predictions, predict, read_texts
            check_saved(args.model_dir)  # no config or weights: one line before the texts are read
            texts = list(args.texts) + (read_texts(args.file) if args.file else [])
            if not texts:
                raise ExportError("no texts to label: give TEXT arguments or --file FILE (one text per line)")
            preds = predict(args.model_dir, texts)
            print("\n".join(json.dumps(p, ensure_ascii=False) for p in preds) if args.json
                  else format_predictions(preds))
        elif args.command == "lr-find":
            from .analysis.lr_finder import lr_find
            owned = [n for n in LR_FIND_OWNS if n in vars(args)]
            if owned:
                instead = sorted({LR_FIND_OWNS[n] for n in owned if LR_FIND_OWNS[n]})
                raise ConfigError(
                    f"ftcore lr-find sets {', '.join('--' + n.replace('_', '-') for n in owned)} itself "
                    f"(the range test's schedule)" + (f": use {', '.join(instead)} instead" if instead else
                                                      "; leave it out"))
            result = lr_find(config_from_args(args), start_lr=args.start_lr, end_lr=args.end_lr,
                             num_steps=args.num_steps, stop_factor=args.stop_factor, runs_dir=args.runs_dir)
            print(result)
    except expected as exc:
        print(f"ftcore: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
