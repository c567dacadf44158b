"""The interval model: every plan it returns is valid, and where its translation is exact and
CP-SAT proves it optimal, it reaches the time-indexed optimum."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from gpualloc.models import Instance, Plan, SolveStatus
from gpualloc.models.validator import validate
from gpualloc.optimizer.backends.interval import blocks_of, solve_interval
from gpualloc.optimizer.model import build
from tests.conftest import plan_of, solve_checked
from tests.strategies import instances


def _plan(instance: Instance, values: list[float]) -> Plan:
    return plan_of(instance, build(instance), values, "interval")


def test_blocks_cover_every_placement_once(instance: Instance) -> None:
    model = build(instance)
    blocks, of = blocks_of(model)
    assert sum(b.count for b in blocks) == model.num_vars
    for v, p in enumerate(model.placements):
        b = blocks[of[v]]
        assert (b.job, p.start) == (p.job, b.starts[v - b.first])


def test_portfolio_optimum(instance: Instance, exact: float) -> None:
    result = solve_interval(build(instance), time_limit=30)
    assert result.values is not None
    assert not validate(instance, _plan(instance, result.values))
    if result.status == "optimal":
        assert abs(build(instance).objective_value(result.values) - exact) <= 1e-6 * exact


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_valid_and_exact_on_random_instances(inst: Instance) -> None:
    model = build(inst)
    if model.infeasible or model.num_vars == 0:
        return
    result = solve_interval(model, time_limit=10)
    assert result.stats.get("status_name") != "MODEL_INVALID", result.stats
    reference = solve_checked(inst, "cpsat", time_limit=20)
    if result.values is not None:
        plan = _plan(inst, result.values)
        assert not validate(inst, plan)
        assert reference.objective is not None
        assert plan.objective <= reference.objective + 1e-6 * max(1.0, abs(reference.objective))
    if result.status == "optimal" and reference.status == SolveStatus.OPTIMAL:
        assert abs(plan.objective - reference.objective) <= 1e-6 * max(1.0, reference.objective)
    if result.status == "infeasible":
        assert reference.status == SolveStatus.INFEASIBLE


def test_a_stop_request_ends_the_search(instance: Instance) -> None:
    result = solve_interval(build(instance), time_limit=60, should_stop=lambda: True)
    assert result.status in {"optimal", "feasible", "unknown"}
    assert result.stats["status_name"] in {"OPTIMAL", "FEASIBLE", "UNKNOWN"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_backend_and_its_incumbents_are_valid(inst: Instance) -> None:
    from gpualloc.optimizer.backends import SolveParams
    from gpualloc.optimizer.backends.interval import IntervalBackend

    model = build(inst)
    if model.infeasible or model.num_vars == 0:
        return
    seen: list[tuple[list[float], float]] = []
    raw = IntervalBackend().solve(model, SolveParams(time_limit=10), None,
                                  on_plan=lambda v, o: seen.append((v, o)))
    assert raw.bound is None  # it proves nothing on the neutral model
    for values, objective in seen:
        assert not validate(inst, _plan(inst, values))
        assert abs(objective - model.objective_value(values)) <= 1e-9 * max(1.0, objective)
    if raw.values is not None:
        assert not validate(inst, _plan(inst, raw.values))
        assert seen, "a plan was found but never reported"


def test_backend_stops_on_request(instance: Instance) -> None:
    from gpualloc.optimizer.backends import SolveParams
    from gpualloc.optimizer.backends.interval import IntervalBackend
    from gpualloc.optimizer.stop import Stop

    stop = Stop(60)
    stop.request()
    raw = IntervalBackend().solve(build(instance), SolveParams(time_limit=60), stop=stop)
    assert raw.status == "unknown" and raw.values is None


def test_a_stop_during_the_build_ends_it(instance: Instance) -> None:
    calls: list[int] = []

    def should_stop() -> bool:  # false for the first check, true after: stops mid-build
        calls.append(1)
        return len(calls) > 1

    result = solve_interval(build(instance), time_limit=60, should_stop=should_stop)
    assert result.values is None and result.status == "unknown"
    assert result.stats["stopped"] == "while building the model"
