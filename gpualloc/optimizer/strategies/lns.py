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
4. beside (``strategies.beside``, not in the deterministic mode): with two workers or more,
   once the LP is solved, HiGHS branch and bound on the whole model (narrow windows, or up to
   ``MIP_ANY_VARS`` variables), fed every LNS improvement as a user solution; its bound and
   its plans come back to the LNS. From ``INTERVAL_MIN_WORKERS`` workers also the interval
   model, whose plans become the incumbent when better.

The reported bound is the tightest of the Lagrangian, LP, HiGHS and trivial bounds; the plan
never gets worse than its start. Deterministic for a seed with one worker when stopped by
``max_rounds`` (sub-solves are limited by CP-SAT's deterministic time, not only wall time).
"""

from __future__ import annotations

import logging
import random
import threading
import time

import numpy as np

from ..backends.base import BackendResult, Progress, ProgressCallback, SolveParams
from ..backends.greedy import greedy_values
from ..model.formulation import LinearModel, Row
from ..model.matrix import concat_ranges
from ..stop import Stop
from .beside import INTERVAL_MIN_WORKERS, NARROW_PER_JOB, IntervalHelper, MipHelper
from .lagrange import lagrangian_bound, priced_order
from .lp import LpBound, LpRun

log = logging.getLogger(__name__)

LNS_THRESHOLD = 50_000  # variables from which ``strategy="auto"`` picks LNS for CP-SAT
SUB_SECONDS = 3.0  # wall-time cap of one sub-solve
SUB_DETERMINISTIC = 1.5  # CP-SAT deterministic-time cap of one sub-solve
SUB_LINEARIZATION = 1  # sub-models: find better plans fast, no bound needed
START_SIZE = 1200  # free variables of the first neighbourhood
MIN_SIZE, MAX_SIZE = 300, 20_000
LAGRANGE_SECONDS = 60.0  # wall-time cap of the Lagrangian bound (and 10% of the budget)
LATE_SHARE = 0.1  # an LP that ends in the last 10% of the budget gives its bound only
LAGRANGE_ITERATIONS = 300  # its iteration cap in the deterministic mode (no time limit)
SUPPORT_EPS = 1e-6  # LP values above this are the LP's support
SUPPORT_SHARE = 0.75  # share of neighbourhoods restricted to the LP's support once it is known
# the interval model beside the search up to this size (large-wide, 750k placements: its build
# alone took 250 s and holds the GIL)
INTERVAL_MAX_VARS = 100_000
# HiGHS branch and bound beside the search (2+ workers) up to this size, on narrow windows or
# any model up to MIP_ANY_VARS (it proves the optima of the bundled what-ifs)
MIP_MAX_VARS, MIP_ANY_VARS = 50_000, 10_000


def lns_solve(model: LinearModel, params: SolveParams, stop: Stop | None = None,
              start: list[float] | None = None,
              progress: ProgressCallback | None = None,
              interval_worker: bool = True, mip_worker: bool = True) -> BackendResult:
    """Maximise ``model`` by LP bound + CP-SAT large-neighbourhood search (see module doc).

    Every phase (greedy, Lagrangian, LP thread, roundings, sub-solves) runs under ``stop``
    (default: one for ``params.time_limit``); ``params.lns_rounds`` fixes the number of rounds.
    """
    from ..backends.cpsat import CpSatBackend

    stop = stop if stop is not None else params.stop()
    began = time.perf_counter()
    timed = stop.remaining() is not None
    max_rounds = params.lns_rounds
    if max_rounds is None and not timed:
        max_rounds = 200  # no time limit: a fixed amount of search
    rng = random.Random(params.seed)
    stats: dict = {"strategy": "lns"}
    skipped: dict[str, str] = {}

    def left() -> float:
        remaining = stop.remaining()
        return float("inf") if remaining is None else remaining

    # Internally objective and bounds include the model's objective_offset; the result's bound
    # does not, like every backend's.
    trivial = model.trivial_bound() + model.objective_offset
    bound = trivial
    deterministic = not timed or max_rounds is not None
    candidates = []
    if start is not None and not model.check(start):
        candidates.append(("start", start))
    else:
        candidates.append(("greedy", greedy_values(model, stop=stop)))
    first = candidates[0][1]

    # The LP (column generation seeded with the start) runs in a thread beside the search
    # (HiGHS releases the GIL while it solves); it may take most of the budget.
    lp_out: list[LpBound] = []
    lp_stop = stop.child(seconds=None if not timed else max(0.0, left() - 1.0))
    lp_run = LpRun()
    seed_columns = [1.0 if v > 0.5 else 0.0 for v in first]
    lp_thread = threading.Thread(
        target=lambda: lp_out.append(lp_run.solve(model, start=seed_columns, stop=lp_stop)),
        name="gpualloc-lp", daemon=True)
    lp_thread.start()
    if deterministic:
        lp_thread.join()  # deterministic: the search sees the LP from its first round

    # Meanwhile a Lagrangian bound (seconds, within a fraction of a percent of the LP's on the
    # large tier) and the greedy plan in the order of its reduced costs.
    if stop.stopped:
        skipped["lagrangian"] = f"{stop.why()} before it began"
    else:
        lag_stop = stop if deterministic else stop.child(
            seconds=min(LAGRANGE_SECONDS, 0.1 * left()))
        lag = lagrangian_bound(
            model, None, stop=lag_stop,
            max_iterations=LAGRANGE_ITERATIONS if deterministic else 100_000)
        stats.update(lagrangian_bound=lag.bound, lagrangian_iterations=lag.iterations,
                     lagrangian_seconds=round(lag.seconds, 3))
        if lag.bound is not None:
            bound = min(bound, lag.bound + model.objective_offset)
        if lag.reduced is not None and stop.stopped:
            skipped["priced greedy"] = f"{stop.why()} before it began"
        elif lag.reduced is not None:
            candidates.append(("priced_greedy", greedy_values(
                model, order=priced_order(model, lag.reduced), stop=stop)))
    scored = [(model.objective_value(v), k, name, v)
              for k, (name, v) in enumerate(candidates) if not model.check(v)]
    for objective, _, name, _ in scored:
        stats[f"{name}_objective"] = objective
    if not scored:
        lp_stop.request()
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
        nonlocal bound, best, lp_used, search, mip
        lp_used = True
        lp = lp_out[0]
        stats.update(lp_bound=lp.bound, lp_seconds=round(lp.seconds, 3), lp_status=lp.status,
                     lp_iterations=lp.iterations, lp_columns=len(lp.columns or ()))
        if lp.bound is not None:
            bound = min(bound, lp.bound + model.objective_offset)
        late = timed and left() < LATE_SHARE * (params.time_limit or 0.0)
        if lp.values is None or final or late:  # no time left to round and re-index
            if lp.values is not None and not final:
                skipped["lp roundings"] = "the LP ended in the last tenth of the budget"
            return
        lpv = lp.values
        current = search.values
        rounding = stop.child(seconds=None if not timed else max(0.0, left() - 0.5))
        for name, order in lp_orders(model, lpv):
            if rounding.stopped:
                skipped[name] = f"{rounding.why()} before it began"
                continue
            rounded = greedy_values(model, order=order, stop=rounding)
            obj = model.objective_value(rounded)
            stats[f"{name}_objective"] = obj
            if not model.check(rounded) and obj > best + 1e-7 * max(1.0, abs(best)):
                best, current = obj, rounded
                stats["start"] = name
        search = _Search(model, current, lpv, rng, lp.columns)
        report()
        n = model.num_vars
        narrow = n <= NARROW_PER_JOB * max(1, len(model.by_job))
        if mip_worker and params.workers >= 2 and (narrow or n <= MIP_ANY_VARS) and \
                n <= MIP_MAX_VARS:
            mip = MipHelper(model, search.values, params.seed, stop)

    search = _Search(model, values, None, rng)
    report()
    # The interval model beside the search (a thread; CP-SAT releases the GIL), hinted with
    # the start: each plan it finds that beats the incumbent becomes the incumbent.
    helper = None if deterministic or not interval_worker or \
        params.workers < INTERVAL_MIN_WORKERS or model.num_vars > INTERVAL_MAX_VARS \
        else IntervalHelper(model, values, params.seed, stop)
    mip: MipHelper | None = None  # HiGHS branch and bound once the LP is done (see take_lp)
    size = min(START_SIZE, model.num_vars)
    rounds = improved = 0
    tol = params.gap_tolerance
    while True:
        if max_rounds is not None and rounds >= max_rounds:
            break
        if stop.interrupted:  # SIGINT/SIGTERM: keep the incumbent
            stats["stopped"] = True
            break
        if left() < 0.5 or _gap(best + model.objective_offset, bound) <= tol:
            break
        if not lp_used and not lp_thread.is_alive():
            take_lp()
            continue
        if not lp_used and lp_run.bound is not None:  # the LP's bound so far is proven too
            bound = min(bound, lp_run.bound + model.objective_offset)
        for name, side in (("interval", helper), ("mip", mip)):
            taken = side.take(best) if side is not None else None
            if taken is not None:
                search.adopt(taken)
                best = model.objective_value(search.values)
                stats[f"{name}_adopted"] = stats.get(f"{name}_adopted", 0) + 1
                report()
        if mip is not None:
            bound = min(bound, mip.bound(bound - model.objective_offset)
                        + model.objective_offset)
            if _gap(best + model.objective_offset, bound) <= tol:
                break
        rounds += 1
        free = search.neighbourhood(size)
        sub = search.sub_model(free)
        limit = max(0.2, min(SUB_SECONDS, left() - 0.3))
        sub_params = SolveParams(
            time_limit=limit, seed=rng.randrange(1 << 30), workers=params.workers,
            gap_tolerance=1e-6, linearization_level=SUB_LINEARIZATION,
            max_deterministic_time=SUB_DETERMINISTIC)
        hint = [search.values[i] for i in free]
        raw = CpSatBackend().solve(sub, sub_params, hint, stop=stop.child(seconds=limit))
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
            if mip is not None:
                mip.offer(search.values)
            report()
    for side in (helper, mip):
        if side is None:
            continue
        stats.update(side.finish())
        taken = side.take(best)  # its last plan, if better
        if taken is not None:
            search.adopt(taken)
            best = model.objective_value(search.values)
        if side is mip:
            bound = min(bound, mip.bound(bound - model.objective_offset)
                        + model.objective_offset)
    if not lp_used:
        lp_thread.join(timeout=max(0.0, min(1.0, left())))
        if not lp_thread.is_alive():
            take_lp(final=True)
        else:  # HiGHS stops at its next check; wait for it so that no Highs outlives the
            # solve (two Highs running at once in one process can break the second one)
            lp_stop.request()
            lp_thread.join(timeout=2.0)
            if lp_thread.is_alive():
                skipped["lp"] = "still running when the search ended (left behind)"
    values = search.values
    if model.check(values):  # never expected: fall back to the checked start
        log.warning("LNS incumbent violates the model; returning its start")
        values = [1.0 if v > 0.5 else 0.0 for v in max(scored, key=lambda s: s[0])[3]]
        best = model.objective_value(values)
    stats.update(lns_rounds=rounds, lns_improvements=improved, lns_final_size=size,
                 lns_seconds=round(time.perf_counter() - began, 3))
    if skipped:
        stats["lns_skipped"] = [f"{k}: {v}" for k, v in skipped.items()]
    gap = _gap(best + model.objective_offset, bound)
    status = "optimal" if gap <= tol else "feasible"
    return BackendResult(status, values, bound - model.objective_offset, stats)


def lp_orders(model: LinearModel, lp: list[float]) -> list[tuple[str, list[int]]]:
    """Placement orders for LP-guided greedy roundings: by LP value, and job by job in order
    of the job's LP share (placements of a job by LP value), which keeps whole LP jobs first
    when the LP (an interior point) spreads them over several starts."""
    n = model.num_vars
    lpv = np.asarray(lp, dtype=np.float64)
    cost = np.asarray(model.objective, dtype=np.float64)
    job_k = np.zeros(n, np.int64)
    for k, idx in enumerate(model.by_job.values()):
        job_k[idx] = k
    share = np.bincount(job_k, weights=lpv, minlength=len(model.by_job))
    index = np.arange(n)
    value = -np.round(lpv, 6)
    by_value = np.lexsort((index, -cost, value))
    by_job = np.lexsort((index, -cost, value, -np.round(share[job_k], 3)))
    return [("lp_rounding", by_value.tolist()), ("lp_job_rounding", by_job.tolist())]


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


class _Search:
    """The incumbent, row activities and the neighbourhood / sub-model machinery."""

    def __init__(self, model: LinearModel, values: list[float], lp: list[float] | None,
                 rng: random.Random, columns: list[int] | None = None) -> None:
        self.model = model
        self.values = values
        self.rng = rng
        self.mat = model.matrix()  # the shared variable-to-row map (col_ptr, col_rows, ...)
        self.activity = self.mat.activity(values)
        self.jobs = sorted(model.by_job)
        self.job_of = {j: k for k, j in enumerate(self.jobs)}
        self.size_of = [len(model.by_job[j]) for j in self.jobs]
        n = model.num_vars
        job_k = np.zeros(n, np.int64)
        for k, j in enumerate(self.jobs):
            job_k[model.by_job[j]] = k
        start = np.fromiter((p.start for p in model.placements), np.int64, n)
        end = start + np.fromiter((p.periods for p in model.placements), np.int64, n)
        cluster_names = [p.cluster for p in model.placements]
        self.clusters = sorted(set(cluster_names))
        number = {c: k for k, c in enumerate(self.clusters)}
        cluster_k = np.fromiter((number[c] for c in cluster_names), np.int64, n)
        # cluster -> job indices with a placement there; period -> job indices that can run
        self.groups = {c: np.unique(job_k[cluster_k == k]).tolist()
                       for c, k in number.items()}
        self.horizon = int(end.max()) if n else 1
        self.periods = {t: ks for t in range(self.horizon)
                        if (ks := np.unique(job_k[(start <= t) & (end > t)]).tolist())}
        # disagreement of LP and incumbent per job: where the LP wants something else
        self.disagree = [0.0] * len(self.jobs)
        # the LP's columns (or support): placements a RINS-like neighbourhood may use, with
        # the incumbent's
        self.support: list[bool] | None = None
        self.support_size = self.size_of
        if lp is not None:
            lpv, now = np.asarray(lp), np.asarray(values)
            self.disagree = np.bincount(job_k, weights=np.abs(lpv - now),
                                        minlength=len(self.jobs)).tolist()
            support = lpv > SUPPORT_EPS
            if columns:
                support[np.asarray(columns, dtype=np.int64)] = True
            self.support = support.tolist()
            self.support_size = (1 + np.bincount(job_k, weights=support,
                                                 minlength=len(self.jobs))).astype(int).tolist()

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
        model, values, mat = self.model, self.values, self.mat
        cols = np.asarray(free, dtype=np.int64)
        take = concat_ranges(mat.col_ptr, cols)
        local = np.repeat(np.arange(len(cols)), mat.col_ptr[cols + 1] - mat.col_ptr[cols])
        rows, coefs = mat.col_rows[take], mat.col_vals[take]
        on = np.asarray(values)[cols][local] > 0.5
        by_row = np.argsort(rows, kind="stable")
        rows, local, coefs, on = rows[by_row], local[by_row], coefs[by_row], on[by_row]
        cuts = np.flatnonzero(np.diff(rows)) + 1
        firsts = np.concatenate(([0], cuts)) if len(rows) else cuts
        fixed_part = np.add.reduceat(np.where(on, coefs, 0.0), firsts) if len(rows) else []
        positive = np.add.reduceat(np.maximum(coefs, 0.0), firsts) if len(rows) else []
        sub = LinearModel()
        sub.placements = [model.placements[v] for v in free]
        sub.objective = [model.objective[v] for v in free]
        for k, v in enumerate(free):
            sub.by_job.setdefault(model.placements[v].job, []).append(k)
        bounds = [*firsts.tolist(), len(rows)] if len(rows) else [0]
        local_l, coefs_l = local.tolist(), coefs.tolist()
        for g, r in enumerate(rows[firsts].tolist() if len(rows) else []):
            row = model.rows[r]
            rhs = row.rhs - (self.activity[r] - fixed_part[g])
            if row.sense == "<=" and positive[g] <= rhs + 1e-9:
                continue  # can never bind
            a, b = bounds[g], bounds[g + 1]
            sub.rows.append(Row(row.kind, row.name, local_l[a:b], coefs_l[a:b], row.sense,
                                _clean(float(rhs)), row.key))
        return sub

    def adopt(self, values: list[float]) -> None:
        """Make ``values`` (a checked plan found elsewhere) the incumbent."""
        self.values = [1.0 if v > 0.5 else 0.0 for v in values]
        self.activity = self.mat.activity(self.values)

    def apply(self, free: list[int], sub_values: list[float]) -> None:
        mat = self.mat
        for n, v in enumerate(free):
            new = 1.0 if sub_values[n] > 0.5 else 0.0
            if new != self.values[v]:
                rows, coefs = mat.column(v)
                np.add.at(self.activity, rows, (new - self.values[v]) * coefs)
                self.values[v] = new


def _clean(x: float) -> float:
    """Round off float noise from the rhs arithmetic (keeps CP-SAT's scaling exact)."""
    r = round(x, 6)
    return r if abs(r - x) <= 1e-7 * max(1.0, abs(x)) else x
