"""``gpualloc robust``: robust and adaptive plans under supply risk, with the regret table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .app import (
    EXIT_NO_PLAN,
    app,
    check_writable,
    fail,
    fmt,
    input_errors,
    load,
    out,
    output_errors,
    pct,
)
from .studies import _check_run_options, _progress_bar, _study_errors


@app.command("robust")
def robust_command(
    instance: Annotated[Path, typer.Argument(help="Base instance file (the nominal case).")],
    risks: Annotated[Path, typer.Argument(
        help="Risks file (YAML/JSON): risks: [{name, probability, changes: [...]}].")],
    mode: Annotated[str, typer.Option(
        help="robust: one plan valid in every case; adaptive: common assignments before "
             "--decide-by, each case re-plans the rest.")] = "robust",
    decide_by: Annotated[int | None, typer.Option(
        help="Decision period (0..horizon): adaptive mode's first stage is what starts "
             "before it; the nominal plan is re-planned from it in every case. Default: the "
             "earliest period any risk changes.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 60.0,
    workers: Annotated[int, typer.Option(
        help="Solves at once in local processes (1 = one after another).")] = 1,
    dask: Annotated[str | None, typer.Option(
        help="Run the solves on this Dask scheduler (tcp://host:port) instead.")] = None,
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed (the same for every solve).")] = 0,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write every plan as JSON and the table as robust.csv here.")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Write an HTML page: regret table and per-case value chart.")] = None,
) -> None:
    """Plan for the nominal case and every risk at once; print the regret table."""
    from ..analysis.robust import MODES, check_decide_by, robust
    from ..models.risks import load_risks
    from ..optimizer import get_backend

    _check_run_options(time_limit, workers)
    check_writable(out_dir, "the plans", folder=True)
    check_writable(report, "the report")
    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    base = load(instance)
    if decide_by is not None:
        try:
            check_decide_by(base, decide_by)
        except ValueError:
            fail(f"--decide-by must be a period from 0 to the horizon "
                 f"({base.horizon.periods}), got {decide_by}")
    with input_errors():
        get_backend(backend)
        parsed = load_risks(risks, base)
    with _study_errors(dask), _progress_bar("robust solves") as progress:
        result = robust(base, parsed, mode=mode,  # type: ignore[arg-type]
                        decide_by=decide_by, time_limit=time_limit, workers=workers,
                        backend=backend, dask=dask, seed=seed, progress=progress)
    _print(result)
    with output_errors():
        if out_dir is not None:
            _write_plans(result, out_dir)
            out.print(f"plans and robust.csv written to {out_dir}", markup=False)
        if report is not None:
            from ..present.robust_report import save_robust_html

            save_robust_html(result, report)
            out.print(f"report written to {report}", markup=False)
    if result.plan is None:
        raise typer.Exit(EXIT_NO_PLAN)


def _print(result: Any) -> None:
    title = ("Robust plan: one plan valid in every case" if result.mode == "robust" else
             f"Adaptive plan: common assignments before period {result.decide_by}")
    t = Table(title=title, title_justify="left")
    t.add_column("case", no_wrap=True)
    for col in ("prob.", "value", "optimum", "bound", "gap", "regret", "nominal re-planned"):
        t.add_column(col, justify="right", no_wrap=True)
    for c in result.cases:
        nominal = fmt(c.nominal_value) if c.nominal is None or c.nominal.is_feasible \
            else f"[red]{c.nominal.status.value}[/red]"
        colour = "green" if c.optimum.status.value == "optimal" else "yellow"
        t.add_row(c.name, f"{c.probability:.3f}", fmt(c.value), fmt(c.optimum.objective),
                  fmt(c.optimum.bound), f"[{colour}]{pct(c.optimum.gap)}[/{colour}]",
                  fmt(c.regret), nominal)
    out.print(t)
    colour = {"optimal": "green", "feasible": "yellow"}.get(result.status.value, "red")
    out.print(f"{result.mode} plan: [{colour}]{result.status.value}[/{colour}], expected "
              f"value {fmt(result.expected_value)}, bound {fmt(result.bound)}, gap "
              f"{pct(result.gap)} ({result.model_size.get('variables', 0):,} variables, "
              f"{result.solve_seconds:.1f} s)")
    out.print(f"perfect information {fmt(result.perfect_information)} (bound "
              f"{fmt(result.perfect_information_bound)}): EVPI {fmt(result.evpi)}")
    out.print(f"nominal plan re-planned from period {result.decide_by}: expected "
              f"{fmt(result.nominal_expected)}: VSS {fmt(result.vss)}")
    if result.broken:
        out.print("the nominal plan cannot continue in: " + ", ".join(result.broken),
                  markup=False)
    for c in result.cases:
        if c.optimum.status.value != "optimal":
            out.print(f"[yellow]{c.name}: the case optimum is not proven "
                      f"({c.optimum.status.value}, gap {pct(c.optimum.gap)})[/yellow]")


def _write_plans(result: Any, directory: Path) -> None:
    """Every plan of the result as JSON (atomically), and the regret table as CSV."""
    from ..analysis.whatif import write_csv
    from ..models import atomic_write_text
    from ..models.planfile import save_plan

    directory.mkdir(parents=True, exist_ok=True)
    if result.plan is not None:
        name = "robust.json" if result.mode == "robust" else "first-stage.json"
        save_plan(result.plan, directory / name)
    for c in result.cases:
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in c.name)
        if c.plan is not None:
            save_plan(c.plan, directory / f"{slug}.plan.json", c.instance)
        save_plan(c.optimum, directory / f"{slug}.optimum.json", c.instance)
        if c.nominal is not None:
            save_plan(c.nominal, directory / f"{slug}.nominal-replanned.json", c.instance)
    write_csv(result.rows(), directory / "robust.csv")
    atomic_write_text(directory / "summary.json", json.dumps(result.summary(), indent=2) + "\n")
