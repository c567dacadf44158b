"""Shared fixtures and helpers for the test suite.

- ``backend``: every backend available here (``optimizer.available_backends()``), heuristics
  included; ``exact_backend``: those that prove optimality (all but ``HEURISTIC_BACKENDS``).
- ``solve_checked(instance, backend, **kw)``: solve, check every plan with the independent
  validator and the status/bound/gap contract, return the plan.
- ``assert_optimum`` / ``assert_infeasible``: what a test expects of a backend, exact or not.

Test modules import the helpers with ``from tests.conftest import ...`` (``tests`` is a
package; pytest puts the repository root on ``sys.path``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from gpualloc import optimizer
from gpualloc.models import Instance, Plan, SolveStatus, compute_gap

# Backends that prove nothing: they return ``feasible`` plans (no bound) at best. Every other
# available backend is expected to prove optimality on the small instances of the tests.
HEURISTIC_BACKENDS = frozenset({"greedy", "interval"})
ALL_BACKENDS = optimizer.available_backends()
EXACT_BACKENDS = [b for b in ALL_BACKENDS if b not in HEURISTIC_BACKENDS]
REL_TOL = 1e-6


def close(a: float | None, b: float | None, rel: float = REL_TOL) -> bool:
    """``a`` equals ``b`` up to ``rel`` relative (absolute below 1)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every available backend, one test run each."""
    return request.param


@pytest.fixture(params=EXACT_BACKENDS)
def exact_backend(request: pytest.FixtureRequest) -> str:
    """Every available backend that proves optimality."""
    return request.param


def check_plan(instance: Instance, plan: Plan, gap_tolerance: float = REL_TOL) -> None:
    """The contract of every plan: valid, and a status backed by its bound and gap."""
    from gpualloc.models.validator import validate

    if plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        violations = validate(instance, plan)
        assert violations == [], "\n".join(map(str, violations))
        assert plan.objective is not None
    else:  # infeasible / unknown: nothing is scheduled
        assert plan.assignments == ()
        assert sorted(plan.unscheduled) == sorted(j.id for j in instance.jobs)
    if plan.status == SolveStatus.OPTIMAL:
        assert plan.bound is not None, "optimal without a proven bound"
        assert plan.gap is not None
        assert plan.gap <= REL_TOL + 1e-12, (  # a looser gap_tolerance stops at feasible
            f"optimal with gap {plan.gap} above {REL_TOL} (tolerance {gap_tolerance})")
    if plan.bound is not None and plan.objective is not None:
        assert plan.bound >= plan.objective - REL_TOL * max(1.0, abs(plan.bound)), (
            f"bound {plan.bound} below the plan's own objective {plan.objective}")
        assert plan.gap is not None and math.isclose(
            plan.gap, compute_gap(plan.objective, plan.bound), abs_tol=1e-12)


def plan_of(instance: Instance, model: optimizer.LinearModel, values: list[float],
            backend: str) -> Plan:
    """A 0/1 vector over ``model``'s placements as a feasible Plan (for the validator), as a
    backend or strategy called without ``solve`` returns it."""
    chosen = model.decode(values)
    ran = {a.job for a in chosen}
    return Plan(instance=instance.name, status=SolveStatus.FEASIBLE,
                objective=model.objective_value(values), bound=None, gap=None,
                backend=backend, solve_seconds=0.0, assignments=tuple(chosen),
                unscheduled=tuple(j.id for j in instance.jobs if j.id not in ran))


def solve_checked(instance: Instance, backend: str | optimizer.Backend, **kw: Any) -> Plan:
    """``optimizer.solve`` plus the checks every test wants on every plan.

    A feasible/optimal plan must pass the independent validator (``validate(...) == []``); an
    optimal one must carry a bound with ``gap <= 1e-6`` (or the looser ``gap_tolerance`` the
    test asked for); an infeasible/unknown one schedules nothing.
    """
    kw.setdefault("time_limit", 30.0)
    kw.setdefault("workers", 1)  # deterministic, and the named backend runs on its own
    plan = optimizer.solve(instance, backend, **kw)
    assert plan.backend == (backend if isinstance(backend, str) else backend.name)
    check_plan(instance, plan, kw.get("gap_tolerance", REL_TOL))
    return plan


def assert_optimum(plan: Plan, expected: float, backend: str) -> None:
    """An exact backend proves ``expected`` optimal; a heuristic may only fall short of it."""
    assert plan.objective is not None, f"{backend}: no plan ({plan.status})"
    if backend in HEURISTIC_BACKENDS:
        assert plan.objective <= expected + REL_TOL * max(1.0, abs(expected))
        assert plan.status in (SolveStatus.FEASIBLE, SolveStatus.OPTIMAL)
        return
    assert plan.status == SolveStatus.OPTIMAL, f"{backend}: status {plan.status}"
    assert close(plan.objective, expected), f"{backend}: {plan.objective} != {expected}"


def assert_infeasible(plan: Plan, backend: str) -> None:
    """An exact backend proves infeasibility; a heuristic may only say it found nothing."""
    allowed = {SolveStatus.INFEASIBLE}
    if backend in HEURISTIC_BACKENDS:
        allowed.add(SolveStatus.UNKNOWN)
    assert plan.status in allowed, f"{backend}: status {plan.status}"
    assert plan.objective is None
    assert plan.assignments == ()
