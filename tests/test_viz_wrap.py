"""fit_texts' line breaking (viz._common.wrap_text): words whole, Chinese between characters, never
inside a short bracketed group, before a closing bracket or between a number and its unit."""
from __future__ import annotations

import pytest

from viz._common import _wrap_to, wrap_text

UNFREEZE = "渐进解冻（种子 0）：每个层组的实际学习率"
TOTAL = "trainable parameters (log)\nall parameters: 22.6M (- -)"


def _same_text(a: str, b: str) -> bool:
    return a.replace("\n", "").replace(" ", "") == b.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize("width", range(4, 44))
def test_a_short_chinese_group_stays_whole(width):
    out = wrap_text(UNFREEZE, width)
    assert _same_text(out, UNFREEZE)
    assert "（种子 0）" in out.split("\n") or any("（种子 0）" in line for line in out.split("\n"))
    assert not any(line.startswith(("）", "：", "0")) for line in out.split("\n"))
    assert "渐进解冻（种子\n0）" not in out


@pytest.mark.parametrize("width", range(4, 40))
def test_a_short_latin_group_and_a_number_with_its_unit_stay_whole(width):
    out = wrap_text(TOTAL, width)
    assert _same_text(out, TOTAL)
    lines = out.split("\n")
    assert any("(- -)" in line for line in lines) and any("22.6M" in line for line in lines)
    assert not any(line.startswith((")", "-")) for line in lines)
    assert "(-\n-)" not in out


def test_lines_fit_where_they_can_and_existing_breaks_stay():
    assert wrap_text(UNFREEZE, 22) == "渐进解冻（种子 0）：每\n个层组的实际学习率"
    assert wrap_text(TOTAL, 16) == "trainable\nparameters (log)\nall parameters:\n22.6M (- -)"
    assert wrap_text("16 条样本（768 个词元）", 9).split("\n")[0] == "16 条样本"
    assert "768\n" not in wrap_text("一步训练，16 条样本（768 个词元，bf16 精度下的保存激活）", 10)
    assert wrap_text("short", 40) == "short" and wrap_text("one\ntwo", 40) == "one\ntwo"
    for width in range(8, 30):  # a confidence level stays with its interval's one-letter name
        assert "95%\nt" not in wrap_text("验证准确率（各种子的均值，色带：95% t 区间）", width)


@pytest.mark.parametrize("text", [UNFREEZE, TOTAL])
@pytest.mark.parametrize("ratio", [1.05, 1.3, 1.6, 2.2, 3.0])
def test_wrap_to_keeps_the_groups(text, ratio):
    out = _wrap_to(text, ratio)
    assert _same_text(out, text)
    assert "（种子\n0）" not in out and "(-\n-)" not in out and "22.6\nM" not in out
