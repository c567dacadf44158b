"""Plots of a plan: Gantt per pool, pool utilization, cap use, spend and value per start-up.

Every function takes the instance and the plan, draws on the matplotlib ``ax`` it is given and
returns it. Without an ``ax`` it creates a fresh ``matplotlib.figure.Figure`` (never pyplot, so
no global state is touched and nothing needs a display) and draws on its axes; the figure is
``ax.figure``. The figures are built from ``plan_metrics`` and the validator's helpers, so a plot
shows exactly the numbers that the validator and the metrics compute.

Colours are stable: a start-up always has the colour of its position in ``instance.startups``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from ..models import Assignment, Instance, Plan
from ..models.instance import Cap
from ..models.metrics import plan_metrics
from ..models.rules import cap_use
from .axes import fit_label, per_text, period_axis
from .format import short

Metrics = dict[str, Any]

_PALETTE = [colormaps["tab20"](k) for k in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                               1, 3, 5, 7, 9, 11, 13, 15, 17, 19)]


def compact(x: float, _pos: object = None) -> str:
    """Axis numbers: ``950``, ``1.5k``, ``380M``, ``2.1B``, ``4T`` (``present.format.short``)."""
    return short(x)


_COMPACT = FuncFormatter(compact)


def startup_colors(instance: Instance) -> dict[str, tuple[float, float, float, float]]:
    """A fixed colour per start-up (by its position in the instance; cycles after 20)."""
    return {s.id: _PALETTE[k % len(_PALETTE)] for k, s in enumerate(instance.startups)}


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=size, layout="constrained")
    return fig.add_subplot()


def _metrics(instance: Instance, plan: Plan, metrics: Metrics | None) -> Metrics:
    return metrics if metrics is not None else plan_metrics(instance, plan)


def _known(instance: Instance, plan: Plan) -> list[Assignment]:
    return [a for a in plan.assignments if a.job in instance.job_by_id]


def _empty(ax: Axes, message: str) -> Axes:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


# -- Gantt -------------------------------------------------------------------------------------
def gpu_offsets(assignments: Sequence[Assignment]) -> dict[int, int]:
    """A GPU offset per assignment (by index) so that bars running at once never overlap.

    Greedy first fit in start order: each assignment takes the lowest offset whose GPU range
    is free of every already placed assignment that overlaps it in time. With time-varying
    capacity the stack may reach above the capacity line although the plan is valid.
    """
    order = sorted(range(len(assignments)),
                   key=lambda k: (assignments[k].start, -assignments[k].gpus, assignments[k].job))
    placed: list[tuple[int, int]] = []  # (index, offset)
    out: dict[int, int] = {}
    for k in order:
        a = assignments[k]
        busy = [(off, off + assignments[j].gpus) for j, off in placed
                if assignments[j].start < a.end and a.start < assignments[j].end]
        for y in sorted({0, *(hi for _, hi in busy)}):
            if all(y + a.gpus <= lo or y >= hi for lo, hi in busy):
                out[k] = y
                break
        placed.append((k, out[k]))
    return out


def pool_assignments(instance: Instance, plan: Plan, cluster: str,
                     accelerator: str) -> list[Assignment]:
    """The plan's assignments on one pool, in plan order."""
    return [a for a in _known(instance, plan)
            if a.cluster == cluster and a.accelerator == accelerator]


def plot_gantt(instance: Instance, plan: Plan, cluster: str, accelerator: str,
               ax: Axes | None = None) -> Axes:
    """One pool: a bar per assignment over its periods, stacked by GPU offset (height = GPUs).

    Bars are the only patches on the axes (one per assignment, ``x = start``, ``width =
    periods``, ``y = offset``, ``height = gpus``), coloured by start-up. A bar is labelled with
    its job id and GPUs only where the label fits; a smaller bar gets its number, or nothing,
    and is listed in the legend (``3: job (16 GPUs, periods 23-25)``). The pool's capacity over
    time is drawn as a step line.
    """
    horizon = instance.horizon.periods
    found = instance.cluster_by_id.get(cluster)
    pool = found.pool(accelerator) if found else None
    if pool is None:
        raise ValueError(f"no pool of {accelerator!r} in cluster {cluster!r}")
    runs = pool_assignments(instance, plan, cluster, accelerator)
    ax = _axes(ax, (10, 3.2 + 0.25 * min(len(runs), 24)))
    colors = startup_colors(instance)
    offsets = gpu_offsets(runs)
    capacity = [pool.gpus_at(t) for t in range(horizon)]
    top = max([*capacity, *(offsets[k] + a.gpus for k, a in enumerate(runs))], default=1)
    owners = {}
    box = ax.get_window_extent()  # before layout: an estimate, with margin below
    px_x = 0.9 * box.width / max(1, horizon)
    px_y = 0.9 * box.height / (max(1, top) * 1.05)
    keyed: list[str] = []  # blocks too small for their label: listed in the legend
    for k, a in enumerate(runs):
        startup = instance.job_by_id[a.job].startup
        owners[startup] = colors.get(startup, "0.5")
        ax.barh(offsets[k], a.periods, left=a.start, height=a.gpus, align="edge",
                color=owners[startup], edgecolor="white", linewidth=0.8, label="_nolegend_")
        gpus = f"{a.gpus:,} GPU{'s' * (a.gpus != 1)}"
        tag = str(k + 1)
        label = fit_label(a.job, gpus, tag, a.periods * px_x, a.gpus * px_y)
        if label is not None:
            ax.text(a.start + a.periods / 2, offsets[k] + a.gpus / 2, label,
                    ha="center", va="center", fontsize=7, clip_on=True)
        if label is None or label == tag:
            when = f"period {a.start}" if a.periods == 1 else \
                f"periods {a.start}-{a.end - 1}"
            keyed.append(f"{tag + ': ' if label == tag else ''}{a.job} ({gpus}, {when})")
    ax.step(range(horizon + 1), [*capacity, capacity[-1]], where="post", color="black",
            linewidth=1.2, linestyle="--", label="capacity")
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, max(1, top) * 1.05)
    period_axis(ax, instance)
    ax.set_ylabel("GPUs")
    ax.set_title(f"{cluster} / {accelerator}: {len(runs)} job(s)")
    handles: list[Any] = [Patch(color=c, label=s) for s, c in owners.items()]
    handles.append(ax.lines[-1])
    handles += [Patch(color="none", label=text) for text in keyed]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    if not runs:
        ax.text(0.5, 0.5, "no assignments", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    return ax


# -- utilization -------------------------------------------------------------------------------
def utilization_matrix(instance: Instance, plan: Plan,
                       metrics: Metrics | None = None) -> tuple[list[str], np.ndarray]:
    """Pool labels (``cluster/accelerator``) and a pools x periods array of utilization.

    A period where the pool has no capacity is NaN.
    """
    pools = _metrics(instance, plan, metrics)["pools"]
    labels = list(pools)
    rows = [[math.nan if u is None else float(u) for u in pools[p]["utilization"]]
            for p in labels]
    return labels, np.array(rows, dtype=float).reshape(len(labels), instance.horizon.periods)


def plot_utilization(instance: Instance, plan: Plan, ax: Axes | None = None,
                     metrics: Metrics | None = None) -> Axes:
    """Heatmap of utilization, pool x period, with a colour bar (blank: no capacity)."""
    labels, data = utilization_matrix(instance, plan, metrics)
    ax = _axes(ax, (10, 1.5 + 0.35 * max(1, len(labels))))
    if not labels:
        return _empty(ax, "no pools")
    top = max(1.0, float(np.nanmax(data)) if np.isfinite(data).any() else 1.0)
    cmap = colormaps["YlOrRd"].with_extremes(bad="0.9")
    image = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap, vmin=0.0, vmax=top,
                      interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    period_axis(ax, instance)
    ax.set_title("Pool utilization (GPUs used / capacity)")
    ax.figure.colorbar(image, ax=ax, label="utilization", fraction=0.04, pad=0.02)
    return ax


# -- caps --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapSeries:
    """What a cap plot draws: ``use`` and ``limit`` at periods ``x``.

    ``per: period``: the use in each period; ``per: rolling``: the use of the window ending at
    each period; ``per: horizon`` and ``per: window``: the use summed since the window's first
    period (``cumulative``), whose last point is the window's total.
    """

    cap: str
    metric: str
    per: str
    x: list[int]
    use: list[float]
    limit: list[float | None]
    cumulative: bool


def cap_series(instance: Instance, plan: Plan, cap: Cap,
               metrics: Metrics | None = None) -> CapSeries:
    """Use over time against the limit for one cap (see ``CapSeries``)."""
    windows = _metrics(instance, plan, metrics)["caps"][cap.id]["windows"]
    if cap.per in ("period", "rolling"):
        x = [w["periods"][1] for w in windows]
        use = [float(w["use"]) for w in windows]
        limit = [w["limit"] for w in windows]
        return CapSeries(cap.id, cap.metric, cap.per, x, use, limit, False)
    per_period, _ = cap_use(instance, cap, _known(instance, plan))
    x, use, limit = [], [], []
    for w in windows:
        first, last = w["periods"]
        total = 0.0
        for t in range(first, last + 1):
            total += per_period[t]
            x.append(t)
            use.append(total)
            limit.append(w["limit"])
        if use:
            use[-1] = float(w["use"])  # exactly the metrics' (fsum) figure
    return CapSeries(cap.id, cap.metric, cap.per, x, use, limit, True)


def _ratio(use: float, limit: float | None) -> float:
    if limit is None:
        return math.nan
    if limit > 0:
        return use / limit
    return 0.0 if use == 0 else math.inf


def plot_caps(instance: Instance, plan: Plan, ax: Axes | None = None, cap_id: str | None = None,
              metrics: Metrics | None = None) -> Axes:
    """Cap use over time against the limits.

    With ``cap_id``: that cap's use (line labelled ``use``; see ``CapSeries``) and its limit
    (line labelled ``limit``) in the cap's own unit. Without: one line per cap of use / limit
    (labelled with the cap id) and the limit as a line at 1 (labelled ``limit``), so that caps
    of different metrics share one chart.
    """
    metrics = _metrics(instance, plan, metrics)
    caps = list(instance.caps)
    if cap_id is not None:
        caps = [c for c in caps if c.id == cap_id]
        if not caps:
            raise ValueError(f"no cap {cap_id!r} in the instance")
    ax = _axes(ax, (10, 3.5))
    if not caps:
        return _empty(ax, "no caps")
    horizon = instance.horizon.periods
    marker = "o" if horizon <= 60 else None
    if cap_id is not None:
        s = cap_series(instance, plan, caps[0], metrics)
        style = "steps-mid" if s.per == "period" else "default"
        ax.plot(s.x, s.use, marker=marker, markersize=3, label="use", color="tab:blue",
                drawstyle=style)
        lim = [math.nan if v is None else v for v in s.limit]
        ax.plot(s.x, lim, linestyle="--", color="tab:red", label="limit", drawstyle=style)
        what = {"period": "per period", "rolling": f"per {caps[0].length} periods ending here",
                "horizon": "cumulative over the horizon",
                "window": "cumulative over the window"}[s.per]
        ax.set_ylabel(f"{s.metric} ({what})")
        ax.yaxis.set_major_formatter(_COMPACT)
        ax.set_title(f"Cap {s.cap}: {s.metric} {per_text(caps[0])}")
    else:
        colors = colormaps["tab10"]
        for k, cap in enumerate(caps):
            s = cap_series(instance, plan, cap, metrics)
            ax.plot(s.x, [_ratio(u, v) for u, v in zip(s.use, s.limit, strict=True)],
                    marker=marker, markersize=3, color=colors(k % 10), label=cap.id)
        ax.plot([0, horizon - 1], [1.0, 1.0], linestyle="--", color="black", label="limit")
        ax.set_ylabel("use / limit")
        ax.set_ylim(bottom=0)
        ax.set_title("Cap use as a share of the limit (horizon and window caps: cumulative)")
    ax.set_xlim(-0.5, horizon - 0.5)
    period_axis(ax, instance)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


# -- spend and value ---------------------------------------------------------------------------
def _startup_axis(ax: Axes, ids: list[str]) -> np.ndarray:
    x = np.arange(len(ids), dtype=float)
    ax.set_xticks(x, labels=ids, rotation=30 if len(ids) > 4 else 0,
                  ha="right" if len(ids) > 4 else "center", fontsize=8)
    ax.yaxis.set_major_formatter(_COMPACT)
    return x


def plot_spend(instance: Instance, plan: Plan, ax: Axes | None = None,
               metrics: Metrics | None = None) -> Axes:
    """Bars of spend (container ``spend``) next to credits (container ``credits``) per start-up.

    Unlimited credits are a zero-height bar marked "unlimited".
    """
    startups = _metrics(instance, plan, metrics)["startups"]
    ids = list(startups)
    ax = _axes(ax, (max(6.0, 0.8 * len(ids) + 2), 3.8))
    if not ids:
        return _empty(ax, "no start-ups")
    x = _startup_axis(ax, ids)
    spend = [startups[s]["spend"] for s in ids]
    credits = [startups[s]["credits"] for s in ids]
    colors = startup_colors(instance)
    ax.bar(x - 0.2, spend, 0.4, label="spend", color=[colors[s] for s in ids],
           edgecolor="black", linewidth=0.5)
    ax.bar(x + 0.2, [0.0 if c is None else c for c in credits], 0.4, label="credits",
           color="none", edgecolor="0.3", hatch="//", linewidth=0.8)
    for xi, c, s in zip(x, credits, ids, strict=True):
        share = startups[s]["spend_share"]
        if c is None:
            ax.annotate("unlimited", (xi + 0.2, 0), ha="center", va="bottom", fontsize=7,
                        rotation=90, xytext=(0, 2), textcoords="offset points")
        elif share is not None:
            ax.annotate(f"{100 * share:.0f}%", (xi - 0.2, startups[s]["spend"]), ha="center",
                        va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_ylabel("credits")
    ax.set_title("Spend vs credits per start-up")
    ax.legend(handles=[Patch(facecolor="0.6", edgecolor="black", label="spend"),
                       Patch(facecolor="none", edgecolor="0.3", hatch="//", label="credits")],
              fontsize=8, frameon=False)
    return ax


def plot_value(instance: Instance, plan: Plan, ax: Axes | None = None,
               metrics: Metrics | None = None) -> Axes:
    """Bars of strategic value per start-up (container ``value``), labelled jobs run/asked.

    When some start-up's weight is not 1, a second set of bars (container ``weighted value``)
    shows the value times the weight, as the objective counts it.
    """
    startups = _metrics(instance, plan, metrics)["startups"]
    ids = list(startups)
    ax = _axes(ax, (max(6.0, 0.8 * len(ids) + 2), 3.8))
    if not ids:
        return _empty(ax, "no start-ups")
    x = _startup_axis(ax, ids)
    colors = startup_colors(instance)
    weighted = any(s.weight != 1.0 for s in instance.startups)
    width = 0.4 if weighted else 0.6
    shift = -0.2 if weighted else 0.0
    values = [startups[s]["value"] for s in ids]
    bars = ax.bar(x + shift, values, width, label="value", color=[colors[s] for s in ids],
                  edgecolor="black", linewidth=0.5)
    ax.bar_label(bars, labels=[f"{startups[s]['jobs_run']}/{startups[s]['jobs_asked']}"
                               for s in ids], fontsize=7, padding=2)
    if weighted:
        ax.bar(x + 0.2, [startups[s]["weighted_value"] for s in ids], 0.4,
               label="weighted value", color="none", edgecolor="0.3", hatch="..",
               linewidth=0.8)
        ax.legend(handles=[Patch(facecolor="0.6", edgecolor="black", label="value"),
                           Patch(facecolor="none", edgecolor="0.3", hatch="..",
                                 label="weighted value")], fontsize=8, frameon=False)
    ax.set_ylabel("strategic value")
    ax.set_title("Value per start-up (labels: jobs run / asked)")
    return ax


__all__ = [
    "CapSeries",
    "cap_series",
    "compact",
    "gpu_offsets",
    "plot_caps",
    "plot_gantt",
    "plot_spend",
    "plot_utilization",
    "plot_value",
    "pool_assignments",
    "startup_colors",
    "utilization_matrix",
]
