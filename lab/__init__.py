"""lab: what the chapter notebooks call: small live runs with live curves, and the widgets
(schedule explorer, freeze-depth slider, LR / label-noise / EWC / LoRA controls, a collator box).

Notebooks stay thin: they import lab, ftcore, viz and chapter and call them. ``FTLAB_QUICK=1`` (set
by the tests) shrinks every live run to a few steps.
"""
import warnings

# A Chinese label drawn without its glyphs shows empty boxes: make it an error in every notebook
# (nbval then fails the notebook).
warnings.filterwarnings("error", message="Glyph .* missing from")


def _quiet_libraries() -> None:
    """No per-load progress bars or info chatter from transformers in the notebooks: lab's own
    progress bars are the ones that matter (and checked cells must print the same every time)."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # peft calls a transformers 5 method deprecated in favour of another: not the reader's concern
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


_quiet_libraries()

from .env import LIVE_LR, LORA_LR, QUICK, live_config, versions  # noqa: E402
from .live import LiveCurves, train_live  # noqa: E402
from . import hf_demo, objectives, widgets  # noqa: E402  (lab.widgets.schedule_explorer(), ...)
from . import quantization  # noqa: E402  (notebook 12: lab.quantization.QuantizeLive(), ...)
from . import alignment  # noqa: E402  (notebook 13: lab.alignment.MaskToggle(), lab.alignment.KLKnob(), ...)
from . import pretraining  # noqa: E402  (notebook 11: lab.pretraining.TokenizerExplorer(), lab.pretraining.FillMask(), ...)

__all__ = ["LiveCurves", "QUICK", "live_config", "train_live", "versions"]
