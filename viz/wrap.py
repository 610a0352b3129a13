"""Line breaking for labels in Chinese and English: Latin words whole, Chinese between characters,
never inside a short bracketed group nor between a number and its unit."""
from __future__ import annotations

import re
import unicodedata


_OPENING = "([{（［｛「『【〈《“‘"
_CLOSING = ")]}）］｝」』】〉》”’，。、：；！？,.:;!?%…"
_BRACKETS = {"(": ")", "[": "]", "（": "）", "［": "］", "「": "」", "【": "】"}
_SHORT_GROUP = 12  # a bracketed group of at most this many characters inside is never broken
_BARE_NUMBER = re.compile(r"(?:^|[\s([（［])[-+−]?[0-9][0-9.,]*$")  # "48" in "(48 training examples)"
_LONE_LETTER = re.compile(r"[A-Za-z](?![A-Za-z])")  # the "t" of "95% t 区间"
_UNIT = re.compile(r"(?:%|‰|°|[A-Za-zµ]{1,3}(?![A-Za-z]))")  # M, MiB, ms, s, cm, pt, %


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _text_width(text: str) -> int:
    """Width in half-width cells: a Chinese character (or full-width sign) counts two."""
    return sum(2 if _wide(c) else 1 for c in text)


def _break_points(line: str) -> list[tuple[int, bool]]:
    """Where ``line`` may break: ``(i, at_space)`` breaks before ``line[i]`` (``at_space``: the
    space ``line[i]`` is dropped by the break). Spaces break, and so does the seam between two
    characters where one is Chinese, except: inside a bracketed group of at most
    :data:`_SHORT_GROUP` characters, before a closing bracket or punctuation, after an opening
    bracket, and between a number and its unit (``22.6 M``, ``768 个``)."""
    protected = set()
    stack = []
    for i, c in enumerate(line):
        if c in _BRACKETS:
            stack.append(i)
        elif stack and c == _BRACKETS[line[stack[-1]]]:
            j = stack.pop()
            if i - j - 1 <= _SHORT_GROUP:
                protected.update(range(j + 1, i + 1))  # no break before any of j+1 … i
    out = []
    for i in range(1, len(line)):
        at_space = line[i] == " "
        if at_space:
            before, after = line[:i].rstrip(" "), line[i:].lstrip(" ")
            if line[i - 1] == " ":  # one break per run of spaces: at its first
                continue
        elif line[i - 1] != " " and (_wide(line[i - 1]) or _wide(line[i])):
            before, after = line[:i], line[i:]
        else:
            continue
        if not before or not after or i in protected:
            continue
        if after[0] in _CLOSING or before[-1] in _OPENING:
            continue
        if before[-1].isdigit() and (_wide(after[0]) and after[0] not in _OPENING or _UNIT.match(after)
                                     or (_BARE_NUMBER.search(before) and after[0].isalpha())):
            continue  # a number and its unit, measure word or counted noun stay together
        if before[-1] == "%" and _LONE_LETTER.match(after):
            continue  # "95% t interval": the level and its one-letter name stay together
        out.append((i, at_space))
    return out


def wrap_text(text: str, width: int) -> str:
    """``text`` broken into lines of about ``width`` half-width cells (:func:`_text_width`) at the
    places :func:`_break_points` allows: Latin words stay whole, Chinese breaks between
    characters, short bracketed groups and numbers with their units are never split, no line starts
    with a closing bracket. A piece longer than ``width`` that cannot break stays on its own line.
    Existing line breaks are kept."""
    out = []
    for line in text.split("\n"):
        start, last, lines = 0, None, []
        points = _break_points(line)
        k = 0
        while True:
            # the farthest break from ``start`` whose line still fits; else the first one after it
            best = None
            while k < len(points) and _text_width(line[start:points[k][0]].rstrip(" ")) <= width:
                best = points[k]
                k += 1
            if k >= len(points) and _text_width(line[start:]) <= width:
                break
            if best is None:
                if k >= len(points):
                    break
                best = points[k]
                k += 1
            i, at_space = best
            lines.append(line[start:i].rstrip(" "))
            start = i + 1 if at_space else i
            while start < len(line) and line[start] == " ":
                start += 1
            while k < len(points) and points[k][0] < start:
                k += 1
        lines.append(line[start:])
        out.extend(lines)
    return "\n".join(out)


def _wrap_to(text: str, ratio: float) -> str:
    """``text`` wrapped onto about ``ratio`` times as many lines (:func:`wrap_text`: words kept
    whole where there are spaces, Chinese broken between characters, never inside a short
    bracketed group nor between a number and its unit)."""
    lines = text.split("\n")
    longest = max((_text_width(x) for x in lines), default=0)
    width = max(4, int(longest / ratio))
    return wrap_text(text, width)


__all__ = ["wrap_text"]
