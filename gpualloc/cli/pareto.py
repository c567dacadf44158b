"""``gpualloc pareto``: the value frontier against fairness, spend or stability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import models, optimizer
from .app import (
    EXIT_NO_PLAN,
    InstanceArg,
    app,
    fail,
    fmt,
    input_errors,
    load,
    out,
    output_errors,
    pct,
)
from .studies import _check_run_options, _progress_bar, _study_errors


@app.command()
def pareto(
    instance: InstanceArg = None,
    against: Annotated[str, typer.Option(
        help="fairness (min share from 0 to the max-min optimum), spend (total spend cap) or "
             "stability (changes of a re-plan; needs --previous).")] = "fairness",
    points: Annotated[int, typer.Option(help="Levels on the curve.")] = 5,
    workers: Annotated[int, typer.Option(
        help="Solves at once in local processes (1: in order, each warm-started from its "
             "neighbour).")] = 1,
    dask: Annotated[str | None, typer.Option(
        help="Run the solves on this Dask scheduler (tcp://host:port) instead.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 60.0,
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed (the same for every solve).")] = 0,
    previous: Annotated[Path | None, typer.Option(
        help="stability: the plan file being revised.")] = None,
    now: Annotated[int | None, typer.Option(
        help="stability: re-plan from this period (earlier starts are frozen).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the points as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Plot the curve with its proven-bound envelope (PNG, SVG, PDF).")] = None,
) -> None:
    """Best value as fairness is required, or spend or changes are capped, at N levels."""
    from ..analysis.pareto import AGAINST, save_pareto_plot
    from ..analysis.pareto import pareto as curve_of
    from ..analysis.whatif import write_csv

    _check_run_options(time_limit, workers)
    if against not in AGAINST:
        fail(f"--against must be one of {', '.join(AGAINST)}")
    if points < 1:
        fail("--points must be at least 1")
    if against == "stability" and previous is None:
        fail("--against stability needs --previous PLAN (and --now T)")
    if against != "stability" and (previous is not None or now is not None):
        fail("--previous and --now go with --against stability")
    if now is not None and now < 0:
        fail("--now must be a period >= 0")
    inst = load(instance)
    with input_errors():
        optimizer.get_backend(backend)
        prev = models.load_plan(previous) if previous is not None else None
    with _study_errors(dask), _progress_bar(f"{points} points") as progress:
        curve = curve_of(inst, against, points, backend=backend, time_limit=time_limit,
                         seed=seed, workers=workers, dask_address=dask, previous=prev,
                         now=now, progress=progress)
    rows = curve.rows()
    _print_curve(against, rows)
    if curve.stage1 is not None:
        s1 = curve.stage1
        out.print(f"max-min optimum m* {pct(s1['m_star'])} ({s1['status']}; proven bound "
                  f"{pct(s1['bound'])})", markup=False)
    with output_errors():
        if csv is not None:
            write_csv(rows, csv)
            out.print(f"CSV written to {csv}", markup=False)
        if plot is not None:
            save_pareto_plot(curve, plot)
            out.print(f"plot written to {plot}", markup=False)
    if not any(p.plan.is_feasible for p in curve.points):
        raise typer.Exit(EXIT_NO_PLAN)


def _print_curve(against: str, rows: list[dict]) -> None:
    share = against == "fairness"
    level = {"fairness": "min share >=", "spend": "spend <=", "stability": "changes <="}
    got = {"fairness": "smallest share", "spend": "spend", "stability": "changes"}
    slope = {"fairness": "value per 0.1 share", "spend": "value per 1M credits",
             "stability": "value per change"}[against]
    unit = {"fairness": 0.1, "spend": 1e6, "stability": 1.0}[against]
    t = Table(title=f"Value against {against}", title_justify="left")
    for col in (level[against], got[against], "status", "objective", "bound", "gap", slope,
                "seconds"):
        t.add_column(col, justify="left" if col == "status" else "right")
    for r in rows:
        show = (lambda x: pct(x)) if share else (lambda x: fmt(x, 0))
        per = None if r["value_per_unit"] is None else r["value_per_unit"] * unit
        t.add_row(show(r["level"]), show(r["achieved"]), r["status"], fmt(r["objective"]),
                  fmt(r["bound"]), pct(r["gap"]), fmt(per), f"{r['solve_seconds']:.2f}")
    out.print(t)
