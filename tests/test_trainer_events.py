"""Trainer.add_callback keeps callbacks in order and rejects handlers no event calls; fire() rejects
an unknown event."""
import pytest

from ftcore import Callback
from ftcore.engine.runs import build
from ftcore.engine.trainer import EVENTS


class Named(Callback):
    def __init__(self, name, order):
        self.name, self.order = name, order


def test_add_callback_keeps_the_order_sorted_and_stable(tiny):
    trainer = build(tiny, callbacks=[Named("b", 20), Named("a", 10)])
    trainer.add_callback(Named("c", 20))
    trainer.add_callback(Named("first", 0))
    trainer.add_callback(Named("last", 99))
    assert [c.name for c in trainer.callbacks] == ["first", "a", "b", "c", "last"]


def test_a_mistyped_handler_or_event_is_an_error(tiny):
    class Typo(Callback):
        def on_stepend(self, t):
            pass

    trainer = build(tiny, callbacks=[])
    with pytest.raises(ValueError, match="on_stepend, which no event calls"):
        trainer.add_callback(Typo())
    with pytest.raises(ValueError, match="on_stepend"):
        build(tiny, callbacks=[Typo()])
    with pytest.raises(ValueError, match="unknown event 'step_ends'"):
        trainer.fire("step_ends")
    for event in EVENTS:  # every known event fires (no callbacks here: nothing happens)
        trainer.fire(event)
