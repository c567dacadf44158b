"""Large-model strategy: an LP bound plus large-neighbourhood search (LNS) with CP-SAT.

On models with a hundred thousand binaries CP-SAT spends its whole budget on the root and
never improves on the greedy plan; its bound is weaker than the LP relaxation's. This
strategy splits the work:

1. bound: at once, a Lagrangian bound (``optimizer.lagrange``: subgradient, a few seconds
   and within a fraction of a percent of the LP on the large tier), whose reduced costs also
   order a priced greedy plan that competes for the start; beside the search, in a thread,
   the LP relaxation by column generation with HiGHS (``optimizer.lp``), whose bound holds
   also when it is stopped early;
2. start: the warm start (or the greedy plan); once the LP is solved, LP-guided greedy
   roundings (jobs in order of their LP share, placements in order of LP value) replace it
   when better;
3. improve: until the deadline, free the placements of a neighbourhood of jobs (a time
   window, a few clusters, a few start-ups, or jobs where the LP and the incumbent disagree),
   fix every other job to its incumbent placement, solve the small sub-model with CP-SAT
   (hinted with the incumbent) and keep it when better. Once the LP is known, most
   neighbourhoods free only the placements in the LP's support (RINS-like), so a sub-model of
   the same size covers several times more jobs. The neighbourhood size adapts: it grows when
   sub-models are solved to optimality and shrinks when they time out.

The reported bound is the tightest of the Lagrangian, LP and trivial bounds; the plan never gets
worse than its start. Deterministic for a seed with one worker when stopped by
``max_rounds`` (sub-solves are limited by CP-SAT's deterministic time, not only wall time).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from ..backends.base import BackendResult, Progress, ProgressCallback, SolveParams
from ..backends.greedy import greedy_values
from ..model.formulation import LinearModel, Row
from .lagrange import lagrangian_bound, priced_order
from .lp import LpBound, LpRun

log = logging.getLogger(__name__)

LNS_THRESHOLD = 50_000  # variables from which ``strategy="auto"`` picks LNS for CP-SAT
SUB_SECONDS = 3.0  # wall-time cap of one sub-solve
SUB_DETERMINISTIC = 1.5  # CP-SAT deterministic-time cap of one sub-solve
SUB_CPSAT = {"linearization_level": 1}  # sub-models: find better plans fast, no bound needed
START_SIZE = 1200  # free variables of the first neighbourhood
MIN_SIZE, MAX_SIZE = 300, 20_000
LAGRANGE_SECONDS = 60.0  # wall-time cap of the Lagrangian bound (and 10% of the budget)
LATE_SHARE = 0.1  # an LP that ends in the last 10% of the budget gives its bound only
LAGRANGE_ITERATIONS = 300  # its iteration cap in the deterministic mode (no time limit)
SUPPORT_EPS = 1e-6  # LP values above this are the LP's support
SUPPORT_SHARE = 0.75  # share of neighbourhoods restricted to the LP's support once it is known


def lns_solve(model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              max_rounds: int | None = None,
              should_stop: Callable[[], bool] | None = None) -> BackendResult:
    """Maximise ``model`` by LP bound + CP-SAT large-neighbourhood search (see module doc)."""
    from ..backends.cpsat import CpSatBackend

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
    bound = trivial
    deterministic = deadline is None or max_rounds is not None
    candidates = []
    if start is not None and not model.check(start):
        candidates.append(("start", start))
    else:
        candidates.append(("greedy", greedy_values(model)))
    first = candidates[0][1]

    # The LP (column generation seeded with the start) runs in a thread beside the search
    # (HiGHS releases the GIL while it solves); it may take most of the budget.
    lp_out: list[LpBound] = []
    lp_limit = None if deadline is None else max(0.5, left() - 1.0)
    lp_run = LpRun()
    seed_columns = [1.0 if v > 0.5 else 0.0 for v in first]
    lp_thread = threading.Thread(
        target=lambda: lp_out.append(lp_run.solve(model, lp_limit, seed_columns)), daemon=True)
    lp_thread.start()
    if deterministic:
        lp_thread.join()  # deterministic: the search sees the LP from its first round

    # Meanwhile a Lagrangian bound (seconds, within a fraction of a percent of the LP's on the
    # large tier) and the greedy plan in the order of its reduced costs.
    lag = lagrangian_bound(
        model, None if deterministic else min(LAGRANGE_SECONDS, 0.1 * left()),
        max_iterations=LAGRANGE_ITERATIONS if deterministic else 100_000,
        should_stop=should_stop)
    stats.update(lagrangian_bound=lag.bound, lagrangian_iterations=lag.iterations,
                 lagrangian_seconds=round(lag.seconds, 3))
    if lag.bound is not None:
        bound = min(bound, lag.bound + model.objective_offset)
    if lag.reduced is not None:
        candidates.append(("priced_greedy",
                           greedy_values(model, order=priced_order(model, lag.reduced))))
    scored = [(model.objective_value(v), k, name, v)
              for k, (name, v) in enumerate(candidates) if not model.check(v)]
    for objective, _, name, _ in scored:
        stats[f"{name}_objective"] = objective
    if not scored:
        lp_run.cancel()
        lp_thread.join(timeout=10.0)
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

    def take_lp(final: bool = False) -> None:  # the LP is done: its bound, rounding, guidance
        nonlocal bound, best, lp_used, search
        lp_used = True
        lp = lp_out[0]
        stats.update(lp_bound=lp.bound, lp_seconds=round(lp.seconds, 3), lp_status=lp.status,
                     lp_iterations=lp.iterations, lp_columns=len(lp.columns or ()))
        if lp.bound is not None:
            bound = min(bound, lp.bound + model.objective_offset)
        late = deadline is not None and left() < LATE_SHARE * (params.time_limit or 0.0)
        if lp.values is None or final or late:  # no time left to round and re-index
            return
        lpv = lp.values
        current = search.values
        for name, order in lp_orders(model, lpv):
            rounded = greedy_values(model, None if deadline is None else deadline - 0.5,
                                    order=order)
            obj = model.objective_value(rounded)
            stats[f"{name}_objective"] = obj
            if not model.check(rounded) and obj > best + 1e-7 * max(1.0, abs(best)):
                best, current = obj, rounded
                stats["start"] = name
        search = _Search(model, current, lpv, rng, lp.columns)
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
        if not lp_used and lp_run.bound is not None:  # the LP's bound so far is proven too
            bound = min(bound, lp_run.bound + model.objective_offset)
        rounds += 1
        free = search.neighbourhood(size)
        sub = search.sub_model(free)
        limit = max(0.2, min(SUB_SECONDS, left() - 0.3))
        sub_params = SolveParams(
            time_limit=limit, seed=rng.randrange(1 << 30),
            workers=params.workers,
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
            take_lp(final=True)
        else:  # HiGHS stops at its next check; wait for it so that no Highs outlives the
            # solve (two Highs running at once in one process can break the second one)
            lp_run.cancel()
            lp_thread.join(timeout=10.0)
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


def lp_orders(model: LinearModel, lp: list[float]) -> list[tuple[str, list[int]]]:
    """Placement orders for LP-guided greedy roundings: by LP value, and job by job in order
    of the job's LP share (placements of a job by LP value), which keeps whole LP jobs first
    when the LP (an interior point) spreads them over several starts."""
    share = {job: sum(lp[i] for i in idx) for job, idx in model.by_job.items()}
    n = model.num_vars
    by_value = sorted(range(n), key=lambda i: (-round(lp[i], 6), -model.objective[i], i))
    by_job = sorted(range(n), key=lambda i: (-round(share[model.placements[i].job], 3),
                                             -round(lp[i], 6), -model.objective[i], i))
    return [("lp_rounding", by_value), ("lp_job_rounding", by_job)]


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


class _Search:
    """The incumbent, row activities and the neighbourhood / sub-model machinery."""

    def __init__(self, model: LinearModel, values: list[float], lp: list[float] | None,
                 rng: random.Random, columns: list[int] | None = None) -> None:
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
        # the LP's columns (or support): placements a RINS-like neighbourhood may use, with
        # the incumbent's
        self.support: list[bool] | None = None
        self.support_size = self.size_of
        if lp is not None:
            for k, j in enumerate(self.jobs):
                self.disagree[k] = sum(abs(lp[i] - values[i]) for i in model.by_job[j])
            self.support = [x > SUPPORT_EPS for x in lp]
            for i in columns or ():
                self.support[i] = True
            self.support_size = [1 + sum(self.support[i] for i in model.by_job[j])
                                 for j in self.jobs]

    def neighbourhood(self, size: int) -> list[int]:
        """Free variable indices: all placements of a set of related jobs (about ``size``)."""
        rng = self.rng
        restrict = self.support is not None and rng.random() < SUPPORT_SHARE
        sizes = self.support_size if restrict else self.size_of
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
            chosen = self._fill(pool, size, sizes, shuffle_block=True)
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
            chosen = self._fill(pool, size, sizes)
        elif kind == "lp" and any(self.disagree):
            weights = [d + 1e-3 for d in self.disagree]
            pool = sorted(range(len(self.jobs)),
                          key=lambda k: -weights[k] * rng.random())
            chosen = self._fill(pool, size, sizes)
        else:
            pool = list(range(len(self.jobs)))
            rng.shuffle(pool)
            chosen = self._fill(pool, size, sizes)
        free = [i for k in sorted(chosen) for i in self.model.by_job[self.jobs[k]]]
        if restrict:
            assert self.support is not None
            free = [i for i in free if self.support[i] or self.values[i] > 0.5]
        return free

    def _fill(self, pool: list[int], size: int, sizes: list[int],
              shuffle_block: bool = False) -> list[int]:
        if shuffle_block:  # keep locality but vary the members
            pool = [k for k in pool if self.rng.random() < 0.7] or pool
        chosen, total = [], 0
        for k in pool:
            if total >= size:
                break
            chosen.append(k)
            total += sizes[k]
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
