"""viz: the chapter's figures, drawn from run records (never trains, never imports torch).

Axes-level functions ``plot_*(data, *, ax=None, ...) -> Axes`` draw one panel; figure-level
functions, one per figure id of FIGURES.md (``strategies``, ``warmup``, ...), compose them and
return a ``Figure``. ``set_theme(lang="zh"|"en")`` first.
"""
from ftcore.records.runset import RunSet, mean_sd
from .text import t
from .theme import current_lang, set_theme
from .basics import *  # noqa: F401,F403  3.2.1, 3.2.2
from .data import *  # noqa: F401,F403  3.2.3
from .schedules import *  # noqa: F401,F403  3.2.4
from .problems import *  # noqa: F401,F403  3.2.5
from .continual import *  # noqa: F401,F403  forgetting, continual learning, PEFT
