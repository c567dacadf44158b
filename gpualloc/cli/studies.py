"""What-if, marginal, credits and caps commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import optimizer
from ..present.format import rate, short, signed
from .app import (
    BACKEND_HELP,
    EXIT_NO_PLAN,
    ForceOpt,
    InstanceArg,
    app,
    check_writable,
    err,
    fail,
    fmt,
    input_errors,
    load,
    load_plan_for,
    out,
    output_errors,
    pct,
)

# -- what-if studies, sweeps, marginal values, credits and caps ------------------------------
SPLITS = (2, 4)  # the period splits marginal offers
def _short(x: float | None) -> str:
    """Compact numbers for wide tables: 1.23M, 45.6k, 2.1B (``present.format.short``)."""
    return short(x)


def _signed(x: float | None, digits: int = 2) -> str:
    if x is not None and abs(x) >= 1e6:
        digits = 0
    return signed(x, digits)


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A Rich progress bar on stderr (only on a terminal) fed by ``(done, total, name)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label} ({name} done)")

        yield update


def _check_run_options(time_limit: float, workers: int = 1) -> None:
    if time_limit <= 0:
        fail("--time-limit must be positive")
    if workers < 1:
        fail("--workers must be at least 1")


@contextmanager
def _study_errors(dask: str | None) -> Iterator[None]:
    """Input errors exit 2; a missing or unreachable Dask scheduler too."""
    with input_errors():
        try:
            yield
        except ImportError as e:
            if dask is not None and "distributed" in str(e):
                fail("--dask needs the 'distributed' package (pip install distributed)")
            raise
        except OSError as e:
            if dask is not None:
                fail(f"cannot use the Dask scheduler at {dask}: {e}")
            raise


def _side_path(path: Path, tag: str) -> Path:
    return path.with_name(f"{path.stem}-{tag}{path.suffix}")


@app.command()
def whatif(
    instance: Annotated[Path, typer.Argument(help="Base instance file.")],
    scenarios: Annotated[Path | None, typer.Argument(
        help="Scenario file (YAML/JSON): scenarios: [{name, changes: [...]}].")] = None,
    workers: Annotated[int, typer.Option(
        help="Solves at once in local processes (1 = one after another, in this process). "
             "Each solve uses one solver thread.")] = 1,
    dask: Annotated[str | None, typer.Option(
        help="Run the solves on this Dask scheduler (tcp://host:port) instead.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 60.0,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed (the same for every solve).")] = 0,
    csv: Annotated[Path | None, typer.Option(help="Write the comparison as CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Plot the objectives (PNG, SVG, PDF).")]
    = None,
    sweep: Annotated[str | None, typer.Option(
        help="Sweep one parameter: 'cap:ID=0.25x..2x:8', 'credits:ID|all=0.5x..1.5x:5', "
             "'pool:CLUSTER/ACC=+0..+2000:5' (ACC@P: from period P on). Points are solved "
             "in order, each "
             "warm-started from the last. With SCENARIOS too, the sweep's CSV and plot go "
             "to NAME-sweep.csv / NAME-sweep.png.")] = None,
) -> None:
    """Compare scenarios against the base instance, and/or sweep one parameter."""
    from ..analysis import whatif as wi
    from ..models import scenarios as sc_mod

    _check_run_options(time_limit, workers)
    for path, what in ((csv, "the CSV"), (plot, "the plot")):
        check_writable(path, what)
        if path is not None and scenarios is not None and sweep is not None:
            check_writable(_side_path(path, "sweep"), f"the sweep's {what.split()[-1]}")
    if scenarios is None and sweep is None:
        fail("give a SCENARIOS file, a --sweep, or both")
    base = load(instance)
    spec = None
    with input_errors():
        optimizer.get_backend(backend)
        if sweep is not None:
            spec = wi.parse_sweep(sweep)
        # every located error (file and targets) before any solve
        scs = sc_mod.load_scenarios(scenarios, base) if scenarios is not None else None
        if spec is not None:
            wi.sweep_instances(base, spec)

    if scs is not None:
        with _study_errors(dask), _progress_bar(f"{len(scs) + 1} solves") as progress:
            results = wi.run_study(base, scs, backend=backend, time_limit=time_limit, seed=seed,
                                   workers=workers, dask_address=dask, progress=progress)
        rows = wi.comparison_rows(results)
        _print_study(rows, [s.id for s in base.startups])
        for r in results:
            for note in r.notes:
                out.print(f"  {r.name}: {note}", markup=False)
        with output_errors():
            if csv is not None:
                wi.write_csv(rows, csv)
                out.print(f"CSV written to {csv}", markup=False)
            if plot is not None:
                wi.plot_study(results, plot)
                out.print(f"plot written to {plot}", markup=False)

    if spec is not None:
        with input_errors(), _progress_bar(f"sweep {spec.points} points") as progress:
            points = wi.sweep(base, spec, backend=backend, time_limit=time_limit, seed=seed,
                              progress=progress)
        sweep_rows = wi.sweep_rows(points)
        _print_sweep(spec, sweep_rows)
        csv_path = csv if scs is None or csv is None else _side_path(csv, "sweep")
        plot_path = plot if scs is None or plot is None else _side_path(plot, "sweep")
        with output_errors():
            if csv_path is not None:
                wi.write_csv(sweep_rows, csv_path)
                out.print(f"sweep CSV written to {csv_path}", markup=False)
            if plot_path is not None:
                wi.plot_sweep(points, spec, plot_path)
                out.print(f"sweep plot written to {plot_path}", markup=False)


def _print_study(rows: list[dict[str, Any]], startups: list[str]) -> None:
    t = Table(title="What-if study (change vs base)", title_justify="left",
              caption="start-up columns: credits spent", caption_justify="left")
    longest = max((len(r["scenario"]) for r in rows), default=8)
    t.add_column("scenario", no_wrap=True, min_width=min(32, longest))
    t.add_column("status", no_wrap=True)
    for col in ("objective", "change", "gap", "jobs run"):
        t.add_column(col, justify="right", no_wrap=True)
    for sid in startups:
        t.add_column(sid, justify="right")
    t.add_column("binding caps", overflow="fold")
    for r in rows:
        colour = {"optimal": "green", "feasible": "yellow"}.get(r["status"], "red")
        change = "-" if r["delta"] is None else _signed(r["delta"])
        if r["delta_pct"] is not None:
            change += f" ({r['delta_pct']:+.1f}%)"
        t.add_row(r["scenario"], f"[{colour}]{r['status']}[/{colour}]", fmt(r["objective"]),
                  change, pct(r["gap"]), f"{r['jobs_run']}/{r['jobs']}",
                  *[_short(r["spend"].get(sid)) for sid in startups],
                  ", ".join(r["binding_caps"]) or "-")
    out.print(t)


def _print_sweep(spec: Any, rows: list[dict[str, Any]]) -> None:
    t = Table(title=f"Value curve: {spec.axis_label}", title_justify="left")
    for col in ("point", "status", "objective", "change vs first", "gap", "jobs run", "s"):
        t.add_column(col, justify="left" if col in ("point", "status") else "right")
    first = rows[0]["objective"] if rows else None
    for r in rows:
        delta = r["objective"] - first if r["objective"] is not None and first is not None \
            else None
        t.add_row(r["label"], r["status"], fmt(r["objective"]), _signed(delta), pct(r["gap"]),
                  str(r["jobs_run"]), f"{r['solve_seconds']:.2f}")
    out.print(t)


@app.command()
def marginal(
    instance: InstanceArg = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 30.0,
    delta: Annotated[float, typer.Option(
        help="Relative step: each resource grows by max(DELTA x current, one job-sized "
             "quantum).")] = 0.10,
    quantum: Annotated[bool, typer.Option(
        help="Step at least one job-sized quantum: the smallest need of one job the base "
             "plan leaves unscheduled that could use the resource.")] = True,
    splits: Annotated[int, typer.Option(
        help="Period ranges per pool: 2 = halves of the horizon, 4 = quarters.")] = 2,
    lp_duals: Annotated[bool, typer.Option(help="Also show LP-relaxation duals (HiGHS).")]
    = True,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Re-solves at once in local processes.")] = 1,
    dask: Annotated[str | None, typer.Option(help="Run the re-solves on this Dask "
                                                   "scheduler.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the ranking as CSV.")] = None,
) -> None:
    """Rank pools, caps and start-up credits by objective gained per unit added."""
    from ..analysis.marginal import gains, group_by_kind, marginal_rows, marginal_values
    from ..analysis.whatif import write_csv

    _check_run_options(time_limit, workers)
    check_writable(csv, "the CSV")
    if delta < 0:
        fail("--delta must be >= 0")
    if splits not in SPLITS:
        fail(f"--splits must be {' or '.join(map(str, SPLITS))}, not {splits}")
    if delta == 0 and not quantum:
        fail("--delta 0 with --no-quantum adds nothing")
    inst = load(instance)
    with input_errors():
        optimizer.get_backend(backend)
    with _study_errors(dask), _progress_bar("re-solves") as progress:
        values = marginal_values(inst, backend=backend, time_limit=time_limit, seed=seed,
                                 relative=delta, quantum=quantum, splits=splits,
                                 lp_duals=lp_duals, workers=workers, dask_address=dask,
                                 progress=progress)
    titles = {"pool": "Pools (value per GPU-period)", "cap": "Caps (value per unit of the "
              "cap's metric)", "credits": "Credits (value per credit)"}
    show_dual = lp_duals and any(v.lp_dual is not None for v in values)
    for kind, group in group_by_kind(values).items():
        t = Table(title=titles[kind], title_justify="left")
        cols = ["rank", "item", "unit", "added", "gain", "value / unit"]
        cols += ["LP dual"] if show_dual else []
        cols += ["status"]
        for col in cols:
            t.add_column(col, justify="left" if col in ("item", "unit", "status") else "right")
        ranked = [v for v in group if gains(v)]
        idle = [v for v in group if not gains(v)]
        for n, v in enumerate([*ranked, *idle]):
            if n == len(ranked) and ranked:
                t.add_section()  # the resources whose addition gains nothing, unranked
            added = f"{fmt(v.delta, 0)}/period" if v.kind == "pool" else fmt(v.delta, 0)
            row = [str(v.rank) if gains(v) else "-", v.item, v.unit, added, _signed(v.gain),
                   rate(v.value_per_unit, v.unit)]
            row += [rate(v.lp_dual, v.unit)] if show_dual else []
            row += [v.status + (f" ({v.note})" if v.note else "")]
            t.add_row(*row)
        t.caption = (f"{len(idle)} below the line gain nothing (unranked)" if ranked and idle
                     else "adding any of these gains nothing" if idle else None)
        t.caption_justify = "left"
        out.print(t)
    if not values:
        out.print("nothing to rank: no pools, no caps with a limit, no finite credits")
    quantum_text = "the smallest need of one unscheduled job" if quantum else "0"
    out.print(f"step: max({delta:g} x current, {quantum_text}); re-solves warm-started from "
              "the base plan", markup=False)
    if csv is not None:
        with output_errors(csv):
            write_csv(marginal_rows(values), csv)
        out.print(f"CSV written to {csv}", markup=False)


@app.command()
def credits(
    instance: InstanceArg = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 30.0,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    csv: Annotated[Path | None, typer.Option(help="Write the table as CSV.")] = None,
) -> None:
    """How many credits each start-up can be granted that the fleet can honour.

    H_s is the largest spend of start-up s over all valid plans when its own credit limit is
    removed (every other rule, and the other start-ups' credits, kept).
    """
    from contextlib import nullcontext

    from ..analysis.credits import honourable_credits
    from ..analysis.whatif import write_csv

    _check_run_options(time_limit)
    check_writable(csv, "the CSV")
    inst = load(instance)
    with input_errors():
        optimizer.get_backend(backend)
    with err.status("solving ...") if err.is_terminal else nullcontext():
        rep = honourable_credits(inst, backend=backend, time_limit=time_limit, seed=seed)
    colour = {"optimal": "green", "feasible": "yellow"}.get(rep.plan.status.value, "red")
    out.print(f"[bold]{inst.name}[/bold]  optimal plan: [{colour}]{rep.plan.status.value}"
              f"[/{colour}]  objective {fmt(rep.plan.objective)}")
    t = Table(title="Credits the fleet can honour", title_justify="left")
    for col in ("start-up", "credits", "optimal-plan spend", "used", "honourable H_s",
                "H_s status", "headroom H_s - credits"):
        t.add_column(col, justify="left" if col in ("start-up", "H_s status") else "right")
    rows = []
    for line in rep.lines:
        used = line.spend / line.credits if line.spend is not None and line.credits else None
        status = line.status if line.status == "optimal" else \
            f"{line.status} (<= {fmt(line.honourable_bound, 0)})"
        t.add_row(line.startup, fmt(line.credits, 0) if line.credits is not None else
                  "unlimited", fmt(line.spend, 0), pct(used), fmt(line.honourable, 0), status,
                  _signed(line.headroom, 0))
        rows.append({"startup": line.startup, "credits": line.credits, "spend": line.spend,
                     "honourable": line.honourable, "honourable_bound": line.honourable_bound,
                     "status": line.status, "headroom": line.headroom})
    out.print(t)
    _print_tranche_lines(rep.lines)
    total = rep.total_credits
    granted = fmt(total, 0) if total is not None else "unlimited"
    out.print(f"all together: credits granted {granted}; the most the fleet can honour in "
              "total (every credit limit removed) "
              f"{fmt(rep.fleet_max, 0)} ({rep.fleet_status}); sum of H_s "
              f"{fmt(rep.total_honourable, 0)} (not achievable together)", markup=False)
    if csv is not None:
        with output_errors(csv):
            write_csv(rows, csv)
        out.print(f"CSV written to {csv}", markup=False)
    if not rep.plan.is_feasible:
        raise typer.Exit(EXIT_NO_PLAN)


def _print_tranche_lines(lines: list) -> None:
    """The per-tranche table of ``gpualloc credits`` (start-ups with tranches only)."""
    if not any(line.tranches for line in lines):
        return
    t = Table(title="Per tranche: spend in its periods and what the fleet can honour then",
              title_justify="left")
    for col in ("start-up", "tranche", "periods", "credits", "optimal-plan spend",
                "honourable H_s,k", "status", "headroom"):
        t.add_column(col, justify="left" if col in ("start-up", "status") else "right")
    for line in lines:
        for tr in line.tranches:
            t.add_row(line.startup, str(tr.index), f"{tr.periods[0]}-{tr.periods[1]}",
                      fmt(tr.credits, 0), fmt(tr.spend, 0), fmt(tr.honourable, 0), tr.status,
                      _signed(tr.headroom, 0))
    out.print(t)


@app.command()
def caps(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[Path | None, typer.Argument(help="Plan file (JSON); default: solve "
                                                     "first.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 30.0,
    loosen: Annotated[float, typer.Option(help="How much looser the re-solved caps are.")]
    = 0.10,
    binding_only: Annotated[bool, typer.Option(help="List binding windows only.")] = False,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Cap use per window against its limit, binding windows, and what a looser cap adds."""
    from contextlib import nullcontext

    from ..analysis.marginal import NEAR_BINDING, cap_report
    from ..models.validator import validate as check

    _check_run_options(time_limit)
    if loosen <= 0:
        fail("--loosen must be positive")
    inst = load(instance)
    given = None
    if plan is not None:
        given = load_plan_for(plan, inst, force)
        violations = check(inst, given)
        if violations:
            err.print(f"[yellow]warning:[/yellow] the plan breaks {len(violations)} rule(s)")
    with input_errors():
        optimizer.get_backend(backend)
    with err.status("solving ...") if err.is_terminal else nullcontext():
        rep = cap_report(inst, given, backend=backend, time_limit=time_limit, seed=seed,
                         loosen=loosen)
    p = rep.plan
    colour = {"optimal": "green", "feasible": "yellow"}.get(p.status.value, "red")
    out.print(f"[bold]{inst.name}[/bold]  plan: [{colour}]{p.status.value}[/{colour}]  "
              f"objective {fmt(p.objective)}")
    if not p.is_feasible:
        raise typer.Exit(EXIT_NO_PLAN)
    if not rep.lines:
        out.print("the instance has no caps")
    for line in rep.lines:
        limit = fmt(line.limit, 0) if line.limit is not None else \
            f"{pct(line.fraction)} of its share scope"
        head = (f"[bold]{line.cap}[/bold] ({line.metric} per {line.per}, limit {limit}): "
                f"{line.binding}/{len(line.windows)} window(s) binding")
        if line.near_binding:
            head += f", {line.near_binding} near-binding (>= 99% of the limit)"
        if line.looser_status is not None:
            head += (f"; {pct(loosen)} looser adds {_signed(line.looser_gain)} "
                     f"({line.looser_status})")
        out.print(head)
        t = Table(title_justify="left")
        for col in ("periods", "use", "limit", "use %", "binding"):
            t.add_column(col, justify="left" if col == "periods" else "right")
        for w in line.windows:
            if binding_only and not w["binding"]:
                continue
            first, last = w["periods"]
            span = str(first) if first == last else f"{first}-{last}"
            share = w["use"] / w["limit"] if w["limit"] else None
            near = share is not None and share >= NEAR_BINDING
            t.add_row(span, fmt(w["use"], 0), fmt(w["limit"], 0), pct(share),
                      "[red]yes[/red]" if w["binding"] else "near" if near else "")
        if t.row_count:
            out.print(t)
