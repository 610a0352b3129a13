"""Every label of every figure, in one table per language: ``strings/zh.json`` (default) and
``strings/en.json``, keyed ``figure-id.what`` (``layer-drift.cka``) or by a shared word (``step``).

:func:`t` looks a key up in the current language (``viz.set_theme(lang=...)``). A key present in
one language and not the other is an error at import, so no figure can fall back silently to the
wrong language; :func:`register` adds strings the same way (for a notebook's own panel).
"""
from __future__ import annotations

import json
from pathlib import Path

from .theme import LANGS, current_lang

STRINGS: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
STRINGS_DIR = Path(__file__).with_name("strings")


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
        raise KeyError(f"no {lang!r} text for {key!r}; add it to viz/strings/{lang}.json") from None
    return text.format(**fmt) if fmt else text


def has(key: str) -> bool:
    """Whether ``key`` has a text in the current language."""
    return key in STRINGS[current_lang()]


register({lang: json.loads((STRINGS_DIR / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGS})

__all__ = ["STRINGS", "has", "register", "t"]
