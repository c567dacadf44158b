"""Interactive views of a plan for the HTML report (Plotly, embedded offline).

``gantt_figure`` draws every assignment as a bar over its periods, one row per job grouped by
pool, coloured by start-up; hovering a bar shows the job, start-up, pool, GPUs, periods, dates
(when the horizon has a start), cost and value; the legend and a drop-down filter by start-up.
``utilization_figure`` is the pool x period heatmap with GPUs used / capacity on hover.
``embed`` renders figures as HTML fragments; the first carries the whole plotly.js bundle
inline (no CDN, no network), so the report stays one self-contained file.
"""

from __future__ import annotations

from typing import Any

from ..models import Instance, Plan
from ..models.metrics import plan_metrics
from ..models.plan import period_date
from .format import num, pct

_CONFIG = {"displaylogo": False, "responsive": True,
           "modeBarButtonsToRemove": ["sendDataToCloud"]}


def _hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def _period_ticks(instance: Instance) -> dict[str, Any]:
    """x-axis ticks: period numbers, with the date each period begins when known."""
    periods = instance.horizon.periods
    step = max(1, periods // 13)
    ticks = list(range(0, periods + 1, step))
    if instance.horizon.start is None:
        return {"tickvals": ticks, "title": {"text": "period"}}
    text = [f"{t}<br>{period_date(instance, t)}" for t in ticks]
    return {"tickvals": ticks, "ticktext": text,
            "title": {"text": "period (and the date it begins)"}}


def _when(instance: Instance, start: int, end: int) -> str:
    text = f"periods {start}-{end - 1} (end {end}, exclusive)"
    if instance.horizon.start is not None:
        text += f"<br>{period_date(instance, start)} to {period_date(instance, end)} (exclusive)"
    return text


def gantt_figure(instance: Instance, plan: Plan) -> Any:
    """One horizontal bar per assignment (x: periods; y: pool, then job), a trace per
    start-up; hover for details, legend or drop-down to filter by start-up."""
    import plotly.graph_objects as go

    from .plotting import startup_colors

    colors = startup_colors(instance)
    runs = sorted((a for a in plan.assignments if a.job in instance.job_by_id),
                  key=lambda a: (a.cluster, a.accelerator, a.start, a.job))
    by_startup: dict[str, list[Any]] = {}
    for a in runs:
        by_startup.setdefault(instance.job_by_id[a.job].startup, []).append(a)
    fig = go.Figure()
    for sid in [s.id for s in instance.startups if s.id in by_startup]:
        rows = by_startup[sid]
        hover = [f"<b>{a.job}</b><br>start-up {sid}<br>{a.cluster}/{a.accelerator}, "
                 f"{a.gpus:,} GPUs<br>{_when(instance, a.start, a.end)}<br>cost "
                 f"{num(a.cost)} credits, value {num(a.value)}" for a in rows]
        fig.add_trace(go.Bar(
            name=sid, orientation="h", base=[a.start for a in rows],
            x=[a.periods for a in rows],
            y=[[f"{a.cluster}/{a.accelerator}" for a in rows], [a.job for a in rows]],
            marker={"color": _hex(colors.get(sid, (0.5, 0.5, 0.5))),
                    "line": {"color": "white", "width": 1}},
            hovertext=hover, hoverinfo="text", legendgroup=sid))
    names = [t.name for t in fig.data]
    buttons = [{"label": "all start-ups", "method": "restyle",
                "args": [{"visible": [True] * len(names)}]}]
    buttons += [{"label": n, "method": "restyle",
                 "args": [{"visible": [m == n for m in names]}]} for n in names]
    fig.update_layout(
        barmode="overlay", height=max(260, 120 + 18 * len(runs)),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        title={"text": "Assignments by pool (hover a bar; filter by start-up)", "x": 0.5},
        xaxis={"range": [0, instance.horizon.periods], **_period_ticks(instance)},
        yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
        legend={"title": {"text": "start-up"}},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left",
                      "y": 1.0, "yanchor": "bottom", "showactive": True}] if names else [])
    return fig


def utilization_figure(instance: Instance, plan: Plan,
                       metrics: dict[str, Any] | None = None) -> Any:
    """Heatmap of utilization (pool x period), GPUs used / capacity on hover."""
    import plotly.graph_objects as go

    pools = (metrics or plan_metrics(instance, plan))["pools"]
    labels = list(pools)
    periods = instance.horizon.periods
    z, text = [], []
    for p in labels:
        row, hover = [], []
        for t in range(periods):
            u = pools[p]["utilization"][t]
            row.append(u)
            when = f"period {t}"
            if instance.horizon.start is not None:
                when += f" ({period_date(instance, t)})"
            hover.append(f"{p}<br>{when}<br>{num(pools[p]['used'][t])} of "
                         f"{num(pools[p]['capacity'][t])} GPUs ({pct(u)})")
        z.append(row)
        text.append(hover)
    fig = go.Figure(go.Heatmap(z=z, x=list(range(periods)), y=labels, hovertext=text,
                               hoverinfo="text", colorscale="YlOrRd", zmin=0,
                               zmax=max(1.0, *(u for r in z for u in r if u is not None)),
                               colorbar={"title": {"text": "used / capacity"}}))
    fig.update_layout(height=max(220, 110 + 24 * len(labels)),
                      margin={"l": 10, "r": 10, "t": 50, "b": 40},
                      title={"text": "Pool utilization per period (hover for GPUs)"},
                      xaxis=_period_ticks(instance), yaxis={"autorange": "reversed"})
    return fig


def embed(figures: list[tuple[str, Any]]) -> str:
    """HTML fragments of ``(div id, figure)``; the first embeds plotly.js itself."""
    parts = []
    for k, (div_id, fig) in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=k == 0, div_id=div_id,
                                 config=_CONFIG, include_mathjax=False))
    return "\n".join(parts)


__all__ = ["embed", "gantt_figure", "utilization_figure"]
