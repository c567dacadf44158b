"""Credit tranches and fairness in reports: spend over time against released credits, shares.

Like ``present.plotting``: every plot takes the instance and the plan, draws on the ``ax`` it is
given (or a fresh ``Figure``, never pyplot) and returns it; the numbers come from
``plan_metrics``. The text helpers give the lines the CLI summary and the report print.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..models import Instance, Plan
from ..models.format import ranges

if TYPE_CHECKING:  # matplotlib is imported by the plots only: the CLI summary stays light
    from matplotlib.axes import Axes

Metrics = dict[str, Any]


def plot_spend_over_time(instance: Instance, plan: Plan, ax: Axes | None = None,
                         metrics: Metrics | None = None) -> Axes:
    """One line per start-up: cumulative spend by period (solid) against the credits released
    by then (dashed steps; a lump sum is flat). Unlimited credits have no dashed line."""
    import numpy as np
    from matplotlib.lines import Line2D

    from .plotting import _COMPACT, _axes, _empty, _metrics, startup_colors

    startups = _metrics(instance, plan, metrics)["startups"]
    ax = _axes(ax, (8.0, 4.0))
    if not startups:
        return _empty(ax, "no start-ups")
    horizon = instance.horizon.periods
    colors = startup_colors(instance)
    t = np.arange(horizon)
    for s in instance.startups:
        spend = np.cumsum(startups[s.id]["spend_by_period"])
        ax.step(t, spend, where="post", color=colors[s.id], linewidth=1.6, label=s.id)
        if s.credits is not None:
            released = [s.released(p) or 0.0 for p in range(horizon)]
            ax.step(t, released, where="post", color=colors[s.id], linewidth=1.0,
                    linestyle="--")
    ax.set_xlabel("period")
    ax.set_ylabel("credits")
    ax.yaxis.set_major_formatter(_COMPACT)
    ax.set_title("Cumulative spend (solid) vs credits released (dashed)")
    handles = [Line2D([], [], color=colors[s.id], label=s.id) for s in instance.startups]
    handles.append(Line2D([], [], color="0.3", linestyle="--", label="released"))
    ax.legend(handles=handles, fontsize=7, frameon=False, ncols=2)
    return ax


def plot_shares(instance: Instance, plan: Plan, ax: Axes | None = None,
                metrics: Metrics | None = None) -> Axes:
    """Bars of each start-up's share (scheduled value / asked value), its ``min_share`` as a
    black tick, and for a max-min plan the proven m* as a dashed line."""
    from .plotting import _COMPACT, _axes, _empty, _metrics, _startup_axis, startup_colors

    m = _metrics(instance, plan, metrics)
    ids = [sid for sid, s in m["startups"].items() if s["share"] is not None]
    ax = _axes(ax, (max(6.0, 0.8 * len(ids) + 2), 3.6))
    if not ids:
        return _empty(ax, "no start-up has a share")
    x = _startup_axis(ax, ids)
    colors = startup_colors(instance)
    bars = ax.bar(x, [m["startups"][s]["share"] for s in ids], 0.6,
                  color=[colors[s] for s in ids], edgecolor="black", linewidth=0.5)
    ax.bar_label(bars, labels=[f"{100 * m['startups'][s]['share']:.0f}%" for s in ids],
                 fontsize=7, padding=2)
    for xi, sid in zip(x, ids, strict=True):
        floor = m["startups"][sid]["min_share"]
        if floor is not None:
            ax.hlines(floor, xi - 0.35, xi + 0.35, color="black", linewidth=2)
    fair = plan.summary.get("fairness") or {}
    m_star = (fair.get("stage1") or {}).get("m_star")
    if m_star is not None:
        ax.axhline(m_star, color="0.3", linestyle="--", linewidth=1, label="m* (max-min)")
        ax.legend(fontsize=8, frameon=False)
    ax.yaxis.set_major_formatter(_COMPACT)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of asked value")
    ax.set_title("Share per start-up (black: min_share)")
    return ax


def share_text(metrics: Metrics, sid: str) -> str:
    """``83%`` (``83% >= 30%`` with a floor), ``-`` without a share."""
    s = metrics["startups"][sid]
    if s["share"] is None:
        return "-"
    text = f"{100 * s['share']:.1f}%"
    return text if s["min_share"] is None else f"{text} (min {100 * s['min_share']:.0f}%)"


def tranche_lines(instance: Instance, metrics: Metrics) -> list[str]:
    """One line per tranche: periods, credits, spend in its periods, cumulative spend against
    release, and where it binds."""
    out = []
    for s in instance.startups:
        for tr in metrics["startups"][s.id]["tranches"]:
            first, last = tr["periods"]
            binds = tr["binding_periods"]
            where = f"binds in periods {ranges(binds)}" if binds else "does not bind"
            out.append(f"{s.id} tranche {tr['index']} (periods {first}-{last}, "
                       f"{tr['credits']:,.0f} credits{'' if s.carry_over else ', no carry-over'}"
                       f"): spend {tr['spend']:,.0f} in its periods, {tr['cumulative_spend']:,.0f}"
                       f" of {tr['released']:,.0f} released by period {last} "
                       f"({tr['unspent']:,.0f} unspent); {where}")
    return out


def fairness_lines(plan: Plan) -> list[str]:
    """The two stages of a max-min plan (nothing for other plans)."""
    fair = plan.summary.get("fairness")
    if not fair:
        return []
    one, two = fair["stage1"], fair["stage2"]

    def num(x: Any, pct: bool = False) -> str:
        if x is None:
            return "-"
        return f"{100 * x:.2f}%" if pct else f"{x:,.4g}"

    return [f"max-min stage 1: smallest share m* {num(one['m_star'], True)}, bound "
            f"{num(one['bound'], True)}, gap {num(one['gap'], True)} ({one['status']}, "
            f"{one['solves']} solves, {one['seconds']:.2f}s)",
            f"max-min stage 2: every share >= {num(fair['floor'], True)} (tolerance "
            f"{num(fair['tolerance'], True)}): objective {num(two['objective'])}, bound "
            f"{num(two['bound'])}, gap {num(two['gap'], True)} ({two['status']}); smallest "
            f"share {num(fair['smallest_share'], True)}"]


def credit_sections_html(instance: Instance, plan: Plan, metrics: Metrics,
                         figure_html: Any) -> list[str]:
    """The report's tranche and fairness sections as HTML parts; ``figure_html(name)`` embeds
    a figure drawn by ``credit_figures``."""
    e = html.escape
    parts = []
    if any(s.tranches for s in instance.startups):
        parts += ["<h2>Credit tranches</h2>", figure_html("spend-over-time"),
                  "<ul>", *(f"<li>{e(line)}</li>" for line in tranche_lines(instance, metrics)),
                  "</ul>"]
    shares = [f"{sid} {share_text(metrics, sid)}" for sid, s in metrics["startups"].items()
              if s["share"] is not None]
    if shares:
        parts += ["<h2>Shares</h2>", figure_html("shares") if uses_fairness(instance) else "",
                  f"<p>Share of asked value: {e(', '.join(shares))}.</p>"]
        parts += [f"<p>{e(line)}</p>" for line in fairness_lines(plan)]
    return parts


def uses_fairness(instance: Instance) -> bool:
    """Whether the instance has a ``min_share`` or the max-min objective (then the report
    draws the shares figure)."""
    return instance.objective.kind == "maxmin" or any(
        s.min_share is not None for s in instance.startups)


def credit_sections_markdown(instance: Instance, plan: Plan, metrics: Metrics) -> list[str]:
    """The same sections as Markdown lines (no figures)."""
    lines: list[str] = []
    tranches = tranche_lines(instance, metrics)
    if tranches:
        lines += ["", "## Credit tranches", "", *(f"- {t}" for t in tranches)]
    shares = [f"- {sid}: {share_text(metrics, sid)}" for sid in metrics["startups"]
              if metrics["startups"][sid]["share"] is not None]
    if shares:
        lines += ["", "## Shares", "", *shares, *(f"- {x}" for x in fairness_lines(plan))]
    return lines


def credit_figures(instance: Instance, plan: Plan, metrics: Metrics) -> list[tuple[str, str,
                                                                                   Axes]]:
    """(name, title, axes) of the figures these sections embed."""
    out = []
    if any(s.tranches for s in instance.startups):
        out.append(("spend-over-time", "Cumulative spend vs credits released",
                    plot_spend_over_time(instance, plan, metrics=metrics)))
    if uses_fairness(instance) and any(s["share"] is not None
                                       for s in metrics["startups"].values()):
        out.append(("shares", "Share of asked value per start-up",
                    plot_shares(instance, plan, metrics=metrics)))
    return out


__all__ = ["credit_figures", "credit_sections_html", "credit_sections_markdown",
           "fairness_lines", "plot_shares", "plot_spend_over_time", "share_text",
           "tranche_lines", "uses_fairness"]
