"""What every figure module shares, re-exported from the small modules that hold it (import from
those in new code):

* :mod:`.labels`: condition labels and short numbers (parameter counts, percentages, LRs);
* :mod:`.groups`: layer groups in depth order, their names, one LR per group;
* :mod:`.style`: the categorical palette, the diverged-run marker, font lists for mixed scripts;
* :mod:`.wrap`: line breaking for Chinese and English labels;
* :mod:`.layout`: fitting texts and legends at print size, category ticks;
* :mod:`.seeds`: results over seeds: mean with 95% t interval, seed bars and dots, majority line;
* :mod:`.memory`: training memory as stacked bars.
"""
from __future__ import annotations

from .groups import _group_key, _group_label, _group_order, _layer_lr_table
from .labels import _count, _lr, _name, _ordered, _pct, _sep, _short
from .layout import _categories, _legend_dedup, _pin_outside_legends, _rotate, fit_texts, keep_texts_inside, legend_below
from .memory import MEMORY_PARTS, MIB, _memory_colors, memory_legend, memory_note, plot_training_memory
from .seeds import _dots, mean_ci, mean_ci_table, n_text, plot_majority, plot_seed_bars, seed_note
from .style import DIVERGED_STYLE, _fam, _fam_latin, _palette
from .wrap import (_BARE_NUMBER, _BRACKETS, _CLOSING, _OPENING, _SHORT_GROUP, _UNIT, _break_points, _text_width, _wide,
                   _wrap_to, wrap_text)

__all__ = ["DIVERGED_STYLE", "MEMORY_PARTS", "MIB", "fit_texts", "keep_texts_inside", "legend_below", "mean_ci",
           "mean_ci_table", "memory_legend", "memory_note", "n_text", "plot_majority", "plot_seed_bars",
           "plot_training_memory", "seed_note", "wrap_text"]
