"""Number formatting for human output and CSV cells: the one home is ``models.format``
(explain's ``lines()`` in ``analysis`` uses it too, and layers import only downwards)."""

from ..models.format import csv_value, num, pct, rate, short, signed

__all__ = ["csv_value", "num", "pct", "rate", "short", "signed"]
