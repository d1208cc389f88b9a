"""A plan of AWS calls as data, as chalice's planner/executor has it: a command
lists the ``Call``s it would make; ``--dry-run`` (deploy) or the absence of
``--yes`` (destroy) prints their ``describe()``; executing runs the very same
list, each call checking its own condition (``when``) against what has been read
so far. The printed plan cannot drift from what runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """One AWS API call a command may make."""

    api: str  # "service operation"
    target: str
    when: str = ""  # the condition, checked at run time ("" = always)
    detail: str = ""
    run: Callable[[Any], None] = field(default=lambda state: None, compare=False, repr=False)

    def describe(self) -> str:
        text = f"{self.api} {self.target}"
        if self.detail:
            text += f" ({self.detail})"
        return text + (f", {self.when}" if self.when else "")


def run_calls(calls: Sequence[Call], state: Any) -> None:
    for call in calls:
        call.run(state)
