"""The backends: they agree, really branch, report honest statuses, receive their parameters,
use warm starts, and an unknown name is a clear error.

Every plan goes through the independent validator (``solve_checked`` / ``check_plan``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc import optimizer
from gpualloc.models import Assignment, Instance, Plan, SolveStatus
from gpualloc.optimizer import BackendUnavailable, Capabilities, build
from gpualloc.optimizer.backends import BackendResult
from tests.conftest import (
    ALL_BACKENDS,
    EXACT_BACKENDS,
    HEURISTIC_BACKENDS,
    REL_TOL,
    assert_optimum,
    check_plan,
    close,
    solve_checked,
)
from tests.strategies import feature_counts, instances, random_instance

SEEDS = range(30)


def tol(x: float) -> float:
    return REL_TOL * max(1.0, abs(x))


# -- (a) all backends reach the same optimum on generated instances ---------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_backends_agree_on_generated_instance(seed: int) -> None:
    instance = random_instance(seed)
    plans = {b: solve_checked(instance, b, time_limit=30) for b in ALL_BACKENDS}
    exact = {b: p for b, p in plans.items() if b not in HEURISTIC_BACKENDS}
    assert exact, "no exact backend available"
    for b, p in exact.items():
        assert p.status == SolveStatus.OPTIMAL, f"{b}: {p.status}"
    best = max(p.objective for p in plans.values() if p.objective is not None)
    for b, p in exact.items():
        assert close(p.objective, best), {k: v.objective for k, v in plans.items()}
        # a proven bound is at least the objective of every valid plan
        assert p.bound >= best - tol(best), f"{b}: bound {p.bound} < {best}"
    for b in HEURISTIC_BACKENDS & plans.keys():
        assert plans[b].objective <= best + tol(best)


def test_generated_instances_use_every_feature() -> None:
    # The 30 instances of the cross-check must, together, exercise every feature of the format.
    totals: dict[str, int] = {}
    for seed in SEEDS:
        for feature, n in feature_counts(random_instance(seed)).items():
            totals[feature] = totals.get(feature, 0) + n
    missing = sorted(f for f, n in totals.items() if n == 0)
    assert missing == []
    assert all(feature_counts(random_instance(s))["countries"] >= 2 for s in SEEDS)


def test_generator_is_deterministic() -> None:
    assert random_instance(12) == random_instance(12)
    assert random_instance(12) != random_instance(13)


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_backends_agree_on_hypothesis_instances(instance: Instance) -> None:
    objectives = [solve_checked(instance, b, time_limit=30).objective for b in EXACT_BACKENDS]
    assert all(close(o, objectives[0]) for o in objectives), objectives


# -- (b) the MIP backends branch: the LP relaxation is fractional -----------------------------
def _knapsack() -> Instance:
    # One period, a 10-GPU pool; jobs A (5 GPUs, value 5), B (5 GPUs, 5), C (6 GPUs, 9).
    # Integer optimum: A + B = 10 (C alone 9; C with A or B needs 11 GPUs).
    # LP relaxation: by value per GPU, C (1.5) fully, then 4/5 of A (1.0): 9 + 4 = 13.
    def j(ident: str, gpus: int, value: float) -> dict[str, Any]:
        return {"id": ident, "startup": "s", "value": value,
                "options": [{"accelerator": "H100", "gpus": gpus, "periods": 1}]}

    return Instance.model_validate({
        "name": "knapsack", "horizon": {"periods": 1, "period_hours": 1},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 10, "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s"}],
        "jobs": [j("A", 5, 5), j("B", 5, 5), j("C", 6, 9)],
    })


def lp_relaxation(model: optimizer.LinearModel) -> tuple[float, list[float]]:
    """The model with its binaries relaxed to [0, 1], solved with HiGHS through PuLP."""
    import pulp

    prob = pulp.LpProblem("relaxation", pulp.LpMaximize)
    x = [prob.add_variable(f"x{i}", 0, 1) for i in range(model.num_vars)]
    prob += pulp.lpSum(c * x[i] for i, c in enumerate(model.objective))
    for k, row in enumerate(model.rows):
        expr = pulp.lpSum(c * x[i] for i, c in zip(row.vars, row.coefs, strict=True))
        if row.sense == "<=":
            prob += (expr <= row.rhs, f"r{k}")
        elif row.sense == ">=":
            prob += (expr >= row.rhs, f"r{k}")
        else:
            prob += (expr == row.rhs, f"r{k}")
    prob.solve(pulp.HiGHS(msg=False))
    assert pulp.LpStatus[prob.status] == "Optimal"
    return float(pulp.value(prob.objective)), [float(v.varValue) for v in x]


def test_lp_relaxation_is_fractional_and_backends_find_the_integer_optimum(backend: str) -> None:
    instance = _knapsack()
    model = build(instance)
    lp_value, lp_x = lp_relaxation(model)
    assert close(lp_value, 13.0)
    assert any(1e-6 < v < 1 - 1e-6 for v in lp_x), lp_x  # fractional
    plan = solve_checked(instance, backend)
    assert_optimum(plan, 10.0, backend)
    assert lp_value > plan.objective + 1.0  # the integer optimum is strictly below the LP's
    if backend not in HEURISTIC_BACKENDS:
        assert {a.job for a in plan.assignments} == {"A", "B"}


# -- (c) honest statuses ----------------------------------------------------------------------
# A larger generated instance (60 jobs, 12 periods, ~800 binaries) that CP-SAT and HiGHS
# cannot solve in 0.01 s, while every exact backend proves its optimum in about a second.
HARD = functools.partial(random_instance, 0, jobs=60, periods=12, clusters=3, startups=4, caps=3)


@functools.cache
def hard_reference() -> tuple[Instance, Plan]:
    """The hard instance and the best plan found by the exact backends with time to spare."""
    instance = HARD()
    plans = [solve_checked(instance, b, time_limit=60) for b in EXACT_BACKENDS]
    assert any(p.status == SolveStatus.OPTIMAL for p in plans)
    best = max(plans, key=lambda p: p.objective)
    return instance, best


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_short_time_limit_status_is_honest(name: str) -> None:
    instance, reference = hard_reference()
    best = reference.objective
    plan = optimizer.solve(instance, name, time_limit=0.01)
    check_plan(instance, plan)
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.UNKNOWN)
    if plan.status == SolveStatus.OPTIMAL:
        assert plan.gap is not None and plan.gap <= 1e-6
    if plan.gap is not None and plan.gap > 1e-6:
        assert plan.status != SolveStatus.OPTIMAL
    if plan.objective is not None:
        assert plan.objective <= best + tol(best)
    if plan.bound is not None:  # a bound must bound every valid plan, the reference included
        assert plan.bound >= best - tol(best), f"bound {plan.bound} < valid objective {best}"


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_loose_gap_tolerance_bound_is_honest(name: str) -> None:
    # With gap_tolerance 0.1 a backend may stop early and still claim "optimal" (gap <= 0.1),
    # but its bound must still bound the optimum.
    instance, reference = hard_reference()
    best = reference.objective
    plan = solve_checked(instance, name, time_limit=60, gap_tolerance=0.1)
    assert plan.objective is not None and plan.objective <= best + tol(best)
    if plan.status == SolveStatus.OPTIMAL:
        assert plan.gap <= 0.1 + 1e-12
    if plan.bound is not None:
        assert plan.bound >= best - tol(best), f"bound {plan.bound} < valid objective {best}"


class _InflatedBound:
    """Wraps a backend: claims ``optimal`` but with a bound ``extra`` above the incumbent, as a
    solver stopped at its own gap limit would."""

    def __init__(self, inner: str, extra: float) -> None:
        self.inner = optimizer.get_backend(inner)
        self.name = inner
        self.extra = extra

    def available(self) -> bool:
        return True

    capabilities = Capabilities(proves_bound=True, takes_hint=True, stops_on_request=True,
                                deterministic=True)

    def solve(self, model, params, start=None, progress=None, *, stop=None):
        # the inner solve proves the true optimum; only the claimed bound is inflated
        exact = dataclasses.replace(params, gap_tolerance=1e-9)
        raw = self.inner.solve(model, exact, start, progress, stop=stop)
        assert raw.values is not None
        bound = model.objective_value(raw.values) + self.extra
        return BackendResult("optimal", raw.values, bound, raw.stats)


@pytest.mark.parametrize(("gap_tolerance", "expected"), [
    # knapsack optimum 10; bound claimed 10 + 2 = 12: gap = 2 / 12 = 0.1667
    (1e-6, SolveStatus.FEASIBLE),
    (0.1, SolveStatus.FEASIBLE),
    (0.2, SolveStatus.FEASIBLE),  # stopped by the tolerance: feasible, never optimal
])
def test_optimal_claim_needs_gap_within_tolerance(exact_backend: str, gap_tolerance: float,
                                                  expected: SolveStatus) -> None:
    instance = _knapsack()
    plan = optimizer.solve(instance, _InflatedBound(exact_backend, 2.0),
                           gap_tolerance=gap_tolerance)
    check_plan(instance, plan, gap_tolerance)
    assert close(plan.objective, 10.0) and close(plan.bound, 12.0)
    assert close(plan.gap, 2.0 / 12.0)
    assert plan.status == expected
    assert ("stopped" in plan.summary) == (gap_tolerance > plan.gap)


def test_optimal_status_always_within_default_tolerance(exact_backend: str) -> None:
    for seed in range(30, 36):
        plan = solve_checked(random_instance(seed), exact_backend, gap_tolerance=1e-6)
        assert plan.status == SolveStatus.OPTIMAL
        assert plan.gap is not None and plan.gap <= 1e-6


# -- (d) parameters ---------------------------------------------------------------------------
MEDIUM = functools.partial(random_instance, 4, jobs=20, periods=8, clusters=3, startups=3)


def test_parameters_are_recorded(backend: str) -> None:
    plan = solve_checked(MEDIUM(), backend, time_limit=12.5, seed=3, workers=2,
                         gap_tolerance=1e-4)
    for key, value in {"time_limit": 12.5, "seed": 3, "workers": 2,
                       "gap_tolerance": 1e-4}.items():
        assert plan.parameters[key] == value, key
    assert plan.seed == 3


def test_no_time_limit(backend: str) -> None:
    # time_limit=None means "until optimal": the knapsack optimum 10, recorded as None.
    plan = solve_checked(_knapsack(), backend, time_limit=None)
    assert_optimum(plan, 10.0, backend)
    assert plan.parameters["time_limit"] is None


def _spy_cpsat(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    from ortools.sat.python import cp_model

    class Spy(cp_model.CpSolver):
        def solve(self, model, solution_callback=None):
            p = self.parameters
            seen.update(time_limit=p.max_time_in_seconds, seed=p.random_seed,
                        workers=p.num_workers, gap_tolerance=p.relative_gap_limit)
            return super().solve(model, solution_callback)

    monkeypatch.setattr(cp_model, "CpSolver", Spy)


def _spy_cbc(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    # CBC echoes every option it receives in its log ("seconds was changed from 1e+100 to 11").
    from gpualloc.optimizer.backends import mip

    read = mip._read_cbc

    def spy(log: str, *args: Any) -> BackendResult:
        def number(pattern: str) -> float | None:
            m = re.search(pattern + r" was changed from \S+ to (\S+)", log)
            return float(m.group(1)) if m else None

        seen.update(time_limit=number("seconds"), seed=number("randomSeed"),
                    workers=number("threads"), gap_tolerance=number("ratioGap"))
        return read(log, *args)

    monkeypatch.setattr(mip, "_read_cbc", spy)


def _spy_highs(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    import highspy

    run = highspy.Highs.run

    def option(h: Any, name: str) -> Any:
        v = h.getOptionValue(name)
        return v[1] if isinstance(v, tuple) else v

    def spy(self: Any) -> Any:
        seen.update(time_limit=option(self, "time_limit"), seed=option(self, "random_seed"),
                    workers=option(self, "threads"),
                    gap_tolerance=option(self, "mip_rel_gap"),
                    abs_gap=option(self, "mip_abs_gap"))
        return run(self)

    monkeypatch.setattr(highspy.Highs, "run", spy)


SPIES = {"cpsat": _spy_cpsat, "cbc": _spy_cbc, "highs": _spy_highs}


def test_parameters_reach_the_solver(exact_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if exact_backend not in SPIES:
        pytest.skip(f"no spy for backend {exact_backend}")
    seen: dict[str, Any] = {}
    SPIES[exact_backend](monkeypatch, seen)
    solve_checked(MEDIUM(), exact_backend, time_limit=11.0, seed=7, workers=2,
                  gap_tolerance=1e-3)
    assert seen, "the spy never saw the solver run"
    # the time limit is what remains of 11 s after building the model (CBC: whole seconds)
    assert 9.0 <= seen["time_limit"] <= 11.0
    assert seen["seed"] in (7, 8)  # CBC's seeds are 1-based (seed + 1); 0 means "default"
    # CBC's threaded search stalls now and then (backends/mip.py): it always runs serially
    assert seen["workers"] == (None if exact_backend == "cbc" else 2)
    if exact_backend == "highs":  # scaled so that a HiGHS stop implies ours (highs_gaps)
        bound = build(MEDIUM()).trivial_bound()
        assert 0 < seen["gap_tolerance"] <= 1e-3
        assert 1e-3 <= seen["abs_gap"] <= 1e-3 * max(1.0, abs(bound))
    else:
        assert close(seen["gap_tolerance"], 1e-3)


def test_seed_changes_reach_the_solver(exact_backend: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if exact_backend not in SPIES:
        pytest.skip(f"no spy for backend {exact_backend}")
    seeds = []
    for seed in (1, 5):
        seen: dict[str, Any] = {}
        with monkeypatch.context() as m:
            SPIES[exact_backend](m, seen)
            solve_checked(_knapsack(), exact_backend, seed=seed)
        seeds.append(seen["seed"])
    assert seeds[1] - seeds[0] == 4


def _key(plan: Plan) -> list[tuple[Any, ...]]:
    return sorted((a.job, a.cluster, a.accelerator, a.gpus, a.start, a.end)
                  for a in plan.assignments)


def test_same_seed_single_worker_is_deterministic(backend: str) -> None:
    instance = random_instance(2, jobs=20, periods=8, clusters=3, startups=3)
    first = solve_checked(instance, backend, seed=11, workers=1)
    second = solve_checked(instance, backend, seed=11, workers=1)
    assert _key(first) == _key(second)
    assert first.objective == second.objective


# -- (e) warm start ---------------------------------------------------------------------------
def test_warm_start_from_own_optimum(backend: str) -> None:
    instance = MEDIUM()
    source = EXACT_BACKENDS[0] if backend in HEURISTIC_BACKENDS else backend
    start = solve_checked(instance, source)
    assert start.status == SolveStatus.OPTIMAL
    plan = solve_checked(instance, backend, warm_start=start)
    assert plan.objective >= start.objective - tol(start.objective)


def test_warm_start_is_kept_when_time_is_short(backend: str) -> None:
    # 0.01 s is not enough to re-solve the hard instance, but a valid warm start is never lost.
    instance, reference = hard_reference()
    plan = solve_checked(instance, backend, time_limit=0.01, warm_start=reference)
    assert plan.objective >= reference.objective - tol(reference.objective)


def test_invalid_warm_start_is_only_a_hint(backend: str) -> None:
    # Knapsack: a "plan" running A, B and C at once needs 16 of 10 GPUs. The solve still
    # returns a valid plan (the optimum 10 for exact backends).
    instance = _knapsack()
    cheat = Plan(instance="knapsack", status=SolveStatus.FEASIBLE, objective=19.0,
                 assignments=tuple(
                     Assignment(job=j, cluster="c", accelerator="H100", gpus=g, start=0, end=1,
                                cost=float(g), value=v)
                     for j, g, v in (("A", 5, 5.0), ("B", 5, 5.0), ("C", 6, 9.0))))
    plan = solve_checked(instance, backend, warm_start=cheat)
    assert_optimum(plan, 10.0, backend)


# -- (f) unknown backend --------------------------------------------------------------------
def test_unknown_backend_lists_the_names() -> None:
    with pytest.raises(BackendUnavailable) as info:
        optimizer.get_backend("nope")
    message = str(info.value)
    assert "nope" in message
    for name in optimizer.backend_names():
        assert name in message
    with pytest.raises(BackendUnavailable):
        optimizer.solve(_knapsack(), "nope")


def test_available_backends_include_the_three_solvers() -> None:
    # pyproject installs ortools, pulp (bundled CBC) and highspy: all three must be usable.
    assert {"cpsat", "cbc", "highs"} <= set(optimizer.available_backends())


# -- HiGHS's process-global scheduler and bounds that cannot be right -------------------------
def test_highs_solves_with_any_thread_count_in_one_process() -> None:
    # HiGHS fixes its task scheduler's thread count at the first run in a process; a later run
    # with another count returned without solving ("Not Set") until the scheduler was reset.
    pytest.importorskip("highspy")
    from gpualloc.optimizer.strategies.lp import lp_relaxation

    instance = _knapsack()
    lp_relaxation(build(instance), 10)  # a serial LP first
    for workers in (2, 1, 2):
        plan = solve_checked(instance, "highs", workers=workers)
        assert plan.status == SolveStatus.OPTIMAL, plan.summary
        assert close(plan.objective, 10.0)


def test_a_bound_below_the_plan_is_ignored() -> None:
    class Liar:  # claims a bound below the plan it returns
        name = "liar"
        capabilities = Capabilities(proves_bound=True, takes_hint=False,
                                    stops_on_request=False, deterministic=True)

        def available(self) -> bool:
            return True

        def solve(self, model, params, start=None, progress=None, *, stop=None):
            values = [0.0] * model.num_vars
            values[model.by_job["A"][0]] = 1.0
            return BackendResult("optimal", values, 1.0)

    plan = optimizer.solve(_knapsack(), Liar())
    assert plan.objective is not None and plan.objective >= 5.0
    assert plan.status == SolveStatus.FEASIBLE  # not confirmed by a bound of 1 < 5
    assert plan.bound is not None and plan.bound >= 10.0  # the trivial bound instead


# -- a cost weight: HiGHS once stopped early below the optimum (issue 18) ----------------------
def _cost_weighted(seed: int) -> Instance:
    from gpualloc.models import Objective
    from gpualloc.sources.generate import generate

    inst = generate(clusters=3, startups=4, jobs=20, periods=10, seed=seed)
    return inst.model_copy(update={"objective": Objective(cost_weight=0.5)})


@functools.cache
def _cost_weighted_optima(seed: int) -> tuple[float, ...]:
    return tuple(solve_checked(_cost_weighted(seed), b, time_limit=20).objective
                 for b in EXACT_BACKENDS)


# seed 5: HiGHS said "Optimal" after 0 nodes and returned the greedy warm start, 47% below
@pytest.mark.parametrize("seed", [5, 11])
def test_backends_agree_with_a_cost_weight(exact_backend: str, seed: int) -> None:
    instance = _cost_weighted(seed)
    plan = solve_checked(instance, exact_backend, time_limit=20)
    optima = _cost_weighted_optima(seed)
    assert all(close(o, optima[0]) for o in optima), dict(zip(EXACT_BACKENDS, optima,
                                                              strict=True))
    assert_optimum(plan, max(optima), exact_backend)
    if exact_backend == "highs" and "highs_rerun" in plan.summary:  # the early stop is told
        assert plan.summary["highs_rerun"].startswith("claimed optimal")


def test_highs_gaps_imply_ours() -> None:
    # whatever objective o <= bound b HiGHS stops at inside [low, high], its stop (gap within
    # mip_abs_gap or mip_rel_gap * |o|) means ours: b - o <= 1e-6 * max(1, |b|)
    from gpualloc.optimizer.backends.mip import highs_gaps

    for low, high in [(10.0, 40.0), (-37844.7, -25802.5), (-5.0, 3.0), (None, -100.0),
                      (None, 50.0), (0.2, 0.5)]:
        rel, absolute = highs_gaps(1e-6, low, high)
        first = high - 1e6 if low is None else low
        points = [first + (high - first) * k / 20 for k in range(21)] + [0.0]
        points = [x for x in points if first <= x <= high]
        for b in points:
            ours = 1e-6 * max(1.0, abs(b))
            assert absolute <= ours * (1 + 1e-12), (low, high, b)
            for o in (x for x in points if x <= b):
                assert rel * abs(o) <= ours * (1 + 1e-12), (low, high, b, o)


def test_an_unproven_highs_optimum_is_only_feasible() -> None:
    from gpualloc.optimizer.backends.mip import unproven_optimum

    model = build(_cost_weighted(5))
    values = [0.0] * model.num_vars
    sound = BackendResult("optimal", values, model.objective_value(values), {})
    assert unproven_optimum(model, sound, 1e-6) is None
    claimed = BackendResult("optimal", values, model.objective_value(values) + 10.0, {})
    early = unproven_optimum(model, claimed, 1e-6)
    assert early is not None and early.status == "feasible" and early.values == values
    assert "highs_early_stop" in early.stats


def _smallest_power(coefs: list[float], max_power: int, limit: float) -> float | None:
    """integer_scale's contract, written out: the smallest 10**k (k <= max_power) making every
    coefficient integral (to 1e-9 relative), if the scaled row's |sum| stays below limit."""
    for k in range(max_power + 1):
        scaled = [c * 10.0**k for c in coefs]
        if all(abs(v - round(v)) <= 1e-9 * max(1.0, abs(v)) for v in scaled):
            return 10.0**k if sum(abs(v) for v in scaled) < limit else None
    return None


@settings(max_examples=80, deadline=None)
@given(coefs=st.lists(st.sampled_from([0.5, 1.0, 3.0, 0.25, 1e-3, 12.345, 7.1, 1 / 3, 2e9,
                                       -4.5, 15832.0]), min_size=1, max_size=60),
       max_power=st.sampled_from([6, 9]), limit=st.sampled_from([2.0**52, 2.0**62, 1e12]))
def test_integer_scale_on_short_and_long_rows(coefs: list[float], max_power: int,
                                              limit: float) -> None:
    """Rows longer than ``_VECTOR_FROM`` take the numpy path: same answer, same integers."""
    from gpualloc.optimizer.backends import cpsat

    f = cpsat.integer_scale(coefs, max_power, limit)
    assert f == _smallest_power(coefs, max_power, limit)
    if f is not None:
        assert cpsat._scaled(coefs, f) == [round(c * f) for c in coefs]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_highs_hands_each_improving_plan_over_and_every_one_is_valid(inst: Instance) -> None:
    pytest.importorskip("highspy")
    from gpualloc.optimizer.backends.mip import HighsBackend
    from gpualloc.optimizer.stop import Stop

    model = build(inst)
    plans: list[list[float]] = []
    result = HighsBackend().solve(model, optimizer.SolveParams(time_limit=10), None,
                                  stop=Stop(10), on_plan=plans.append)
    for values in plans:
        assert model.check(values) == []
    if result.values is not None and model.objective_value(result.values) > 0:
        assert plans  # HiGHS found it, so it handed it over
        assert model.objective_value(plans[-1]) == pytest.approx(
            model.objective_value(result.values), rel=1e-9, abs=1e-9)
