"""Portfolio strategy: several searches on the same model at once; best plan, tightest bound.

The searches are strong in different places. The time-indexed CP-SAT model finds good plans
and proves small optima; HiGHS's LP-based branch and bound closes the bound; the interval
model (``backends.interval``: optional intervals, a cumulative per pool) finds plans fast on
some models (the bundled portfolio's optimum in 5 s) but proves nothing. All
solve the same neutral model, so each plan is valid and each bound is proven for it: the
result is the best plan with the smallest bound.

They exchange incumbents through an ``Exchange``: every plan CP-SAT or the interval model
finds (each checked against the neutral rows) is handed to the running HiGHS search as a user
solution; the model builds run one after the other (CP-SAT's first: they hold the GIL),
and all of them start from the best start there is: the warm start or greedy plan, or the
greedy plan ordered by a short Lagrangian's reduced costs when that is better (its bound
counts too).

``workers`` is split: HiGHS and the interval model one thread each, time-indexed CP-SAT the
rest (at least one); the interval model joins from ``INTERVAL_MIN_WORKERS`` workers (with
two, a third search cost the other two more than it found: README).
When one search proves its plan optimal (or the model infeasible), the others are stopped.
A stop asked of the portfolio (its ``Stop``) stops all; each returns its incumbent.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from ..backends.base import BackendResult, Progress, ProgressCallback, SolveParams
from ..backends.cpsat import CpSatBackend
from ..backends.interval import IntervalBackend
from ..backends.mip import HighsBackend
from ..model.formulation import LinearModel
from ..stop import Stop
from .beside import INTERVAL_MIN_WORKERS

PORTFOLIO_MIN_VARS = 2_000  # below this CP-SAT alone proves optima in seconds
LAGRANGE_SHARE, LAGRANGE_SECONDS = 0.05, 5.0  # the start's Lagrangian: share of time, cap
MEMBERS = ("cpsat", "highs", "interval")


def members_for(workers: int) -> tuple[str, ...]:
    """The searches a portfolio of ``workers`` threads runs: time-indexed CP-SAT and HiGHS,
    and the interval model from ``INTERVAL_MIN_WORKERS`` workers (on two cores a third
    search cost the other two more than it found: README)."""
    return MEMBERS if workers >= INTERVAL_MIN_WORKERS else ("cpsat", "highs")


def portfolio_available() -> bool:
    """Whether CP-SAT and HiGHS are both installed."""
    return CpSatBackend().available() and HighsBackend().available()


class Exchange:
    """The best plan found so far by any search, handed on to the others (thread safe)."""

    def __init__(self, model: LinearModel) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.values: list[float] | None = None
        self.objective: float | None = None
        self.source: str | None = None
        self.version = 0
        self.offers = 0

    def offer(self, values: list[float], objective: float, source: str) -> bool:
        """Keep ``values`` if it beats the best so far; True when kept."""
        with self.lock:
            self.offers += 1
            if self.objective is not None and objective <= self.objective + 1e-9 * max(
                    1.0, abs(self.objective)):
                return False
            self.values, self.objective, self.source = list(values), objective, source
            self.version += 1
            return True

    def feed(self, reader: str):
        """A function that returns the best plan once each time a search other than
        ``reader`` improved it (else None)."""
        seen = {"version": self.version}

        def take() -> list[float] | None:
            with self.lock:
                if self.version == seen["version"] or self.source == reader:
                    seen["version"] = self.version
                    return None
                seen["version"] = self.version
                return list(self.values) if self.values is not None else None

        return take


def portfolio_solve(model: LinearModel, params: SolveParams, stop: Stop,
                    start: list[float] | None = None,
                    progress: ProgressCallback | None = None,
                    members: tuple[str, ...] | None = None) -> BackendResult:
    """The ``members`` searches side by side (threads; the solvers release the GIL), each
    with a child of ``stop``: a request on ``stop`` ends all, a proof by one ends the
    others."""
    began = time.perf_counter()
    members = members_for(params.workers) if members is None else members
    exchange = Exchange(model)
    stats: dict[str, Any] = {"strategy": "portfolio"}
    start, lag_bound = _better_start(model, start, stop, stats)
    if start is not None and not model.check(start):
        exchange.offer(start, model.objective_value(start), "start")
    lock = threading.Lock()
    best: dict[str, float | None] = {"objective": None, "bound": lag_bound}

    def report(p: Progress) -> None:  # incumbents, with the best bound known
        if progress is None:
            return
        with lock:
            if p.objective is not None and (best["objective"] is None
                                            or p.objective > best["objective"]):
                best["objective"] = p.objective
            if p.bound is not None and (best["bound"] is None or p.bound < best["bound"]):
                best["bound"] = p.bound
            merged = Progress(best["objective"], best["bound"], time.perf_counter() - began)
        progress(merged)

    built = threading.Event()  # CP-SAT's model is built: the others may build theirs
    if "cpsat" not in members:
        built.set()
    runs = _runs(params, members, exchange, report, built.set)
    stops = {name: stop.child() for name in runs}
    results: dict[str, BackendResult] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        call = runs[name]
        try:
            if name != "cpsat":  # model builds hold the GIL: one at a time, CP-SAT's first
                while not built.is_set() and not stops[name].wait(0.05):
                    pass
            results[name] = call(model, start, stops[name])
        except BaseException as e:  # re-raised in the calling thread
            errors.append(e)
        finally:
            if name == "cpsat":
                built.set()

    threads = {name: threading.Thread(target=run, args=(name,), name=f"gpualloc-{name}",
                                      daemon=True) for name in runs}
    for t in threads.values():
        t.start()
    ended = False
    while any(t.is_alive() for t in threads.values()):
        for t in threads.values():
            t.join(0.05)
        done = [r for r in results.values() if r.status in ("optimal", "infeasible")]
        if not ended and (done or errors):
            ended = True  # one proved it (or failed): end the others
            for child in stops.values():
                child.request()
    if errors:
        raise errors[0]
    stats["exchanged_plans"] = exchange.offers
    if exchange.values is not None:  # the best plan exchanged (the start, at least)
        results.setdefault(f"exchange_{exchange.source}", BackendResult(
            "feasible", exchange.values, None))
    return _combine(model, results, stop.interrupted, lag_bound, stats)


def _runs(params: SolveParams, members: tuple[str, ...], exchange: Exchange,
          report: ProgressCallback, built: Any) -> dict[str, Any]:
    """Per member, ``call(model, start, stop) -> BackendResult`` with its share of workers."""
    others = sum(1 for m in members if m != "cpsat")
    one = replace(params, workers=1)
    runs: dict[str, Any] = {}
    if "cpsat" in members:
        mine = replace(params, workers=max(1, params.workers - others))
        runs["cpsat"] = lambda m, s, st: CpSatBackend().solve(
            m, mine, s, report, stop=st,
            on_plan=lambda v, obj: exchange.offer(v, m.objective_value(v), "cpsat"),
            on_search=built)
    if "highs" in members:
        runs["highs"] = lambda m, s, st: HighsBackend().solve(
            m, one, s, None, stop=st, feed=exchange.feed("highs"))
    if "interval" in members:
        runs["interval"] = lambda m, s, st: IntervalBackend().solve(
            m, one, s, report, stop=st,
            on_plan=lambda v, obj: exchange.offer(v, obj, "interval"))
    return runs


def _better_start(model: LinearModel, start: list[float] | None, stop: Stop,
                  stats: dict[str, Any]) -> tuple[list[float] | None, float | None]:
    """The start, or the greedy plan in the order of a short Lagrangian's reduced costs when
    that is better; and the Lagrangian bound (None if not run)."""
    from ..backends.greedy import greedy_values
    from .lagrange import lagrangian_bound, priced_order

    left = stop.remaining()
    budget = LAGRANGE_SECONDS if left is None else min(LAGRANGE_SECONDS, LAGRANGE_SHARE * left)
    if stop.stopped or budget < 0.2:
        return start, None
    lag = lagrangian_bound(model, None, stop=stop.child(seconds=budget))
    stats["lagrangian_bound"] = lag.bound
    if lag.reduced is None or stop.stopped:
        return start, lag.bound
    priced = greedy_values(model, order=priced_order(model, lag.reduced), stop=stop)
    if model.check(priced):
        return start, lag.bound
    obj = model.objective_value(priced)
    stats["priced_greedy_objective"] = obj
    if start is None or model.check(start) or obj > model.objective_value(start):
        stats["start"] = "priced_greedy"
        return priced, lag.bound
    return start, lag.bound


def _combine(model: LinearModel, results: dict[str, BackendResult], stopped: bool,
             lag_bound: float | None, stats: dict[str, Any]) -> BackendResult:
    """The best plan with the tightest bound of the results."""
    for name, r in results.items():
        stats[f"{name}_status"] = r.status
        stats[f"{name}_objective"] = (model.objective_value(r.values)
                                      if r.values is not None else None)
        stats[f"{name}_bound"] = r.bound
    if stopped:
        stats["stopped"] = True
    bounds = [r.bound for r in results.values() if r.bound is not None]
    if lag_bound is not None:
        bounds.append(lag_bound)
    bound = min(bounds) if bounds else None
    with_plan = [(model.objective_value(r.values), name, r) for name, r in results.items()
                 if r.values is not None and not model.check(r.values)]
    if with_plan:
        _, name, r = max(with_plan, key=lambda t: (t[0], t[1] == "cpsat"))
        stats["winner"] = name
        status = "optimal" if r.status == "optimal" else "feasible"
        return BackendResult(status, r.values, bound, stats)
    if any(r.status == "infeasible" for r in results.values()):
        return BackendResult("infeasible", None, None, stats)
    return BackendResult("unknown", None, bound, stats)
