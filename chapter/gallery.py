"""``figures/README.md``: every figure with its caption, the runs behind it and, where the chapter
made a claim, the claim next to our measurement."""
from __future__ import annotations

from pathlib import Path

from .registry import REGISTRY
from .scale import Scale


def _runs_line(S: Scale, spec, inputs: dict) -> str:
    parts = []
    for name, value in inputs.items():
        if hasattr(value, "records"):  # a RunSet
            recs = value.records
            if not recs:
                continue
            prov = getattr(recs[0], "provenance", None)
            if prov is None:  # results read from studies (e.g. one arm of a study per seed), listed above or below
                parts.append(f"{len(recs)} results ({name}) derived from studies")
                continue
            seeds = sorted({r.config.get("seed") for r in recs if "seed" in r.config} |
                           {r.config.get("continual", {}).get("base", {}).get("seed") for r in recs
                            if "continual" in r.config} - {None})
            steps = sum(int(r.summary.get("steps") or sum(t.get("steps") or 0 for t in r.summary.get("per_task") or []))
                        for r in recs)  # a task sequence counts its tasks' steps
            cpu = [r.summary.get("cpu_s") for r in recs]
            # the cost: optimizer steps and CPU seconds (wall time also measures what else ran)
            cost = (f"{steps:,} optimizer steps, {sum(cpu) / 60:.0f} CPU min in all" if all(c is not None for c in cpu)
                    else f"{steps:,} optimizer steps in all")
            ids = ", ".join(f"`{r.run_id}`" for r in recs[:4]) + (" …" if len(recs) > 4 else "")
            parts.append(f"{len(recs)} runs ({name}; seeds {seeds}; {cost}; "
                         f"ftcore {prov.get('ftcore_version', '?')}, git {str(prov.get('git_commit', '?'))[:10]}, "
                         f"torch {prov.get('libraries', {}).get('torch', '?')}, "
                         f"{prov.get('threads', '?')} threads): {ids}")
        elif hasattr(value, "tables"):  # a Study
            parts.append(f"study `{value.path.name if value.path else value.name}`")
        elif isinstance(value, dict) and "surface" in value:
            parts.append(f"landscape of run `{value['meta'].get('run_id')}`, {len(value['surface'])} grid points")
    return "; ".join(parts) or "asset metadata only"


EARLIER = ("Protocol: **earlier** (not yet regenerated under the reviewed protocol, issue 24): its settings (the "
           "base regime, the methods' learning rates) were chosen on test accuracy of the same fixed 500-review test "
           "subset the figure reports, and its intervals cover seed noise on that subset only. Read its verdicts as "
           "provisional.")


def _protocol_lines(spec, S: Scale) -> list[str]:
    """How the figure's settings were chosen: the reviewed protocol's selections, each with every
    config it tried and its validation outcome, or a note that the figure is not reviewed yet."""
    if S.quick:
        return []
    if not spec.reviewed:
        return [EARLIER, ""]
    from .protocol import SELECTIONS, run_selection
    from .scale import SELECTION_SEEDS
    lines = [f"Protocol: **reviewed**. Settings chosen on the whole validation split with seeds "
             f"{', '.join(map(str, SELECTION_SEEDS))} (never a reporting seed), before any test number existed; "
             f"reported runs tested once on the whole test split, each example's prediction stored; intervals "
             f"over seeds and test items; verdicts Holm-corrected within the figure; \"equivalent\" means an "
             f"equivalence test within ±{spec.margin:g} accuracy.", ""]
    for name in spec.selections:
        sel = SELECTIONS[name]
        try:
            out = run_selection(sel, spec.scale_for(S), render_only=True)
        except Exception as exc:  # noqa: BLE001 - a selection whose records are not stored: say so
            lines += [f"Selection `{name}`: records not all stored ({str(exc).splitlines()[0]}).", ""]
            continue
        lines += [f"Selection `{name}` ({sel.note or 'learning rate'}; chosen: **{out.chosen}**). Every config tried:",
                  "", out.table(), ""]
    return lines


def _rel(path: str) -> str:
    from .scale import ROOT
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else str(p)


def write_gallery(out: Path, S: Scale, inputs_by_id: dict, summary: dict, pending: dict | None = None) -> Path:
    base = S.base
    lines = ["# 图集 · Figure gallery — 3.2 微调方法", "",
             "Every number in these figures comes from a recorded run of `ftcore` "
             f"(scale **{S.name}**: records in `{_rel(S.runs_dir)}/`). Regenerate with `make figures`; "
             "redraw from the records with `make figures-render`.", "",
             f"Base run of most figures: `{base!r}`.", "",
             f"Built in {summary['total_s']:.0f} s ({summary['runs_trained']} runs trained, "
             f"collect {summary['collect_s']:.0f} s, render {summary['render_s']:.0f} s).", ""]
    pending = pending or {}
    if pending:
        lines += [f"**{len(pending)} of {len(REGISTRY)} figures are pending**: their records are not all stored "
                  "yet (a regeneration in progress); `make figures` trains what is missing and can resume.", ""]
    for fid, spec in REGISTRY.items():
        if fid in pending:
            lines += [f"## {spec.section} · {spec.title['zh']} / {spec.title['en']} (`{fid}`)", "",
                      f"Pending: {pending[fid]}.", ""]
        if fid not in inputs_by_id:
            continue
        inputs = inputs_by_id[fid]
        lines += [f"## {spec.section} · {spec.title['zh']} / {spec.title['en']} (`{fid}`)", "",
                  f"![{spec.title['zh']}](zh/{fid}.svg)", "",
                  f"{spec.caption_for(S)['zh']}", "", f"*{spec.caption_for(S)['en']}*", "",
                  f"English version: [png](en/{fid}.png) · [svg](en/{fid}.svg) · [pdf](en/{fid}.pdf); "
                  f"中文：[svg](zh/{fid}.svg) · [pdf](zh/{fid}.pdf)", ""]
        lines += _protocol_lines(spec, S)
        g = spec.gate(inputs, quick=S.quick)
        if g is None:
            lines += ["Validity gate: not declared yet (no must-learn arms checked).", ""]
        elif not g.checks:
            lines += ["Validity gate: no must-learn arm (the figure shows runs about failure or measurements only).", ""]
        elif g.passed:
            lines += [f"Validity gate (on {spec.gate_split(S.quick)}): passed ({g.reason()}).", ""]
        else:
            lines += [f'<span style="color:#a33">**⚠ 结果无效 · not a valid result: {g.reason(limit=5)}**</span>', ""]
        if spec.claim:
            lines += ["| | |", "|---|---|", f"| 教材的说法 · the chapter's claim | {spec.claim['zh']}<br>{spec.claim['en']} |"]
            for j in spec.verdicts(inputs):
                flag = " **⚠**" if j.verdict == "differs" else ""
                lines += [f"| {j.claim.text['zh']} · {j.claim.text['en']} | {j.line('zh')}<br>{j.line('en')}{flag} "
                          f"({j.effect.kind}) |"]
            if spec.measure is not None and not spec.claims:
                m = spec.measure(inputs)
                flag = {True: " **⚠ 与教材不同 · differs from the chapter**", False: " (与教材一致 · agrees)",
                        None: ""}[m.get("differs")]
                lines += [f"| 实测 · measured | {m['zh']}<br>{m['en']}{flag} |"]
            elif spec.measure is not None and (note := spec.measure(inputs).get("note")):
                lines += [f"| 说明 · note | {note['zh']}<br>{note['en']} |"]
            lines += [""]
        lines += [f"Runs: {_runs_line(S, spec, inputs)}", ""]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
