"""The one entry point: ``solve(instance, ...) -> Plan``.

The pipeline: build the model, prepare a re-plan, a greedy start, choose a strategy and run
it, then turn its result into a Plan. One ``Stop`` (a deadline plus an interrupt) covers the
whole call and goes to every phase; a phase that cannot run in the time left is skipped and
``plan.summary["skipped"]`` says which and why. A stop during the build leaves no model and no
plan: the plan's status is ``unknown`` and ``summary["no_plan"]`` says why in one line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace

from ..models import Instance, Plan, SolveStatus, compute_gap
from .backends import (
    Backend,
    BackendResult,
    Progress,
    ProgressCallback,
    SolveParams,
    get_backend,
)
from .backends.greedy import greedy_values
from .model.formulation import LinearModel, build, gc_paused
from .stop import Stop, StopRequested
from .strategies import STRATEGIES, choose_engine, choose_strategy, get_strategy

log = logging.getLogger(__name__)

Customize = Callable[[LinearModel], None]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def solve(
    instance: Instance,
    backend: str | Backend = "auto",
    *,
    time_limit: float | None = 60.0,
    seed: int = 0,
    workers: int | None = None,
    gap_tolerance: float = 1e-6,
    warm_start: Plan | None = None,
    progress: ProgressCallback | None = None,
    log_search: bool = False,
    previous: Plan | None = None,
    now: int | None = None,
    stability: float = 0.0,
    strategy: str = "auto",
    limits: dict[str, float] | None = None,
    max_memory: int | None = None,
    stop: Stop | None = None,
    customize: Customize | None = None,
    incumbent: Callable[[Plan], None] | None = None,
    model: LinearModel | None = None,
    ready: Callable[[Plan], None] | None = None,
) -> Plan:
    """Plan ``instance`` with ``backend``; the result carries status, bound, gap and runtime.

    ``optimal`` is claimed only for a proven gap of 0 (within 1e-6 relative); a search stopped
    by a looser ``gap_tolerance`` returns ``feasible`` with ``summary["stopped"]`` saying so.
    Progress reports carry the tightest bound known (the trivial bound caps them). When the
    time limit (or ``stop``) ends the search, the incumbent is returned as ``feasible``; an
    infeasible instance returns status ``infeasible``.

    ``stop``: the ``optimizer.stop.Stop`` that ends the call (its deadline and interrupt); made
    from ``time_limit`` when not given (``time_limit`` is then recorded in the plan only).

    Re-planning: with ``previous`` (a plan of an earlier version of the instance), assignments
    that started before period ``now`` are frozen, no other job starts before ``now``, and each
    other change of a previous assignment costs ``stability``; ``previous`` is the default warm
    start. See ``optimizer.model.replan``.

    ``customize(model)`` may change the built model in place before it is solved (add rows,
    change objective coefficients): analyses that solve a variant of the instance call the one
    pipeline that way. ``incumbent(plan)`` receives the plan of the valid start (warm start or
    greedy) before the search begins: the best plan so far, for a caller that cannot wait.
    ``ready(plan)`` receives the plan ``solve`` returns as soon as it is made, before the
    model is freed (large-wide, 650k placements: freeing it takes about a second).

    ``backend``: ``"auto"`` (default) picks the engine and strategy for the model and the
    workers (``strategies.choose_engine``); a backend name runs that backend.
    ``workers``: solver threads, default all available cores (``available_cores``); with
    ``workers=1`` and a seed the result is deterministic.

    ``strategy``: ``"exact"`` runs ``backend`` on the whole model; ``"lns"`` runs the LP bound
    plus CP-SAT large-neighbourhood search (``strategies.lns``); ``"portfolio"`` runs CP-SAT
    and HiGHS side by side (``strategies.portfolio``); ``"auto"`` (default) is
    ``choose_strategy``.

    ``limits``: extra limits for trade-off curves (``optimizer.limits``: total ``spend``, and
    ``changes`` of a re-plan). ``objective.kind: maxmin`` runs ``optimizer.fairness`` first.
    ``max_memory`` (bytes): refuse with ``ModelTooLarge``, before building anything, a model
    whose estimated peak memory (``optimizer.estimate``) is over it; None: no check.

    ``model``: solve this prebuilt model of ``instance`` instead of ``build(instance)``
    (``analysis.robust`` passes its joint and extensive-form models).
    """
    if max_memory is not None:
        from .model.estimate import check_memory

        check_memory(instance, max_memory)
    stop = stop if stop is not None else Stop(time_limit)
    with gc_paused():  # a big model is millions of objects: collections would crawl over them
        return _solve(instance, backend, stop, time_limit=time_limit, seed=seed,
                      workers=workers, gap_tolerance=gap_tolerance, warm_start=warm_start,
                      progress=progress, log_search=log_search, previous=previous, now=now,
                      stability=stability, strategy=strategy, limits=limits,
                      customize=customize, incumbent=incumbent, model=model, ready=ready)


def _solve(instance: Instance, backend: str | Backend, stop: Stop, *, time_limit: float | None,
           seed: int, workers: int | None, gap_tolerance: float, warm_start: Plan | None,
           progress: ProgressCallback | None, log_search: bool, previous: Plan | None,
           now: int | None, stability: float, strategy: str, limits: dict[str, float] | None,
           customize: Customize | None, incumbent: Callable[[Plan], None] | None,
           model: LinearModel | None, ready: Callable[[Plan], None] | None) -> Plan:
    began = time.perf_counter()
    workers = available_cores() if workers is None else max(1, workers)
    auto = backend == "auto"
    engine = get_backend("cpsat" if auto else backend) if isinstance(backend, str) else backend
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    params = SolveParams(time_limit=time_limit, seed=seed, workers=workers,
                         gap_tolerance=gap_tolerance, log=log_search)
    if previous is None and (now is not None or stability):
        raise ValueError("now and stability need a previous plan")
    if model is None:
        try:
            model = build(instance, stop=stop)
        except StopRequested as e:
            cause = "the time limit ended" if e.why == "time limit" else "interrupted"
            why = f"{cause} while building the model ({e.detail})"
            return _handed(ready, _without_model(instance, engine.name, params, began, why,
                                                 warm_start))
    log.debug("model %s built in %.2fs", model.size(), time.perf_counter() - began)
    replan = None
    if previous is not None:
        from .model.replan import prepare

        replan = prepare(instance, model, previous, now=now, stability=stability)
        warm_start = previous if warm_start is None else warm_start
    if limits:
        from .limits import add_limits

        add_limits(instance, model, limits, replan)
    if customize is not None:
        customize(model)
    skipped: dict[str, str] = {}
    name = engine.name
    work = stop.child(seconds=_search_seconds(stop, model))  # leaves time to make the plan
    fairness = None
    if instance.objective.kind == "maxmin" and model.num_vars and not model.infeasible:
        from .fairness import add_floors, first_stage  # stage 1, then floors for stage 2

        fairness = first_stage(instance, model, engine, params, stop=work)
        add_floors(model, instance, fairness)
    if fairness is not None and fairness.values is not None and warm_start is None:
        start = fairness.values  # stage 1's plan meets stage 2's floors
    else:
        # a small model's greedy takes milliseconds: it may use the time kept back for
        # making the plan, so that a short limit still returns a plan
        start = _start(model, engine, warm_start,
                       stop if model.num_vars <= SMALL_GREEDY_VARS else work, skipped)
    start_valid = start is not None and not model.check(start)
    if start is not None and not start_valid:
        log.debug("warm start violates the model; passed as a hint only")
    if incumbent is not None and start_valid and replan is None and not model.infeasible:
        incumbent(_to_plan(instance, model, BackendResult("feasible", start), start, name,
                           params, began, {**skipped, "search": "the start, before the search"}))

    if progress is not None and model.num_vars and not model.infeasible:
        progress = _capped(progress, model.trivial_bound())
    if model.infeasible:
        raw = BackendResult("infeasible", stats={"reason": model.infeasible})
    elif model.num_vars == 0:
        raw = BackendResult("optimal", [], 0.0)
    elif work.stopped:
        skipped["search"] = f"{work.why()} before the search"
        raw = BackendResult("unknown")
        if not start_valid:  # nothing to return: say so in one line
            cause = "the time limit ended" if work.why() == "time limit" else "interrupted"
            raw.stats["no_plan"] = (f"no plan: {cause} before a first plan was found (model "
                                    f"of {model.num_vars:,} placements built)")
    else:
        if auto:
            engine_name, chosen, threads = choose_engine(model, strategy, workers)
            engine = get_backend(engine_name)
            params = replace(params, workers=threads)
        else:
            chosen = choose_strategy(engine.name, model, strategy, workers)
        method = get_strategy(chosen)
        raw = method.run(model, params, work, start, progress, engine=engine)
        name = method.label or engine.name
    plan = _to_plan(instance, model, raw, start if start_valid else None, name, params,
                    began, skipped)
    if replan is not None:
        from .model.replan import finish

        plan = finish(replan, instance, model, plan)
    if fairness is not None:
        plan = plan.model_copy(update={"summary": {**plan.summary,
                                                   "fairness": fairness.summary(instance, plan)}})
    return _handed(ready, plan)  # the model is freed on the way out: a second or more at a
    # million placements


def _handed(ready: Callable[[Plan], None] | None, plan: Plan) -> Plan:
    """``plan``, handed to ``ready`` first (see ``solve``)."""
    if ready is not None:
        ready(plan)
    return plan


SMALL_GREEDY_VARS = 20_000  # up to this size the greedy start may run past the search budget
FINISH_SECONDS = 0.1  # kept back from the search for turning its result into a plan ...
FINISH_SHARE = 1.2  # ... plus this share of the time the model's matrix took to build:
# checking, decoding and freeing the model scale with it (and with the machine's load):
# 1.5 s against 2.3 s at 650k variables and 11M nonzeros on a 2-core machine; 2.9 s against
# a 3.0 s matrix at 1.56M variables and 23M nonzeros (0.7 s late at 0.7)


def _search_seconds(stop: Stop, model: LinearModel) -> float | None:
    left = stop.remaining()
    if left is None:
        return None
    return max(0.0, left - FINISH_SECONDS - FINISH_SHARE * model.matrix().seconds)


def _start(model: LinearModel, engine: Backend, warm_start: Plan | None, stop: Stop,
           skipped: dict[str, str]) -> list[float] | None:
    """The warm start's vector, else a greedy plan (a rule-complete incumbent to start from)."""
    if warm_start is not None:
        return model.encode(list(warm_start.assignments))
    if engine.name == "greedy" or not model.num_vars or model.infeasible:
        return None
    if stop.stopped:
        skipped["greedy start"] = f"{stop.why()} before it began"
        return None
    values = greedy_values(model, stop=stop)
    if stop.stopped:
        skipped["greedy start"] = f"{stop.why()}: cut short (a partial greedy plan)"
    return values


def _capped(progress: ProgressCallback, trivial: float) -> ProgressCallback:
    """Progress reports whose bound is the tightest known so far (never above the trivial
    bound, never looser than an earlier report)."""
    tightest = [trivial]

    def report(p: Progress) -> None:
        if p.bound is not None:
            tightest[0] = min(tightest[0], p.bound)
        progress(replace(p, bound=tightest[0]))

    return report


OPTIMAL_GAP = 1e-6  # "optimal" means a proven gap of 0, up to this relative tolerance


def _tightest(*bounds: float | None) -> float | None:
    """The smallest of several proven upper bounds."""
    known = [b for b in bounds if b is not None]
    return min(known) if known else None


def _without_model(instance: Instance, backend: str, params: SolveParams, began: float,
                   why: str, warm_start: Plan | None) -> Plan:
    """The plan of a solve stopped before it had a model: the warm start when the validator
    passes it (the best plan there is; no bound), else no assignments and status unknown with
    ``summary["no_plan"]``."""
    from ..models.rules import objective_of
    from ..models.validator import validate

    common = dict(instance=instance.name, backend=backend, seed=params.seed,
                  parameters=params.as_dict())
    if warm_start is not None and not validate(instance, warm_start):
        assigned = {a.job for a in warm_start.assignments}
        return Plan(status=SolveStatus.FEASIBLE, assignments=warm_start.assignments,
                    objective=objective_of(instance, warm_start.assignments),
                    unscheduled=tuple(j.id for j in instance.jobs if j.id not in assigned),
                    solve_seconds=time.perf_counter() - began,
                    summary={"skipped": {"model": why, "search": "no model"}}, **common)
    return Plan(status=SolveStatus.UNKNOWN, solve_seconds=time.perf_counter() - began,
                assignments=(), unscheduled=tuple(j.id for j in instance.jobs),
                summary={"no_plan": f"no plan: {why}"}, **common)


def _to_plan(instance: Instance, model: LinearModel, raw: BackendResult,
             valid_start: list[float] | None, backend: str, params: SolveParams,
             began: float, skipped: dict[str, str] | None = None) -> Plan:
    values = raw.values
    objective = model.objective_value(values) if values is not None else None
    if valid_start is not None:
        start_obj = model.objective_value(valid_start)
        if objective is None or start_obj > objective + 1e-9 * max(1.0, abs(start_obj)):
            values, objective = valid_start, start_obj  # never return worse than a valid warm start
    raw_bound = raw.bound
    if raw_bound is not None and objective is not None and \
            raw_bound < objective - 1e-6 * max(1.0, abs(objective)):
        # a bound below a valid plan is no bound: never let it confirm optimality
        log.warning("%s reported bound %s below its plan's objective %s; bound ignored",
                    backend, raw_bound, objective)
        raw_bound = None
    bound = _tightest(raw_bound, model.trivial_bound() if raw.status != "infeasible" else None)
    if bound is not None and objective is not None:
        bound = max(bound, objective)  # the optimum is at least the incumbent (up to rounding)
    gap = compute_gap(objective, bound)
    if raw.status == "infeasible" and values is None:
        status = SolveStatus.INFEASIBLE
    elif values is None:
        status = SolveStatus.UNKNOWN
    elif gap is not None and gap <= OPTIMAL_GAP + 1e-12:
        status = SolveStatus.OPTIMAL  # the proven bound shows it
    else:
        status = SolveStatus.FEASIBLE
        if gap is not None and gap <= params.gap_tolerance + 1e-12:  # the user's tolerance
            raw.stats["stopped"] = f"stopped at gap ≤ {100 * params.gap_tolerance:g}%"
    jobs = instance.job_by_id  # a prebuilt model (robust's copies) may name other jobs
    assignments = [a.model_copy(update={"startup": jobs[a.job].startup}) if a.job in jobs
                   else a for a in model.decode(values)] if values is not None else []
    assigned = {a.job for a in assignments}
    summary = {k: v for k, v in raw.stats.items() if isinstance(v, int | float | str | list)}
    if skipped:
        summary["skipped"] = dict(skipped)
    return Plan(
        instance=instance.name,
        status=status,
        objective=objective,
        bound=bound,
        gap=gap,
        backend=backend,
        solve_seconds=time.perf_counter() - began,
        assignments=tuple(assignments),
        unscheduled=tuple(j.id for j in instance.jobs if j.id not in assigned),
        seed=params.seed,
        parameters=params.as_dict(),
        model_size=model.size(),
        ineligible=tuple(model.ineligible),
        summary=summary,
    )


__all__ = ["STRATEGIES", "available_cores", "choose_engine", "choose_strategy", "solve"]
