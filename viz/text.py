"""Every label of every figure, in one table per language (``zh`` default, ``en``).

Figure modules register their strings next to their code with :func:`register`; :func:`t` looks a
key up in the current language (``viz.set_theme(lang=...)``). A key present in one language and
not the other is an error at import, so no figure can fall back silently to the wrong language.
"""
from __future__ import annotations

from .theme import LANGS, current_lang

STRINGS: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}


def register(table: dict[str, dict[str, str]]) -> None:
    """Add ``{"zh": {key: text}, "en": {key: text}}`` (same keys in both)."""
    keys = {lang: set(table.get(lang, {})) for lang in LANGS}
    if keys["zh"] != keys["en"]:
        raise ValueError(f"strings missing in one language: {sorted(keys['zh'] ^ keys['en'])}")
    clash = keys["zh"] & set(STRINGS["zh"])
    if clash:
        raise ValueError(f"strings registered twice: {sorted(clash)}")
    for lang in LANGS:
        STRINGS[lang].update(table[lang])


def t(key: str, lang: str | None = None, **fmt) -> str:
    """The text for ``key`` in ``lang`` (default: the theme's), formatted with ``fmt``."""
    lang = lang or current_lang()
    try:
        text = STRINGS[lang][key]
    except KeyError:
        raise KeyError(f"no {lang!r} text for {key!r}; add it with viz.text.register") from None
    return text.format(**fmt) if fmt else text


register({
    "zh": {"step": "训练步数", "epoch": "轮次 (epoch)", "lr": "学习率", "loss": "损失",
           "train_loss": "训练损失", "val_loss": "验证损失", "accuracy": "准确率",
           "val_accuracy": "验证准确率", "test_accuracy": "测试准确率", "train_accuracy": "训练准确率",
           "grad_norm": "梯度范数", "seeds_n": "均值 ± 标准差，n = {n} 个随机种子",
           "n_seeds": "n = {n}", "wall_s": "训练时间 (秒)", "peak_mb": "峰值内存 (MB)",
           "trainable_pct": "可训练参数 (%)", "trainable_params": "可训练参数",
           "params_m": "参数量 (百万)", "layer_group": "层组", "diverged": "发散",
           "differs": "与教材不同", "measured": "实测", "majority": "多数类基线",
           "task": "任务", "chance": "随机猜测"},
    "en": {"step": "training step", "epoch": "epoch", "lr": "learning rate", "loss": "loss",
           "train_loss": "training loss", "val_loss": "validation loss", "accuracy": "accuracy",
           "val_accuracy": "validation accuracy", "test_accuracy": "test accuracy",
           "train_accuracy": "training accuracy",
           "grad_norm": "gradient norm", "seeds_n": "mean ± s.d. over seeds, n = {n}",
           "n_seeds": "n = {n}", "wall_s": "training time (s)", "peak_mb": "peak memory (MB)",
           "trainable_pct": "trainable parameters (%)", "trainable_params": "trainable parameters",
           "params_m": "parameters (millions)", "layer_group": "layer group", "diverged": "diverged",
           "differs": "differs from the chapter", "measured": "measured", "majority": "majority class",
           "task": "task", "chance": "chance"},
})

__all__ = ["STRINGS", "register", "t"]
