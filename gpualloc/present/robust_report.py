"""The HTML page of a robust or adaptive plan: headline, regret table, per-case value chart.

One self-contained file (inline style sheet and PNG, no scripts), built with the page helpers
of ``present.report``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..analysis.robust import RobustResult
from ..models import atomic_write_text
from .format import num, pct
from .html import CSS, table

TABLE_HEAD = ("case", "probability", "value", "optimum", "bound", "gap", "regret",
              "nominal re-planned")


def table_rows(result: RobustResult) -> list[list[str]]:
    """The regret table as formatted cells (one row per case)."""
    rows = []
    for c in result.cases:
        nominal = num(c.nominal_value) if c.nominal is None or c.nominal.is_feasible \
            else f"none ({c.nominal.status.value})"
        rows.append([c.name, f"{c.probability:.3f}", num(c.value), num(c.optimum.objective),
                     num(c.optimum.bound), pct(c.optimum.gap), num(c.regret), nominal])
    return rows


def headline(result: RobustResult) -> list[tuple[str, str]]:
    """The across-case figures as (label, text) pairs."""
    return [("mode", result.mode), ("decide by period", str(result.decide_by)),
            ("status", result.status.value), ("expected value", num(result.expected_value)),
            ("bound", num(result.bound)), ("gap", pct(result.gap)),
            ("perfect information", num(result.perfect_information)),
            ("EVPI", num(result.evpi)),
            ("nominal plan re-planned", num(result.nominal_expected)),
            ("VSS", num(result.vss)), ("solve seconds", f"{result.solve_seconds:.2f}")]


def value_chart(result: RobustResult) -> bytes:
    """PNG: per case, the chosen plan's value, the case optimum and the nominal re-plan."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [c.name for c in result.cases]
    series = [("chosen plan", [c.value for c in result.cases], "#4c72b0"),
              ("case optimum", [c.optimum.objective for c in result.cases], "#55a868"),
              ("nominal re-planned", [c.nominal_value for c in result.cases], "#dd8452")]
    fig = Figure(figsize=(8, max(2.5, 0.6 * len(names) + 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    height = 0.8 / len(series)
    for k, (label, values, colour) in enumerate(series):
        ys = [i + (k - 1) * height for i in range(len(names))]
        ax.barh(ys, [v or 0.0 for v in values], height=height, color=colour, label=label)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("objective")
    ax.set_title(f"Value per case ({result.mode} plan)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def robust_html(result: RobustResult, title: str = "Plan under supply risk") -> str:
    """The whole page as one self-contained HTML document."""
    e = html.escape
    image = base64.b64encode(value_chart(result)).decode("ascii")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>", '<dl class="headline">',
        *(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in headline(result)),
        "</dl>", "<h2>Regret table</h2>",
        table(TABLE_HEAD, table_rows(result)),
        "<p>value: the chosen plan's objective in the case; optimum and bound: the case solved "
        "on its own with perfect foresight; regret: optimum minus value; nominal re-planned: "
        "the nominal plan re-planned in the case from the decision period, earlier starts "
        "frozen.</p>",
        f'<figure><img alt="value per case" src="data:image/png;base64,{image}">'
        "<figcaption>Value per case</figcaption></figure>",
    ]
    if result.broken:
        parts.append("<p>The nominal plan cannot continue in: "
                     + e(", ".join(result.broken)) + ".</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def save_robust_html(result: RobustResult, path: str | Path) -> Path:
    """Write the page atomically."""
    atomic_write_text(path, robust_html(result))
    return Path(path)


__all__ = ["TABLE_HEAD", "headline", "robust_html", "save_robust_html", "table_rows",
           "value_chart"]
