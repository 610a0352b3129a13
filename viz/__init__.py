"""viz: the chapter's figures, drawn from run records (never trains, never imports torch).

Axes-level functions ``plot_*(data, *, ax=None, ...) -> Axes`` draw one panel; figure-level
functions, one per figure id of FIGURES.md (``strategies``, ``warmup``, ...), compose them and
return a ``Figure``. One module per section of the chapter; ``_common`` holds what they share.
``set_theme(lang="zh"|"en")`` first (or ``with set_theme("en"): ...`` for a while).
"""
from ftcore.records.queries import global_grad_norm, mean_sd, range_curve, smooth_losses, suggest_lr
from ftcore.records.runset import RunSet
from .text import t
from ._common import MEMORY_PARTS, memory_legend, memory_note, plot_training_memory
from .theme import SCREEN_DPI, current_lang, on_screen, set_theme
from .basics import *  # noqa: F401,F403  3.2.1
from .freezing import *  # noqa: F401,F403  3.2.2
from .data import *  # noqa: F401,F403  3.2.3
from .schedules import *  # noqa: F401,F403  3.2.4
from .problems import *  # noqa: F401,F403  3.2.5
from .continual import *  # noqa: F401,F403  forgetting (3.2.5), continual learning (seed 001), PEFT (seed 003)
from .pretraining import *  # noqa: F401,F403  pretraining, continual pretraining (seed 003)
from .quantization import *  # noqa: F401,F403  quantization (seed 003)
from .alignment import *  # noqa: F401,F403  instruction tuning, RLHF (seed 003)
from .engines import *  # noqa: F401,F403  training loops: ftcore, HF Trainer, Lightning (seeds 001-003)

global_grad_norms = global_grad_norm  # the name viz used before the query moved to ftcore.records.queries
