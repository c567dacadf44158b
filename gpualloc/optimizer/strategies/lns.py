"""Large-model strategy: an LP bound plus large-neighbourhood search (LNS) with CP-SAT.

On models with a hundred thousand binaries CP-SAT spends its whole budget on the root and
never improves on the greedy plan; its bound is weaker than the LP relaxation's. This
strategy splits the work:

1. bound: at once, a Lagrangian bound (``optimizer.lagrange``: subgradient, a few seconds
   and within a fraction of a percent of the LP on the large tier), whose reduced costs also
   order a priced greedy plan that competes for the start; then, beside the search in a
   thread, the LP relaxation by column generation with HiGHS (``optimizer.lp``), seeded with
   each job's best priced placements, whose bound holds also when it is stopped early;
2. start: the warm start (or the greedy plan); once the LP is solved, LP-guided greedy
   roundings (jobs in order of their LP share, placements in order of LP value) replace it
   when better;
3. improve: until the deadline, free the placements of a neighbourhood of jobs (a time
   window, a few clusters, a few start-ups, or jobs where the LP and the incumbent disagree),
   fix every other job to its incumbent placement, solve the small sub-model with CP-SAT
   (hinted with the incumbent) and keep it when better. Once the LP is known, most
   neighbourhoods free only the placements in the LP's support (RINS-like), so a sub-model of
   the same size covers several times more jobs; before the LP, the placements the
   Lagrangian prices best play that part (``PRICED_SUPPORT`` per job: on wide windows, 250
   placements per job, a sub-model then covers some 30 times more jobs). The neighbourhood
   size adapts: it grows when
   sub-models are solved to optimality and shrinks when they time out.
4. beside (``strategies.beside``, not in the deterministic mode): once the LP is solved,
   HiGHS on the LP's support (``SupportMip``: the LP's positive placements and the
   incumbent's free, the rest fixed to 0), whose every improving plan is offered to the
   search (large-wide, 120 s: 24,665 -> 26,123 against the LP's 26,696). With two workers or
   more on narrow windows (or up to ``MIP_ANY_VARS`` variables), HiGHS branch and bound on
   the whole model follows once that MIP has ended or had ``SUPPORT_WHOLE_SHARE`` of the
   time left, fed every LNS improvement as a user solution; its bound and its plans come
   back to the LNS (medium narrow 0.68% -> 0.53% in 60 s, the tight Philly replay proven in
   39.5 s instead of 58.6 s). While HiGHS runs beside, the CP-SAT sub-solves run on one
   worker fewer. From ``INTERVAL_MIN_WORKERS`` workers also the interval model, whose plans
   become the incumbent when better.

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
from ..model.formulation import LinearModel
from ..model.matrix import top_per_job
from ..stop import Stop
from .beside import (
    INTERVAL_MIN_WORKERS,
    JOIN_INTERRUPTED,
    JOIN_SECONDS,
    NARROW_PER_JOB,
    IntervalHelper,
    MipHelper,
    SupportMip,
)
from .integral import integral_bound
from .lagrange import LagrangeResult, lagrangian_bound, priced_order
from .lp import LpBound, LpRun
from .neighbourhood import SUPPORT_EPS, Search

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
# its set-up against the matrix's build time (it shares the matrix's arrays): 0.21 measured
# at 1.05M placements (0.98 s against 4.69 s), with room for a loaded machine
LAGRANGE_SETUP_SHARE = 0.3
# the interval model beside the search up to this size (large-wide, 750k placements: its build
# alone took 250 s and holds the GIL)
INTERVAL_MAX_VARS = 100_000
# HiGHS branch and bound beside the search (2+ workers) up to this size, on narrow windows or
# any model up to MIP_ANY_VARS (it proves the optima of the bundled what-ifs)
MIP_MAX_VARS, MIP_ANY_VARS = 50_000, 10_000
# before the LP is known, a RINS-like neighbourhood frees each job's PRICED_SUPPORT placements
# of best Lagrangian reduced cost (and its incumbent's); the LP starts from each job's best
# LP_SEED_PER_JOB (large-wide: LP optimum 35 s after a 12 s Lagrangian, 64 s without)
PRICED_SUPPORT, LP_SEED_PER_JOB = 8, 2
SUPPORT_MIN_SECONDS = 5.0  # HiGHS on the LP's support only with this much time left
# when HiGHS on the whole model is to follow the support's MIP, the latter gets at most this
# share of the time left at the LP's end (a support MIP that never ended kept the whole
# model's bound out: held-out 1,200 narrow jobs, 60 s, bound 10,154 -> 10,111, gap 2.4% -> 1.7%)
SUPPORT_WHOLE_SHARE = 0.5
# the integral Lagrangian bound (``strategies.integral``) at the Lagrangian's prices and at the
# LP's duals: at most this many seconds, and this share of the time left, each
INTEGRAL_SECONDS, INTEGRAL_SHARE = 10.0, 0.05


def lns_solve(model: LinearModel, params: SolveParams, stop: Stop | None = None,
              start: list[float] | None = None,
              progress: ProgressCallback | None = None,
              interval_worker: bool = True, mip_worker: bool = True,
              lagrangian: LagrangeResult | None = None) -> BackendResult:
    """Maximise ``model`` by LP bound + CP-SAT large-neighbourhood search (see module doc).

    Every phase (greedy, Lagrangian, LP thread, roundings, sub-solves) runs under ``stop``
    (default: one for ``params.time_limit``); ``params.lns_rounds`` fixes the number of rounds.
    ``lagrangian``: a Lagrangian result of ``model`` already at hand (``lagrangian_stage``).
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

    # First a Lagrangian bound (seconds, within a fraction of a percent of the LP's on the
    # large tier) and the greedy plan in the order of its reduced costs.
    lag_seconds = None if deterministic else min(LAGRANGE_SECONDS, 0.1 * left())
    # the caller's (the partition's, of this model), else computed here
    lag, why = (lagrangian, None) if lagrangian is not None else \
        lagrangian_stage(model, stop, lag_seconds, deterministic)
    if why is not None:
        skipped["lagrangian"] = why
    if lag is not None:
        stats.update(lagrangian_bound=lag.bound, lagrangian_iterations=lag.iterations,
                     lagrangian_seconds=round(lag.seconds, 3))
        if lag.bound is not None:
            bound = min(bound, lag.bound + model.objective_offset)
            tighter = integral_stage(model, lag.prices, stop, stats, "lagrangian")
            if tighter is not None:
                bound = min(bound, tighter + model.objective_offset)
        if lag.reduced is not None and stop.stopped:
            skipped["priced greedy"] = f"{stop.why()} before it began"
        elif lag.reduced is not None:
            candidates.append(("priced_greedy", greedy_values(
                model, order=priced_order(model, lag.reduced), stop=stop)))
    reduced = None if lag is None or lag.reduced is None else np.asarray(lag.reduced)
    priced = None if reduced is None else \
        top_per_job(np.arange(model.num_vars), reduced, model.matrix().job_of, PRICED_SUPPORT)

    # Then the LP (column generation seeded with the start and each job's best priced
    # placements) in a thread beside the search (HiGHS releases the GIL while it solves).
    lp_out: list[LpBound] = []
    lp_stop = stop.child(seconds=None if not timed else max(0.0, left() - 1.0))
    if timed and left() < 2.0:
        lp_stop.request()  # no time for the LP to give anything
        skipped["lp"] = "less than 2 s left"
    lp_run = LpRun()
    seed_columns = np.asarray([1.0 if v > 0.5 else 0.0 for v in first])
    if priced is not None:  # each job's best LP_SEED_PER_JOB of its priced placements
        seed_columns[top_per_job(priced, reduced, model.matrix().job_of, LP_SEED_PER_JOB)] = 1.0
    lp_thread = threading.Thread(
        target=lambda: lp_out.append(lp_run.solve(model, start=seed_columns.tolist(),
                                                  stop=lp_stop)),
        name="gpualloc-lp", daemon=True)
    lp_thread.start()
    if deterministic:
        lp_thread.join()  # deterministic: the search sees the LP from its first round
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
    if stop.stopped or (max_rounds is None and left() < 0.5):  # no time to set up a search
        skipped["search"] = f"{stop.why() or 'time limit'} before the search"
        lp_stop.request()
        lp_thread.join(timeout=1.0)
        if lp_out and lp_out[0].bound is not None:
            bound = min(bound, lp_out[0].bound + model.objective_offset)
        stats["lns_skipped"] = [f"{k}: {v}" for k, v in skipped.items()]
        return BackendResult("feasible", values, bound - model.objective_offset, stats)

    def report() -> None:
        if progress is not None:
            progress(Progress(best + model.objective_offset, bound,
                              time.perf_counter() - began))

    lp_used = False

    def take_lp(final: bool = False) -> None:  # the LP is done: its bound, rounding, guidance
        nonlocal bound, best, lp_used, search, mip, support, whole_later
        lp_used = True
        lp = lp_out[0]
        stats.update(lp_bound=lp.bound, lp_seconds=round(lp.seconds, 3), lp_status=lp.status,
                     lp_iterations=lp.iterations, lp_columns=len(lp.columns or ()))
        if lp.bound is not None:
            bound = min(bound, lp.bound + model.objective_offset)
            tighter = integral_stage(model, lp.prices, stop, stats, "lp")
            if tighter is not None:
                bound = min(bound, tighter + model.objective_offset)
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
        search = Search(model, current, lpv, rng, lp.columns)
        report()
        n = model.num_vars
        narrow = n <= NARROW_PER_JOB * max(1, len(model.by_job))
        whole = mip_worker and params.workers >= 2 and (narrow or n <= MIP_ANY_VARS) and \
            n <= MIP_MAX_VARS
        if mip_worker and not deterministic and left() >= SUPPORT_MIN_SECONDS:
            free = np.flatnonzero((np.asarray(lpv) > SUPPORT_EPS)
                                  | (np.asarray(search.values) > 0.5))
            # when HiGHS on the whole model follows it, the support's MIP gets a share of
            # the time left, so that the whole model's bound comes in every case
            support = SupportMip(search, free.tolist(), params.seed,
                                 stop.child(fraction=SUPPORT_WHOLE_SHARE) if whole else stop)
            whole_later = whole  # HiGHS on the whole model once the support's MIP has ended
        elif whole:
            mip = MipHelper(model, search.values, params.seed, stop)
        elif mip_worker and not deterministic:
            skipped["support mip"] = f"less than {SUPPORT_MIN_SECONDS:g} s left after the LP"

    search = Search(model, values, None, rng, None if priced is None else priced.tolist())
    report()
    # The interval model beside the search (a thread; CP-SAT releases the GIL), hinted with
    # the start: each plan it finds that beats the incumbent becomes the incumbent.
    helper = None if deterministic or not interval_worker or \
        params.workers < INTERVAL_MIN_WORKERS or model.num_vars > INTERVAL_MAX_VARS \
        else IntervalHelper(model, values, params.seed, stop)
    mip: MipHelper | None = None  # HiGHS branch and bound once the LP is done (see take_lp)
    support: SupportMip | None = None  # or HiGHS on the LP's support (see take_lp)
    whole_later = False
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
        # the support's MIP has ended: its last plan is taken just below, then HiGHS on the
        # whole model starts from the incumbent
        support_ended = whole_later and support is not None and not support.running
        for name, side in (("interval", helper), ("mip", mip), ("support_mip", support)):
            taken = side.take(best) if side is not None else None
            if taken is not None:
                search.adopt(taken)
                best = model.objective_value(search.values)
                stats[f"{name}_adopted"] = stats.get(f"{name}_adopted", 0) + 1
                report()
        if support_ended:
            whole_later = False
            mip = MipHelper(model, search.values, params.seed, stop)
        if mip is not None:
            bound = min(bound, mip.bound(bound - model.objective_offset)
                        + model.objective_offset)
            if _gap(best + model.objective_offset, bound) <= tol:
                break
        rounds += 1
        free = search.neighbourhood(size)
        sub = search.sub_model(free)
        limit = max(0.2, min(SUB_SECONDS, left() - 0.3))
        # HiGHS beside the search (the LP, its support's MIP or the whole model's) runs on
        # one thread: leave it a core of its own
        beside = mip is not None or support is not None or lp_thread.is_alive()
        sub_workers = max(1, params.workers - (1 if beside else 0))
        sub_params = SolveParams(
            time_limit=limit, seed=rng.randrange(1 << 30), workers=sub_workers,
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
    wait = JOIN_INTERRUPTED if stop.interrupted else JOIN_SECONDS
    for side in (helper, mip, support):
        if side is None:
            continue
        stats.update(side.finish(wait))
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
            lp_thread.join(timeout=min(2.0, wait))
            if lp_thread.is_alive():
                skipped["lp"] = "still running when the search ended (left behind)"
            elif lp_out:  # stopped by the request: its bound so far is still proven
                take_lp(final=True)
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


def lagrangian_stage(model: LinearModel, stop: Stop, seconds: float | None,
                     deterministic: bool = False) -> tuple[LagrangeResult | None, str | None]:
    """The LNS's Lagrangian bound: ``seconds`` of subgradient (None: ``LAGRANGE_ITERATIONS``
    iterations when ``deterministic``), or ``(None, why it is skipped)``."""
    if stop.stopped:
        return None, f"{stop.why()} before it began"
    setup = LAGRANGE_SETUP_SHARE * model.matrix().seconds
    if seconds is not None and seconds < setup:
        # its set-up (the scaled entries) is stopped only between its steps: skipped when
        # the budget would not cover it
        return None, f"{seconds:.1f} s for it, less than its set-up time (about {setup:.1f} s)"
    lag_stop = stop if seconds is None else stop.child(seconds=seconds)
    return lagrangian_bound(model, None, stop=lag_stop,
                            max_iterations=LAGRANGE_ITERATIONS if deterministic else 100_000), None


def integral_stage(model: LinearModel, prices: list[float] | None, stop: Stop, stats: dict,
                   source: str) -> float | None:
    """The integral Lagrangian bound at ``prices`` (``INTEGRAL_SECONDS``, ``INTEGRAL_SHARE``
    of the time left), or None when there are none or no time (less than its set-up, which
    takes about as long as the model's matrix did: 1 s at huge); its figures go into
    ``stats`` under ``integral_<source>_*``."""
    remaining = stop.remaining()
    if prices is None or stop.stopped:
        return None
    seconds = INTEGRAL_SECONDS if remaining is None else \
        min(INTEGRAL_SECONDS, INTEGRAL_SHARE * remaining)
    if seconds < model.matrix().seconds:
        stats[f"integral_{source}_skipped"] = f"{seconds:.1f} s for it, less than its set-up"
        return None
    out = integral_bound(model, prices, stop, seconds)
    stats.update({f"integral_{source}_bound": out.bound,
                  f"integral_{source}_seconds": round(out.seconds, 3),
                  f"integral_{source}_groups": out.groups,
                  f"integral_{source}_proven": out.proven})
    return out.bound


def lp_orders(model: LinearModel, lp: list[float]) -> list[tuple[str, list[int]]]:
    """Placement orders for LP-guided greedy roundings: by LP value, and job by job in order
    of the job's LP share (placements of a job by LP value), which keeps whole LP jobs first
    when the LP (an interior point) spreads them over several starts."""
    n = model.num_vars
    lpv = np.asarray(lp, dtype=np.float64)
    cost = np.asarray(model.objective, dtype=np.float64)
    job_k = model.matrix().job_of
    share = np.bincount(job_k, weights=lpv, minlength=len(model.by_job))
    index = np.arange(n)
    value = -np.round(lpv, 6)
    by_value = np.lexsort((index, -cost, value))
    by_job = np.lexsort((index, -cost, value, -np.round(share[job_k], 3)))
    return [("lp_rounding", by_value.tolist()), ("lp_job_rounding", by_job.tolist())]


def _gap(objective: float, bound: float) -> float:
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))
