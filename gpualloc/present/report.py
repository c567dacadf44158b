"""A report of a plan that people would rather look at than read: HTML, Markdown and PNGs.

``build_report(instance, plan)`` gathers the headline figures, the metrics, the validator's
verdict, the reasons why unscheduled jobs did not run (where they are known) and the figures of
``gpualloc.present.plotting``. The HTML is a single self-contained file: images are inline base64 PNGs,
the style sheet is inline, and there are no scripts and no references to the network.

Reasons for unscheduled jobs come from facts that hold whatever else is scheduled: options
removed by export rules (the plan's ``ineligible`` entries), no option that fits its window, no
allowed cluster with a pool for it, more GPUs than the pools have in the job's window, a cost
above the start-up's credits, a cap that the job alone would exceed, or a dependency that did
not run. Otherwise the reason is blank: the job lost out to others for capacity, credits or caps.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..models import Instance, Plan, atomic_write_text
from ..models.instance import Cap, Cluster, Job, Option
from ..models.io import atomic_write_bytes
from ..models.metrics import plan_metrics
from ..models.rules import REL_TOL
from ..models.validator import Violation, validate
from .credit_charts import credit_figures, credit_sections_html, credit_sections_markdown

MAX_LISTED_VIOLATIONS = 50


# -- formatting -------------------------------------------------------------------------------
def _num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 1e6:
        return f"{x:,.0f}"
    if float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "figure"


# -- unscheduled jobs -------------------------------------------------------------------------
def _starts(instance: Instance, job: Job, option: Option, cluster: Cluster) -> list[int]:
    """Starts in the job's window where the pool has the option's GPUs in every period."""
    pool = cluster.pool(option.accelerator)
    if pool is None:
        return []
    last = instance.deadline(job) - option.periods
    capacity = {t: pool.gpus_at(t) for t in range(job.release, instance.deadline(job))}
    return [s for s in range(job.release, last + 1)
            if all(capacity[t] >= option.gpus for t in range(s, s + option.periods))]


def _cap_blocks(instance: Instance, cap: Cap, job: Job, option: Option, cluster: Cluster,
                start: int) -> bool:
    """Whether the job alone, run from ``start``, exceeds a cap's fixed limit."""
    if cap.limit is None or not cap.matches(instance, job, cluster, option.accelerator):
        return False
    per = cap.per_period_use(option.gpus, instance.tpp(option.accelerator),
                             instance.horizon.period_hours)
    run = range(start, start + option.periods)
    for window in cap.windows(instance.horizon.periods):
        overlap = len(range(max(run.start, window.start), min(run.stop, window.stop)))
        if overlap and per * overlap > cap.limit + max(1.0, cap.limit) * REL_TOL:
            return True
    return False


def unscheduled_reason(instance: Instance, plan: Plan, job: Job) -> str:
    """Why ``job`` cannot run in any plan (or with the plan's other choices), if known, else ''."""
    run = {a.job for a in plan.assignments}
    barred = [x for x in plan.ineligible if x.job == job.id]
    deadline = instance.deadline(job)
    reasons: list[str] = []
    if not any(job.release + o.periods <= deadline for o in job.options):
        reasons.append(f"no option fits its window [{job.release}, {deadline})")
    elif not instance.allowed_clusters(job):
        reasons.append("no cluster is allowed by the job's and the start-up's restrictions")
    else:
        placements = list(instance.placements(job))
        placements = [(k, o, c) for k, o, c in placements
                      if not any(x.option == k and x.cluster == c.id for x in barred)]
        if not placements:
            reasons.append(_no_placement(instance, job, barred))
        else:
            fits = [(o, c, s) for _, o, c in placements for s in _starts(instance, job, o, c)]
            startup = instance.startup_by_id.get(job.startup)
            credits = startup.credits if startup else None
            if not fits:
                reasons.append("no option fits: it needs more GPUs than its pools have "
                               "throughout its window")
            elif credits is not None and all(
                    instance.cost(c, o) > credits + max(1.0, credits) * REL_TOL
                    for o, c, _ in fits):
                cheapest = min(instance.cost(c, o) for o, c, _ in fits)
                reasons.append(f"its cheapest option costs {_num(cheapest)}, over the "
                               f"start-up's credits of {_num(credits)}")
            else:
                blocking = set()
                free = False
                for o, c, s in fits:
                    hit = [cap.id for cap in instance.caps
                           if _cap_blocks(instance, cap, job, o, c, s)]
                    if not hit:
                        free = True
                        break
                    blocking.update(hit)
                if not free:
                    reasons.append("it alone would exceed cap " + ", ".join(sorted(blocking)))
    missing = [d for d in job.after if d not in run]
    if missing:
        reasons.append("depends on unscheduled " + ", ".join(missing))
    if not reasons and barred:
        reasons.append(_barred_text(barred))
    return "; ".join(reasons)


def _barred_text(barred: list[Any]) -> str:
    by_reason: dict[str, list[str]] = {}
    for x in barred:
        by_reason.setdefault(x.reason, []).append(x.cluster)
    parts = [f"{r} (on {', '.join(sorted(set(cs)))})" for r, cs in by_reason.items()]
    return "export rules bar some options: " + "; ".join(parts)


def _no_placement(instance: Instance, job: Job, barred: list[Any]) -> str:
    """Why no (option, cluster) survives rules 2 and 3 and eligibility."""
    why: list[str] = []
    deadline = instance.deadline(job)
    skip = {(x.option, x.cluster) for x in barred}
    for k, o in enumerate(job.options):
        if job.release + o.periods > deadline:
            continue
        for c in instance.allowed_clusters(job):
            if (k, c.id) in skip:
                continue  # explained by the plan's ineligible entries below
            pool = c.pool(o.accelerator)
            if pool is None:
                text = f"no allowed cluster has a pool of {o.accelerator}"
            elif pool.max_gpus_per_job is not None and o.gpus > pool.max_gpus_per_job:
                text = (f"{o.gpus:,} {o.accelerator} GPUs exceed the largest gang "
                        f"(max_gpus_per_job) of its pools")
            else:
                text = instance.ineligibility(job, o.accelerator, c) or ""
            if text and text not in why:
                why.append(text)
    if barred:
        why.append(_barred_text(barred).replace("bar some options", "bar"))
    return "no option fits: " + "; ".join(why) if why else "no option fits"


def unscheduled_reasons(instance: Instance, plan: Plan) -> dict[str, str]:
    """Every job the plan does not run (instance order), with its reason or ''."""
    run = {a.job for a in plan.assignments}
    out = {j.id: unscheduled_reason(instance, plan, j) for j in instance.jobs if j.id not in run}
    for jid in plan.unscheduled:  # ids the instance does not know
        out.setdefault(jid, "")
    return out


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
        horizon = f"{inst.horizon.periods} periods of {_num(inst.horizon.period_hours)} h"
        if inst.horizon.start is not None:
            end = inst.horizon.start + dt.timedelta(
                hours=inst.horizon.periods * inst.horizon.period_hours)
            horizon += f" ({inst.horizon.start.isoformat()} to {end.isoformat()})"
        verdict = "valid" if not self.violations else f"{len(self.violations)} violation(s)"
        return [
            ("instance", inst.name),
            ("status", p.status.value),
            ("objective", _num(p.objective)),
            ("bound", _num(p.bound)),
            ("gap", _pct(p.gap)),
            ("solve seconds", f"{p.solve_seconds:.2f}"),
            ("backend", p.backend or "-"),
            ("seed", "-" if p.seed is None else str(p.seed)),
            ("jobs run / asked", f"{run} / {len(inst.jobs)}"),
            ("total spend", _num(m["total_cost"])),
            ("total value", _num(m["total_value"])),
            ("horizon", horizon),
            ("validator", verdict),
        ]

    def startup_rows(self) -> list[list[str]]:
        rows = []
        for sid, s in self.metrics["startups"].items():
            rows.append([sid, f"{s['jobs_run']}/{s['jobs_asked']}", _num(s["value"]),
                         _num(s["weighted_value"]), _num(s["spend"]),
                         "unlimited" if s["credits"] is None else _num(s["credits"]),
                         _pct(s["spend_share"])])
        return rows

    STARTUP_HEAD = ("start-up", "jobs run/asked", "value", "weighted value", "spend", "credits",
                    "credits used")
    CAP_HEAD = ("cap", "metric", "per", "peak use", "limit at peak", "binding windows")
    UNSCHEDULED_HEAD = ("job", "start-up", "value", "mandatory", "reason")
    ASSIGNMENT_HEAD = ("job", "start-up", "cluster", "accelerator", "GPUs", "start", "end",
                       "cost", "value")

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
        for a in sorted(self.plan.assignments, key=lambda a: (a.start, a.cluster, a.job)):
            job = self.instance.job_by_id.get(a.job)
            rows.append([a.job, job.startup if job else "?", a.cluster, a.accelerator,
                         f"{a.gpus:,}", str(a.start), str(a.end), _num(a.cost), _num(a.value)])
        return rows

    # -- Markdown ------------------------------------------------------------------------------
    def markdown(self) -> str:
        """Headline, start-up table, caps and unscheduled jobs as GitHub-flavoured Markdown."""
        lines = [f"# Plan report: {_md(self.instance.name)}", ""]
        lines += [f"- **{k}**: {_md(v)}" for k, v in self.headline()]
        lines += ["", "## Start-ups", "", *_md_table(self.STARTUP_HEAD, self.startup_rows())]
        lines += credit_sections_markdown(self.instance, self.plan, self.metrics)
        lines += ["", "## Caps", ""]
        lines += _md_table(self.CAP_HEAD, self.cap_rows()) if self.cap_rows() else ["No caps."]
        lines += ["", f"## Unscheduled jobs ({len(self.reasons)})", ""]
        lines += (_md_table(self.UNSCHEDULED_HEAD, self.unscheduled_rows()) if self.reasons
                  else ["Every job runs."])
        if self.violations:
            lines += ["", f"## Validator: {len(self.violations)} violation(s)", ""]
            lines += [f"- {_md(str(v))}" for v in self.violations[:MAX_LISTED_VIOLATIONS]]
        return "\n".join(lines) + "\n"

    # -- HTML ----------------------------------------------------------------------------------
    def html(self) -> str:
        """The whole report as one self-contained HTML document."""
        e = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Plan report: {e(self.instance.name)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Plan report: {e(self.instance.name)}</h1>",
            '<dl class="headline">',
            *(f"<div><dt>{e(k)}</dt><dd class=\"{_status_class(k, v)}\">{e(v)}</dd></div>"
              for k, v in self.headline()),
            "</dl>",
        ]
        if self.violations:
            parts.append(f'<h2 class="bad">Validator: {len(self.violations)} violation(s)</h2>')
            parts.append(_html_list(str(v) for v in self.violations[:MAX_LISTED_VIOLATIONS]))
        parts += ["<h2>Start-ups</h2>", _html_table(self.STARTUP_HEAD, self.startup_rows())]
        parts += [self._figure_html("spend"), self._figure_html("value")]
        parts += credit_sections_html(self.instance, self.plan, self.metrics, self._figure_html)
        parts.append("<h2>Caps</h2>")
        if self.instance.caps:
            parts.append(_html_table(self.CAP_HEAD, self.cap_rows()))
            parts += [self._figure_html(f.name) for f in self.figures
                      if f.name == "caps" or f.name.startswith("cap-")]
        else:
            parts.append("<p>No caps.</p>")
        parts += ["<h2>Pools</h2>", self._figure_html("utilization")]
        gantts = [f for f in self.figures if f.name.startswith("gantt-")]
        parts += [self._figure_html(f.name) for f in gantts]
        if self.idle_pools:
            parts.append("<p>Pools with no assignments: "
                         + e(", ".join(self.idle_pools)) + ".</p>")
        parts.append(f"<h2>Unscheduled jobs ({len(self.reasons)})</h2>")
        parts.append(_html_table(self.UNSCHEDULED_HEAD, self.unscheduled_rows())
                     if self.reasons else "<p>Every job runs.</p>")
        parts.append(f"<h2>Assignments ({len(self.plan.assignments)})</h2>")
        parts.append(_html_table(self.ASSIGNMENT_HEAD, self.assignment_rows(),
                                 numeric_from=4) if self.plan.assignments
                     else "<p>No assignments.</p>")
        if self.version:
            parts.append(f'<p class="foot">Generated by gpualloc {e(self.version)}.</p>')
        parts.append("</body></html>")
        return "\n".join(p for p in parts if p) + "\n"

    def _figure_html(self, name: str) -> str:
        fig = next((f for f in self.figures if f.name == name), None)
        if fig is None:
            return ""
        data = base64.b64encode(fig.png()).decode("ascii")
        title = html.escape(fig.title)
        return (f'<figure><img alt="{title}" src="data:image/png;base64,{data}">'
                f"<figcaption>{title}</figcaption></figure>")

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


CSV_COLUMNS = ("job", "cluster", "accelerator", "gpus", "start", "end", "periods", "cost", "value",
               "option")


def assignments_csv(plan: Plan) -> str:
    """The plan's assignments as CSV text: a header, then one row per assignment.

    Columns are ``CSV_COLUMNS``; numbers are written exactly (``repr``), an absent option
    index is an empty cell.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in plan.assignments:
        row = {**a.model_dump(), "periods": a.periods}
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                         else row[c] for c in CSV_COLUMNS])
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


# -- HTML and Markdown helpers ----------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.5rem;
margin:0}.headline div{background:#f5f6f8;border-radius:6px;padding:.4rem .6rem}
dt{font-size:.75rem;color:#666;text-transform:uppercase;letter-spacing:.03em}
dd{margin:0;font-size:1.05rem;font-weight:600}
.good{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;width:100%}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f6f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}img{max-width:100%;height:auto}
figcaption{font-size:.8rem;color:#666}.foot{color:#888;font-size:.75rem;margin-top:2rem}
""".replace("\n", "")


def _status_class(key: str, value: str) -> str:
    if key == "status":
        return {"optimal": "good", "feasible": "warn"}.get(value, "bad")
    if key == "validator":
        return "good" if value == "valid" else "bad"
    return ""


def _html_table(head: tuple[str, ...], rows: list[list[str]], numeric_from: int = 1) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for k, v in enumerate(row):
            numeric = k >= numeric_from and bool(re.fullmatch(r"[-+0-9.,%/ ]+", v))
            cells.append(f'<td class="n">{e(v)}</td>' if numeric else f"<td>{e(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _html_list(items: Any) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if k == 0 else "---:" if head[k] not in
                            ("metric", "per", "start-up", "reason", "mandatory") else "---"
                            for k in range(len(head))) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


__all__ = ["CSV_COLUMNS", "Report", "ReportFigure", "assignments_csv", "build_report",
           "draw_figures", "unscheduled_reason", "unscheduled_reasons"]
