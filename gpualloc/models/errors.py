"""Located problems in input files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class Issue:
    """One problem at one place in an input, e.g. ``jobs[3].options[0].accelerator``."""

    location: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class InstanceError(Exception):
    """An input is invalid; ``issues`` lists every problem found, each with its location.

    Deliberately not a ``ValueError``: pydantic must let it through unchanged.
    """

    def __init__(self, issues: list[Issue], source: str | None = None) -> None:
        self.issues = sorted(set(issues), key=lambda i: (_natural(i.location), i.message))
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(f"{head}{len(self.issues)} problem(s)\n{lines}")


class InstanceWarning(UserWarning):
    """A suspicious but legal input (e.g. an option that can never fit its window)."""


def _natural(location: str) -> list[object]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", location)]
