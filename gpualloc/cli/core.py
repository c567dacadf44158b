# ruff: noqa: E402  (the early signal handlers go in before the other imports)
"""Core commands: solve, validate, schema, catalog, backends, bench."""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM before a command has installed its own handlers (while the interpreter
    imports): end at once with exit 130 and nothing written, never a traceback."""
    os.write(2, b"interrupted while starting: nothing written\n")
    os._exit(130)


for _signal in (signal.SIGINT, signal.SIGTERM):  # as early as the CLI can: its first import
    if signal.getsignal(_signal) in (signal.default_int_handler, signal.SIG_DFL):
        signal.signal(_signal, _interrupted_while_starting)

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from .. import models, optimizer
from ..models import Instance, Plan
from .app import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
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
    memory_limit,
    out,
    pct,
    process_age,
    write_or_rescue,
)
from .replan import print_changes, replan_options
from .reports import write_report


@app.command()
def solve(
    instance: InstanceArg = None,
    backend: Annotated[str, typer.Option(
        help="Solver: auto (chosen for the model and workers), cpsat, highs, cbc, interval "
             "or greedy (a heuristic that proves nothing itself: its plan's bound is the "
             "trivial one, every job at its best placement).")] = "auto",
    time_limit: Annotated[float, typer.Option(
        help="Seconds for the whole command: loading, model building, solving and writing."
    )] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int | None, typer.Option(
        help="Solver threads (default: all available cores; 1 = deterministic).")] = None,
    gap: Annotated[float, typer.Option(help="Relative gap to prove optimality.")] = 1e-6,
    warm_start: Annotated[Path | None, typer.Option(help="A plan file to start from.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the plan here (JSON).")]
    = None,
    quiet: Annotated[bool, typer.Option(help="Print only the headline.")] = False,
    verbose: Annotated[bool, typer.Option(
        help="List every ineligible option placement (default: a summary per reason).")]
    = False,
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Also write a report of the plan (HTML; Markdown for .md).")] = None,
    previous: Annotated[Path | None, typer.Option(
        help="Re-plan: the plan file being revised (its started jobs stay frozen).")] = None,
    now: Annotated[int | None, typer.Option(
        help="Re-plan from this period: assignments started before it are frozen.")] = None,
    stability: Annotated[float, typer.Option(
        help="Re-plan: objective value charged per changed assignment.")] = 0.0,
    strategy: Annotated[str, typer.Option(
        help="auto, exact, lns, partition or portfolio (auto: LNS for big CP-SAT models, by "
             "partition from 15,000 jobs, CP-SAT + HiGHS side by side from 2 workers).")] = "auto",
    force: ForceOpt = False,
    max_memory: Annotated[str, typer.Option(
        help="Refuse (exit 2) a model whose estimated peak memory is over this: 8G, 512M, "
             "bytes, 'none', or 'auto' = 0.6 x the machine's available memory.")] = "auto",
) -> None:
    """Solve an instance and print the plan's headline, start-ups, caps and pools."""
    if workers is not None and workers < 1:
        fail("--workers must be at least 1")
    check_writable(out_path, "the plan")
    check_writable(report_path, "the report")
    limit = memory_limit(max_memory)
    if time_limit <= 0:
        fail("--time-limit must be positive")
    # The limit covers the whole process: the interpreter's start and imports (already
    # spent), loading, building, solving and writing; called inside another program (a test
    # runner, say), it covers the command from here.
    spent = process_age() if _is_the_command() else 0.0
    stop = optimizer.Stop(max(0.0, time_limit - spent))
    if strategy not in optimizer.STRATEGIES:
        fail(f"--strategy must be one of {', '.join(optimizer.STRATEGIES)}, not {strategy!r}")
    with input_errors():
        engine = backend if backend == "auto" else optimizer.get_backend(backend)

    def prepare() -> dict[str, Any]:  # in the worker: a signal may stop the command meanwhile
        inst = load(instance)
        with input_errors():
            optimizer.check_memory(inst, limit)
        start = None if warm_start is None else load_plan_for(warm_start, inst, force)
        return {"inst": inst, "warm_start": start,
                **replan_options(previous, now, stability, inst, force)}

    before = set(threading.enumerate())
    result = _solve_live(prepare, engine, stop, show=not quiet and out.is_terminal,
                         time_limit=time_limit, seed=seed, workers=workers,
                         gap_tolerance=gap, strategy=strategy)
    try:
        _report(result, out_path, report_path, quiet, previous is not None, verbose)
    except typer.Exit as e:
        _leave(e.exit_code, before)
        raise
    _leave(0, before)


LEAVE_WAIT = 10.0  # seconds a CLI called inside another program waits for its threads


def _leave(code: int, before: set[threading.Thread]) -> None:
    """End the process now, output flushed, when it is the ``gpualloc`` command itself (not
    the CLI called inside another program, a test runner say): the interpreter's teardown of
    the solver libraries takes up to a second of the time limit on a loaded machine, and a
    thread this solve started that is still running (a loader past its limit, an LP left
    behind) would, unwound inside native code at exit, abort the process ("exception not
    rethrown"). Inside another program such a thread is waited for (``LEAVE_WAIT``: the solve's
    worker may still be freeing the model after handing the plan over), and ends the process
    only if it is still running then (a test run had died at once, silently, with exit 0)."""
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and t.name.startswith("gpualloc-")]
    command = _is_the_command()
    if left and not command:  # the solve's worker freeing the model, say: it ends soon
        for t in left:
            t.join(timeout=LEAVE_WAIT)
        left = [t for t in left if t.is_alive()]
    if left or command:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _is_the_command() -> bool:
    """Whether this process is ``gpualloc`` / ``python -m gpualloc.cli`` (or ``gpualloc``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("gpualloc.cli.__main__", "gpualloc.__main__"):
        return True
    return Path(sys.argv[0]).name == "gpualloc"


def _report(result: _Outcome, out_path: Path | None, report_path: Path | None, quiet: bool,
            replanned: bool, verbose: bool = False) -> None:
    """Write and print the outcome of ``solve``; raise ``typer.Exit`` with its exit code."""
    if result.plan is None and result.expired and not result.interrupted:  # ended loading
        err.print(f"[red]{result.why}[/red]")
        raise typer.Exit(EXIT_NO_PLAN)
    if result.plan is None:  # interrupted before there was any plan
        err.print(f"[yellow]interrupted:[/yellow] {result.why}; no plan written")
        raise typer.Exit(EXIT_INTERRUPTED)
    inst, plan, interrupted = result.inst, result.plan, result.interrupted
    assert inst is not None
    if result.why and not interrupted:  # the solve overran the limit: the start's plan
        err.print(f"[yellow]{result.why}[/yellow]")
    no_plan = plan.summary.get("no_plan")
    if no_plan:
        err.print(f"[red]{no_plan}[/red]")
    keep = not no_plan and (plan.is_feasible or not interrupted)
    saved = True
    if out_path is not None and keep:
        saved = write_or_rescue(lambda p: models.save_plan(plan, p, inst), out_path, "the plan")
    print_plan(inst, plan, brief=quiet, verbose=verbose)
    if replanned:
        print_changes(plan)
    if out_path is not None and keep and saved:
        out.print(f"plan written to {out_path}")
    if report_path is not None and keep:
        write_report(inst, plan, report_path)
    if interrupted:
        err.print("[yellow]interrupted:[/yellow] best plan so far returned")
        raise typer.Exit(EXIT_INTERRUPTED)
    if not saved:
        raise typer.Exit(EXIT_BAD_INPUT)
    if not plan.is_feasible:
        raise typer.Exit(EXIT_NO_PLAN)


# seconds the command waits for the solve after a signal before it gives up (huge tier, the
# partition signalled in a part: its plan was made 1.02 s after the signal)
GRACE = 1.5
RESERVE = 0.3  # seconds kept back from the solve for writing and printing the plan ...
RESERVE_LOAD_SHARE = 3.0  # ... plus this share of the loading time (it scales the same way:
# huge tier, loading 2.1 s, printing, writing and freeing after the solve about 6 s)


@dataclass
class _Outcome:
    inst: Instance | None = None
    plan: Plan | None = None
    interrupted: bool = False
    why: str = ""
    expired: bool = False  # the limit ended before there was a plan


def _solve_live(prepare: Callable[[], dict[str, Any]], engine: optimizer.Backend | str,
                stop: optimizer.Stop, show: bool, **kwargs: Any) -> _Outcome:
    """Load and solve in a worker thread under ``stop``; SIGINT/SIGTERM request the stop.

    The main thread waits in short slices: Python runs signal handlers only in the main
    thread, between bytecodes, so a solver blocking it in native code would hold the handler
    (and the stop) back. After a signal every phase returns within a second or two; if the
    worker has not returned ``GRACE`` s after it, the command ends with the start's plan
    (``solve``'s ``incumbent``) or, when there is none yet, without a plan.
    """
    box: dict[str, Any] = {}
    outcome = _Outcome()
    live: Live | None = None

    def on_signal(signum: int, frame: object) -> None:
        stop.request()
        box.setdefault("signalled", time.monotonic())

    def progress(p: optimizer.Progress) -> None:
        if live is not None:
            live.update(f"[cyan]{p.seconds:6.1f}s[/cyan]  incumbent {fmt(p.objective)}  "
                        f"bound {fmt(p.bound)}  gap {pct(p.gap)}")

    def work() -> None:
        try:
            box["phase"] = "loading"
            began = time.monotonic()
            loaded = prepare()
            loading = time.monotonic() - began
            box["phase"] = "solving"
            inst = box["inst"] = loaded.pop("inst")
            if live is not None:
                live.update("building the model ...")
            left = stop.remaining()
            reserve = RESERVE + RESERVE_LOAD_SHARE * loading
            solve_stop = stop.child(seconds=None if left is None else
                                    max(0.0, left - min(reserve, 0.25 * left)))
            box["plan"] = optimizer.solve(inst, engine, stop=solve_stop,
                                          progress=progress if live is not None else None,
                                          incumbent=lambda p: box.setdefault("incumbent", p),
                                          ready=lambda p: box.setdefault("ready", p),
                                          **kwargs, **loaded)
        except BaseException as e:  # re-raised in the main thread below
            box["error"] = e

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as stack:
            if show:
                live = stack.enter_context(Live(console=err, refresh_per_second=4,
                                                transient=True))
                live.update("loading ...")
            worker = threading.Thread(target=work, name="gpualloc-solve", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.05)
                signalled = box.get("signalled")
                if "ready" in box:  # the plan is made; the worker is freeing the model
                    box.setdefault("plan", box["ready"])
                    break
                if signalled is not None and time.monotonic() - signalled > GRACE:
                    outcome.why = "the solve did not return in time"
                    box.setdefault("plan", box.get("incumbent"))  # the best plan so far
                    break
                left = stop.remaining()
                # still loading at the limit: no time is left to build or solve anything
                if box.get("phase") == "loading" and left is not None and left <= 0.0:
                    outcome.why = "no plan: the time limit ended while loading the instance"
                    outcome.expired = True
                    break
                # solving past the limit: a native call that does not stop in time (HiGHS's
                # presolve, say); the start's plan is the answer, as after a signal
                if box.get("phase") == "solving" and left is not None and left <= 0.0 \
                        and "plan" not in box and "error" not in box:
                    plan = box.setdefault("plan", box.get("incumbent"))
                    outcome.expired = plan is None
                    outcome.why = ("the solve had not returned at the time limit: the start's "
                                   "plan is written" if plan is not None else
                                   "no plan: the time limit ended before the solve returned")
                    break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    outcome.interrupted = stop.interrupted
    if "error" in box:
        if outcome.interrupted and not isinstance(box["error"], typer.Exit | SystemExit):
            outcome.why = f"stopped while loading ({type(box['error']).__name__})"
            return outcome
        raise box["error"]
    outcome.inst, outcome.plan = box.get("inst"), box.get("plan")
    if outcome.plan is None and not outcome.why:
        outcome.why = "stopped before the model was built"
    return outcome


def print_ineligible(plan: Plan, verbose: bool = False, shown: int = 5) -> None:
    """Option placements the export rules removed: one line per reason (how many, which jobs),
    or every placement with ``verbose``."""
    out.print(f"{len(plan.ineligible)} option placement(s) removed as ineligible"
              + (":" if verbose else " (--verbose lists them):"))
    if verbose:
        for x in plan.ineligible:
            out.print(f"  {x.job} option {x.option} on {x.cluster}: {x.reason}", markup=False)
        return
    by_reason: dict[str, list[str]] = {}
    for x in plan.ineligible:
        jobs = by_reason.setdefault(x.reason, [])
        if x.job not in jobs:
            jobs.append(x.job)
    for reason, jobs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        n = sum(1 for x in plan.ineligible if x.reason == reason)
        more = f" and {len(jobs) - shown} more" if len(jobs) > shown else ""
        out.print(f"  {n} x {reason}: {', '.join(jobs[:shown])}{more}", markup=False,
                  soft_wrap=True)


def print_plan(inst: Instance, plan: Plan, brief: bool = False,
               verbose: bool = False) -> None:
    """Headline, then per start-up, per cap and per pool tables."""
    from ..models.metrics import plan_metrics
    from ..present.credit_charts import fairness_lines, share_text, tranche_lines

    colour = {"optimal": "green", "feasible": "yellow"}.get(plan.status.value, "red")
    out.print(f"[bold]{inst.name}[/bold]  status [{colour}]{plan.status.value}[/{colour}]  "
              f"objective {fmt(plan.objective)}  bound {fmt(plan.bound)}  gap {pct(plan.gap)}  "
              f"{plan.solve_seconds:.2f}s  ({plan.backend}, seed {plan.seed})"
              + (f"  {plan.summary['stopped']}" if plan.summary.get("stopped") else ""))
    if brief or not plan.is_feasible:
        return
    m = plan_metrics(inst, plan)
    t = Table(title="Start-ups", title_justify="left")
    for col in ("start-up", "jobs run/asked", "value", "spend", "credits", "used", "share"):
        t.add_column(col, justify="left" if col == "start-up" else "right")
    for sid, s in m["startups"].items():
        t.add_row(sid, f"{s['jobs_run']}/{s['jobs_asked']}", fmt(s["value"], 1),
                  fmt(s["spend"], 0), fmt(s["credits"], 0), pct(s["spend_share"]),
                  share_text(m, sid))
    out.print(t)
    for line in tranche_lines(inst, m) + fairness_lines(plan):  # credit tranches, max-min
        out.print(line, markup=False)
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
        print_ineligible(plan, verbose)
    if plan.unscheduled:
        out.print(f"unscheduled ({len(plan.unscheduled)}): {', '.join(plan.unscheduled)}",
                  markup=False)


# -- validate, schema, catalog ---------------------------------------------------------------
@app.command()
def validate(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON).")],
    force: ForceOpt = False,
) -> None:
    """Check a plan against the eight rules; exit 0 when valid, 1 with the violations."""
    from ..models.validator import validate as check

    inst = load(instance)
    p = load_plan_for(plan, inst, force)
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
    regime: Annotated[str | None, typer.Option(
        help="Export regime: oct2022, oct2023, jan2026 (default: the instance's, else "
             f"{models.DEFAULT_REGIME}).")] = None,
    instance: Annotated[Path | None, typer.Option(help="Include an instance's accelerators "
                                                  "and use its regime.")] = None,
) -> None:
    """Print the accelerator catalog with export classes under a regime."""
    if regime is not None and regime not in models.REGIMES:
        fail(f"unknown regime {regime!r}; choose from {', '.join(models.REGIMES)}")
    base = load(instance) if instance else None
    regime = regime or (base.regime if base is not None else models.DEFAULT_REGIME)
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


def _bench_peers(items: list[Any], time_limit: float, seed: int, workers: int,
                 csv: Path | None) -> None:
    """``bench --peers``: one table, the default plan's row first, then its peers."""
    from ..analysis.bench import run_peers, write_csv

    table = Table(title=f"Default plan against its peers ({time_limit:g} s, {workers} workers)",
                  title_justify="left")
    for col in ("instance", "run", "status", "objective", "bound", "gap", "seconds",
                "default ÷ run"):
        table.add_column(col, justify="left" if col in ("instance", "run", "status")
                         else "right")

    def row_done(p: Any) -> None:
        r = p.row
        run = "default" if r.backend == "auto" else r.backend
        table.add_row(r.instance, run, r.status, fmt(r.objective), fmt(r.bound), pct(r.gap),
                      fmt(r.median_seconds), "" if p.ratio is None else f"{p.ratio:.4f}")
        err.print(f"  {r.instance} {run}: {r.status} {fmt(r.objective)} "
                  f"({fmt(r.median_seconds)} s)")

    with input_errors():
        rows = run_peers(items, time_limit, seed=seed, workers=workers, on_row=row_done)
    out.print(table)
    if csv is not None:
        write_csv([p.row for p in rows], csv)
        out.print(f"CSV written to {csv}")


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
    workers: Annotated[int | None, typer.Option(
        help="Solver threads (default: all available cores).")] = None,
    peers: Annotated[bool, typer.Option(
        help="Per instance, the default plan against the interval model, HiGHS alone and "
             "greedy at the same time limit, with the ratios.")] = False,
    minimize: Annotated[bool, typer.Option(help="Read GAP files as minimisation.")] = False,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    tier: Annotated[list[str] | None, typer.Option(
        help="Also a generated tier: medium, large or huge (repeatable).")] = None,
    philly: Annotated[Path | None, typer.Option(
        help="Also replay the Philly trace: its jobs.json (machine_list.csv next to it).")]
    = None,
    limits_check: Annotated[bool, typer.Option(
        "--limits-check", help="Instead: run `gpualloc solve` as a process per --limits value "
                               "and report its wall time against the limit.")] = False,
    interrupts: Annotated[bool, typer.Option(
        "--interrupts", help="Instead: send SIGINT to `gpualloc solve` at each --signal-at "
                             "second and report how long it takes to stop.")] = False,
    limits: Annotated[str, typer.Option(help="--limits-check: comma-separated seconds.")]
    = "5,20,120",
    signal_at: Annotated[str, typer.Option(
        help="--interrupts: comma-separated seconds after launch.")] = "3,8,15",
) -> None:
    """Benchmark backends: status, objective, bound, gap, median seconds, peak memory."""
    from ..analysis.bench import run_bench, write_csv

    check_writable(csv, "the CSV")
    names = [b.strip() for b in backend.split(",") if b.strip()]
    if runs < 1 or time_limit <= 0:
        fail("--runs must be >= 1 and --time-limit > 0")
    from .scale import bench_items, process_bench

    items = bench_items(targets or [], minimize, tier or [], philly)
    if limits_check or interrupts:
        process_bench(items, targets or [], names, limits if limits_check else "",
                      signal_at if interrupts else "", csv)
        return
    workers = optimizer.available_cores() if workers is None else workers
    if peers:
        _bench_peers(items, time_limit, seed, workers, csv)
        return
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
    if csv is not None and write_or_rescue(lambda p: write_csv(rows, p), csv, "the CSV"):
        out.print(f"CSV written to {csv}")


