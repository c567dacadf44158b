"""Large-model strategy: an LP bound plus large-neighbourhood search (LNS) with CP-SAT.

On models with a hundred thousand binaries CP-SAT spends its whole budget on the root and
never improves on the greedy plan; its bound is weaker than the LP relaxation's. This
strategy splits the work:

1. bound: the LP relaxation of the neutral model, solved with HiGHS (highspy) in a thread
   beside the search; its optimum is a proven upper bound (used only when HiGHS proves it,
   else the trivial bound is reported);
2. start: the warm start (or the greedy plan); once the LP is solved, an LP-guided greedy
   rounding (placements in order of LP value) replaces it when better;
3. improve: until the deadline, free the placements of a neighbourhood of jobs (a time
   window, a few clusters, a few start-ups, or jobs where the LP and the incumbent disagree),
   fix every other job to its incumbent placement, solve the small sub-model with CP-SAT
   (hinted with the incumbent) and keep it when better. The neighbourhood size adapts: it
   grows when sub-models are solved to optimality and shrinks when they time out.

The reported bound is the tightest of the LP bound and the trivial bound; the plan never gets
worse than its start. Deterministic for a seed with one worker when stopped by
``max_rounds`` (sub-solves are limited by CP-SAT's deterministic time, not only wall time).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .backends.base import BackendResult, Progress, ProgressCallback, SolveParams
from .formulation import LinearModel, Row
from .greedy import greedy_values

log = logging.getLogger(__name__)

LNS_THRESHOLD = 50_000  # variables from which ``strategy="auto"`` picks LNS for CP-SAT
SUB_SECONDS = 3.0  # wall-time cap of one sub-solve
SUB_DETERMINISTIC = 1.5  # CP-SAT deterministic-time cap of one sub-solve
SUB_CPSAT = {"linearization_level": 1}  # sub-models: find better plans fast, no bound needed
START_SIZE = 1200  # free variables of the first neighbourhood
MIN_SIZE, MAX_SIZE = 300, 20_000


@dataclass
class LpBound:
    """The LP relaxation's outcome: a proven bound (or None) and the primal values."""

    bound: float | None
    values: list[float] | None
    seconds: float
    status: str


def lp_relaxation(model: LinearModel, time_limit: float | None = None) -> LpBound:
    """Solve the LP relaxation with HiGHS; ``bound`` only when HiGHS proves optimality."""
    began = time.perf_counter()
    try:
        import highspy
        import numpy as np
    except ImportError:
        return LpBound(None, None, 0.0, "unavailable")
    n, m = model.num_vars, len(model.rows)
    inf = highspy.kHighsInf
    starts = [0]
    index: list[int] = []
    value: list[float] = []
    lower, upper = [], []
    for row in model.rows:
        index.extend(row.vars)
        value.extend(row.coefs)
        starts.append(len(index))
        lower.append(-inf if row.sense == "<=" else row.rhs)
        upper.append(inf if row.sense == ">=" else row.rhs)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = np.asarray(model.objective, dtype=float)
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    lp.row_lower_ = np.asarray(lower, dtype=float)
    lp.row_upper_ = np.asarray(upper, dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.offset_ = model.objective_offset
    a = lp.a_matrix_
    a.format_ = highspy.MatrixFormat.kRowwise
    a.num_col_, a.num_row_ = n, m
    a.start_ = np.asarray(starts, dtype=np.int32)
    a.index_ = np.asarray(index, dtype=np.int32)
    a.value_ = np.asarray(value, dtype=float)
    from .backends.mip import _swallow_highs_banner

    _swallow_highs_banner()  # the library never prints
    h = highspy.Highs()
    h.silent()
    h.passModel(lp)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(0.1, time_limit - (time.perf_counter() - began)))
    h.setOptionValue("solver", "simplex")  # dual simplex: its duals give a bound on a stop
    h.run()
    status = h.getModelStatus()
    seconds = time.perf_counter() - began
    solution = h.getSolution()
    values = list(solution.col_value) if solution.value_valid else None
    if status == highspy.HighsModelStatus.kOptimal:
        bound = h.getInfo().objective_function_value
        # a tolerance-sized safety margin: HiGHS's optimum is exact only up to its tolerances
        bound += 1e-6 * max(1.0, abs(bound))
        return LpBound(bound, values, seconds, "optimal")
    bound = None
    if solution.dual_valid:  # stopped early: a Lagrangian bound from the current duals
        dual = np.asarray(solution.row_dual, dtype=float)
        bound = min(_lagrangian(model, lp, a, dual, sign) for sign in (1.0, -1.0))
    return LpBound(bound, values, seconds, h.modelStatusToString(status))


def _lagrangian(model: LinearModel, lp, a, dual, sign: float) -> float:
    """``y.b + sum max(0, c - A'y)``: an upper bound for any y >= 0 on ``<=`` rows (y <= 0 on
    ``>=`` rows, free on ``==`` rows); the duals are projected onto those signs first."""
    import numpy as np

    y = sign * dual
    senses = np.array([{"<=": 0, ">=": 1, "==": 2}[r.sense] for r in model.rows])
    y = np.where(senses == 0, np.maximum(y, 0.0), np.where(senses == 1, np.minimum(y, 0.0), y))
    rhs = np.array([r.rhs for r in model.rows], dtype=float)
    starts = np.asarray(a.start_)
    counts = np.diff(starts)
    rows = np.repeat(np.arange(len(model.rows)), counts)
    reduced = np.asarray(lp.col_cost_, dtype=float).copy()
    np.subtract.at(reduced, np.asarray(a.index_), np.asarray(a.value_) * y[rows])
    value = float(y @ rhs + np.maximum(reduced, 0.0).sum()) + model.objective_offset
    return value + 1e-6 * max(1.0, abs(value))


def lns_solve(model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              max_rounds: int | None = None,
              should_stop: Callable[[], bool] | None = None) -> BackendResult:
    """Maximise ``model`` by LP bound + CP-SAT large-neighbourhood search (see module doc)."""
    from .backends.cpsat import CpSatBackend

    began = time.perf_counter()
    deadline = None if params.time_limit is None else began + params.time_limit
    extra = params.extra.get("lns", {})
    max_rounds = extra.get("max_rounds", max_rounds)
    if max_rounds is None and deadline is None:
        max_rounds = 200  # no time limit: a fixed amount of search
    rng = random.Random(params.seed)
    stats: dict = {"strategy": "lns"}

    def left() -> float:
        return float("inf") if deadline is None else deadline - time.perf_counter()

    # Internally objective and bounds include the model's objective_offset; the result's bound
    # does not, like every backend's.
    trivial = model.trivial_bound() + model.objective_offset
    # The LP runs in a thread beside the search (HiGHS releases the GIL while it solves); on
    # the large tier it needs most of the budget, so it gets all of it.
    lp_out: list[LpBound] = []
    lp_limit = None if deadline is None else max(0.5, params.time_limit - 1.0)
    lp_thread = threading.Thread(target=lambda: lp_out.append(lp_relaxation(model, lp_limit)),
                                 daemon=True)
    lp_thread.start()
    if deadline is None or max_rounds is not None:
        lp_thread.join()  # deterministic: the search sees the LP from its first round
    bound = trivial

    candidates = []
    if start is not None and not model.check(start):
        candidates.append(("start", start))
    else:
        candidates.append(("greedy", greedy_values(model)))
    scored = [(model.objective_value(v), k, name, v)
              for k, (name, v) in enumerate(candidates) if not model.check(v)]
    if not scored:
        lp_thread.join()
        return BackendResult("unknown", None, bound - model.objective_offset,
                             {**stats, "lns": "no feasible start"})
    best, _, source, values = max(scored, key=lambda s: (s[0], -s[1]))
    values = [1.0 if v > 0.5 else 0.0 for v in values]
    stats["start"] = source
    stats["start_objective"] = best

    def report() -> None:
        if progress is not None:
            progress(Progress(best + model.objective_offset, bound,
                              time.perf_counter() - began))

    lp_used = False

    def take_lp() -> None:  # once the LP is done: its bound, rounding and guidance
        nonlocal bound, best, lp_used, search
        lp_used = True
        lp = lp_out[0]
        stats.update(lp_bound=lp.bound, lp_seconds=round(lp.seconds, 3), lp_status=lp.status)
        if lp.bound is not None:
            bound = min(bound, lp.bound)
        if lp.values is None:
            return
        lpv = lp.values
        order = sorted(range(model.num_vars),
                       key=lambda i: (-round(lpv[i], 6), -model.objective[i], i))
        rounded = greedy_values(model, order=order)
        obj = model.objective_value(rounded)
        stats["lp_rounding_objective"] = obj
        current = search.values
        if not model.check(rounded) and obj > best + 1e-7 * max(1.0, abs(best)):
            best, current = obj, rounded
            stats["start"] = "lp_rounding"
        search = _Search(model, current, lpv, rng)
        report()

    search = _Search(model, values, None, rng)
    report()
    size = min(START_SIZE, model.num_vars)
    rounds = improved = 0
    tol = params.gap_tolerance
    while True:
        if max_rounds is not None and rounds >= max_rounds:
            break
        if left() < 0.5 or _gap(best + model.objective_offset, bound) <= tol:
            break
        if should_stop is not None and should_stop():  # SIGINT/SIGTERM: keep the incumbent
            stats["stopped"] = True
            break
        if not lp_used and not lp_thread.is_alive():
            take_lp()
            continue
        rounds += 1
        free = search.neighbourhood(size)
        sub = search.sub_model(free)
        limit = max(0.2, min(SUB_SECONDS, left() - 0.3))
        sub_params = SolveParams(
            time_limit=limit, seed=rng.randrange(1 << 30), workers=params.workers,
            gap_tolerance=1e-6,
            extra={"cpsat": {**SUB_CPSAT, "max_deterministic_time": SUB_DETERMINISTIC}})
        hint = [search.values[i] for i in free]
        raw = CpSatBackend().solve(sub, sub_params, hint)
        if raw.status == "optimal" and size < MAX_SIZE:
            size = min(MAX_SIZE, int(size * 1.25) + 1)
        elif raw.status != "optimal" and size > MIN_SIZE:
            size = max(MIN_SIZE, int(size * 0.8))
        if raw.values is None:
            continue
        gain = sub.objective_value(raw.values) - sub.objective_value(hint)
        if gain > 1e-7 * max(1.0, abs(best)):
            search.apply(free, raw.values)
            best = model.objective_value(search.values)
            improved += 1
            report()
    if not lp_used:
        lp_thread.join(timeout=max(0.0, min(1.0, left())))
        if not lp_thread.is_alive():
            take_lp()
    values = search.values
    if model.check(values):  # never expected: fall back to the checked start
        log.warning("LNS incumbent violates the model; returning its start")
        values = [1.0 if v > 0.5 else 0.0 for v in max(scored, key=lambda s: s[0])[3]]
        best = model.objective_value(values)
    stats.update(lns_rounds=rounds, lns_improvements=improved, lns_final_size=size,
                 lns_seconds=round(time.perf_counter() - began, 3))
    gap = _gap(best + model.objective_offset, bound)
    status = "optimal" if gap <= tol else "feasible"
    return BackendResult(status, values, bound - model.objective_offset, stats)


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


class _Search:
    """The incumbent, row activities and the neighbourhood / sub-model machinery."""

    def __init__(self, model: LinearModel, values: list[float], lp: list[float] | None,
                 rng: random.Random) -> None:
        self.model = model
        self.values = values
        self.rng = rng
        self.touches: list[list[tuple[int, float]]] = [[] for _ in range(model.num_vars)]
        self.activity = [0.0] * len(model.rows)
        for r, row in enumerate(model.rows):
            for v, c in zip(row.vars, row.coefs, strict=True):
                self.touches[v].append((r, c))
                if values[v] > 0.5:
                    self.activity[r] += c
        self.jobs = sorted(model.by_job)
        self.job_of = {j: k for k, j in enumerate(self.jobs)}
        self.size_of = [len(model.by_job[j]) for j in self.jobs]
        self.clusters = sorted({p.cluster for p in model.placements})
        self.groups: dict[str, list[int]] = {}  # cluster -> job indices with a placement there
        self.periods: dict[int, set[int]] = {}  # period -> job indices that can run in it
        for p in model.placements:
            k = self.job_of[p.job]
            self.groups.setdefault(p.cluster, []).append(k)
            for t in range(p.start, p.end):
                self.periods.setdefault(t, set()).add(k)
        self.groups = {c: sorted(set(ks)) for c, ks in self.groups.items()}
        self.horizon = max(self.periods) + 1 if self.periods else 1
        # disagreement of LP and incumbent per job: where the LP wants something else
        self.disagree = [0.0] * len(self.jobs)
        if lp is not None:
            for k, j in enumerate(self.jobs):
                self.disagree[k] = sum(abs(lp[i] - values[i]) for i in model.by_job[j])

    def neighbourhood(self, size: int) -> list[int]:
        """Free variable indices: all placements of a set of related jobs (about ``size``)."""
        rng = self.rng
        kind = rng.choice(("window", "cluster", "random", "lp"))
        if kind == "window":
            t0 = rng.randrange(self.horizon)
            pool: list[int] = []
            seen: set[int] = set()
            for dt in range(self.horizon):
                for t in (t0 + dt, t0 - dt):
                    for k in sorted(self.periods.get(t, ())):
                        if k not in seen:
                            seen.add(k)
                            pool.append(k)
                if len(pool) > 4 * size:
                    break
            chosen = self._fill(pool, size, shuffle_block=True)
        elif kind == "cluster":
            order = list(self.clusters)
            rng.shuffle(order)
            pool = []
            seen = set()
            for c in order:
                block = [k for k in self.groups[c] if k not in seen]
                rng.shuffle(block)
                seen.update(block)
                pool.extend(block)
            chosen = self._fill(pool, size)
        elif kind == "lp" and any(self.disagree):
            weights = [d + 1e-3 for d in self.disagree]
            pool = sorted(range(len(self.jobs)),
                          key=lambda k: -weights[k] * rng.random())
            chosen = self._fill(pool, size)
        else:
            pool = list(range(len(self.jobs)))
            rng.shuffle(pool)
            chosen = self._fill(pool, size)
        free = [i for k in sorted(chosen) for i in self.model.by_job[self.jobs[k]]]
        return free

    def _fill(self, pool: list[int], size: int, shuffle_block: bool = False) -> list[int]:
        if shuffle_block:  # keep locality but vary the members
            pool = [k for k in pool if self.rng.random() < 0.7] or pool
        chosen, total = [], 0
        for k in pool:
            if total >= size:
                break
            chosen.append(k)
            total += self.size_of[k]
        return chosen

    def sub_model(self, free: list[int]) -> LinearModel:
        """The model over ``free`` with every other variable fixed to the incumbent."""
        model, values = self.model, self.values
        local = {v: n for n, v in enumerate(free)}
        terms: dict[int, tuple[list[int], list[float]]] = {}
        for v in free:
            for r, c in self.touches[v]:
                vs, cs = terms.setdefault(r, ([], []))
                vs.append(local[v])
                cs.append(c)
        sub = LinearModel()
        sub.placements = [model.placements[v] for v in free]
        sub.objective = [model.objective[v] for v in free]
        for n, v in enumerate(free):
            sub.by_job.setdefault(model.placements[v].job, []).append(n)
        for r in sorted(terms):
            row = model.rows[r]
            vs, cs = terms[r]
            fixed = self.activity[r] - sum(c for n, c in zip(vs, cs, strict=True)
                                           if values[free[n]] > 0.5)
            rhs = row.rhs - fixed
            if row.sense == "<=" and sum(c for c in cs if c > 0) <= rhs + 1e-9:
                continue  # can never bind
            sub.rows.append(Row(row.kind, row.name, vs, cs, row.sense, _clean(rhs), row.key))
        return sub

    def apply(self, free: list[int], sub_values: list[float]) -> None:
        for n, v in enumerate(free):
            new = 1.0 if sub_values[n] > 0.5 else 0.0
            if new != self.values[v]:
                sign = new - self.values[v]
                for r, c in self.touches[v]:
                    self.activity[r] += sign * c
                self.values[v] = new


def _clean(x: float) -> float:
    """Round off float noise from the rhs arithmetic (keeps CP-SAT's scaling exact)."""
    r = round(x, 6)
    return r if abs(r - x) <= 1e-7 * max(1.0, abs(x)) else x


class LnsBackend:
    """LP bound + CP-SAT large-neighbourhood search (for models CP-SAT cannot improve whole)."""

    name = "lns"

    def __init__(self, should_stop: Callable[[], bool] | None = None) -> None:
        self._stop = threading.Event()
        self._should_stop = should_stop

    def stop(self) -> None:
        """Stop after the current neighbourhood (at most a few seconds)."""
        self._stop.set()

    def _stopping(self) -> bool:
        return self._stop.is_set() or bool(self._should_stop and self._should_stop())

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
            import ortools.sat.python.cp_model  # noqa: F401
        except ImportError:
            return False
        return True

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None) -> BackendResult:
        return lns_solve(model, params, start, progress, should_stop=self._stopping)


def use_lns(backend_name: str, model: LinearModel, strategy: str) -> bool:
    """Whether ``solve`` should run LNS: ``"lns"`` always, ``"auto"`` for large CP-SAT models."""
    if strategy not in ("auto", "exact", "lns"):
        raise ValueError(f"unknown strategy {strategy!r}; choose from auto, exact, lns")
    if strategy == "lns":
        return True
    return strategy == "auto" and backend_name == "cpsat" and model.num_vars > LNS_THRESHOLD
