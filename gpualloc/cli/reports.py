"""Report, export and import-jobs commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import models
from ..models import Instance, Plan
from .app import (
    ForceOpt,
    app,
    check_writable,
    err,
    fail,
    input_errors,
    load,
    load_plan_for,
    out,
    output_errors,
)


# -- reports and data exchange ----------------------------------------------------------------
def write_report(inst: Instance, plan: Plan, path: Path) -> None:
    """Build the plan's report and write it to ``path`` (Markdown for .md, else HTML)."""
    from ..present.report import build_report

    with output_errors(path):
        build_report(inst, plan).save(path)
    out.print(f"report written to {path}", markup=False)


@app.command()
def report(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON).")],
    html_path: Annotated[Path | None, typer.Option(
        "--html", help="Write the self-contained HTML report here (default report.html when "
                       "no other output is asked for).")] = None,
    png: Annotated[Path | None, typer.Option(
        "--png", help="Write every figure as a PNG into this folder.")] = None,
    md: Annotated[bool, typer.Option("--md", help="Print a Markdown summary.")] = False,
    md_out: Annotated[Path | None, typer.Option(
        "--md-out", help="Write the Markdown summary to this file.")] = None,
    force: ForceOpt = False,
) -> None:
    """Report a plan: headline, Gantt charts, utilization, caps, spend, value, unscheduled."""
    from ..models.validator import validate as check
    from ..present.report import build_report

    check_writable(html_path, "the report")
    check_writable(png, "the figures", folder=True)
    check_writable(md_out, "the Markdown summary")
    inst = load(instance)
    p = load_plan_for(plan, inst, force)
    note = err if md else out  # keep stdout clean Markdown when printing it
    if html_path is None and png is None and md_out is None and not md:
        html_path = Path("report.html")
    violations = check(inst, p)
    if violations:
        err.print(f"[yellow]warning:[/yellow] the plan breaks {len(violations)} rule(s); "
                  "the report lists them", markup=True)
    rep = build_report(inst, p)
    try:
        if html_path is not None:
            rep.save_html(html_path)
            note.print(f"report written to {html_path}", markup=False)
        if png is not None:
            written = rep.save_pngs(png)
            note.print(f"{len(written)} figure(s) written to {png}", markup=False)
        if md_out is not None:
            rep.save_markdown(md_out)
            note.print(f"Markdown summary written to {md_out}", markup=False)
    except OSError as e:
        fail(f"cannot write: {e.strerror or e} ({e.filename or ''})")
    if md:
        sys.stdout.write(rep.markdown())


@app.command()
def export(
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON).")],
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the assignments here as CSV (default: print them).")] = None,
    instance: Annotated[Path | None, typer.Option(
        help="The plan's instance: start-ups of older plan files, and calendar dates when "
             "its horizon has a start.")] = None,
    force: ForceOpt = False,
) -> None:
    """Export a plan's assignments as CSV, one row per assignment: the columns of
    ``plan.to_dataframe()``."""
    from ..present.report import assignments_csv

    check_writable(csv_path, "the CSV")
    inst = load(instance) if instance is not None else None
    if inst is not None:
        p = load_plan_for(plan, inst, force)
    else:
        with input_errors():
            p = models.load_plan(plan)
    text = assignments_csv(p, inst)
    if csv_path is None:
        sys.stdout.write(text)
        return
    with output_errors(csv_path):
        models.atomic_write_text(csv_path, text)
    out.print(f"{len(p.assignments)} assignment(s) written to {csv_path}", markup=False)


@app.command("import-jobs")
def import_jobs(
    instance: Annotated[Path, typer.Argument(help="Instance file to add the jobs to.")],
    jobs_csv: Annotated[Path, typer.Argument(help="Jobs CSV: one row per job option; columns "
                                             "id, startup, value, release, deadline, "
                                             "mandatory, after, accelerator, gpus, periods, "
                                             "option_value, clusters, regions.")],
    out_path: Annotated[Path, typer.Option("--out", help="Write the new instance here "
                                           "(YAML, or JSON for .json).")],
) -> None:
    """Add jobs from a spreadsheet CSV to an instance and write the result."""
    from ..sources.jobs_csv import import_jobs as add_csv_jobs

    check_writable(out_path, "the instance")
    inst = load(instance)
    with input_errors():
        new = add_csv_jobs(inst, jobs_csv, instance_label=str(instance))
    with output_errors(out_path):
        models.save_instance(new, out_path)
    added = new.jobs[len(inst.jobs):]
    options = sum(len(j.options) for j in added)
    out.print(f"{len(added)} job(s) with {options} option(s) added; instance written to "
              f"{out_path}", markup=False)
    if _has_comments(instance):
        err.print(f"note: the comments of {instance} are not kept in {out_path} (the instance "
                  "is written anew from its data)", markup=False)


def _has_comments(path: Path) -> bool:
    """Whether a YAML file has a comment line (a cheap look; JSON has none)."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        return any(line.lstrip().startswith("#") or " #" in line
                   for line in path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False
