"""Benchmark runner behind ``gpualloc bench``: solve targets with backends, time and measure.

Every solve runs in a fresh child process (``spawn``), so that its peak memory is that
process's own: ``ru_maxrss`` of the child plus that of its children (CBC runs as a separate
program), in MiB. Rows for OR-Library GAP problems report objective and bound in the GAP's own
sense (for minimisation the cost and a lower bound) and the known optimum from ``optima.csv``
next to the GAP file, when it lists the problem.
"""

from __future__ import annotations

import contextlib
import csv
import io
import multiprocessing
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..models import Instance, Plan, atomic_write_text, load_instance
from ..optimizer.backends import BackendUnavailable, available_backends, backend_names
from ..sources.orlib_gap import GapProblem, read_gap

INSTANCE_SUFFIXES = (".yaml", ".yml", ".json")
# Seconds a child may take beyond the time limit (interpreter start, imports, model build)
# before it is stopped and the run recorded as an error.
GRACE_SECONDS = 120.0

Target = tuple[str, Instance, GapProblem | None]


@dataclass
class BenchRow:
    """One (target, backend) result over ``runs`` solves.

    ``status``, ``objective``, ``bound`` and ``gap`` are those of the last run (GAP problems in
    the GAP's own sense; for minimisation ``bound`` is a lower bound and ``gap`` is
    ``(objective - bound) / max(1, |bound|)``). ``median_seconds`` is the median of the
    solver's ``solve_seconds`` over the runs that finished (None if none did); ``peak_mib`` the
    largest peak resident memory of a run's process (with its child processes), None where the
    platform cannot tell. ``runs`` counts the runs that finished. ``status`` is a plan status,
    ``unavailable`` (backend not installed) or ``error`` (the run failed; see ``error``).
    """

    instance: str
    backend: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    median_seconds: float | None
    peak_mib: float | None
    runs: int
    known_optimum: float | None = None
    error: str | None = None


def is_instance_path(path: str | Path) -> bool:
    """Whether ``path`` names an instance file (YAML/JSON) rather than a GAP file."""
    return str(path).lower().endswith(INSTANCE_SUFFIXES)


def bench_targets(paths: Sequence[str | Path], minimize: bool = False) -> list[Target]:
    """Expand paths into ``(label, instance, gap problem or None)`` targets.

    A ``.yaml``/``.yml``/``.json`` path is an instance file; anything else (e.g. ``gap1.txt``)
    is an OR-Library GAP file contributing one target per problem (``minimize``: its ``c`` are
    costs). Raises ``InstanceError`` for a malformed file.
    """
    out: list[Target] = []
    for path in paths:
        if is_instance_path(path):
            instance = load_instance(path)
            out.append((instance.name, instance, None))
        else:
            for problem in read_gap(path, minimize=minimize):
                out.append((problem.name, problem.to_instance(), problem))
    return out


@lru_cache(maxsize=64)
def _optima(csv_path: str, mtime: float) -> dict[tuple[str, int, str], float]:
    table: dict[tuple[str, int, str], float] = {}
    try:
        with open(csv_path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    key = (row["file"].strip(), int(row["problem"]), row["sense"].strip().lower())
                    table[key] = float(row["optimum"])
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # a malformed row only loses its own optimum
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return table


def known_optimum(problem: GapProblem) -> float | None:
    """The problem's optimum from ``optima.csv`` next to its GAP file, if listed there.

    ``optima.csv`` has the columns ``file,problem,name,agents,jobs,sense,optimum``; a row
    matches on the file's stem, the 1-based problem number and the sense (``max``/``min``).
    """
    if problem.source is None:
        return None
    source = Path(problem.source)
    csv_path = source.parent / "optima.csv"
    try:
        mtime = csv_path.stat().st_mtime
    except OSError:
        return None
    return _optima(str(csv_path), mtime).get((source.stem, problem.index, problem.sense))


def _peak_mib() -> float | None:
    """Peak resident memory of this process plus that of its largest waited-for child."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return None
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    unit = 1.0 if sys.platform == "darwin" else 1024.0  # macOS: bytes; Linux: KiB
    return (own + children) * unit / 2**20


def _child(conn: Any, instance_data: dict[str, Any], backend: str, time_limit: float,
           seed: int, workers: int) -> None:
    """Entry point of a benchmark child process: solve once, send back plan and peak memory."""
    try:
        from ..optimizer.backends import get_backend
        from ..optimizer.solve import solve

        if backend != "auto":
            get_backend(backend)  # imports the solver first, so its import is not timed
        instance = Instance.model_validate(instance_data)
        plan = solve(instance, backend, time_limit=time_limit, seed=seed, workers=workers)
        conn.send(("ok", plan.model_dump(mode="json"), _peak_mib()))
    except Exception as e:  # reported to the parent as the run's error
        conn.send(("error", f"{type(e).__name__}: {e}", _peak_mib()))
    finally:
        conn.close()


def _run_once(instance_data: dict[str, Any], backend: str, time_limit: float, seed: int,
              workers: int) -> tuple[Plan | None, float | None, str | None]:
    """One solve in a fresh spawned process: (plan or None, peak MiB, error message)."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, instance_data, backend, time_limit, seed,
                                            workers), daemon=True)
    proc.start()
    send.close()
    wait = time_limit + GRACE_SECONDS
    message: tuple[Any, ...] | None = None
    timed_out = False
    try:
        if receive.poll(wait):
            with contextlib.suppress(EOFError):  # EOF: the child died before sending
                message = receive.recv()
        else:
            timed_out = True
    finally:
        receive.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if message is None:
        if timed_out:
            return None, None, f"no result within {wait:.0f} s; solver process stopped"
        return None, None, f"solver process died (exit code {proc.exitcode})"
    kind, payload, peak = message
    if kind == "ok":
        return Plan.model_validate(payload), peak, None
    return None, peak, str(payload)


def _in_gap_sense(plan: Plan, problem: GapProblem | None) -> tuple[float | None, ...]:
    """(objective, bound, gap) of a plan, converted to the GAP's sense for GAP problems."""
    if problem is None or not problem.minimize:
        return plan.objective, plan.bound, plan.gap
    objective = None if plan.objective is None else problem.objective_from(plan.objective)
    bound = None if plan.bound is None else problem.objective_from(plan.bound)
    gap = None
    if objective is not None and bound is not None:
        gap = max(0.0, (objective - bound) / max(1.0, abs(bound)))
    return objective, bound, gap


def run_bench(
    targets: Sequence[Target],
    backends: Sequence[str],
    time_limit: float,
    runs: int = 1,
    seed: int = 0,
    workers: int = 1,
    on_row: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:
    """Solve every target with every backend ``runs`` times, each in a fresh process.

    A registered backend that is not installed gives a row with status ``unavailable``; an
    unknown backend name raises ``BackendUnavailable`` before anything runs. ``on_row`` is
    called with each row as soon as it is complete.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    unknown = [b for b in backends if b not in backend_names()]
    if unknown:
        raise BackendUnavailable(f"unknown backend(s) {', '.join(map(repr, unknown))}; "
                                 f"choose from {', '.join(backend_names())}")
    installed = set(available_backends())
    rows: list[BenchRow] = []
    for label, instance, problem in targets:
        optimum = known_optimum(problem) if problem is not None else None
        data = instance.model_dump(mode="json", by_alias=True)
        for backend in backends:
            if backend not in installed:
                row = BenchRow(label, backend, "unavailable", None, None, None, None,
                               None, 0, optimum, f"backend {backend!r} is not installed here")
            else:
                row = _bench_one(label, data, problem, backend, time_limit, runs, seed,
                                 workers, optimum)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def _bench_one(label: str, data: dict[str, Any], problem: GapProblem | None, backend: str,
               time_limit: float, runs: int, seed: int, workers: int,
               optimum: float | None) -> BenchRow:
    seconds: list[float] = []
    peaks: list[float] = []
    last: Plan | None = None
    error: str | None = None
    for _ in range(runs):
        plan, peak, error = _run_once(data, backend, time_limit, seed, workers)
        if peak is not None:
            peaks.append(peak)
        last = plan
        if plan is not None:
            seconds.append(plan.solve_seconds)
    median = statistics.median(seconds) if seconds else None
    peak_mib = max(peaks) if peaks else None
    if last is None:
        return BenchRow(label, backend, "error", None, None, None, median, peak_mib,
                        len(seconds), optimum, error)
    objective, bound, gap = _in_gap_sense(last, problem)
    return BenchRow(label, backend, str(last.status), objective, bound, gap, median, peak_mib,
                    len(seconds), optimum, None)


PEERS = ("auto", "interval", "highs", "greedy")  # the default plan first, then its peers


@dataclass
class PeerRow:
    """One run of ``run_peers``: a ``BenchRow`` and the default plan's objective divided by
    this run's (``ratio``; None without both objectives or for a zero objective)."""

    row: BenchRow
    ratio: float | None


def run_peers(targets: Sequence[Target], time_limit: float, seed: int = 0,
              workers: int | None = None,
              on_row: Callable[[PeerRow], None] | None = None) -> list[PeerRow]:
    """Per target, the default plan (``backend="auto"``) against its peers at the same time
    limit and workers: the plain interval model (``interval``), HiGHS alone on the whole
    model (``highs``) and the greedy plan (``greedy``), each in a fresh process."""
    from ..optimizer.solve import available_cores

    workers = available_cores() if workers is None else workers
    out: list[PeerRow] = []
    installed = set(available_backends())
    for label, instance, problem in targets:
        optimum = known_optimum(problem) if problem is not None else None
        data = instance.model_dump(mode="json", by_alias=True)
        default: float | None = None
        for backend in PEERS:
            if backend != "auto" and backend not in installed:
                row = BenchRow(label, backend, "unavailable", None, None, None, None,
                               None, 0, optimum, f"backend {backend!r} is not installed here")
            else:
                row = _bench_one(label, data, problem, backend, time_limit, 1, seed,
                                 workers, optimum)
            if backend == "auto":
                default = row.objective
            ratio = None
            if default is not None and row.objective:
                ratio = default / row.objective
            peer = PeerRow(row, ratio)
            out.append(peer)
            if on_row is not None:
                on_row(peer)
    return out


def rows_to_csv(rows: Sequence[BenchRow]) -> str:
    """CSV text of rows, one column per ``BenchRow`` field (None as an empty cell)."""
    buf = io.StringIO()
    names = [f.name for f in fields(BenchRow)]
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    return buf.getvalue()


def write_csv(rows: Sequence[BenchRow], path: str | Path) -> None:
    """Write rows as CSV, atomically."""
    atomic_write_text(path, rows_to_csv(rows))


__all__ = ["PEERS", "BenchRow", "PeerRow", "bench_targets", "is_instance_path", "known_optimum",
           "rows_to_csv", "run_bench", "run_peers", "write_csv"]


# -- the whole command against its limit, and its stop after a signal --------------------------
@dataclass
class ProcessRow:
    """One ``gpualloc solve`` process: ``kind`` ``limit`` (``asked`` = ``--time-limit``) or
    ``sigint`` (``asked`` = seconds after launch the signal was sent, with a 120 s limit).
    ``wall`` is launch to exit (interpreter start, loading, building, solving and writing);
    ``after_signal`` the seconds from the signal to the exit; ``startup`` the seconds a bare
    ``import gpualloc.cli`` takes here (interpreter start and imports, which the limit covers
    too). ``ok``: the target is met: a limit run exits within ``LIMIT_SLACK`` s of its limit
    (``wall``, launch to exit) with a valid plan; a signalled run exits 130 within 2 s of the
    signal, with a valid plan or no file."""

    instance: str
    backend: str
    kind: str
    asked: float
    wall: float
    after_signal: float | None
    exit_code: int
    status: str | None
    objective: float | None
    valid: bool | None
    ok: bool
    startup: float = 0.0


LIMIT_SLACK = 0.5  # seconds a limit run may exit after its limit (process start to exit)
SIGNAL_LIMIT = 120.0  # the --time-limit of a signalled run
SIGNAL_WITHIN = 2.0


def process_checks(label: str, path: str | Path, instance: Instance, backend: str,
                   limits: Sequence[float] = (), signal_at: Sequence[float] = (),
                   on_row: Callable[[ProcessRow], None] | None = None) -> list[ProcessRow]:
    """Run ``gpualloc solve`` on ``path`` as a fresh process once per limit and once per
    signal time (see ``ProcessRow``); each plan written is checked with the validator."""
    rows = []
    startup = startup_seconds()
    for limit in limits:
        rows.append(_process_run(label, path, instance, backend, limit, None, startup))
        if on_row is not None:
            on_row(rows[-1])
    for at in signal_at:
        rows.append(_process_run(label, path, instance, backend, SIGNAL_LIMIT, at, startup))
        if on_row is not None:
            on_row(rows[-1])
    return rows


def _default_signals() -> None:
    """In the child: SIGINT and SIGTERM at their defaults (a bench started in the background
    of a shell has SIGINT ignored, which its children would inherit)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def startup_seconds() -> float:
    """Seconds a fresh ``python -c "import gpualloc.cli"`` takes here."""
    import subprocess
    import time

    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "import gpualloc.cli"], check=False)
    return time.monotonic() - began


def _process_run(label: str, path: str | Path, instance: Instance, backend: str,
                 limit: float, signal_at: float | None, startup: float) -> ProcessRow:
    import signal
    import subprocess
    import tempfile
    import time

    from ..models import load_plan
    from ..models.validator import validate

    with tempfile.TemporaryDirectory(prefix="gpualloc-bench-") as folder:
        plan_path = Path(folder) / "plan.json"
        args = [sys.executable, "-m", "gpualloc.cli", "solve", str(path), "--quiet",
                "--backend", backend, "--time-limit", str(limit), "--out", str(plan_path)]
        launched = time.monotonic()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=_default_signals)
        signalled = None
        if signal_at is not None:
            try:
                proc.wait(timeout=signal_at)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                signalled = time.monotonic()
        try:
            proc.wait(timeout=limit + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ended = time.monotonic()
        status = objective = valid = None
        if plan_path.exists():
            plan = load_plan(plan_path)
            status, objective = plan.status.value, plan.objective
            valid = not validate(instance, plan)
    wall = ended - launched
    after = None if signalled is None else ended - signalled
    if signal_at is None:
        ok = proc.returncode == 0 and bool(valid) and wall <= limit + LIMIT_SLACK
    else:
        ok = proc.returncode == 130 and after is not None and after <= SIGNAL_WITHIN \
            and valid is not False
    return ProcessRow(label, backend, "limit" if signal_at is None else "sigint",
                      limit if signal_at is None else signal_at, wall, after, proc.returncode,
                      status, objective, valid, ok, round(startup, 2))
