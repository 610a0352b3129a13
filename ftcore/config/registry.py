"""A named table of choices whose entries carry their own flags.

A config field such as ``schedule`` or ``peft`` accepts the names of a registry. The code that
validates a config, dispatches on it or refuses it (another training loop) reads the entry's flags,
so adding a choice is one entry, not a name added to a tuple and to every if-chain that tests it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

E = TypeVar("E")


class Registry(Mapping[str, E], Generic[E]):
    """Entries by name, in the order given (the order of ``--help`` and of error messages).

    A registry reads like the tuple of names it replaces: ``name in SCHEDULES``, ``list(SCHEDULES)``
    and ``", ".join(SCHEDULES)`` see the names; ``SCHEDULES[name]`` is the entry."""

    def __init__(self, what: str, entries: Iterable[E]):
        self.what = what  # "schedule", "PEFT method": names the registry in messages
        self._entries: dict[str, E] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: E) -> E:
        name = entry.name  # type: ignore[attr-defined]
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> E:
        """Take an entry out again (a test's temporary entry)."""
        return self._entries.pop(name)

    def __getitem__(self, name: str) -> E:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown {self.what} {name!r}; known: {', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # an unhashable value (a list from a YAML file) is simply not a name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def where(self, **flags) -> tuple[str, ...]:
        """Names of the entries whose attributes equal ``flags``: ``SCHEDULES.where(warms_up=False)``."""
        return tuple(n for n, e in self._entries.items() if all(getattr(e, k) == v for k, v in flags.items()))

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"


__all__ = ["Registry"]
