"""Number formatting for every human-readable output (CLI, report, explain, marginal) and the
numbers written to CSV files.

Conventions: thousands separators and never scientific notation; whole numbers without
decimals, others with two (``digits``); no ``-0``; large amounts in full (no "bn" or "M"
abbreviations in text, so ``1,074,120,000`` and never ``1.07e+09``; ``short`` for axes and wide
tables: ``1.07B``); a tiny rate is shown per thousand,
million or billion units (``0.93 per million TPP``). CSV numbers are rounded to 12 significant
digits so that float noise (``6971596.799999999``) does not leak. ``gpualloc.present.format``
re-exports this module: it lives in ``models`` because explain's ``lines()`` (in ``analysis``)
formats numbers too and layers import only downwards.
"""

from __future__ import annotations

import math

_SCALES = ((1.0, ""), (1e3, "thousand "), (1e6, "million "), (1e9, "billion "))


def _clean(x: float, digits: int) -> float:
    x = round(float(x), digits)
    return 0.0 if x == 0 else x  # no -0.0


def num(x: float | None, digits: int = 2) -> str:
    """``1234567`` -> ``1,234,567``; ``1780.8`` -> ``1,780.80``; None -> ``-``."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    v = _clean(x, digits)
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def precise(x: float | None) -> str:
    """Every significant decimal up to 9, no trailing zeros, no e-notation (for messages where
    a small excess matters): ``100.0000012``, ``1,074,120``."""
    if x is None:
        return "-"
    v = float(f"{float(x):.12g}")
    text = f"{v:,.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(x: float | None, digits: int = 2) -> str:
    """``num`` with an explicit sign: ``+1,074,120``, ``-3.50``, ``0``."""
    if x is None:
        return "-"
    text = num(x, digits)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.028`` -> ``2.8%``."""
    if x is None:
        return "-"
    v = _clean(100.0 * x, digits)
    return f"{v:,.{digits}f}%"


def rate(x: float | None, unit: str, digits: int = 2) -> str:
    """A value per ``unit``, scaled so it shows significant digits: ``9.252e-07`` per TPP ->
    ``0.93 per million TPP``."""
    if x is None:
        return "-"
    for factor, word in _SCALES:
        if abs(x) * factor >= 10 ** -digits * 10 or factor == _SCALES[-1][0] or x == 0:
            plural = word and unit[-1:].islower() and not unit.endswith("s")
            return f"{num(x * factor, digits)} per {word}{unit}{'s' if plural else ''}"
    return f"{num(x, digits)} per {unit}"  # pragma: no cover


def short(x: float | None) -> str:
    """Compact form for axes and wide tables: ``950``, ``45.6k``, ``1.23M``, ``2.1B`` (B for
    billions, the one convention), ``4T``."""
    if x is None:
        return "-"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{_clean(x / size, 2):.3g}{suffix}"
    return num(x, 2) if abs(x) >= 0.01 or x == 0 else num(x, 4)


def csv_value(x: object) -> object:
    """A number for a CSV cell: floats rounded to 12 significant digits (no float noise, no
    -0.0),
    integral floats as ints; anything else unchanged."""
    if isinstance(x, bool) or not isinstance(x, float):
        return x
    if not math.isfinite(x):
        return x
    v = float(f"{x:.12g}")
    v = 0.0 if v == 0 else v
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def ranges(ts: list[int]) -> str:
    """Sorted periods as ranges: ``[1, 2, 3, 7]`` -> ``1-3, 7``."""
    out: list[list[int]] = []
    for t in ts:
        if out and t == out[-1][1] + 1:
            out[-1][1] = t
        else:
            out.append([t, t])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)
