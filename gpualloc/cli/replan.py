"""Re-planning output and the explain command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import analysis, optimizer
from ..models import Instance, Plan
from .app import (
    BACKEND_HELP,
    ForceOpt,
    app,
    fail,
    fmt,
    input_errors,
    load,
    load_plan_for,
    out,
)


# -- re-planning and explanations -------------------------------------------------------------
def replan_options(previous: Path | None, now: int | None, stability: float,
                   inst: Instance, force: bool = False) -> dict[str, Any]:
    """``solve`` keyword arguments for ``--previous/--now/--stability`` (exit 2 when bad; a
    ``--now`` at or past the horizon's end freezes everything and is refused)."""
    import math

    if previous is None:
        if now is not None or stability:
            fail("--now and --stability need --previous PLAN")
        return {}
    if now is not None and now < 0:
        fail("--now must be a period >= 0")
    horizon = inst.horizon.periods
    if now is not None and now >= horizon:
        fail(f"--now {now}: past the horizon (periods 0..{horizon - 1}); nothing could be "
             "re-planned")
    if not math.isfinite(stability) or stability < 0:
        fail("--stability must be a finite number >= 0")
    plan = load_plan_for(previous, inst, force)
    return {"previous": plan, "now": 0 if now is None else now, "stability": stability}


def print_changes(plan: Plan) -> None:
    """What re-planning changed and why (or why it could not keep the frozen jobs)."""
    from rich.markup import escape

    for reason in plan.summary.get("reason", []):
        out.print(f"[red]infeasible:[/red] {escape(reason)}", soft_wrap=True)
    info = plan.summary.get("replan", {})
    changes = plan.summary.get("changes", [])
    if info.get("frozen"):
        out.print(f"frozen (started before period {info['now']}): "
                  f"{', '.join(info['frozen'])}", markup=False, soft_wrap=True)
    if not plan.is_feasible:
        return
    out.print(f"{info.get('changed', 0)} change(s) from the previous plan, stability cost "
              f"{fmt(info.get('penalty', 0.0))}; {sum(c['kind'] == 'added' for c in changes)} "
              "job(s) added")

    def where(w: dict[str, Any] | None) -> str:
        if w is None:
            return "-"
        return f"{w['cluster']}/{w['accelerator']} x{w['gpus']} periods {w['start']}-{w['end'] - 1}"

    for c in changes:
        out.print(f"  {c['kind']:8s} {c['job']}: {where(c['before'])} -> {where(c['after'])}  "
                  f"({c['why']})", markup=False, soft_wrap=True)


@app.command("explain")
def explain_cmd(
    instance: Annotated[Path, typer.Argument(help="Instance file (YAML or JSON).")],
    plan: Annotated[Path | None, typer.Argument(
        help="Plan file (JSON); the instance is solved first when omitted.")] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "cpsat",
    time_limit: Annotated[float, typer.Option(
        help="Seconds for the solve, the elastic model and its check.")] = 10.0,
    max_jobs: Annotated[int, typer.Option(
        help="Force in at most this many unscheduled jobs (most valuable first).")]
    = 20,
    job_time_limit: Annotated[float, typer.Option(
        help="Seconds per forced re-solve.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")]
    = False,
    force: ForceOpt = False,
) -> None:
    """Why is it infeasible (conflicts, smallest relaxation), or why is each job out?"""
    inst = load(instance)
    given = None
    if plan is not None:
        given = load_plan_for(plan, inst, force)
    with input_errors():
        engine = optimizer.get_backend(backend)
    if time_limit <= 0 or job_time_limit <= 0:
        fail("--time-limit and --job-time-limit must be positive")
    if max_jobs < 0:
        fail("--max-jobs must be >= 0")
    ex = analysis.explain(inst, given, backend=engine, time_limit=time_limit,
                           max_jobs=max_jobs, job_time_limit=job_time_limit, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(ex.to_dict(), indent=2) + "\n")
        return
    for line in ex.lines():
        out.print(line, markup=False, soft_wrap=True)
