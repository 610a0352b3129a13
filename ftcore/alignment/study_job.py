"""What the alignment studies' jobs share: each job (a frozen dataclass a worker can pickle) keeps its
learning settings in one field, and a learning-rate selection (``chapter.protocol``) reads and changes
them there as it does a run's config."""
from __future__ import annotations

from dataclasses import replace
from typing import ClassVar


class TunableStudy:
    """Mixin for a study job whose optimiser settings are the field named ``settings_field``:
    ``lr`` (per step, as the optimiser takes it), ``seed`` and :meth:`replace` reach into it."""

    settings_field: ClassVar[str]

    @property
    def lr(self) -> float:
        return getattr(self, self.settings_field).lr

    @property
    def seed(self) -> int:
        return getattr(self, self.settings_field).seed

    def replace(self, **changes):
        """A copy with ``changes`` applied to the settings (``job.replace(seed=1)``)."""
        settings = getattr(self, self.settings_field)
        return replace(self, **{self.settings_field: replace(settings, **changes)})
