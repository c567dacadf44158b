"""Located problems in input files."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal


@dataclass(frozen=True, order=True)
class Issue:
    """One problem at one place in an input, e.g. ``jobs[3].options[0].accelerator``.

    ``location`` is a path into the document (``jobs[3].options[0].accelerator``), a position in
    the text (``line 4, column 7``) or empty for the file as a whole.
    """

    location: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class InstanceError(Exception):
    """An input is invalid; ``issues`` lists every problem found, each with its location.

    Deliberately not a ``ValueError``: pydantic must let it through unchanged.
    """

    def __init__(self, issues: Iterable[Issue], source: str | None = None) -> None:
        self.issues: list[Issue] = sorted(set(issues), key=_sort_key)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.issues)
        lines = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(f"{head}{count} problem{'' if count == 1 else 's'}\n{lines}")

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle their ``args`` (the message); rebuild from the issues instead, so
        # the error survives a trip through a process pool.
        return (type(self), (self.issues, self.source))

    @property
    def messages(self) -> list[str]:
        """Every issue as ``location: message``, in report order."""
        return [str(i) for i in self.issues]


class InstanceWarning(UserWarning):
    """A suspicious but legal input (e.g. an option that can never fit its window)."""


_DIGITS = re.compile(r"(\d+)", re.ASCII)


def _natural(location: str) -> list[object]:
    """``jobs[10]`` sorts after ``jobs[9]``: digit runs compare as numbers."""
    parts = _DIGITS.split(location)
    # re.split with one group alternates text, digits, text, ...: types always line up.
    return [int(p) if k % 2 else p for k, p in enumerate(parts)]


def _sort_key(issue: Issue) -> tuple[object, ...]:
    return (_natural(issue.location), issue.message, issue.severity)


def show_value(value: Any, width: int = 60) -> str:
    """A short, safe ``repr`` of an input value for a message (never huge, never raises)."""
    try:
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, int):
            if value.bit_length() > 200:
                return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit number"
            return repr(value)
        if isinstance(value, str):
            return repr(value if len(value) <= width else value[: width - 3] + "...")
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, date):
            return str(value)
        if isinstance(value, Mapping):
            return "a mapping" if value else "{}"
        if isinstance(value, list | tuple):
            return "a list" if value else "[]"
        return f"a {type(value).__name__}"
    except Exception:  # a description must never fail
        return f"a {type(value).__name__}"
