"""Command-line interface: a thin Typer + Rich shell over the library.

Exit codes: 0 success (a plan was found / the plan is valid), 1 no plan (infeasible or none
found in time) or an invalid plan, 2 bad input or usage, 130 interrupted (best plan written).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from . import models, optimizer
from .models import Instance, InstanceError, Plan

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Share scarce AI accelerators among portfolio start-ups, with a proven "
                       "bound on how far from optimal the plan can be.")
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_NO_PLAN = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

DEFAULT_INSTANCE = "instances/portfolio.yaml"


def default_instance() -> Path:
    """``instances/portfolio.yaml`` here, else the copy shipped with the package."""
    for candidate in (Path.cwd() / DEFAULT_INSTANCE,
                      Path(__file__).resolve().parent / "_instances" / "portfolio.yaml",
                      Path(__file__).resolve().parents[1] / DEFAULT_INSTANCE):
        if candidate.is_file():
            return candidate
    fail(f"no instance given and {DEFAULT_INSTANCE} not found")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def report_input_error(e: InstanceError) -> NoReturn:
    err.print(f"[red]error:[/red] {e.source or 'input'}: {len(e.issues)} problem(s)")
    for issue in e.issues:
        err.print(f"  {issue}", markup=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def input_errors() -> Iterator[None]:
    """Bad files become located messages and exit code 2, never a traceback."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", models.InstanceWarning)
            yield
        for w in caught:
            if issubclass(w.category, models.InstanceWarning):
                err.print(f"[yellow]warning:[/yellow] {w.message}", markup=True)
    except InstanceError as e:
        report_input_error(e)
    except optimizer.BackendUnavailable as e:
        fail(str(e))


def load(path: Path | None) -> Instance:
    with input_errors():
        return models.load_instance(path or default_instance())


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1e6:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# -- solve ------------------------------------------------------------------------------------
InstanceArg = Annotated[Path | None, typer.Argument(help="Instance file (YAML or JSON); "
                                                         f"default {DEFAULT_INSTANCE}.")]


@app.command()
def solve(
    instance: InstanceArg = None,
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    time_limit: Annotated[float, typer.Option(help="Seconds, model building included.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Solver threads (1 = deterministic).")] = 1,
    gap: Annotated[float, typer.Option(help="Relative gap to prove optimality.")] = 1e-6,
    warm_start: Annotated[Path | None, typer.Option(help="A plan file to start from.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the plan here (JSON).")]
    = None,
    quiet: Annotated[bool, typer.Option(help="Print only the headline.")] = False,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Also write a report of the plan (HTML; Markdown for .md).")] = None,
    previous: Annotated[Path | None, typer.Option(
        help="Re-plan: the plan file being revised (its started jobs stay frozen).")] = None,
    now: Annotated[int | None, typer.Option(
        help="Re-plan from this period: assignments started before it are frozen.")] = None,
    stability: Annotated[float, typer.Option(
        help="Re-plan: objective value charged per changed assignment.")] = 0.0,
) -> None:
    """Solve an instance and print the plan's headline, start-ups, caps and pools."""
    inst = load(instance)
    start = None
    if warm_start is not None:
        with input_errors():
            start = models.load_plan(warm_start)
    replan = _replan_options(previous, now, stability)
    with input_errors():
        engine = optimizer.get_backend(backend)
    if time_limit <= 0:
        fail("--time-limit must be positive")
    plan, interrupted = _solve_live(inst, engine, time_limit=time_limit, seed=seed,
                                    workers=workers, gap_tolerance=gap, warm_start=start,
                                    show=not quiet and out.is_terminal, **replan)
    if out_path is not None and (plan.is_feasible or not interrupted):
        models.save_plan(plan, out_path, inst)
    print_plan(inst, plan, brief=quiet)
    if replan:
        print_changes(plan)
    if out_path is not None:
        out.print(f"plan written to {out_path}")
    if report_path is not None and (plan.is_feasible or not interrupted):
        write_report(inst, plan, report_path)
    if interrupted:
        err.print("[yellow]interrupted:[/yellow] best plan so far returned")
        raise typer.Exit(EXIT_INTERRUPTED)
    if not plan.is_feasible:
        raise typer.Exit(EXIT_NO_PLAN)


def _solve_live(inst: Instance, engine: optimizer.Backend, show: bool,
                **kwargs: Any) -> tuple[Plan, bool]:
    """Solve with a live incumbent/bound line; SIGINT/SIGTERM stop the search gracefully.

    The solve runs in a worker thread while the main thread waits in short slices: Python runs
    signal handlers only in the main thread, between bytecodes, so a solver blocking the main
    thread in native code would hold the handler (and the stop) back until its time limit.
    """
    interrupted = threading.Event()

    def stop(signum: int, frame: object) -> None:
        interrupted.set()
        halt: Callable[[], None] | None = getattr(engine, "stop", None)
        if halt is not None:
            halt()

    def run(**extra: Any) -> Plan:
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["plan"] = optimizer.solve(inst, engine, **kwargs, **extra)
            except BaseException as e:  # re-raised in the main thread below
                box["error"] = e

        worker = threading.Thread(target=work, name="gpualloc-solve", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
        if "error" in box:
            raise box["error"]
        return box["plan"]

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not show:
            plan = run()
            return plan, interrupted.is_set()
        with Live(console=err, refresh_per_second=4, transient=True) as live:
            live.update("building the model ...")

            def progress(p: optimizer.Progress) -> None:
                live.update(f"[cyan]{p.seconds:6.1f}s[/cyan]  incumbent {fmt(p.objective)}  "
                            f"bound {fmt(p.bound)}  gap {pct(p.gap)}")

            plan = run(progress=progress)
            return plan, interrupted.is_set()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def print_plan(inst: Instance, plan: Plan, brief: bool = False) -> None:
    """Headline, then per start-up, per cap and per pool tables."""
    from .models.metrics import plan_metrics

    colour = {"optimal": "green", "feasible": "yellow"}.get(plan.status.value, "red")
    out.print(f"[bold]{inst.name}[/bold]  status [{colour}]{plan.status.value}[/{colour}]  "
              f"objective {fmt(plan.objective)}  bound {fmt(plan.bound)}  gap {pct(plan.gap)}  "
              f"{plan.solve_seconds:.2f}s  ({plan.backend}, seed {plan.seed})")
    if brief or not plan.is_feasible:
        return
    m = plan_metrics(inst, plan)
    t = Table(title="Start-ups", title_justify="left")
    for col in ("start-up", "jobs run/asked", "value", "spend", "credits", "used"):
        t.add_column(col, justify="left" if col == "start-up" else "right")
    for sid, s in m["startups"].items():
        t.add_row(sid, f"{s['jobs_run']}/{s['jobs_asked']}", fmt(s["value"], 1),
                  fmt(s["spend"], 0), fmt(s["credits"], 0), pct(s["spend_share"]))
    out.print(t)
    if m["caps"]:
        t = Table(title="Caps", title_justify="left")
        for col in ("cap", "metric", "per", "peak use", "limit", "binding windows"):
            t.add_column(col, justify="left" if col in ("cap", "metric", "per") else "right")
        for cid, c in m["caps"].items():
            binding = sum(1 for w in c["windows"] if w["binding"])
            t.add_row(cid, c["metric"], c["per"], fmt(c["peak_use"], 0),
                      fmt(c["peak_limit"], 0), f"{binding}/{len(c['windows'])}")
        out.print(t)
    t = Table(title="Pools", title_justify="left")
    for col in ("pool", "mean utilization"):
        t.add_column(col, justify="left" if col == "pool" else "right")
    for pid, p in m["pools"].items():
        t.add_row(pid, pct(p["mean_utilization"]))
    out.print(t)
    if plan.ineligible:
        out.print(f"{len(plan.ineligible)} option placement(s) removed as ineligible:")
        for x in plan.ineligible:
            out.print(f"  {x.job} option {x.option} on {x.cluster}: {x.reason}", markup=False)
    if plan.unscheduled:
        out.print(f"unscheduled ({len(plan.unscheduled)}): {', '.join(plan.unscheduled)}",
                  markup=False)


# -- validate, schema, catalog ---------------------------------------------------------------
@app.command()
def validate(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON).")],
) -> None:
    """Check a plan against the seven rules; exit 0 when valid, 1 with the violations."""
    from .models.validator import validate as check

    inst = load(instance)
    with input_errors():
        p = models.load_plan(plan)
    violations = check(inst, p)
    if not violations:
        out.print(f"[green]valid[/green]: {len(p.assignments)} assignment(s), "
                  f"objective {fmt(p.objective)}")
        return
    out.print(f"[red]invalid[/red]: {len(violations)} violation(s)")
    for v in violations:
        out.print(f"  {v}", markup=False)
    raise typer.Exit(EXIT_NO_PLAN)


@app.command()
def schema() -> None:
    """Print the JSON Schema of instance files."""
    sys.stdout.write(json.dumps(Instance.model_json_schema(by_alias=True), indent=2) + "\n")


@app.command()
def catalog(
    regime: Annotated[str, typer.Option(help="Export regime: oct2022, oct2023, jan2026.")]
    = models.DEFAULT_REGIME,
    instance: Annotated[Path | None, typer.Option(help="Include an instance's accelerators.")]
    = None,
) -> None:
    """Print the accelerator catalog with export classes under a regime."""
    if regime not in models.REGIMES:
        fail(f"unknown regime {regime!r}; choose from {', '.join(models.REGIMES)}")
    base = load(instance) if instance else None
    data: dict[str, Any] = {"name": "catalog", "horizon": {"periods": 1}, "clusters": [],
                            "startups": [], "regime": regime}
    if base is not None:
        data["accelerators"] = [a.model_dump(exclude_none=True) for a in base.accelerators]
    cat = Instance.model_validate(data).catalog
    t = Table(title=f"Accelerators under {regime}", title_justify="left")
    for col in ("name", "vendor", "TPP", "PD", "memory GB", "link GB/s", "BF16 TFLOPS", "class"):
        t.add_column(col, justify="left" if col in ("name", "vendor", "class") else "right")
    for a in cat.values():
        t.add_row(a.name, a.vendor or "-", fmt(a.tpp, 0), fmt(a.performance_density, 2),
                  fmt(a.memory_gb, 0), fmt(a.link_gbs, 0), fmt(a.bf16_tflops, 1),
                  a.export_class or "unrestricted")
    out.print(t)


@app.command()
def backends() -> None:
    """List solver backends and whether they are installed."""
    have = set(optimizer.available_backends())
    for name in optimizer.backend_names():
        out.print(f"{name:8s} {'available' if name in have else 'not installed'}")


@app.command()
def bench(
    targets: Annotated[list[str] | None, typer.Argument(help="Instance files and/or "
                                                        "OR-Library GAP files.")] = None,
    backend: Annotated[str, typer.Option(help="Comma-separated backends.")] = "cpsat",
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 60.0,
    runs: Annotated[int, typer.Option(help="Solves per instance and backend.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Solver threads.")] = 1,
    minimize: Annotated[bool, typer.Option(help="Read GAP files as minimisation.")] = False,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    tier: Annotated[list[str] | None, typer.Option(
        help="Also a generated tier: medium, large or huge (repeatable).")] = None,
    philly: Annotated[Path | None, typer.Option(
        help="Also replay the Philly trace: its jobs.json (machine_list.csv next to it).")]
    = None,
) -> None:
    """Benchmark backends: status, objective, bound, gap, median seconds, peak memory."""
    from .optimizer.bench import run_bench, write_csv

    names = [b.strip() for b in backend.split(",") if b.strip()]
    if runs < 1 or time_limit <= 0:
        fail("--runs must be >= 1 and --time-limit > 0")
    items = _bench_items(targets or [], minimize, tier or [], philly)
    table = Table(title="Benchmark", title_justify="left")
    for col in ("instance", "backend", "status", "objective", "bound", "gap", "known opt",
                "median s", "peak MiB"):
        table.add_column(col, justify="left" if col in ("instance", "backend", "status")
                         else "right")

    def row_done(r: Any) -> None:
        table.add_row(r.instance, r.backend, r.status, fmt(r.objective), fmt(r.bound),
                      pct(r.gap), fmt(r.known_optimum),
                      fmt(r.median_seconds),
                      fmt(r.peak_mib, 0))
        err.print(f"  {r.instance} {r.backend}: {r.status} {fmt(r.objective)} "
                  f"({fmt(r.median_seconds)} s)")

    with input_errors():
        rows = run_bench(items, names, time_limit, runs=runs, seed=seed, workers=workers,
                         on_row=row_done)
    out.print(table)
    if csv is not None:
        write_csv(rows, csv)
        out.print(f"CSV written to {csv}")


# -- reports and data exchange ----------------------------------------------------------------
def write_report(inst: Instance, plan: Plan, path: Path) -> None:
    """Build the plan's report and write it to ``path`` (Markdown for .md, else HTML)."""
    from .report import build_report

    try:
        build_report(inst, plan).save(path)
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror or e}")
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
) -> None:
    """Report a plan: headline, Gantt charts, utilization, caps, spend, value, unscheduled."""
    from .models.validator import validate as check
    from .report import build_report

    inst = load(instance)
    with input_errors():
        p = models.load_plan(plan)
    note = err if md else out  # keep stdout clean Markdown when printing it
    if p.instance != inst.name:
        err.print(f"[yellow]warning:[/yellow] the plan is for instance {p.instance!r}, "
                  f"not {inst.name!r}", markup=True)
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
) -> None:
    """Export a plan's assignments as CSV: one row per assignment."""
    from .report import assignments_csv

    with input_errors():
        p = models.load_plan(plan)
    text = assignments_csv(p)
    if csv_path is None:
        sys.stdout.write(text)
        return
    try:
        models.atomic_write_text(csv_path, text)
    except OSError as e:
        fail(f"cannot write {csv_path}: {e.strerror or e}")
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
    from .models.jobs_csv import import_jobs as add_csv_jobs

    inst = load(instance)
    with input_errors():
        new = add_csv_jobs(inst, jobs_csv, instance_label=str(instance))
    try:
        models.save_instance(new, out_path)
    except OSError as e:
        fail(f"cannot write {out_path}: {e.strerror or e}")
    added = new.jobs[len(inst.jobs):]
    options = sum(len(j.options) for j in added)
    out.print(f"{len(added)} job(s) with {options} option(s) added; instance written to "
              f"{out_path}", markup=False)


# -- what-if studies, sweeps, marginal values, credits and caps ------------------------------
def _short(x: float | None) -> str:
    """Compact numbers for wide tables: 1.23M, 45.6k."""
    if x is None:
        return "-"
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def _signed(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else ("+" if x > 0 else "") + fmt(x, digits)


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
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
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
    from .optimizer import scenarios as sc_mod
    from .optimizer import whatif as wi

    _check_run_options(time_limit, workers)
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
        try:
            if csv is not None:
                wi.write_csv(rows, csv)
                out.print(f"CSV written to {csv}", markup=False)
            if plot is not None:
                wi.plot_study(results, plot)
                out.print(f"plot written to {plot}", markup=False)
        except OSError as e:
            fail(f"cannot write: {e.strerror or e}")

    if spec is not None:
        with input_errors(), _progress_bar(f"sweep {spec.points} points") as progress:
            points = wi.sweep(base, spec, backend=backend, time_limit=time_limit, seed=seed,
                              progress=progress)
        sweep_rows = wi.sweep_rows(points)
        _print_sweep(spec, sweep_rows)
        csv_path = csv if scs is None or csv is None else _side_path(csv, "sweep")
        plot_path = plot if scs is None or plot is None else _side_path(plot, "sweep")
        try:
            if csv_path is not None:
                wi.write_csv(sweep_rows, csv_path)
                out.print(f"sweep CSV written to {csv_path}", markup=False)
            if plot_path is not None:
                wi.plot_sweep(points, spec, plot_path)
                out.print(f"sweep plot written to {plot_path}", markup=False)
        except OSError as e:
            fail(f"cannot write: {e.strerror or e}")


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
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Re-solves at once in local processes.")] = 1,
    dask: Annotated[str | None, typer.Option(help="Run the re-solves on this Dask "
                                                   "scheduler.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the ranking as CSV.")] = None,
) -> None:
    """Rank pools, caps and start-up credits by objective gained per unit added."""
    from .optimizer.marginal import group_by_kind, marginal_rows, marginal_values
    from .optimizer.whatif import write_csv

    _check_run_options(time_limit, workers)
    if delta < 0 or splits < 1:
        fail("--delta must be >= 0 and --splits >= 1")
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
        for v in group:
            added = f"{fmt(v.delta, 0)}/period" if v.kind == "pool" else fmt(v.delta, 0)
            row = [str(v.rank), v.item, v.unit, added, _signed(v.gain),
                   _fmt_small(v.value_per_unit)]
            row += [_fmt_small(v.lp_dual)] if show_dual else []
            row += [v.status + (f" ({v.note})" if v.note else "")]
            t.add_row(*row)
        out.print(t)
    if not values:
        out.print("nothing to rank: no pools, no caps with a limit, no finite credits")
    quantum_text = "the smallest need of one unscheduled job" if quantum else "0"
    out.print(f"step: max({delta:g} x current, {quantum_text}); re-solves warm-started from "
              "the base plan", markup=False)
    if csv is not None:
        try:
            write_csv(marginal_rows(values), csv)
        except OSError as e:
            fail(f"cannot write {csv}: {e.strerror or e}")
        out.print(f"CSV written to {csv}", markup=False)


def _fmt_small(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    return f"{x:.4g}"


@app.command()
def credits(
    instance: InstanceArg = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 30.0,
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    csv: Annotated[Path | None, typer.Option(help="Write the table as CSV.")] = None,
) -> None:
    """How many credits each start-up can be granted that the fleet can honour.

    H_s is the largest spend of start-up s over all valid plans when its own credit limit is
    removed (every other rule, and the other start-ups' credits, kept).
    """
    from contextlib import nullcontext

    from .optimizer.credits import honourable_credits
    from .optimizer.whatif import write_csv

    _check_run_options(time_limit)
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
    total = rep.total_credits
    granted = fmt(total, 0) if total is not None else "unlimited"
    out.print(f"all together: credits granted {granted}; the most the fleet can honour in "
              "total (every credit limit removed) "
              f"{fmt(rep.fleet_max, 0)} ({rep.fleet_status}); sum of H_s "
              f"{fmt(rep.total_honourable, 0)} (not achievable together)", markup=False)
    if csv is not None:
        try:
            write_csv(rows, csv)
        except OSError as e:
            fail(f"cannot write {csv}: {e.strerror or e}")
        out.print(f"CSV written to {csv}", markup=False)
    if not rep.plan.is_feasible:
        raise typer.Exit(EXIT_NO_PLAN)


@app.command()
def caps(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[Path | None, typer.Argument(help="Plan file (JSON); default: solve "
                                                     "first.")] = None,
    time_limit: Annotated[float, typer.Option(help="Seconds per solve.")] = 30.0,
    loosen: Annotated[float, typer.Option(help="How much looser the re-solved caps are.")]
    = 0.10,
    binding_only: Annotated[bool, typer.Option(help="List binding windows only.")] = False,
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Cap use per window against its limit, binding windows, and what a looser cap adds."""
    from contextlib import nullcontext

    from .models.validator import validate as check
    from .optimizer.marginal import cap_report

    _check_run_options(time_limit)
    if loosen <= 0:
        fail("--loosen must be positive")
    inst = load(instance)
    given = None
    if plan is not None:
        with input_errors():
            given = models.load_plan(plan)
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
            t.add_row(span, fmt(w["use"], 0), fmt(w["limit"], 0), pct(share),
                      "[red]yes[/red]" if w["binding"] else "")
        if t.row_count:
            out.print(t)


# -- re-planning and explanations -------------------------------------------------------------
def _replan_options(previous: Path | None, now: int | None, stability: float) -> dict[str, Any]:
    """``solve`` keyword arguments for ``--previous/--now/--stability`` (exit 2 when bad)."""
    import math

    if previous is None:
        if now is not None or stability:
            fail("--now and --stability need --previous PLAN")
        return {}
    if now is not None and now < 0:
        fail("--now must be a period >= 0")
    if not math.isfinite(stability) or stability < 0:
        fail("--stability must be a finite number >= 0")
    with input_errors():
        plan = models.load_plan(previous)
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
    backend: Annotated[str, typer.Option(help="Solver: cpsat, cbc or highs.")] = "cpsat",
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
) -> None:
    """Why is it infeasible (conflicts, smallest relaxation), or why is each job out?"""
    inst = load(instance)
    given = None
    if plan is not None:
        with input_errors():
            given = models.load_plan(plan)
    with input_errors():
        engine = optimizer.get_backend(backend)
    if time_limit <= 0 or job_time_limit <= 0:
        fail("--time-limit and --job-time-limit must be positive")
    if max_jobs < 0:
        fail("--max-jobs must be >= 0")
    ex = optimizer.explain(inst, given, backend=engine, time_limit=time_limit,
                           max_jobs=max_jobs, job_time_limit=job_time_limit, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(ex.to_dict(), indent=2) + "\n")
        return
    for line in ex.lines():
        out.print(line, markup=False, soft_wrap=True)


# -- synthetic instances, benchmark tiers, trace replay --------------------------------------
def _bench_items(targets: list[str], minimize: bool, tiers: list[str],
                 philly: Path | None) -> list[Any]:
    """Bench targets from files, generated tiers and the Philly replay."""
    from .models.generate import TIERS, tier_instance
    from .optimizer.bench import bench_targets

    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        fail(f"unknown tier(s) {', '.join(map(repr, unknown))}; choose from "
             f"{', '.join(TIERS)}")
    if not targets and not tiers and philly is None:
        fail("nothing to benchmark: give instance/GAP files, --tier or --philly")
    with input_errors():
        items = bench_targets(targets, minimize=minimize)
        for name in tiers:
            inst = tier_instance(name)
            items.append((f"{name}:{inst.name}", inst, None))
        if philly is not None:
            from .models.philly import philly_instance

            inst = philly_instance(philly)
            items.append((inst.name, inst, None))
    return items


@app.command()
def generate(
    clusters: Annotated[int, typer.Option(help="Clusters.")] = 8,
    startups: Annotated[int, typer.Option(help="Start-ups.")] = 12,
    jobs: Annotated[int, typer.Option(help="Jobs.")] = 400,
    periods: Annotated[int, typer.Option(help="Weekly periods.")] = 26,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same instance).")] = 0,
    tier: Annotated[str | None, typer.Option(
        help="A benchmark tier (medium, large, huge); overrides the sizes and seed.")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Write the instance here (YAML, or JSON for .json); default stdout.")]
    = None,
) -> None:
    """Generate a realistic synthetic instance (job shapes fitted from real GPU traces)."""
    from .models.generate import TIERS, tier_instance
    from .models.generate import generate as make

    if tier is not None:
        if tier not in TIERS:
            fail(f"unknown tier {tier!r}; choose from {', '.join(TIERS)}")
        inst = tier_instance(tier)
    else:
        try:
            inst = make(clusters=clusters, startups=startups, jobs=jobs, periods=periods,
                        seed=seed)
        except ValueError as e:
            fail(str(e))
    if out_path is None:
        from .models.io import dump_model

        sys.stdout.write(dump_model(inst, "instance.yaml"))
        return
    models.save_instance(inst, out_path)
    size = f"{len(inst.clusters)} clusters, {len(inst.startups)} start-ups, " \
           f"{len(inst.jobs)} jobs, {inst.horizon.periods} periods"
    out.print(f"{inst.name} ({size}) written to {out_path}", markup=False)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
