"""The validity gate's note under a figure, in the figure's language (chapter.claims.gate_reason):
Chinese words and the figure's labels for the arms in zh, no grid identifiers; Gate.reason() stays
the English line of the logs and the gallery."""
from __future__ import annotations

import re

from chapter.claims import gate_reason
from ftcore.records.record import RunRecord, table_from_rows
from ftcore.records.validity import Check, Gate, check_runs

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+|\b[a-z]{2,}=|\b[a-z]+\.[a-z_]+\b")


def record(acc, share, *, majority=0.562, status="completed"):
    evals = [(100, "rt", "test", "accuracy", acc), (100, "rt", "test", "max_class_frac", share),
             (100, "rt", "test", "majority_frac", majority)]
    return RunRecord("r", {"task": "rt"}, {}, status, {}, {"evals": table_from_rows("evals", evals)})


def peft_gate() -> Gate:
    items = [({"method": "full", "seed": 0}, record(0.57, 0.91)),
             ({"method": "lora_r8", "seed": 0}, record(0.57, 0.91)),
             ({"method": "head_only", "seed": 1}, record(0.57, 0.60)),
             ({"method": "prompt", "seed": 0}, record(0.8, 0.5, status="diverged")),
             ({"method": "bitfit", "seed": 0}, record(0.80, 0.55))]
    return Gate("peft", check_runs(items, lambda lab: True))


def test_the_chinese_note_has_no_identifiers_and_says_not_learned():
    g = peft_gate()
    zh = gate_reason(g, "zh", limit=10)
    assert "没有学会" in zh and "5 个必须学会的运行中有 4 个" in zh
    assert IDENTIFIER.search(zh) is None, zh
    assert "method=" not in zh and "lora_r8" not in zh and "head_only" not in zh
    assert "方法=全量微调" in zh and "种子 0" in zh and "LoRA r=8" in zh
    assert "head only" not in zh and "只训练头部" in zh  # another figure's label for the same value
    assert "91% 的测试预测属于同一类（上限 85%）" in zh and "训练发散" in zh and "低于多数类" in zh


def test_the_english_note_uses_the_figures_labels_and_gate_reason_stays():
    g = peft_gate()
    en = gate_reason(g, "en", limit=2)
    assert en.startswith("4 of 5 must-learn runs did not learn (") and "… 2 more" in en
    assert "LoRA r=8" in en and "lora_r8" not in en
    assert "4 of 5 must-learn runs did not learn" in g.reason()
    assert "method=lora_r8, seed=0: 91% of test predictions in one class (limit 85%)" in g.reason()


def test_a_check_without_labels_or_data_falls_back_to_its_words():
    g = Gate("x", [Check("arm=a", False, "something odd"), Check("arm=b", True)])
    assert gate_reason(g, "zh") == "2 个必须学会的运行中有 1 个没有学会（arm=a：something odd）"
    assert gate_reason(Gate("x", [Check("a", True)]), "zh") == "1 个必须学会的运行全部学会"


def test_a_figure_without_must_learn_arms_says_so_not_all_0_learned():
    """Issue 25: 'all 0 must-learn runs learned' claimed a check that never ran."""
    from viz.text import t
    empty = Gate("x", [])
    for lang in ("zh", "en"):
        assert gate_reason(empty, lang) == t("gate.no_must_learn", lang)
        assert "0" not in gate_reason(empty, lang)
