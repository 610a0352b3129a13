"""What a figure declares: the runs and studies it needs (as a function of the scale), the viz
function that draws them (``FigureSpec.draw``, called with the inputs by name), its caption (written
from those same configs) and the notebooks that show it. ``build`` walks :data:`REGISTRY`; runs
shared by figures train once. The figures themselves are declared in :mod:`chapter.figures`, one
module per section."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The need kinds (runs, task sequences, studies, landscapes, values), each carrying its own behaviour;
# figures import them from here.
from .needs import Grid, LandscapeNeed, Need, Sequences, StudyNeed, Value  # noqa: F401


@dataclass(kw_only=True)
class FigureSpec:
    """One figure, declared by keyword. ``caption`` is the text itself or, where it states numbers,
    ``scale -> {"zh", "en"}`` written from the configs ``needs`` builds at that scale (so a caption
    cannot go stale when a config changes). Its title and the chapter's claim are strings of viz's
    tables (``chapter.<id>.title``, ``chapter.<id>.claim``), checked there for both languages."""
    id: str
    section: str
    notebooks: tuple[str, ...]  # the notebooks that draw it, by number ("05", "07"): make_notebooks reads this
    caption: dict[str, str] | Callable[[Any], dict[str, str]]
    needs: Callable[[Any], dict[str, Any]]  # Scale -> {input name: Grid | Sequences | StudyNeed | ...}
    draw: Callable[..., Any]  # the viz figure function: draw(**inputs) -> Figure
    measure: Callable[[dict], dict] | None = None  # inputs -> {"zh", "en", "differs"}
    # {input name: labels -> bool}: the grid cells that must be runs that learned (chapter.claims);
    # None = not declared yet (the gallery says so)
    must_learn: dict[str, Callable[[dict], bool]] | None = None
    claims: list = field(default_factory=list)  # chapter.claims.Claim / RateClaim
    beyond: str = ""  # for a figure beyond FIGURES.md's list: why it is here
    # the smallest difference in accuracy that matters here: within ±margin a claim's arms can be
    # called equivalent (an equivalence test, chapter.claims); stated in the gallery
    margin: float = 0.015
    # Its runs follow the reviewed protocol (``chapter.protocol``: settings chosen on validation with
    # the selection seeds, the whole test split, the gate on validation): at the full scale its needs
    # are built at ``chapter.scale.REVIEWED``. Every figure has moved over (and the full scale is the
    # reviewed one); the gallery would mark a figure still drawn from the earlier protocol's records,
    # and its gate would read test, as that protocol's did.
    reviewed: bool = False
    # the choices its settings come from (names in chapter.protocol.SELECTIONS): the gallery lists
    # every config each one tried, with its validation outcome, failures included
    selections: tuple[str, ...] = ()
    # must-learn runs per arm that may fail to learn while the gate passes (fewer than half the
    # arm's seeds): where a rare failure is the method's failure rate, kept in the comparisons and
    # named on the figure and in the gallery (ftcore.records.validity.Gate)
    tolerated_failures: int = 0

    def __post_init__(self) -> None:
        declared = getattr(self.needs, "declared", self.needs)  # (a dataclasses.replace copy: unwrap)

        def needs(S):  # every reader of needs gets the figure's own scale
            return declared(self.scale_for(S))
        needs.declared = declared
        self.needs = needs

    def scale_for(self, S):
        """The scale this figure's runs are built at when the build's scale is ``S``."""
        import dataclasses

        from .scale import REVIEWED
        if self.reviewed and S.name == "full":
            return dataclasses.replace(REVIEWED, runs_dir=S.runs_dir)
        return S

    @property
    def title(self) -> dict[str, str]:
        """{"zh", "en"}: the figure's title in the gallery and the notebooks' summary."""
        return _texts(f"chapter.{self.id}.title")

    @property
    def claim(self) -> dict[str, str]:
        """{"zh", "en"}: the chapter's (simulated) claim in our words; {} where it makes none."""
        return _texts(f"chapter.{self.id}.claim")

    def caption_for(self, S) -> dict[str, str]:
        """The caption at scale ``S`` (the gallery's scale)."""
        return self.caption(self.scale_for(S)) if callable(self.caption) else self.caption

    def render(self, inputs: dict):
        """The figure: ``draw`` called with the inputs it draws (names starting with ``gate_`` are the
        gate's only, e.g. the run a study was computed from)."""
        return self.draw(**{k: v for k, v in inputs.items() if not k.startswith("gate_")})

    def judged_inputs(self, inputs: dict) -> dict:
        """The inputs as the gate, the claims and ``chapter.report`` read them (a subclass may derive
        some, e.g. a RunSet from studies)."""
        return inputs

    def verdicts(self, inputs: dict) -> list:
        """Each claim judged from the figure's inputs (paired effect, interval, Holm-corrected p
        across the figure's claims, verdict)."""
        from .claims import judge_all
        return judge_all(self.claims, inputs, self.margin)

    def gate_split(self, quick: bool = False) -> str:
        """The split the gate reads: validation under the reviewed protocol, never test. Quick mode's
        runs (CI's smoke test, too small to learn, never a result) record no validation, so its
        gate, only reported, reads test as the earlier protocol's did."""
        return "validation" if self.reviewed and not quick else "test"

    def gate(self, inputs: dict, majority: float | None = None, *, quick: bool = False):
        """The validity gate of the figure's must-learn runs, or None when none are declared
        (``quick``: the inputs are quick mode's, see :meth:`gate_split`)."""
        from .claims import gate
        if self.must_learn is None:
            return None
        return gate(self.id, self.must_learn, inputs, majority, split=self.gate_split(quick),
                    tolerated=self.tolerated_failures)


def _texts(key: str) -> dict[str, str]:
    from viz.text import STRINGS
    return {lang: table[key] for lang, table in STRINGS.items() if key in table}


REGISTRY: dict[str, FigureSpec] = {}

# Rows of FIGURES.md that no spec draws yet, with the open issue that builds each (the test of the
# registry checks this list, so a new row cannot be forgotten silently).
PLANNED: dict[str, str] = {
}


def extra() -> dict[str, str]:
    """Figures beyond FIGURES.md's list, with why (each spec's ``beyond``): e.g. the seeds' working
    systems shown from records."""
    return {fid: spec.beyond for fid, spec in REGISTRY.items() if spec.beyond}


def figure(spec: FigureSpec) -> FigureSpec:
    if spec.id in REGISTRY:
        raise ValueError(f"figure {spec.id!r} registered twice")
    REGISTRY[spec.id] = spec
    return spec
