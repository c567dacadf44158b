"""PuLP adapters: CBC (bundled command-line binary) and HiGHS (through highspy).

PuLP calls a time-limited MIP "Optimal"; these adapters read the solver's own status and
bound instead: CBC's closing report (``Result -``, ``Objective value``, ``Lower bound`` of -f) and
HiGHS's ``mip_dual_bound``.

A ``Stop`` (thread and signal safe) ends a running search early with its incumbent: HiGHS
through its interrupt callbacks (simplex, IPM and MIP), which check the stop, CBC by sending
its process SIGINT, on which CBC stops at its next check and writes its best solution (on
POSIX; elsewhere the process is terminated). Both also get the stop's remaining time as their
time limit. CBC checks rarely during the root LP of a large model (tens of seconds on the large
tier): if it has not stopped ``STOP_GRACE`` s after a stop, or shortly after its time limit,
it is killed and the caller keeps the warm start (no bound). HiGHS cannot be killed; it does
not check its time limit or interrupts inside some presolve steps, which on the large tier can
take tens of seconds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model.formulation import LinearModel
from ..model.pulp import to_pulp
from ..stop import Stop, StopRequested
from .base import BackendResult, Capabilities, ProgressCallback, SolveParams

log = logging.getLogger(__name__)


_spawned = threading.local()  # per thread: who wants to know about the CBC process


class _Subprocess:
    """``subprocess`` as PuLP's CBC runner sees it: it hands the CBC process to the backend
    that started it (so that ``stop()`` can signal it); everything else is ``subprocess``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        proc = subprocess.Popen(*args, **kwargs)
        hook = getattr(_spawned, "hook", None)
        if hook is not None:
            hook(proc)
        return proc


def _watch_cbc_processes() -> None:
    from pulp.apis import coin_api

    if not isinstance(coin_api.subprocess, _Subprocess):
        coin_api.subprocess = _Subprocess()


STOP_GRACE = 1.0  # seconds CBC gets to act on a stop request (SIGINT) before it is killed


class CbcBackend:
    """COIN-OR CBC through PuLP's bundled binary."""

    name = "cbc"
    capabilities = Capabilities(proves_bound=True, takes_hint=True, stops_on_request=True,
                                deterministic=True)

    def available(self) -> bool:
        try:
            return bool(_cbc_command(msg=False).available())
        except ImportError:
            return False

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              stop: Stop | None = None) -> BackendResult:
        from pulp import PulpSolverError

        stop = stop if stop is not None else params.stop()
        # CBC 2.10 with "-max" mishandles a MIP start's cutoff and can stop on the start,
        # calling it optimal: hand it the equivalent minimisation of -f instead.
        try:
            form = to_pulp(model, start=start, minimize=True, stop=stop)
        except StopRequested as e:
            return BackendResult("unknown", stats={"stopped": str(e)})
        # PuLP's files (MPS, warm start, solution) and CBC's log, all removed afterwards, also
        # when CBC fails (PuLP leaves its files behind then)
        folder = tempfile.TemporaryDirectory(prefix="gpualloc-cbc-")
        log_path = os.path.join(folder.name, "cbc.log")
        _watch_cbc_processes()
        killed: list[str] = []
        # CBC always runs its serial search: any "-threads N" (1 included) selects CBC 2.10's
        # threaded branch-and-bound, whose threads now and then wait on each other until the
        # time limit (measured: 7 of 654 tiny solves with -threads 1 and 1 of 660 with
        # -threads 2 idled 10 s at 0.01 s CPU; none of 660 without the option).
        _spawned.hook = lambda proc: threading.Thread(
            target=_watch, args=(proc, stop, killed), name="gpualloc-cbc-watch",
            daemon=True).start()
        try:
            solver = _cbc_command(
                stop=stop, msg=False, timeLimit=stop.budget(floor=1.0),
                gapRel=params.gap_tolerance, threads=None,
                warmStart=start is not None, logPath=log_path,
                options=[f"randomSeed {params.seed + 1}", f"randomCbcSeed {params.seed + 1}"])
            solver.tmpDir = folder.name
            if stop.stopped:  # stopped while the model was being built
                return BackendResult("unknown", stats={
                    "stopped": f"{stop.why()} before the search began"})
            try:
                form.prob.solve(solver)
            except PulpSolverError as e:
                # CBC itself failed: e.g. it crashes (SIGSEGV) now and then when its time limit
                # ends the search at the root node with a warm start given (-mips), or it was
                # killed (see ``_watch``). The caller falls back to the warm start; no
                # traceback, no bound.
                why = f"CBC killed: {killed[0]}" if killed else f"CBC failed: {e}"
                return BackendResult("unknown", stats={"cbc_result": why})
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                log = fh.read()
        finally:
            _spawned.hook = None
            folder.cleanup()
        return _read_cbc(log, form.values(), form.prob.status, form.prob.sol_status,
                         params.gap_tolerance)


def _watch(proc: subprocess.Popen, stop: Stop, killed: list[str]) -> None:
    """CBC checks its time limit and SIGINT only now and then: during the root LP of a large
    model not for tens of seconds. Once ``stop`` is stopped (a request, or past the time
    limit) CBC gets SIGINT (it stops at its next check, with its best solution); if it is still
    running ``STOP_GRACE`` s after a request, or 0.5 s after the time limit, it is killed and
    the caller keeps the warm start."""
    kill_at = None
    while proc.poll() is None:
        now = time.monotonic()
        if kill_at is None and stop.stopped:
            _interrupt(proc)
            kill_at = now + (STOP_GRACE if stop.interrupted else 0.5)
        elif kill_at is not None and now >= kill_at:
            killed.append("stopped" if stop.interrupted else "past its time limit")
            with contextlib.suppress(OSError):
                proc.kill()
            return
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen) -> None:
    """CBC's Ctrl-C: it stops at the next node and still writes its best solution."""
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            proc.send_signal(signal.SIGINT)
        else:  # pragma: no cover - no graceful stop: the caller keeps the warm start
            proc.terminate()
    except OSError:  # it has just ended
        pass


def _cbc_command(**kwargs: Any):  # -> pulp.COIN_CMD
    """COIN_CMD on the CBC binary bundled with PuLP 3.x, else on a ``cbc`` found on PATH.

    With ``stop``, CBC's time limit is what is left of it when CBC starts: writing the MPS
    file of a large model takes a while.
    """
    from pulp.apis import coin_api

    command = _cbc_class()
    bundled = getattr(coin_api, "pulp_cbc_path", None)
    if bundled and os.path.isfile(bundled):
        return command(path=bundled, **kwargs)
    return command(**kwargs)


@functools.cache
def _cbc_class() -> type:
    import pulp

    class _CbcCommand(pulp.COIN_CMD):
        def __init__(self, *args: Any, stop: Stop | None = None, **kwargs: Any) -> None:
            self._stop = stop
            super().__init__(*args, **kwargs)

        @property
        def timeLimit(self) -> float | None:  # PuLP's name
            if self._limit is None or self._stop is None:
                return self._limit
            left = self._stop.budget(floor=0.1)
            return None if left is None else round(left, 2)

        @timeLimit.setter
        def timeLimit(self, value: float | None) -> None:
            self._limit = value

    return _CbcCommand


def _read_cbc(log: str, values: list[float] | None, status: int, sol_status: int,
              gap_tolerance: float) -> BackendResult:
    """Status and bound from CBC's report (PuLP's "Optimal" is not trusted)."""
    result = re.search(r"^Result - (.+)$", log, re.M)
    verdict = result.group(1).strip() if result else ""
    stats = {"cbc_result": verdict}
    if "infeasible" in verdict.lower() or status == -1 or "Problem is infeasible" in log:
        return BackendResult("infeasible", None, None, stats)
    has_solution = values is not None and sol_status in (1, 2)
    # CBC minimises -f: its objective and lower bounds are those of -f.
    negated = _number(log, "Objective value")
    objective = -negated if negated is not None else None
    possible = re.findall(r"best possible (-?[\d.eE+-]+)", log)
    lower = _number(log, "Lower bound")
    bound = -lower if lower is not None else (-float(possible[-1]) if possible else None)
    if verdict.startswith("Optimal solution found") and has_solution and objective is not None:
        if "within gap" in verdict:
            # proven only to within the allowed gap: widen the bound by that much
            slack = gap_tolerance * max(1.0, abs(objective))
            bound = max(bound if bound is not None else objective, objective + slack)
        else:
            bound = objective
        return BackendResult("optimal", values, bound, stats)
    if has_solution:
        return BackendResult("feasible", values, bound, stats)
    return BackendResult("unknown", None, bound, stats)


def _number(log: str, label: str) -> float | None:
    m = re.search(rf"^{label}:\s+(\S+)", log, re.M)
    if not m:
        return None
    try:
        value = float(m.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_banner_shown = False


def _swallow_highs_banner() -> None:
    """HiGHS prints a banner to fd 1 on its first construction; the library never prints."""
    global _banner_shown
    if _banner_shown:
        return
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _banner_shown = True


_scheduler_lock = threading.Lock()
_scheduler_threads: int | None = None  # what HiGHS's process-global task scheduler runs with
_highs_running = 0
# HiGHS calls its interrupt callbacks (``stop_highs_on``) at every simplex iteration, and each
# call waits for Python's GIL: up to the interpreter's switch interval (5 ms by default)
# whenever another thread runs Python, the LNS beside the LP. While any HiGHS runs, the
# interval is this (and restored after the last one): large-wide's LP beside a thread running
# Python took 38 s at 0.1 ms, 71 s at 0.5 ms, and had not ended in 150 s at 5 ms (28 s alone).
HIGHS_SWITCH_INTERVAL = 1e-4
_switch_before: float | None = None


@contextlib.contextmanager
def highs_threads(h: Any, threads: int):
    """Run ``h`` with ``threads`` threads. HiGHS's task scheduler is global to the process and
    fixed by the first run; a later run asking another count returns without solving (model
    status "Not Set") unless the scheduler is reset first, which is safe only while no other
    Highs runs. While one does, the new run shares its thread count instead. Before the first
    run through here the count is unknown (HiGHS may have run in this process already, outside
    gpualloc, with its default count): the scheduler is reset then too. While any Highs runs,
    Python's thread switch interval is ``HIGHS_SWITCH_INTERVAL`` at most."""
    import highspy

    global _scheduler_threads, _highs_running, _switch_before
    with _scheduler_lock:
        if threads != _scheduler_threads:
            if _highs_running == 0:
                highspy.Highs.resetGlobalScheduler(True)
            else:
                threads = _scheduler_threads
        _scheduler_threads = threads
        if _highs_running == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, HIGHS_SWITCH_INTERVAL))
        _highs_running += 1
    h.setOptionValue("threads", threads)
    try:
        yield
    finally:
        with _scheduler_lock:
            _highs_running -= 1
            if _highs_running == 0 and _switch_before is not None:
                sys.setswitchinterval(_switch_before)
                _switch_before = None


def pulp_highs(threads: int = 1, **kwargs: Any):  # -> pulp.HiGHS
    """PuLP's HiGHS (highspy) solver, its runs going through ``highs_threads``."""
    import pulp

    class _Highs(pulp.HiGHS):
        def callSolver(self, lp):  # PuLP's hook
            with highs_threads(lp.solverModel, threads):
                super().callSolver(lp)

    return _Highs(threads=threads, **kwargs)


def stop_highs_on(h: Any, stop: Stop) -> None:
    """Make ``stop`` end the runs of the highspy ``Highs`` ``h``: its simplex, IPM and MIP
    interrupt callbacks (``cbSimplexInterrupt``, ``cbIpmInterrupt``, ``cbMipInterrupt``) ask
    for the interrupt once the stop is stopped. (The time limit is set separately.)"""

    def check(event: Any) -> None:
        if stop.stopped:
            event.interrupt()

    for hook in (h.cbSimplexInterrupt, h.cbIpmInterrupt, h.cbMipInterrupt):
        hook.subscribe(check)


def _highs_columns(lp: Any, x: list[Any]):  # -> (np.ndarray, int)
    """HiGHS's column of each placement variable in ``x`` (PuLP orders them by name), and the
    number of columns."""
    import numpy as np

    order = {v.name: v.index for v in lp.variables()}
    return np.asarray([order[var.name] for var in x], dtype=np.int64), len(order)


def _feed_highs(h: Any, lp: Any, x: list[Any], feed: Callable[[], list[float] | None]) -> None:
    """Hand ``feed()``'s plans to the running MIP as user solutions (HiGHS checks them)."""
    import numpy as np

    columns, width = _highs_columns(lp, x)

    def offer(event: Any) -> None:
        values = feed()
        if values is not None:
            col = np.zeros(width)
            col[columns] = values
            event.data_in.setSolution(col)

    h.cbMipUserSolution.subscribe(offer)


def _report_highs(h: Any, lp: Any, x: list[Any], on_plan: Callable[[list[float]], None]) -> None:
    """Hand each improving MIP solution HiGHS finds to ``on_plan`` (0/1 values by placement,
    unchecked: the receiver checks them)."""
    import numpy as np

    columns, width = _highs_columns(lp, x)

    def found(event: Any) -> None:
        solution = np.asarray(event.data_out.mip_solution)
        if len(solution) == width:
            on_plan((solution[columns] > 0.5).astype(float).tolist())

    h.cbMipImprovingSolution.subscribe(found)


class HighsBackend:
    """HiGHS through PuLP's highspy interface (warm start via ``setSolution``)."""

    name = "highs"
    capabilities = Capabilities(proves_bound=True, takes_hint=True, stops_on_request=True,
                                deterministic=True)

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
            import pulp
        except ImportError:
            return False
        return bool(pulp.HiGHS(msg=False).available())

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              stop: Stop | None = None,
              feed: Callable[[], list[float] | None] | None = None,
              on_plan: Callable[[list[float]], None] | None = None) -> BackendResult:
        """One HiGHS run; when it claims an optimum its bound does not prove (an early stop),
        one more run without the warm start in the time left (see ``unproven_optimum``).
        ``feed()``, when given, is asked during the MIP search for a new plan found elsewhere
        (a portfolio's other searches): HiGHS takes it as a user solution. ``on_plan(values)``
        receives each improving plan HiGHS finds, from its thread, unchecked."""
        stop = stop if stop is not None else params.stop()
        first = self._solve_once(model, params, start, stop, feed, on_plan)
        early = unproven_optimum(model, first, params.gap_tolerance)
        if early is None:
            return first
        left = stop.remaining()
        if stop.stopped or (left is not None and left < 0.05):
            return early
        log.debug("HiGHS stopped early: %s; running it again", early.stats["highs_early_stop"])
        again = self._solve_once(model, params, None, stop, feed, on_plan)
        if again.values is None:
            return early
        checked = unproven_optimum(model, again, params.gap_tolerance) or again
        checked.stats["highs_rerun"] = early.stats["highs_early_stop"]  # the plan says so
        better = model.objective_value(again.values) >= model.objective_value(early.values)
        return checked if better else early

    def _solve_once(self, model: LinearModel, params: SolveParams,
                    start: list[float] | None, stop: Stop,
                    feed: Callable[[], list[float] | None] | None = None,
                    on_plan: Callable[[list[float]], None] | None = None) -> BackendResult:
        import highspy
        import pulp

        _swallow_highs_banner()
        try:
            form = to_pulp(model, start=start, stop=stop)
        except StopRequested as e:
            return BackendResult("unknown", stats={"stopped": str(e)})
        prob, x = form.prob, form.x

        class _Highs(pulp.HiGHS):
            def callSolver(self, lp):  # PuLP's hook
                h = lp.solverModel
                limit = stop.budget()  # PuLP has just spent time loading the model
                if limit is not None:
                    h.setOptionValue("time_limit", limit)
                stop_highs_on(h, stop)
                if start is not None:
                    sol = highspy.HighsSolution()
                    order = {v.name: v.index for v in lp.variables()}
                    col = [0.0] * len(order)
                    for var in x:
                        col[order[var.name]] = var.varValue or 0.0
                    sol.col_value = col
                    sol.value_valid = True
                    lp.solverModel.setSolution(sol)
                if feed is not None:
                    _feed_highs(h, lp, x, feed)
                if on_plan is not None:
                    _report_highs(h, lp, x, on_plan)
                with highs_threads(h, max(1, params.workers)):
                    h.run()

        low = model.objective_value(start) if start is not None else None
        rel_gap, abs_gap = highs_gaps(params.gap_tolerance, low, model.trivial_bound())
        solver = _Highs(msg=params.log, timeLimit=stop.budget(), gapRel=rel_gap,
                        gapAbs=abs_gap, threads=max(1, params.workers),
                        random_seed=params.seed, mip_feasibility_tolerance=1e-7)
        if stop.stopped:  # stopped while the model was being built
            return BackendResult("unknown", stats={
                "stopped": f"{stop.why()} before the search began"})
        prob.solve(solver)
        h = prob.solverModel
        info = h.getInfo()
        status = h.getModelStatus()
        ms = highspy.HighsModelStatus
        stats = {"highs_status": h.modelStatusToString(status),
                 "nodes": int(getattr(info, "mip_node_count", 0))}
        if status in (ms.kNotset, ms.kLoadError, ms.kModelError, ms.kPresolveError,
                      ms.kSolveError, ms.kPostsolveError):
            # HiGHS did not solve: its info, the dual bound included, means nothing (seen
            # when its process-global scheduler had another thread count; see highs_threads)
            log.warning("HiGHS returned without solving: %s", stats["highs_status"])
            return BackendResult("unknown", None, None, stats)
        dual = getattr(info, "mip_dual_bound", None)
        # PuLP hands HiGHS the negated objective: the dual bound of -f bounds f from above.
        bound = -dual if dual is not None and math.isfinite(dual) else None
        has_solution = info.primal_solution_status == 2
        values = form.values() if has_solution else None
        if status == ms.kInfeasible:
            return BackendResult("infeasible", None, None, stats)
        if status == ms.kOptimal and values is not None:
            return BackendResult("optimal", values, bound, stats)
        if values is not None:
            return BackendResult("feasible", values, bound, stats)
        return BackendResult("unknown", None, bound, stats)


def highs_gaps(tolerance: float, low: float | None, high: float) -> tuple[float, float]:
    """HiGHS's ``mip_rel_gap`` and ``mip_abs_gap`` for our gap ``tolerance``, when the optimum
    lies in ``[low, high]`` (a feasible objective, e.g. the warm start's, and a proven upper
    bound; ``low`` None: unknown). HiGHS stops when ``bound - objective`` is at most
    ``mip_abs_gap`` or ``mip_rel_gap * |objective|``; ``solve`` calls a plan optimal when it is
    at most ``tolerance * max(1, |bound|)``. Both gaps are scaled so that either HiGHS stop
    implies ours: by the smallest ``|bound|`` possible in the range, and by the largest
    ``|objective|``. (PuLP's HiGHS interface passes ``gapRel`` and ``gapAbs`` on as these two
    options and leaves HiGHS's defaults, 1e-4 and 1e-6, when they are not given.)"""
    if low is None:
        smallest = 0.0 if high >= 0 else abs(high)
        largest = math.inf
    else:
        low = min(low, high)
        smallest = 0.0 if low <= 0 <= high else min(abs(low), abs(high))
        largest = max(abs(low), abs(high), 1.0)
    absolute = tolerance * max(1.0, smallest)
    return absolute / largest, absolute


def unproven_optimum(model: LinearModel, result: BackendResult,
                     tolerance: float) -> BackendResult | None:
    """``result`` as ``feasible`` when HiGHS called it optimal but its own bound does not prove
    the plan it returned within ``tolerance`` (seen with a warm start on cost-weighted
    instances: "Optimal" after one node, the plan being the start); None when it is sound."""
    if result.status != "optimal" or result.values is None or result.bound is None:
        return None
    objective = model.objective_value(result.values)
    gap = result.bound - objective
    if gap <= tolerance * max(1.0, abs(result.bound)) + 1e-9 * max(1.0, abs(objective)):
        return None
    stats = {**result.stats, "highs_early_stop": f"claimed optimal {objective:.6g} with bound "
             f"{result.bound:.6g}"}
    return BackendResult("feasible", result.values, result.bound, stats)
