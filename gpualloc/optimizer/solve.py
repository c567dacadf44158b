"""The one entry point: ``solve(instance, ...) -> Plan``."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ..models import Instance, Plan, SolveStatus, compute_gap
from .backends import Backend, BackendResult, ProgressCallback, SolveParams, get_backend
from .backends.greedy import greedy_values
from .model.formulation import LinearModel, build

log = logging.getLogger(__name__)


def solve(
    instance: Instance,
    backend: str | Backend = "cpsat",
    *,
    time_limit: float | None = 60.0,
    seed: int = 0,
    workers: int = 1,
    gap_tolerance: float = 1e-6,
    warm_start: Plan | None = None,
    progress: ProgressCallback | None = None,
    log_search: bool = False,
    previous: Plan | None = None,
    now: int | None = None,
    stability: float = 0.0,
    strategy: str = "auto",
    model: LinearModel | None = None,
) -> Plan:
    """Plan ``instance`` with ``backend``; the result carries status, bound, gap and runtime.

    ``optimal`` is claimed only when the solver's proven bound is within ``gap_tolerance``
    (relative) of the plan's objective. When the time limit stops the search, the incumbent is
    returned as ``feasible``; an infeasible instance returns status ``infeasible``.

    Re-planning: with ``previous`` (a plan of an earlier version of the instance), assignments
    that started before period ``now`` are frozen, no other job starts before ``now``, and each
    other change of a previous assignment costs ``stability``; ``previous`` is the default warm
    start. See ``optimizer.replan``.

    ``strategy``: ``"exact"`` runs ``backend`` on the whole model; ``"lns"`` runs the LP bound
    plus CP-SAT large-neighbourhood search (``optimizer.lns``); ``"portfolio"`` runs CP-SAT and
    HiGHS side by side (``optimizer.portfolio``); ``"auto"`` (default) is ``choose_strategy``.

    ``model``: solve this prebuilt model of ``instance`` instead of ``build(instance)``
    (``analysis.robust`` passes its joint and extensive-form models).
    """
    began = time.perf_counter()
    engine = get_backend(backend) if isinstance(backend, str) else backend
    params = SolveParams(time_limit=time_limit, seed=seed, workers=workers,
                         gap_tolerance=gap_tolerance, log=log_search)
    model = build(instance) if model is None else model
    log.debug("model %s built in %.2fs", model.size(), time.perf_counter() - began)
    replan = None
    if previous is not None:
        from .model.replan import prepare

        replan = prepare(instance, model, previous, now=now, stability=stability)
        warm_start = previous if warm_start is None else warm_start
    elif now is not None or stability:
        raise ValueError("now and stability need a previous plan")
    start = model.encode(list(warm_start.assignments)) if warm_start is not None else None
    if start is None and engine.name != "greedy" and model.num_vars and not model.infeasible:
        start = greedy_values(model)  # a rule-complete incumbent to start from
    start_valid = start is not None and not model.check(start)
    if start is not None and not start_valid:
        log.debug("warm start violates the model; passed as a hint only")

    if model.infeasible:
        raw = BackendResult("infeasible", stats={"reason": model.infeasible})
    elif model.num_vars == 0:
        raw = BackendResult("optimal", [], 0.0)
    else:
        remaining = None if time_limit is None else max(
            0.01, time_limit - (time.perf_counter() - began))
        chosen = choose_strategy(engine.name, model, strategy, workers)
        if chosen != "exact":  # a stop asked of the engine reaches the strategy
            outer = engine

            def halted() -> bool:
                return bool(getattr(outer, "stopped", False))

            if chosen == "lns":
                from .strategies.lns import LnsBackend

                engine = LnsBackend(should_stop=halted)
            else:
                from .strategies.portfolio import PortfolioBackend

                engine = PortfolioBackend(should_stop=halted)
        raw = engine.solve(model, replace(params, time_limit=remaining), start, progress)
    plan = _to_plan(instance, model, raw, start if start_valid else None, engine.name, params,
                    began)
    if replan is not None:
        from .model.replan import finish

        plan = finish(replan, instance, model, plan)
    return plan


STRATEGIES = ("auto", "exact", "lns", "portfolio")


def choose_strategy(backend: str, model: LinearModel, strategy: str = "auto",
                    workers: int = 1) -> str:
    """The strategy ``solve`` runs: ``strategy`` itself unless it is ``"auto"``, which for
    ``cpsat`` picks LNS above ``lns.LNS_THRESHOLD`` variables, the CP-SAT + HiGHS portfolio
    from ``portfolio.PORTFOLIO_MIN_VARS`` variables when there are two workers or more (one
    worker stays deterministic), and the exact backend otherwise."""
    from .strategies.lns import LNS_THRESHOLD
    from .strategies.portfolio import PORTFOLIO_MIN_VARS, PortfolioBackend

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if strategy != "auto":
        return strategy
    if backend != "cpsat":
        return "exact"
    if model.num_vars > LNS_THRESHOLD:
        return "lns"
    if workers >= 2 and model.num_vars >= PORTFOLIO_MIN_VARS and PortfolioBackend().available():
        return "portfolio"
    return "exact"


def _tightest(*bounds: float | None) -> float | None:
    """The smallest of several proven upper bounds."""
    known = [b for b in bounds if b is not None]
    return min(known) if known else None


def _to_plan(instance: Instance, model: LinearModel, raw: BackendResult,
             valid_start: list[float] | None, backend: str, params: SolveParams,
             began: float) -> Plan:
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
    elif gap is not None and gap <= params.gap_tolerance + 1e-12:
        status = SolveStatus.OPTIMAL  # the proven bound shows it
    else:
        status = SolveStatus.FEASIBLE
    assignments = model.decode(values) if values is not None else []
    assigned = {a.job for a in assignments}
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
        summary={k: v for k, v in raw.stats.items() if isinstance(v, int | float | str | list)},
    )
