"""A CP-SAT interval model of the neutral model: a primal heuristic that finds plans fast.

The time-indexed binaries (one per placement) give a strong LP bound but CP-SAT searches them
poorly. This model has, per *block* (the placements of one job, option and cluster, i.e. one
way to run the job), a presence literal and a start variable whose domain is the block's
starts, and an optional fixed-size interval. The rows of the neutral model become:

- ``assign`` rows over whole blocks: at most one / exactly one presence;
- ``precedence`` rows: one job-level constraint per edge (if j runs, i runs and ends first),
  equivalent to the time-indexed family;
- rows of one period (pool capacity, per-period caps): a cumulative per row family, with
  fixed reservations making the capacity vary over time;
- rows whose coefficient is the same for every start of a block (credits, horizon caps,
  fairness floors): linear over presences;
- any other row (windows, tranches, frozen assignments): an element term per block and row.

Coefficients are scaled to integers exactly, or conservatively (the model is then tighter than
the neutral one), so it proves no bound on the neutral model; every plan it returns is checked
against the neutral rows before it is used.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.formulation import LinearModel, Row
from ..stop import Stop
from .base import BackendResult, Capabilities, Progress, ProgressCallback, SolveParams
from .cpsat import CpSatBackend, integer_scale

ELEMENT_LIMIT = 200_000  # element terms beyond which the model is declined as too big


@dataclass
class IntervalResult:
    """A 0/1 vector over the neutral model's placements (or None) and what happened."""

    values: list[float] | None
    status: str  # "optimal" (of an exact translation) | "feasible" | "infeasible" | "unknown"
    # | "declined"
    stats: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Block:
    first: int
    count: int
    job: str
    periods: int
    starts: tuple[int, ...]


def blocks_of(model: LinearModel) -> tuple[list[_Block], list[int]]:
    """Runs of consecutive placements with the same job, option and cluster, and each var's
    block."""
    blocks: list[_Block] = []
    of: list[int] = [0] * model.num_vars
    ps = model.placements
    i = 0
    while i < len(ps):
        p, j = ps[i], i + 1
        while j < len(ps) and (ps[j].job, ps[j].option, ps[j].cluster) == \
                (p.job, p.option, p.cluster) and ps[j].start > ps[j - 1].start:
            j += 1
        for k in range(i, j):
            of[k] = len(blocks)
        blocks.append(_Block(i, j - i, p.job, p.periods, tuple(q.start for q in ps[i:j])))
        i = j
    return blocks, of


class _Builder:
    """Translate the neutral rows into the interval model."""

    def __init__(self, model: LinearModel, element_limit: int) -> None:
        from ortools.sat.python import cp_model

        self.cp_model = cp_model
        self.model = model
        self.cp = cp_model.CpModel()
        self.blocks, self.of = blocks_of(model)
        self.element_limit = element_limit
        self.elements = 0
        self.exact = True  # every row and the objective scaled without rounding
        cp = self.cp
        self.present = [cp.new_bool_var(f"p{b}") for b in range(len(self.blocks))]
        self.start = [cp.new_int_var_from_domain(cp_model.Domain.from_values(list(b.starts)),
                                                 f"s{k}") for k, b in enumerate(self.blocks)]
        self.interval = [cp.new_optional_fixed_size_interval_var(
            self.start[k], b.periods, self.present[k], f"i{k}")
            for k, b in enumerate(self.blocks)]
        self.index: dict[int, object] = {}  # block -> position var, made on demand
        self.jobs: dict[str, list[int]] = defaultdict(list)
        for k, b in enumerate(self.blocks):
            self.jobs[b.job].append(k)

    # -- terms ---------------------------------------------------------------------------
    def _position(self, k: int):
        if k not in self.index:
            b = self.blocks[k]
            pos = self.cp.new_int_var(0, b.count - 1, f"k{k}")
            self.cp.add_element(pos, list(b.starts), self.start[k])
            self.index[k] = pos
        return self.index[k]

    def _by_block(self, vars_: list[int], ints: list[int]) -> dict[int, dict[int, int]]:
        out: dict[int, dict[int, int]] = defaultdict(dict)
        for v, c in zip(vars_, ints, strict=True):
            k = self.of[v]
            out[k][v - self.blocks[k].first] = out[k].get(v - self.blocks[k].first, 0) + c
        return out

    def _term(self, k: int, coefs: dict[int, int]):
        """The block's contribution: constant times presence, or an element over its start."""
        b = self.blocks[k]
        table = [coefs.get(pos, 0) for pos in range(b.count)]
        if len(set(table)) == 1:
            return table[0] * self.present[k]
        self.elements += 1
        lo, hi = min(0, *table), max(0, *table)
        raw = self.cp.new_int_var(lo, hi, "")
        self.cp.add_element(self._position(k), table, raw)
        term = self.cp.new_int_var(lo, hi, "")
        self.cp.add(term == raw).only_enforce_if(self.present[k])
        self.cp.add(term == 0).only_enforce_if(~self.present[k])
        return term

    def integral(self, row: Row) -> tuple[list[int], int]:
        ints, rhs, exact = integral(row)
        self.exact &= exact
        return ints, rhs

    def linear(self, row: Row) -> None:
        ints, rhs = self.integral(row)
        terms = [self._term(k, c) for k, c in self._by_block(row.vars, ints).items()]
        if not terms:
            if not {"<=": rhs >= 0, ">=": rhs <= 0, "==": rhs == 0}[row.sense]:
                self.cp.add_bool_or([])  # an empty row that cannot hold
            return
        expr = sum(terms)
        {"<=": lambda: self.cp.add(expr <= rhs), ">=": lambda: self.cp.add(expr >= rhs),
         "==": lambda: self.cp.add(expr == rhs)}[row.sense]()

    # -- row families --------------------------------------------------------------------
    def assign(self, row: Row) -> bool:
        by = self._by_block(row.vars, [1] * len(row.vars))
        if row.rhs != 1.0 or any(c != 1.0 for c in row.coefs) or any(
                len(c) != self.blocks[k].count for k, c in by.items()):
            return False
        lits = [self.present[k] for k in by]
        (self.cp.add_at_most_one if row.sense == "<=" else self.cp.add_exactly_one)(lits)
        return True

    def running_at(self, row: Row) -> tuple[int, dict[int, int]] | None:
        """``(t, demand per block)`` when the row sums a constant use of each block over
        exactly the starts that run in period ``t``; else None."""
        t = _period(row)
        if t is None or row.sense != "<=" or row.rhs < 0:
            return None
        ints, _ = self.integral(row)
        demand: dict[int, int] = {}
        for k, coefs in self._by_block(row.vars, ints).items():
            b = self.blocks[k]
            running = {pos for pos, s in enumerate(b.starts) if s <= t < s + b.periods}
            if set(coefs) != running or len(set(coefs.values())) != 1 or \
                    next(iter(coefs.values())) <= 0:
                return None
            demand[k] = next(iter(coefs.values()))
        return t, demand

    def cumulative(self, rows: list[tuple[int, dict[int, int], int]]) -> bool:
        """One cumulative over rows ``(t, demand, rhs)`` of a family, if demands agree."""
        demand: dict[int, int] = {}
        for _, d, _ in rows:
            for k, u in d.items():
                if demand.setdefault(k, u) != u:
                    return False
        if not demand:
            return True
        top = max(max(r for _, _, r in rows), sum(demand.values()))
        intervals = [self.interval[k] for k in demand]
        demands = [demand[k] for k in demand]
        for t, _, rhs in rows:
            if top - rhs > 0:  # reserve the capacity that period lacks
                intervals.append(self.cp.new_fixed_size_interval_var(t, 1, ""))
                demands.append(top - max(rhs, 0))
        self.cp.add_cumulative(intervals, demands, top)
        return True

    def precedence(self, job: str, dep: str) -> None:
        cp = self.cp
        runs, after = self._run(job), self._run(dep)
        cp.add_implication(runs, after)
        cp.add(self._end(dep) <= self._begin(job)).only_enforce_if(runs)

    def _run(self, job: str):
        lit = self.cp.new_bool_var("")
        self.cp.add(sum(self.present[k] for k in self.jobs[job]) == lit)
        return lit

    def _begin(self, job: str):
        v = self.cp.new_int_var(0, max((s for k in self.jobs[job]
                                        for s in self.blocks[k].starts), default=0), "")
        for k in self.jobs[job]:
            self.cp.add(v == self.start[k]).only_enforce_if(self.present[k])
        return v

    def _end(self, job: str):
        top = max((s + self.blocks[k].periods for k in self.jobs[job]
                   for s in self.blocks[k].starts), default=0)
        v = self.cp.new_int_var(0, top, "")
        for k in self.jobs[job]:
            self.cp.add(v == self.start[k] + self.blocks[k].periods).only_enforce_if(
                self.present[k])
        return v


class _Stopped(Exception):
    """``should_stop`` said so while the interval model was being built."""


def build_interval(model: LinearModel, element_limit: int = ELEMENT_LIMIT,
                   should_stop: Callable[[], bool] | None = None) -> _Builder | None:
    """The interval model of ``model``, or None when it would need too many element terms.
    Raises ``_Stopped`` when ``should_stop()`` turns true during the build."""

    def check(k: int) -> None:
        if should_stop is not None and k % 256 == 0 and should_stop():
            raise _Stopped

    b = _Builder(model, element_limit)
    families: dict[tuple[str, str], list[tuple[int, dict[int, int], int]]] = defaultdict(list)
    edges: set[tuple[str, str]] = set()
    generic: list[Row] = []
    for k, row in enumerate(model.rows):
        check(k)
        if row.kind == "assign" and b.assign(row):
            continue
        if row.kind == "precedence":
            edge = _edge(model, row)
            if edge is not None:
                edges.add(edge)
                continue
        hit = b.running_at(row)
        if hit is not None:
            families[(row.kind, _family(row))].append((hit[0], hit[1], b.integral(row)[1]))
            continue
        generic.append(row)
    for key, rows in families.items():
        if not b.cumulative(rows):
            generic.extend(r for r in model.rows
                           if (r.kind, _family(r)) == key and b.running_at(r) is not None)
    for k, (job, dep) in enumerate(sorted(edges)):
        check(k)
        b.precedence(job, dep)
    for k, row in enumerate(generic):
        check(k)
        b.linear(row)
        if b.elements > element_limit:
            return None
    _objective(b)
    return b


def _objective(b: _Builder) -> None:
    obj = b.model.objective
    scale = integer_scale(obj, max_power=6, limit=2.0**52)
    if scale is None:
        b.exact, scale = False, 1e6
    terms = b._by_block(list(range(len(obj))), [round(c * scale) for c in obj])
    b.cp.maximize(sum(b._term(k, c) for k, c in terms.items()))


def solve_interval(model: LinearModel, *, time_limit: float | None, seed: int = 0,
                   workers: int = 1, hint: list[float] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   element_limit: int = ELEMENT_LIMIT,
                   on_plan: PlanCallback | None = None) -> IntervalResult:
    """Search the interval model; the plan returned satisfies every neutral row.

    ``on_plan(values, objective)`` is called from CP-SAT's thread with each improving plan
    that passes ``model.check`` (a portfolio passes them on to the other searches)."""
    began = time.perf_counter()
    try:
        b = build_interval(model, element_limit, should_stop)
    except _Stopped:
        return IntervalResult(None, "unknown", {"stopped": "while building the model",
                                                "status_name": "UNKNOWN"})
    if b is None:
        return IntervalResult(None, "declined", {"reason": "too many element terms"})
    if should_stop is not None and should_stop():
        return IntervalResult(None, "unknown", {"stopped": "before the search began",
                                                "status_name": "UNKNOWN"})
    if hint is not None:
        for k, blk in enumerate(b.blocks):
            on = [pos for pos in range(blk.count) if hint[blk.first + pos] > 0.5]
            b.cp.add_hint(b.present[k], bool(on))
            if on:
                b.cp.add_hint(b.start[k], blk.starts[on[0]])
    solver = b.cp_model.CpSolver()
    p = solver.parameters
    if time_limit is not None:
        p.max_time_in_seconds = max(0.01, time_limit - (time.perf_counter() - began))
    p.num_workers = max(1, workers)
    p.random_seed = seed
    p.catch_sigint_signal = False
    done = threading.Event()
    if should_stop is not None:
        def watch() -> None:
            while not done.wait(0.05):
                if should_stop():
                    solver.stop_search()
        threading.Thread(target=watch, daemon=True).start()
    try:
        status = solver.solve(b.cp, _Forward(b, model, on_plan) if on_plan else None)
    finally:
        done.set()
    stats = {"blocks": len(b.blocks), "elements": b.elements, "exact": b.exact,
             "build_seconds": round(time.perf_counter() - began - solver.wall_time, 3),
             "status_name": solver.status_name(status)}
    if status == b.cp_model.INFEASIBLE:  # a conservative translation proves nothing
        return IntervalResult(None, "infeasible" if b.exact else "unknown", stats)
    if status not in (b.cp_model.OPTIMAL, b.cp_model.FEASIBLE):
        return IntervalResult(None, "unknown", stats)
    values = _decode(b, model, solver.boolean_value, solver.value)
    broken = model.check(values)
    if broken:  # a translation gap: never hand over a plan that breaks a row
        stats["broken_rows"] = broken[:5]
        return IntervalResult(None, "unknown", stats)
    proven = status == b.cp_model.OPTIMAL and b.exact
    return IntervalResult(values, "optimal" if proven else "feasible", stats)


PlanCallback = Callable[[list[float], float], None]


def _decode(b: _Builder, model: LinearModel, present: Callable, value: Callable) -> list[float]:
    """The neutral 0/1 vector of a CP-SAT assignment (``present``/``value`` read it)."""
    values = [0.0] * model.num_vars
    for k, blk in enumerate(b.blocks):
        if present(b.present[k]):
            values[blk.first + blk.starts.index(value(b.start[k]))] = 1.0
    return values


def _Forward(b: _Builder, model: LinearModel, on_plan: PlanCallback):
    """A CP-SAT solution callback handing each checked plan to ``on_plan``."""

    class Forward(b.cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            values = _decode(b, model, self.boolean_value, self.value)
            if not model.check(values):
                on_plan(values, model.objective_value(values))

    return Forward()


def integral(row: Row) -> tuple[list[int], int, bool]:
    """Integer coefficients and right-hand side, and whether they are exact: exact when a
    power of ten makes the row integral, else conservative (the integer row implies it)."""
    f = integer_scale([*row.coefs, row.rhs], limit=2.0**62)
    if f is not None:
        return [round(c * f) for c in row.coefs], round(row.rhs * f), True
    f = 1e6
    if row.sense == "<=":
        return [math.ceil(c * f) for c in row.coefs], math.floor(row.rhs * f), False
    if row.sense == ">=":
        return [math.floor(c * f) for c in row.coefs], math.ceil(row.rhs * f), False
    return [round(c * f) for c in row.coefs], round(row.rhs * f), False


def _period(row: Row) -> int | None:
    """The one period a capacity row or a one-period window row is about."""
    if row.kind == "capacity" and len(row.key) == 3:
        return int(row.key[2])
    label = row.name.rpartition(",")[2].rstrip("]")
    return int(label) if label.isdigit() else None


def _family(row: Row) -> str:
    """Rows of one family share a name up to their period: ``capacity[c,a`` or ``cap[id``."""
    return row.name.rpartition(",")[0]


def _edge(model: LinearModel, row: Row) -> tuple[str, str] | None:
    """``(job, dep)`` of a time-indexed precedence row (+1 vars are the job's, -1 the dep's)
    or of a long edge's order row (its key)."""
    if row.name.startswith("order[") and len(row.key) == 2:
        return str(row.key[0]), str(row.key[1])
    plus = {model.placements[v].job for v, c in zip(row.vars, row.coefs, strict=True) if c > 0}
    minus = {model.placements[v].job for v, c in zip(row.vars, row.coefs, strict=True) if c < 0}
    if len(plus) != 1 or len(minus) > 1 or row.rhs != 0.0 or row.sense != "<=":
        return None
    job = next(iter(plus))
    dep = next(iter(minus)) if minus else _dep_from_name(row.name, job)
    return (job, dep) if dep is not None else None


def _dep_from_name(name: str, job: str) -> str | None:
    """The dependency of ``after[job,dep,t]`` when none of its placements can end by ``t``."""
    inner = name[len("after["):-1] if name.startswith("after[") else ""
    head = job + ","
    if not inner.startswith(head):
        return None
    dep, _, _ = inner[len(head):].rpartition(",")
    return dep or None


class IntervalBackend:
    """The interval model as a backend: plans only (no bound on the neutral model), hinted
    with the start, stopped by the ``Stop``; for ``bench --peers`` and portfolios."""

    name = "interval"
    capabilities = Capabilities(proves_bound=False, takes_hint=True, stops_on_request=True,
                                deterministic=True)

    def available(self) -> bool:
        return CpSatBackend().available()

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              stop: Stop | None = None, on_plan: PlanCallback | None = None) -> BackendResult:
        stop = stop if stop is not None else params.stop()
        began = time.perf_counter()
        if stop.stopped:
            return BackendResult("unknown", stats={
                "stopped": f"{stop.why()} before the search began"})

        def found(values: list[float], objective: float) -> None:
            if progress is not None:
                progress(Progress(objective, None, time.perf_counter() - began))
            if on_plan is not None:
                on_plan(values, objective)

        r = solve_interval(model, time_limit=stop.budget(), seed=params.seed,
                           workers=params.workers, hint=start, should_stop=lambda: stop.stopped,
                           on_plan=found if (progress or on_plan) else None)
        status = {"optimal": "feasible", "feasible": "feasible",
                  "infeasible": "infeasible"}.get(r.status, "unknown")
        stats = {f"interval_{k}": v for k, v in r.stats.items()
                 if isinstance(v, int | float | str)}
        stats["interval_status"] = r.status
        return BackendResult(status, r.values, None, stats)
