"""Command line: ``ftcore run``, ``ftcore show``, ``ftcore doctor``, ``ftcore tasks``, ``ftcore lr-find``.

Every RunConfig field is a flag (``--train-size 500 --freeze gradual --augment swap,delete``);
``--config FILE`` (JSON or YAML) supplies a base that flags override.

    ftcore run --task rt-sentiment --train-size 2000        # train (or fetch from the run cache)
    ftcore show runs/cache/<run id>                        # summarise a stored record
    ftcore doctor runs/cache/<run id>                      # diagnose it (overfitting, divergence, ...)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .engine.config import ConfigError, RunConfig, load_config

_TUPLE_FIELDS = {"betas": float, "frozen_groups": str, "augment": str, "eval_splits": str, "lora_targets": str}


def _parse_value(name: str, text: str, annotation: str):
    if name in _TUPLE_FIELDS:
        conv = _TUPLE_FIELDS[name]
        return tuple(conv(x) for x in text.split(",") if x)
    if text.lower() == "none" and "None" in annotation:
        return None
    if annotation.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"RunConfig.{name}={text!r} is not allowed: expected true or false")
    for kind, conv in (("int", int), ("float", float)):
        if annotation.startswith(kind):
            try:
                return conv(text)
            except ValueError:
                raise ConfigError(f"RunConfig.{name}={text!r} is not allowed: expected {annotation}") from None
    return text


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON or YAML file of RunConfig fields (flags override it)")
    for f in dataclasses.fields(RunConfig):
        default = f.default if f.default is not dataclasses.MISSING else None
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS,
                       metavar=str(f.type).upper().split(" ")[0].replace("|", ""),
                       help=f"(default: {default!r})")


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    base = load_config(ns.config) if getattr(ns, "config", None) else RunConfig()
    hints = {f.name: str(f.type) for f in dataclasses.fields(RunConfig)}
    changes = {name: _parse_value(name, value, hints[name]) for name, value in vars(ns).items()
               if name in hints}
    return base.replace(**changes)


def summarize(rec) -> str:
    s = rec.summary
    lines = [repr(rec), f"  record:   {rec.path}" if rec.path else "  record:   (not saved)",
             f"  status:   {rec.status}  ({s.get('steps')} steps, {s.get('epochs')} epochs, "
             f"{s.get('train_examples')} training examples)"]
    for split in ("validation", "test"):
        if f"{split}_accuracy" in s:
            lines.append(f"  {split:<11}accuracy {s[f'{split}_accuracy']:.4f}   loss {s[f'{split}_loss']:.4f}   "
                         f"macro-F1 {s[f'{split}_macro_f1']:.4f}")
    if "wall_s" in s:
        lines.append(f"  time:     {s['wall_s']:.1f} s ({s.get('train_s', 0):.1f} s training, "
                     f"{s.get('eval_s', 0):.1f} s evaluating) on {rec.provenance.get('threads')} threads, "
                     f"{rec.provenance.get('device')}")
    if s.get("peak_rss_mb"):
        lines.append(f"  memory:   peak {s['peak_rss_mb']:.0f} MiB resident")
    for _, ev in rec.events.iterrows():
        lines.append(f"  event:    step {ev.step}: {ev.kind} {ev.detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftcore", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train one config (or fetch it from the run cache)")
    _add_config_flags(p_run)
    p_run.add_argument("--runs-dir", default=None, help="run cache folder (default runs/cache)")
    p_run.add_argument("--force", action="store_true", help="retrain even if a record exists")
    p_show = sub.add_parser("show", help="summarise a stored record")
    p_show.add_argument("path")
    p_doctor = sub.add_parser("doctor", help="diagnose a stored record (overfitting, divergence, ...)")
    p_doctor.add_argument("path")
    p_doctor.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the findings")
    sub.add_parser("tasks", help="list the built-in tasks available here")
    p_lr = sub.add_parser("lr-find", help="learning-rate range test with a suggested LR")
    _add_config_flags(p_lr)
    p_lr.add_argument("--runs-dir", default=None)
    args = parser.parse_args(argv)

    from . import MissingAssetError, RecordError, TaskError
    from .engine.models import ModelLoadError
    try:
        if args.command == "tasks":
            from .engine.tasks import load_task, task_names
            for name in task_names():
                print(load_task(name))
        elif args.command == "show":
            from .records.record import RunRecord
            print(summarize(RunRecord.load(args.path)))
        elif args.command == "doctor":
            from .records.doctor import diagnose
            from .records.record import RunRecord
            print(diagnose(RunRecord.load(args.path)).to_text(args.lang))
        elif args.command == "run":
            from .engine.runs import run
            cfg = config_from_args(args)
            print(f"config: {cfg!r}", file=sys.stderr)
            print(summarize(run(cfg, runs_dir=args.runs_dir, force=args.force)))
        elif args.command == "lr-find":
            from .analysis.lr_finder import lr_find
            result = lr_find(config_from_args(args), runs_dir=args.runs_dir)
            print(result)
    except (ConfigError, TaskError, MissingAssetError, RecordError, ModelLoadError) as exc:
        print(f"ftcore: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
