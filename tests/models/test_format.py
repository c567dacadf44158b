"""The one number-formatting module: separators, no e-notation, no -0, rates in readable
units, CSV cells without float noise."""

from __future__ import annotations

import pytest

from gpualloc.models.format import csv_value, num, pct, precise, rate, short, signed
from gpualloc.present import format as present_format


@pytest.mark.parametrize(("x", "text"), [
    (1780.8, "1,780.80"), (48635904.0, "48,635,904"), (-0.0, "0"), (-0.001, "0"),
    (1074120000.0, "1,074,120,000"), (None, "-"), (2.5e-7, "0")])
def test_num(x: float | None, text: str) -> None:
    assert num(x) == text


def test_no_scientific_notation_anywhere() -> None:
    for x in (9.252e-07, 1.07412e06, 3e12, 1e-12, 123456789.123):
        for text in (num(x), signed(x), precise(x), short(x), rate(x, "TPP"), pct(x)):
            assert "e+" not in text and "e-" not in text, text


def test_rates_in_readable_units() -> None:
    assert rate(9.252e-07, "TPP") == "0.93 per million TPP"
    assert rate(4.546e-05, "credit") == "45.46 per million credits"
    assert rate(0.25, "GPU-period") == "0.25 per GPU-period"
    assert rate(0.0, "GPU") == "0 per GPU"


def test_signed_short_and_csv() -> None:
    assert signed(1074120.0) == "+1,074,120" and signed(-3.5) == "-3.50" and signed(0.0) == "0"
    assert short(2.1e9) == "2.1B" and short(45600) == "45.6k" and short(950) == "950"
    assert csv_value(6971596.799999999) == 6971596.8 and csv_value(-0.0) == 0
    assert csv_value(8.0) == 8 and csv_value("x") == "x" and csv_value(True) is True
    assert present_format.num is num  # one home, re-exported for the present layer
