"""lab: what the chapter notebooks call: small live runs with live curves, and the widgets
(schedule explorer, freeze-depth slider, LR / label-noise / EWC / LoRA controls, a collator box).

Notebooks stay thin: they import lab, ftcore, viz and chapter and call them. ``FTLAB_QUICK=1`` (set
by the tests) shrinks every live run to a few steps.
"""
import warnings

# A Chinese label drawn without its glyphs shows empty boxes: make it an error in every notebook
# (nbval then fails the notebook).
warnings.filterwarnings("error", message="Glyph .* missing from")

from .env import QUICK, live_config, versions  # noqa: E402
from .live import LiveCurves, train_live  # noqa: E402
from . import collate, hf_demo, widgets  # noqa: E402  (lab.widgets.schedule_explorer(), ...)

__all__ = ["LiveCurves", "QUICK", "live_config", "train_live", "versions"]
