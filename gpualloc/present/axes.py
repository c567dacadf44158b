"""Axis and label helpers of the matplotlib plots: period axes with calendar dates, Gantt
labels that fit their block, cap window wording."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..models import Instance
from ..models.instance import Cap


def period_axis(ax: Axes, instance: Instance) -> None:
    """x axis in periods; with a horizon start each tick also shows the date the period
    begins (``12`` over ``2025-03-31``)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if instance.horizon.start is None:
        ax.set_xlabel("period")
        return
    from ..models.plan import period_date

    periods = instance.horizon.periods

    def label(x: float, _pos: object = None) -> str:
        t = round(x)
        if abs(x - t) > 1e-6 or not 0 <= t <= periods:
            return ""
        return f"{t}\n{period_date(instance, t)}"

    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("period (and the date it begins)")


# Gantt labels: 7 pt text at 100 dpi is about 5.8 px per character and 11.7 px per line.
_CHAR_PX, _LINE_PX = 5.8, 11.7


def fit_label(job: str, gpus: str, tag: str, width_px: float,
               height_px: float) -> str | None:
    """The longest label that fits a block of ``width_px`` x ``height_px``, or None."""
    for text in (f"{job}\n{gpus}", f"{job} ({gpus})", tag):
        lines = text.split("\n")
        if max(len(x) for x in lines) * _CHAR_PX * 1.1 <= width_px and \
                len(lines) * _LINE_PX <= height_px:
            return text
    return None


def per_text(cap: Cap) -> str:
    """``per period``, ``per rolling 4-period window``, ``over periods 0-12``, ``over the
    horizon``."""
    if cap.per == "rolling":
        return f"per rolling {cap.length}-period window"
    if cap.per == "window" and cap.periods is not None:
        return f"over periods {cap.periods[0]}-{cap.periods[1]}"
    return "over the horizon" if cap.per == "horizon" else "per period"
