"""A report of a plan that people would rather look at than read: HTML, Markdown and PNGs.

``build_report(instance, plan)`` gathers the headline figures, the metrics, the validator's
verdict, explain's reason for every unscheduled job and the figures of
``gpualloc.present.plotting``. The HTML is a single self-contained file with no reference to
the network: the style sheet is inline, the Gantt chart and the utilization heatmap are
interactive Plotly charts whose plotly.js is embedded in the page, and the other figures are
inline base64 PNGs. Every figure is also a matplotlib PNG (``save_pngs``).

Reasons for unscheduled jobs are explain's (``analysis.explain.job_reasons`` with no forced
re-solves): export rules, no option that fits, a predecessor out, or the limits of the plan
that every placement of the job would overflow. ``gpualloc explain`` adds what forcing a job
in would displace.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..models import Instance, Plan, atomic_write_text
from ..models.io import atomic_write_bytes
from ..models.metrics import plan_metrics
from ..models.plan import period_date
from ..models.validator import Violation, validate
from .credit_charts import credit_figures, credit_sections_html, credit_sections_markdown
from .format import csv_value, num, pct
from .html import (
    CSS,
    ERROR_PROBE,
    RENDER_PROBE,
    bullets,
    md,
    md_table,
    status_class,
    table,
)

MAX_LISTED_VIOLATIONS = 50


def _num(x: float | None, digits: int = 2) -> str:
    if x is not None and abs(x) >= 1e6:
        digits = 0
    return num(x, digits)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "figure"


def horizon_text(instance: Instance) -> str:
    """``26 periods of 168 h (2025-01-06 to 2025-07-06, inclusive)``."""
    h = instance.horizon
    text = f"{h.periods} periods of {_num(h.period_hours)} h"
    if h.start is not None:
        end = dt.datetime.combine(h.start, dt.time()) + dt.timedelta(
            hours=h.periods * h.period_hours)
        last = (end - dt.timedelta(seconds=1)).date()  # the end is exclusive
        text += f" ({h.start.isoformat()} to {last.isoformat()}, inclusive)"
    return text


# -- unscheduled jobs -------------------------------------------------------------------------
def unscheduled_reasons(instance: Instance, plan: Plan) -> dict[str, str]:
    """Every job the plan does not run (instance order) with explain's reason for it."""
    from ..analysis.explain import job_reasons

    run = {a.job for a in plan.assignments}
    out: dict[str, str] = {}
    if plan.is_feasible:
        out = {r.job: r.detail for r in job_reasons(instance, plan)}
    else:
        why = (f"the plan is {plan.status.value}: no plan runs any job (gpualloc explain "
               "names the conflict)")
        out = {j.id: why for j in instance.jobs if j.id not in run}
    for jid in plan.unscheduled:  # ids the instance does not know
        out.setdefault(jid, "not a job of this instance")
    order = {j.id: k for k, j in enumerate(instance.jobs)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


# -- the report -------------------------------------------------------------------------------
@dataclass
class ReportFigure:
    """One figure of the report; ``name`` is its file stem, ``title`` its caption."""

    name: str
    title: str
    figure: Figure
    _png: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        if self._png is None:
            buf = io.BytesIO()
            self.figure.savefig(buf, format="png", dpi=100, metadata={"Software": None})
            self._png = buf.getvalue()
        return self._png


@dataclass
class Report:
    """A plan's report. Render with ``html()`` / ``markdown()``, write with ``save*``."""

    instance: Instance
    plan: Plan
    metrics: dict[str, Any]
    violations: list[Violation]
    reasons: dict[str, str]
    idle_pools: list[str]
    version: str = ""

    @cached_property
    def figures(self) -> list[ReportFigure]:
        """The figures (drawn on first use; each rendered to PNG on demand)."""
        return draw_figures(self.instance, self.plan, self.metrics)

    # -- headline ------------------------------------------------------------------------------
    def headline(self) -> list[tuple[str, str]]:
        p, m, inst = self.plan, self.metrics, self.instance
        run = len({a.job for a in p.assignments})
        verdict = "valid" if not self.violations else f"{len(self.violations)} violation(s)"
        status = p.status.value
        if p.summary.get("stopped"):
            status += f" ({p.summary['stopped']})"
        return [
            ("instance", inst.name),
            ("status", status),
            ("objective (weighted value - cost)", _num(p.objective)),
            ("bound", _num(p.bound)),
            ("gap", pct(p.gap)),
            ("solve seconds", num(p.solve_seconds)),
            ("backend", p.backend or "-"),
            ("seed", "-" if p.seed is None else str(p.seed)),
            ("jobs run / asked", f"{run} / {len(inst.jobs)}"),
            ("total spend (credits)", _num(m["total_cost"])),
            ("total value (unweighted)", _num(m["total_value"])),
            ("horizon", horizon_text(inst)),
            ("validator", verdict),
        ]

    def startup_rows(self) -> list[list[str]]:
        rows = []
        for sid, s in self.metrics["startups"].items():
            rows.append([sid, f"{s['jobs_run']}/{s['jobs_asked']}", _num(s["value"]),
                         _num(s["weighted_value"]), _num(s["spend"]),
                         "unlimited" if s["credits"] is None else _num(s["credits"]),
                         pct(s["spend_share"])])
        return rows

    STARTUP_HEAD = ("start-up", "jobs run/asked", "value", "weighted value", "spend", "credits",
                    "credits used")
    CAP_HEAD = ("cap", "metric", "per", "peak use", "limit at peak", "binding windows")
    UNSCHEDULED_HEAD = ("job", "start-up", "value", "mandatory", "reason")

    @property
    def assignment_head(self) -> tuple[str, ...]:
        dates = ("start date", "end date (excl.)") if self.instance.horizon.start else ()
        return ("job", "start-up", "cluster", "accelerator", "GPUs", "start", "end (excl.)",
                *dates, "cost", "value")

    def cap_rows(self) -> list[list[str]]:
        rows = []
        for cid, c in self.metrics["caps"].items():
            binding = sum(1 for w in c["windows"] if w["binding"])
            rows.append([cid, c["metric"], c["per"], _num(c["peak_use"]),
                         _num(c["peak_limit"]), f"{binding}/{len(c['windows'])}"])
        return rows

    def unscheduled_rows(self) -> list[list[str]]:
        rows = []
        for jid, reason in self.reasons.items():
            job = self.instance.job_by_id.get(jid)
            rows.append([jid, job.startup if job else "?",
                         _num(max((job.option_value(o) for o in job.options), default=0.0))
                         if job else "-", "yes" if job and job.mandatory else "",
                         reason])
        return rows

    def assignment_rows(self) -> list[list[str]]:
        rows = []
        dated = self.instance.horizon.start is not None
        for a in sorted(self.plan.assignments, key=lambda a: (a.start, a.cluster, a.job)):
            job = self.instance.job_by_id.get(a.job)
            dates = [period_date(self.instance, a.start),
                     period_date(self.instance, a.end)] if dated else []
            rows.append([a.job, job.startup if job else "?", a.cluster, a.accelerator,
                         f"{a.gpus:,}", str(a.start), str(a.end), *dates, _num(a.cost),
                         _num(a.value)])
        return rows

    # -- Markdown ------------------------------------------------------------------------------
    def markdown(self) -> str:
        """Headline, start-up table, caps and unscheduled jobs as GitHub-flavoured Markdown."""
        lines = [f"# Plan report: {md(self.instance.name)}", ""]
        lines += [f"- **{k}**: {md(v)}" for k, v in self.headline()]
        lines += ["", "## Start-ups", "", *md_table(self.STARTUP_HEAD, self.startup_rows())]
        lines += credit_sections_markdown(self.instance, self.plan, self.metrics)
        lines += ["", "## Caps", ""]
        lines += md_table(self.CAP_HEAD, self.cap_rows()) if self.cap_rows() else ["No caps."]
        lines += ["", f"## Unscheduled jobs ({len(self.reasons)})", ""]
        lines += (md_table(self.UNSCHEDULED_HEAD, self.unscheduled_rows()) if self.reasons
                  else ["Every job runs."])
        if self.violations:
            lines += ["", f"## Validator: {len(self.violations)} violation(s)", ""]
            lines += [f"- {md(str(v))}" for v in self.violations[:MAX_LISTED_VIOLATIONS]]
        return "\n".join(lines) + "\n"

    # -- HTML ----------------------------------------------------------------------------------
    def html(self) -> str:
        """The whole report as one self-contained HTML document (see ``sections``)."""
        e = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Plan report: {e(self.instance.name)}</title>",
            f"<style>{CSS}</style>{ERROR_PROBE}{RENDER_PROBE}</head><body>",
            *self.sections(),
        ]
        if self.version:
            parts.append(f'<p class="foot">Generated by gpualloc {e(self.version)}.</p>')
        parts.append("</body></html>")
        return "\n".join(p for p in parts if p) + "\n"

    def sections(self) -> list[str]:
        """The HTML sections in order; each comes from its own method."""
        return [self.html_headline(), self.html_violations(), self.html_startups(),
                self.html_credits(), self.html_caps(), self.html_pools(), self.html_unscheduled(),
                self.html_assignments()]

    def html_headline(self) -> str:
        e = html.escape
        cards = "".join(f'<div><dt>{e(k)}</dt><dd class="{status_class(k.split()[0], v)}">'
                        f"{e(v)}</dd></div>" for k, v in self.headline())
        note = ('<p class="note">The objective is what the solver maximises: the sum of each '
                "job's option value times its start-up's weight, minus cost_weight x cost. "
                "Total value is the plain sum of the option values run.</p>")
        return (f"<h1>Plan report: {e(self.instance.name)}</h1>"
                f'<dl class="headline">{cards}</dl>{note}')

    def html_violations(self) -> str:
        if not self.violations:
            return ""
        return (f'<h2 class="bad">Validator: {len(self.violations)} violation(s)</h2>'
                + bullets(str(v) for v in self.violations[:MAX_LISTED_VIOLATIONS]))

    def html_startups(self) -> str:
        return "".join(["<h2>Start-ups</h2>", table(self.STARTUP_HEAD, self.startup_rows()),
                        self._figure_html("spend"), self._figure_html("value")])

    def html_credits(self) -> str:
        """Spend against released credits and the shares (tranches and floors only)."""
        return "".join(credit_sections_html(self.instance, self.plan, self.metrics,
                                            self._figure_html))

    def html_caps(self) -> str:
        if not self.instance.caps:
            return "<h2>Caps</h2><p>No caps.</p>"
        return "".join(["<h2>Caps</h2>", table(self.CAP_HEAD, self.cap_rows()),
                        *(self._figure_html(f.name) for f in self.figures
                          if f.name == "caps" or f.name.startswith("cap-"))])

    def html_pools(self) -> str:
        """The interactive Gantt chart and utilization heatmap (plotly.js inline)."""
        from .interactive import embed, gantt_figure, utilization_figure

        charts = []
        if self.plan.assignments:
            charts.append(("gantt", gantt_figure(self.instance, self.plan)))
        if self.metrics["pools"]:
            charts.append(("utilization",
                           utilization_figure(self.instance, self.plan, self.metrics)))
        parts = ["<h2>Pools</h2>", embed(charts) if charts else ""]
        if self.idle_pools:
            parts.append("<p>Pools with no assignments: "
                         + html.escape(", ".join(self.idle_pools)) + ".</p>")
        return "".join(parts)

    def html_unscheduled(self) -> str:
        return (f"<h2>Unscheduled jobs ({len(self.reasons)})</h2>"
                + (table(self.UNSCHEDULED_HEAD, self.unscheduled_rows()) if self.reasons
                   else "<p>Every job runs.</p>"))

    def html_assignments(self) -> str:
        head = f"<h2>Assignments ({len(self.plan.assignments)})</h2>"
        if not self.plan.assignments:
            return head + "<p>No assignments.</p>"
        note = ('<p class="note">A job runs in periods start to end - 1: the end is exclusive '
                "(start 2, end 8 is periods 2-7)"
                + ("; the end date is the day its last period ends"
                   if self.instance.horizon.start else "") + ".</p>")
        return head + note + table(self.assignment_head, self.assignment_rows(),
                                   numeric_from=4)

    def _figure_html(self, name: str) -> str:
        fig = next((f for f in self.figures if f.name == name), None)
        if fig is None:
            return ""
        data = base64.b64encode(fig.png()).decode("ascii")
        title = html.escape(fig.title)
        return (f'<figure><img alt="{title}" src="data:image/png;base64,{data}">'
                f"<figcaption>{title}</figcaption></figure>")

    def inline_figures(self) -> list[str]:
        """Names of the figures the HTML shows as PNGs (the others are interactive there)."""
        return [f.name for f in self.figures if f.name in ("spend", "value", "caps")
                or f.name.startswith("cap-")]

    # -- files ---------------------------------------------------------------------------------
    def save_html(self, path: str | Path) -> Path:
        atomic_write_text(path, self.html())
        return Path(path)

    def save_markdown(self, path: str | Path) -> Path:
        atomic_write_text(path, self.markdown())
        return Path(path)

    def save(self, path: str | Path) -> Path:
        """Markdown for ``.md``/``.markdown``, else HTML."""
        if str(path).lower().endswith((".md", ".markdown")):
            return self.save_markdown(path)
        return self.save_html(path)

    def save_pngs(self, directory: str | Path) -> list[Path]:
        """Write every figure as ``<directory>/<name>.png`` (atomically); return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for f in self.figures:
            path = directory / f"{f.name}.png"
            atomic_write_bytes(path, f.png())
            written.append(path)
        return written


def assignments_csv(plan: Plan, instance: Instance | None = None) -> str:
    """The plan's assignments as CSV text: the columns of ``plan.records(instance)`` (those of
    ``plan.to_dataframe(instance)``), one row per assignment; numbers without float noise
    (``present.format.csv_value``), an absent value as an empty cell."""
    columns, rows = plan.records(instance)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else csv_value(v) for v in row])
    return buf.getvalue()


def build_report(instance: Instance, plan: Plan) -> Report:
    """Gather everything the report shows; figures are drawn when first needed."""
    from .. import __version__

    used = {(a.cluster, a.accelerator) for a in plan.assignments
            if a.job in instance.job_by_id}
    idle = [f"{c.id}/{p.accelerator}" for c in instance.clusters for p in c.pools
            if (c.id, p.accelerator) not in used]
    return Report(instance=instance, plan=plan, metrics=plan_metrics(instance, plan),
                  violations=validate(instance, plan),
                  reasons=unscheduled_reasons(instance, plan), idle_pools=idle,
                  version=__version__)


def draw_figures(instance: Instance, plan: Plan,
                 metrics: dict[str, Any] | None = None) -> list[ReportFigure]:
    """Every figure of the report: a Gantt chart per pool in use, utilization, caps (all caps
    as a share of their limits, then each cap), spend and value."""
    from . import plotting as P

    metrics = metrics if metrics is not None else plan_metrics(instance, plan)
    figures: list[ReportFigure] = []

    def add(name: str, title: str, ax: Any) -> None:
        figures.append(ReportFigure(_slug(name), title, ax.figure))

    for cluster in instance.clusters:
        for pool in cluster.pools:
            if P.pool_assignments(instance, plan, cluster.id, pool.accelerator):
                add(f"gantt-{cluster.id}-{pool.accelerator}",
                    f"Jobs on {cluster.id}/{pool.accelerator}",
                    P.plot_gantt(instance, plan, cluster.id, pool.accelerator))
    add("utilization", "Pool utilization per period",
        P.plot_utilization(instance, plan, metrics=metrics))
    if instance.caps:
        add("caps", "Cap use as a share of the limit",
            P.plot_caps(instance, plan, metrics=metrics))
        for cap in instance.caps:
            add(f"cap-{cap.id}", f"Cap {cap.id}: use vs limit",
                P.plot_caps(instance, plan, cap_id=cap.id, metrics=metrics))
    add("spend", "Spend vs credits per start-up", P.plot_spend(instance, plan, metrics=metrics))
    add("value", "Value per start-up", P.plot_value(instance, plan, metrics=metrics))
    for name, title, ax in credit_figures(instance, plan, metrics):  # tranches and shares
        add(name, title, ax)
    _unique_names(figures)
    return figures


def _unique_names(figures: list[ReportFigure]) -> None:
    seen: dict[str, int] = {}
    for f in figures:
        n = seen.get(f.name.lower(), 0)
        seen[f.name.lower()] = n + 1
        if n:
            f.name = f"{f.name}-{n + 1}"


__all__ = ["Report", "ReportFigure", "assignments_csv", "build_report", "draw_figures",
           "horizon_text", "unscheduled_reasons"]
