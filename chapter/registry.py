"""What a figure declares: the runs and studies it needs (as a function of the scale) and the viz
function that draws them (``FigureSpec.draw``, called with the inputs by name). ``build`` walks
:data:`REGISTRY`; runs shared by figures train once."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ftcore import RunConfig


@dataclass
class Grid:
    """Runs: ``(labels, RunConfig)`` cells; arrives in the figure as a ``viz.RunSet``.

    ``engine_label``: the label naming each cell's training loop: "ftcore", "hf" (HF Trainer,
    ``ftcore.engine.hf``) or "lightning" (``ftcore.engine.lightning``); without it every cell is an
    ftcore run."""
    cells: list[tuple[dict[str, Any], RunConfig]]
    engine_label: str | None = None

    def engine(self, labels: dict[str, Any]) -> str:
        return labels[self.engine_label] if self.engine_label else "ftcore"


@dataclass
class Sequences:
    """Task sequences (continual learning): ``(labels, ContinualConfig)`` cells → a RunSet."""
    cells: list[tuple[dict[str, Any], Any]]


@dataclass
class StudyNeed:
    """A cached study: ``compute()`` → (tables, meta), keyed on ``name`` and ``params``."""
    name: str
    params: dict[str, Any]
    compute: Callable[[], tuple[dict, dict]]


@dataclass
class LandscapeNeed:
    cfg: RunConfig
    lcfg: Any


@dataclass
class Value:
    """Something already at hand (metadata read from the assets)."""
    get: Callable[[], Any]


@dataclass
class FigureSpec:
    id: str
    section: str
    title: dict[str, str]  # {"zh": ..., "en": ...}
    caption: dict[str, str]
    needs: Callable[[Any], dict[str, Any]]  # Scale -> {input name: Grid | Sequences | StudyNeed | ...}
    claim: dict[str, str] = field(default_factory=dict)  # the chapter's (simulated) claim, in our words
    measure: Callable[[dict], dict] | None = None  # inputs -> {"zh", "en", "differs"}
    draw: Callable[..., Any] = field(kw_only=True)  # the viz figure function: draw(**inputs) -> Figure
    # {input name: labels -> bool}: the grid cells that must be runs that learned (chapter.claims);
    # None = not declared yet (the gallery says so)
    must_learn: dict[str, Callable[[dict], bool]] | None = field(default=None, kw_only=True)
    claims: list = field(default_factory=list, kw_only=True)  # chapter.claims.Claim / RateClaim

    def render(self, inputs: dict):
        """The figure: ``draw`` called with the inputs it draws (names starting with ``gate_`` are the
        gate's only, e.g. the run a study was computed from)."""
        return self.draw(**{k: v for k, v in inputs.items() if not k.startswith("gate_")})

    def judged_inputs(self, inputs: dict) -> dict:
        """The inputs as the gate, the claims and ``chapter.report`` read them (a subclass may derive
        some, e.g. a RunSet from studies)."""
        return inputs

    def verdicts(self, inputs: dict) -> list:
        """Each claim judged from the figure's inputs (seed-paired effect, interval, verdict)."""
        from .claims import judge
        return [judge(c, inputs) for c in self.claims]

    def gate(self, inputs: dict, majority: float | None = None):
        """The validity gate of the figure's must-learn runs, or None when none are declared."""
        from .claims import gate
        return None if self.must_learn is None else gate(self.id, self.must_learn, inputs, majority)


REGISTRY: dict[str, FigureSpec] = {}

# Rows of FIGURES.md that no spec draws yet, with the open issue that builds each (the test of the
# registry checks this list, so a new row cannot be forgotten silently).
PLANNED: dict[str, str] = {
}
# Figures beyond FIGURES.md's list, with why: the seeds' working systems shown from records.
EXTRA: dict[str, str] = {
    "engines": "issue 14: one config trained by ftcore's loop, HF Trainer and Lightning (seeds 001-003)",
}


def figure(spec: FigureSpec) -> FigureSpec:
    if spec.id in REGISTRY:
        raise ValueError(f"figure {spec.id!r} registered twice")
    REGISTRY[spec.id] = spec
    return spec
